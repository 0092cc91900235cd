"""Command line: `python -m dfl_lib {train,evaluate,study,verify,report,site,data,demo} ...` (see dfl_lib/cli.py).

A user's mistake is answered in one line on stderr, like a tool: exit code 2 for a usage error
(a value, name or setting the library cannot mean: `errors.UsageError`, and argparse's own), 1
for a data or file error (missing, truncated or unreadable: `errors.DataFileError`, and the
operating system's errors a user can cause: `errors.os_error_line`); the traceback only with
--debug. Ctrl-C ends in one line saying what was kept and the command that resumes (exit 130).
Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from . import lazy_name
from .cli import build_parser, config_from_args
from .device import set_threads
from .errors import DataFileError, UsageError, os_error_line
from .runs.io import REPO_ROOT as ROOT
from .runs.io import default_runs_root

# What each command runs, imported when that command runs (`_command`): the study's and the
# site's modules pull in nbformat, jsonschema and papermill, 5-8 s of imports on a 2-core CPU
# that a `train`, or a usage error answered in one line, never needs.
COMMANDS = {
    "StudyOptions": ("study.main", "the study command's options"),
    "run_study": ("study.main", "study: the plan, then the notebooks"),
    "build_site": ("study.site", "site: the reports as a static site"),
    "write_study_report": ("study.report", "report: reports/README.md"),
    "verify_study_report": ("study.report", "verify: the study report against its parts"),
    "RECORD": ("study.record", "verify: a report's record folder"),
    "verify_record": ("study.record", "verify: a report against its record"),
    "run_demo": ("demo", "demo: two MNIST runs under the full suite"),
    "format_demo": ("demo", "demo: its table"),
    "train_run": ("experiments.run", "train"),
    "train_and_evaluate": ("experiments.run", "evaluate"),
    "format_accuracy_table": ("figures.tables", "evaluate: its table"),
    "DOWNLOADABLE": ("data.datasets", "data: what torchvision can fetch"),
    "data_root": ("data.datasets", "data: the data root"),
    "data_status": ("data.datasets", "data: what the root holds"),
}


def _command(name: str):
    return lazy_name(COMMANDS, name, owner="dfl_lib.__main__")

EXIT_USAGE, EXIT_DATA, EXIT_INTERRUPTED = 2, 1, 130


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    prefix = f"{parser.prog} {args.command}"
    try:
        return _run(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"{prefix}: interrupted: {_kept(args)}; to resume, run the same command again: "
              f"{parser.prog} {shlex.join(argv)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UsageError, DataFileError) as err:
        if args.debug:
            raise
        code = EXIT_USAGE if isinstance(err, UsageError) else EXIT_DATA
        _one_line(prefix, str(err))
        return code
    except NotImplementedError as err:  # an op Apple's MPS backend lacks: say what to do
        if "MPS" not in str(err) or args.debug:
            raise
        _one_line(prefix, f"{str(err).splitlines()[0]} -- run with --set device=cpu, or set "
                          "PYTORCH_ENABLE_MPS_FALLBACK=1 to run that op on the CPU")
        return EXIT_USAGE
    except OSError as err:  # the system's own: a user's folder, disk or path, else a bug
        line = os_error_line(err)
        if line is None or args.debug:
            raise
        _one_line(prefix, line)
        return EXIT_DATA


def _one_line(prefix: str, message: str) -> None:
    message = " ".join(message.split())  # one line, whatever the message held
    print(f"{prefix}: error: {message} (--debug shows the traceback)", file=sys.stderr)


def _kept(args) -> str:
    """What an interrupted command leaves, in words: every run's last finished epoch and every
    written result are kept (each file is written atomically: `runs.io`)."""
    if args.command == "study":
        return "finished runs, epochs, evaluations and notebooks are kept"
    root = args.runs_dir or default_runs_root()
    return f"every finished epoch and result is kept under {root}"


def _run(args) -> int:
    set_threads()  # once, for every command
    if args.command == "study":
        run_study, options = _command("run_study"), _command("StudyOptions")
        return run_study(options(
            profile=args.profile, runs_dir=args.runs_dir, out_dir=args.out_dir,
            data_dir=args.data_dir, device=args.device, plan_only=args.plan_only,
            skip_plan=args.skip_plan, index_only=args.index_only,
            notebooks=tuple(n for n in args.notebooks.split(",") if n), quiet=args.quiet,
            allow_dirty=args.allow_dirty, workers=args.workers, threads=args.threads,
            cluster=args.cluster))
    if args.command == "verify":
        return _verify(args.report)
    if args.command == "site":
        build_site = _command("build_site")
        index = build_site(args.reports_dir or ROOT / "reports", args.out)
        print(f"site: {index.resolve()} (open it in a browser)")
        return 0
    if args.command == "report":
        report = _command("write_study_report")(args.reports_dir or ROOT / "reports")
        print(f"study report: {report}")
        return 0
    if args.command == "data":
        return _data(args.data_dir, download=args.download)
    if args.command == "demo":
        start = time.perf_counter()
        run_demo = _command("run_demo")
        results = run_demo(profile=args.profile, data_root=args.data_dir, runs_root=args.runs_dir,
                           seed=args.seed, progress=not args.quiet)
        print(_command("format_demo")(results, profile=args.profile))
        print(f"wall time {time.perf_counter() - start:.0f} s")
        return 0

    cfg = config_from_args(args)
    if args.command == "train":
        train_run = _command("train_run")
        result = train_run(cfg, data_root=args.data_dir, runs_root=args.runs_dir,
                           progress=not args.quiet)
        last = result["history"][-1]
        print(f"run {result['run_dir']}: {len(result['history'])} epochs, "
              f"val acc {last.get('val_acc', float('nan')):.4f}, "
              f"val PGD acc {last.get('val_adv_acc', float('nan')):.4f}")
    else:
        train_and_evaluate = _command("train_and_evaluate")
        metrics = train_and_evaluate(cfg, data_root=args.data_dir, runs_root=args.runs_dir,
                                     suite=args.suite, progress=not args.quiet)
        print(_command("format_accuracy_table")({metrics["run"]: metrics["table"]}))
        for flag in metrics["masking"]:
            print(f"  masking check {flag['check']:<32} {'ok' if flag['passed'] else 'FLAGGED'}")
        print(f"metrics written to {metrics['path']}")
    return 0


def _data(root, *, download: bool) -> int:
    """`data`: one line per dataset; exit 1 when --download left a downloadable one missing."""
    rows = _command("data_status")(root, download=download)
    where = _command("data_root")(root).resolve()
    print(f"data root {where}")
    for r in rows:
        state = (f"present: {r['train']:,} train / {r['test']:,} test" if r["present"] else
                 f"missing: {r['detail']}")
        print(f"  {r['dataset']:<14} {r['source']:<22} {state}")
    fetchable = _command("DOWNLOADABLE")
    missing = [r["dataset"] for r in rows if not r["present"] and r["dataset"] in fetchable]
    return 1 if download and missing else 0


def _verify(folders: list[str]) -> int:
    """`verify`: each report's numbers re-derived from its record; exit 1 on any mismatch."""
    record = _command("RECORD")
    reports = [Path(f) for f in folders] or sorted(
        p.parent.parent for p in (ROOT / "reports").glob(f"*/{record}/index.json"))
    if not reports:
        raise UsageError("no report with a record (reports/<profile>/record/index.json) found; "
                         "name one with --report")
    failed = 0
    if not folders:  # every report: the study report too, against its parts
        problems = _command("verify_study_report")(ROOT / "reports")
        print(f"{ROOT / 'reports' / 'README.md'}: " + (
            "every verdict matches its part's metrics" if not problems else
            f"{len(problems)} mismatches (re-write it: python -m dfl_lib report)"))
        for line in problems[:50]:
            print(f"  {line}")
        failed += bool(problems)
    for folder in reports:
        problems = _command("verify_record")(folder)
        print(f"{folder}: " + ("every table number, verdict and check re-derived from its "
                               "record matches" if not problems else
                               f"{len(problems)} mismatches"))
        for line in problems[:50]:
            print(f"  {line}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
