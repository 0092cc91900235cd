"""Command line: `python -m dfl_lib {train,evaluate,study,demo} ...` (see dfl_lib/cli.py).

A user's mistake is answered in one line on stderr, like a tool: exit code 2 for a usage error
(a value, name or setting the library cannot mean: `errors.UsageError`, and argparse's own), 1
for a data or file error (missing, truncated or unreadable: `errors.DataFileError`); the
traceback only with --debug. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import sys
import time

from .cli import build_parser, config_from_args
from .device import set_threads
from .errors import DataFileError, UsageError

EXIT_USAGE, EXIT_DATA = 2, 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (UsageError, DataFileError) as err:
        if args.debug:
            raise
        code = EXIT_USAGE if isinstance(err, UsageError) else EXIT_DATA
        message = " ".join(str(err).split())  # one line, whatever the message held
        print(f"{parser.prog} {args.command}: error: {message} (--debug shows the traceback)",
              file=sys.stderr)
        return code


def _run(args) -> int:
    set_threads()  # once, for every command
    if args.command == "study":
        from .study.main import run_study

        return run_study(args)
    if args.command == "demo":
        from .study.demo import format_demo, run_demo

        start = time.perf_counter()
        results = run_demo(profile=args.profile, data_root=args.data_dir, runs_root=args.runs_dir,
                           seed=args.seed, progress=not args.quiet)
        print(format_demo(results, profile=args.profile))
        print(f"wall time {time.perf_counter() - start:.0f} s")
        return 0

    from .study.experiment import evaluate_run, train_run
    from .figures.tables import format_accuracy_table

    cfg = config_from_args(args)
    if args.command == "train":
        result = train_run(cfg, data_root=args.data_dir, runs_root=args.runs_dir,
                           progress=not args.quiet)
        last = result["history"][-1]
        print(f"run {result['run_dir']}: {len(result['history'])} epochs, "
              f"val acc {last.get('val_acc', float('nan')):.4f}, "
              f"val PGD acc {last.get('val_adv_acc', float('nan')):.4f}")
    else:
        metrics = evaluate_run(cfg, data_root=args.data_dir, runs_root=args.runs_dir,
                               suite=args.suite, progress=not args.quiet)
        print(format_accuracy_table({metrics["run"]: metrics["table"]}))
        for flag in metrics["masking"]:
            print(f"  masking check {flag['check']:<32} {'ok' if flag['passed'] else 'FLAGGED'}")
        print(f"metrics written to {metrics['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
