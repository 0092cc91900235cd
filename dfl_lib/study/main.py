"""`python -m dfl_lib study`: the plan (printed, then trained and evaluated one item at a time),
then every notebook with papermill, then the index reports/<profile>/README.md and the report's
record (reports/<profile>/record/: `record`)."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..device import resolve_device
from ..errors import UsageError
from ..runs import io as runio
from . import cpu_speed, index, record, report, runner
from .estimate import H100_BF16_PEAK, RATES
from .invocations import (invocation_summary, invocation_wall, log_end, log_start,
                          read_invocations, run_commits, run_commits_sentence)
from .plan import runs_dir_name, study_plan
from .workers import default_workers

__all__ = ["run_study", "StudyOptions"]

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class StudyOptions:
    """What `python -m dfl_lib study` was asked to do (its flags, as values): the profile, the
    folders (None: runs/<profile>, reports/<profile>, $DFL_DATA_DIR), the device, which stages
    run (`plan_only`, `skip_plan`, `index_only`, a subset of `notebooks`), progress bars, and
    whether a tree with uncommitted changes may make reports."""
    profile: str
    runs_dir: str | None = None
    out_dir: str | None = None
    data_dir: str | None = None
    device: str = "auto"
    plan_only: bool = False
    skip_plan: bool = False
    index_only: bool = False
    notebooks: tuple[str, ...] = ()   # () = every notebook of the profile
    quiet: bool = False
    allow_dirty: bool = False
    workers: int | None = None       # plan items side by side; None: chosen from the machine
    threads: int | None = None       # torch threads per worker; None: chosen with the workers
    cluster: str | None = None       # a Dask scheduler's address: the plan runs there


def run_study(args: StudyOptions) -> int:
    """The study as `args` says; the exit code (0, or 1 when a notebook failed)."""
    # chosen once; a bad --workers or --threads is refused before any work
    workers, threads = _workers(args)
    on_cpu = resolve_device(args.device).type == "cpu"
    runs_dir = Path(args.runs_dir or ROOT / "runs" / runs_dir_name(args.profile))
    out_dir = Path(args.out_dir or ROOT / "reports" / args.profile)
    if args.plan_only:
        items = study_plan(args.profile)
        speed = _this_cpu(items, workers=workers if on_cpu else 1, threads=threads)
        tables = {}
        for device, cpu in (("cpu", None), ("cuda", None), ("here", speed)):
            rows, total = runner.plan_table(items, device="cpu" if device == "here" else device,
                                     cpu=cpu)
            tables[device] = rows
            here_total = total  # the last of the three: this CPU's
            note = {"cpu": "the reference 2-core CPU (AVX-512 with bf16), calibrated on its "
                           "measured epoch time",
                    "cuda": f"one H100 at {RATES['cuda'] / H100_BF16_PEAK:.0%} of its dense "
                            "bf16 peak, from the FLOP count",
                    "here": "this CPU, from its training speed measured now"}[device]
            print(f"profile {args.profile!r}: {len(rows)} items, estimated {total / 3600:.1f} h "
                  f"on {note}")
        if workers > 1 and on_cpu:
            print(f"profile {args.profile!r}: estimated {here_total / speed.parallel / 3600:.1f} "
                  f"h on this CPU with {workers} workers of {threads} thread"
                  f"{'s' * (threads != 1)} ({speed.parallel:.2f}x one job's speed, measured now)")
        # one line per item with the estimates (the reference CPU's first: it is what the
        # profiles are sized for; "here": this CPU's)
        for (key, what, cpu), (_, _, gpu), (_, _, here) in zip(tables["cpu"], tables["cuda"],
                                                                tables["here"]):
            print(f"  {cpu:7.0f} s CPU {gpu:7.0f} s GPU {here:7.0f} s here  {key:<58} {what}")
        return 0
    _require_clean_tree(allow_dirty=args.allow_dirty)
    start = time.perf_counter()
    if args.index_only:
        print(f"index: {_index(args, runs_dir, out_dir)}")
        _record(args, runs_dir, out_dir)
        _study_report(out_dir)
        return 0
    only = tuple(args.notebooks) or None
    _log_start(args, runs_dir, only=only, machine=_machine(args, workers=workers,
                                                        threads=threads))
    if not args.skip_plan:
        # the workers' speed-up is measured for local workers (a cluster's are elsewhere)
        cpu = _this_cpu(study_plan(args.profile, device=args.device),
                        workers=workers if args.cluster is None else 1,
                        threads=threads) if on_cpu else None
        runner.run_plan(args.profile, data_root=args.data_dir, runs_root=runs_dir,
                        device=args.device, progress=not args.quiet, cpu=cpu, workers=workers,
                        threads=threads, cluster=args.cluster)
    try:
        # a reproduction runs the committed notebooks (one explored in JupyterLab stays as is)
        index.run_notebooks(args.profile, out_dir=out_dir, runs_dir=runs_dir,
                            data_dir=args.data_dir or "", device=args.device, only=only,
                            committed=not args.allow_dirty)
    except index.NotebookFailed as err:
        print(err, file=sys.stderr)
        return 1
    wall = time.perf_counter() - start
    log_end(runs_dir, wall_seconds=wall)
    print(f"study wall time (this invocation) {wall:.0f} s")
    # after the end is logged (the index lists this invocation, a notebook re-run included),
    # and after a notebook re-run too: its verdicts change the index and the study report
    print(f"index: {_index(args, runs_dir, out_dir)}")
    _record(args, runs_dir, out_dir)
    _study_report(out_dir)
    return 0


def _this_cpu(items, *, workers: int, threads: int):
    """This CPU's training speed, measured now (`cpu_speed`), with its lines printed: the
    profiles are sized on a reference CPU, and bf16 autocast trains 14x slower than fp32 on a
    CPU without native bf16. With workers > 1, their speed-up side by side is measured too
    (`CpuSpeed.parallel`)."""
    speed = cpu_speed.measure_cpu_speed()
    if workers > 1:
        speed = replace(speed, parallel=cpu_speed.parallel_speedup(workers=workers,
                                                                    threads=threads))
    print(*cpu_speed.speed_lines(speed, uses_bf16=any(i.cfg.precision == "bf16" for i in items)),
          sep="\n", flush=True)
    return speed


def _log_start(args: StudyOptions, runs_dir: Path, *, only, machine: str) -> None:
    """Record this invocation in the runs folder (`invocations.jsonl`): the commit, and how many
    plan items were already done, so the index can say whether one invocation made it."""
    items = study_plan(args.profile, device=args.device)
    done = runner.measured_seconds(items, runs_root=runs_dir) if runs_dir.exists() else {}
    what = ("plan and notebooks" if not args.skip_plan and only is None else
            ("plan, " if not args.skip_plan else "") +
            (f"notebooks {', '.join(only)}" if only else "notebooks"))
    state = runio.git_state(ROOT)
    log_start(runs_dir, items_done=len(done), items=len(items), commit=state["commit"],
              dirty=state["dirty"], what=what, machine=machine, profile=args.profile)


def _workers(args: StudyOptions) -> tuple[int, int]:
    """(workers, threads per worker): the options', else chosen from the machine
    (`workers.default_workers`: cores, memory, the device)."""
    for name in ("workers", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1, got {getattr(args, name)}")
    workers, threads = default_workers(device=str(resolve_device(args.device)))
    if args.workers is not None:
        workers = args.workers
        threads = args.threads or max(1, (os.cpu_count() or 1) // workers)
    return workers, args.threads or threads


def _machine(args: StudyOptions, *, workers: int, threads: int) -> str:
    """What the study runs on, in words: the GPU's name, or the CPU's cores and vector
    capability (the CPUs lent to this project differ 2-40x in speed: `cpu_speed`)."""
    import torch

    resolved = resolve_device(args.device)
    precision = sorted({item.cfg.precision for item in study_plan(args.profile,
                                                                   device=args.device)})
    how = f"precision {'/'.join(precision)}, {workers} worker{'s' * (workers != 1)} of " \
          f"{threads} thread{'s' * (threads != 1)}"
    if resolved.type == "cuda":
        return f"one {torch.cuda.get_device_name(resolved)}, {how}"
    return f"{os.cpu_count()} CPU cores, {torch.backends.cpu.get_cpu_capability()}, {how}"


def _require_clean_tree(*, allow_dirty: bool) -> None:
    """Reports are made from a clean tree (their provenance names a commit that made them):
    refuse uncommitted changes to code or configuration (reports/, runs/ and notebooks/, whose
    committed versions the study runs, do not count: `runs.io.git_state`) unless told
    otherwise. Raises UsageError."""
    if not allow_dirty and runio.git_state(ROOT)["dirty"] is True:
        raise UsageError("the tree has uncommitted changes to code or configuration (git "
                         "status): commit them first, so the reports name the commit that made "
                         "them, or pass --allow-dirty")


def _record(args: StudyOptions, runs_dir: Path, out_dir: Path) -> None:
    """The report's record (`record.write_record`) where its tables notebook ran, so that
    `python -m dfl_lib verify` re-derives its numbers without runs/. With --index-only nothing is
    trained or evaluated: a record whose evaluations runs_dir does not hold stays as committed."""
    if not (out_dir / "03-robustness-tables" / "metrics.json").exists():
        return
    try:
        folder = record.write_record(args.profile, runs_dir=runs_dir, out_dir=out_dir,
                                     data_root=args.data_dir, device=args.device,
                                     finished_only=args.index_only)
    except record.RecordIncomplete as err:
        kept = out_dir / record.RECORD
        print(f"record: {kept} kept as it is ({err})" if kept.exists() else
              f"record: none written ({err})")
        return
    print(f"record: {folder}")


def _study_report(out_dir: Path) -> None:
    """A part of the study written under reports/ changes the study report's verdicts: write
    reports/README.md again (`study.report`). A report folder elsewhere leaves it alone."""
    if out_dir.resolve().parent == (ROOT / "reports").resolve() and \
            out_dir.name in dict(report.PARTS):
        print(f"study report: {report.write_study_report(out_dir.parent)}")


def _index(args: StudyOptions, runs_dir: Path, out_dir: Path) -> Path:
    """The index from the notebooks' metrics, the plan items' recorded compute and the
    notebooks' recorded wall times. The compute and the invocations come from the runs; with
    --index-only where runs_dir lacks runs the committed index timed (a clone re-writing a
    committed report's index), from the report's own `index.RUN_TIMES_NAME`, so the Time
    section is kept, never emptied."""
    import json

    timings = out_dir / index.TIMINGS_NAME
    seconds = json.loads(timings.read_text()) if timings.exists() else {}
    plan = study_plan(args.profile, device=args.device)
    events = read_invocations(runs_dir, profile=args.profile)
    times = {"plan_seconds": runner.measured_seconds(plan, runs_root=runs_dir),
             "invocations": " ".join(filter(None, (
                 invocation_summary(events),
                 run_commits_sentence(run_commits(runs_dir, folders=runner.plan_folders(
                     plan, runs_root=runs_dir)))))),
             "wall_seconds": invocation_wall(events)}
    # a study that just ran its plan writes what its runs hold; only --index-only falls back
    committed = index.committed_run_times(out_dir) if args.index_only else None
    if committed is not None and not set(committed["plan_seconds"]) <= set(times["plan_seconds"]):
        print(f"times: runs_dir {runs_dir} lacks runs the committed index timed; its Time "
              f"section is kept ({out_dir / index.RUN_TIMES_NAME})")
        times = committed
    elif args.index_only and committed is None and not times["plan_seconds"]:
        raise UsageError(f"{out_dir} has no {index.RUN_TIMES_NAME} and {runs_dir} holds none of "
                         f"the plan's runs, so the index's Time section has nothing to read: "
                         f"run the study, or pass --runs-dir where its runs are")
    return index.write_index(args.profile, out_dir=out_dir, notebook_seconds=seconds,
                             command=f"python -m dfl_lib study --profile {args.profile}",
                             **times)
