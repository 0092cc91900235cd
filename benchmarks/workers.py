"""N workers vs one process on the quick plan's first items, side by side in one run.

The quick plan's first training items (the depth study's ResNet-18/34/50 with and without the
DFL, PGD-10 training, MNIST), shrunk to `--n-train` images x 1 epoch so a comparison takes
minutes: once in this process with every core's threads (what the study did before
`--workers`), once by `run_parallel` with `--workers` processes of the cores split between them;
then once more each in the other order (A B, B A), each in a fresh runs folder. Prints wall
seconds, the ratio, and the peak resident memory of a worker (the largest child process), and
writes `results-workers-<cpu capability>-<cores>core.json` beside this file.

    .venv/bin/python benchmarks/workers.py --items 6 --n-train 2000 --workers 2
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dfl_lib.study.plan import study_plan  # noqa: E402
from dfl_lib.study.runner import run_item  # noqa: E402
from dfl_lib.study.workers import run_parallel  # noqa: E402


def _items(n: int, n_train: int) -> list:
    """The quick plan's first n training items at n_train images x 1 epoch (their models,
    attack and training otherwise as planned)."""
    items = [i for i in study_plan("quick") if i.suite is None][:n]
    return [replace(i, cfg=i.cfg.replace(n_train=n_train, epochs=1, lr_warmup_epochs=0.0))
            for i in items]


def _sequential(items, *, data_root, runs_root) -> float:
    torch.set_num_threads(os.cpu_count() or 1)
    start = time.perf_counter()
    for item in items:
        run_item(item, data_root=data_root, runs_root=runs_root)
    return time.perf_counter() - start


def _parallel(items, *, workers: int, threads: int, data_root, runs_root) -> float:
    start = time.perf_counter()
    run_parallel(items, workers=workers, threads=threads, run=run_item, data_root=data_root,
                 runs_root=runs_root)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=6)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-dir", default=os.environ.get("DFL_DATA_DIR", ""))
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    threads = max(1, cores // args.workers)
    items = _items(args.items, args.n_train)
    data_root = args.data_dir or None
    seconds = {"one process": [], f"{args.workers} workers": []}
    for repeat in range(args.repeats):
        order = list(seconds) if repeat % 2 == 0 else list(seconds)[::-1]
        for name in order:
            with tempfile.TemporaryDirectory(prefix="dfl-bench-workers-") as runs:
                if name == "one process":
                    s = _sequential(items, data_root=data_root, runs_root=runs)
                else:
                    s = _parallel(items, workers=args.workers, threads=threads,
                                  data_root=data_root, runs_root=runs)
            seconds[name].append(s)
            print(f"  {name:<12} {s:7.1f} s", flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KB on Linux
    med = {k: statistics.median(v) for k, v in seconds.items()}
    ratio = med["one process"] / med[f"{args.workers} workers"]
    capability = torch.backends.cpu.get_cpu_capability()
    print(f"{cores} cores ({capability}), {len(items)} items of {args.n_train} images x 1 "
          f"epoch: one process of {cores} threads {med['one process']:.1f} s, {args.workers} "
          f"workers of {threads} thread(s) {med[f'{args.workers} workers']:.1f} s: "
          f"{ratio:.2f}x; a worker's peak resident memory {peak_mb:.0f} MB")
    out = Path(__file__).with_name(f"results-workers-{capability.lower()}-{cores}core.json")
    out.write_text(json.dumps({
        "cpu": {"cores": cores, "capability": capability, "platform": platform.platform()},
        "torch": torch.__version__, "items": [i.key for i in items], "n_train": args.n_train,
        "epochs": 1, "workers": args.workers, "threads_per_worker": threads,
        "seconds": seconds, "median_seconds": med, "speedup": ratio,
        "worker_peak_rss_mb": peak_mb}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
