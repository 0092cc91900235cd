"""The plan's independent items run side by side: N worker processes, the CPU's cores split
between them (small convolutions use two threads poorly: on a 2-core AVX2 CPU two processes of
one thread each run the quick profile's PGD training step 1.36x faster together than one process
of two threads; the quick plan's first six training items, shrunk to 1,000 images, 1.09x
faster with their start-up and uneven sizes: benchmarks/README.md, section 8).

Items that share work run in one worker, in plan order: those of one training run (its table
cell and its headline evaluation), of one transfer surrogate, of one poisoned training set.
So no two workers ever train one run or craft one set (the run lock, `runs.lock`, still guards
a second invocation on the same runs folder). A worker that dies mid-item (killed, out of
memory) loses nothing: its group is started again in a fresh worker, and its run resumes from
its last checkpoint, or reruns an evaluation that had not been written.

    results = run_parallel(items, workers=2, threads=1, run=run_item, runs_root=..., ...)
"""
from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import torch

from ..evaluation.suites import CHECKED_SUITES
from ..experiments.run import surrogate_config
from ..runs.folder import learned_key
from .estimate import poison_set

__all__ = ["default_workers", "item_groups", "run_parallel", "WorkerDied", "MEMORY_PER_WORKER"]

# peak resident memory of one worker on the quick plan's depth items (ResNet-18/34/50 +- DFL,
# PGD-10 training, MNIST, with torch itself): 2.28 GB (benchmarks/workers.py, results-workers-
# avx2-2core.json); rounded up
MEMORY_PER_WORKER = 2.5e9
RESTARTS = 2  # fresh pools after a worker died, before the invocation gives up


class WorkerDied(RuntimeError):
    """A worker process died again and again: the machine kills it (memory) or the item does."""


def default_workers(*, cores: int | None = None, memory: float | None = None,
                    device: str = "cpu") -> tuple[int, int]:
    """(workers, torch threads per worker) for this machine: one thread per worker on a CPU of
    up to 4 cores (measured faster than one process of every thread), two above (larger
    convolutions use them); as many workers as cores allow and memory holds
    (`MEMORY_PER_WORKER`); one worker on a GPU (one device, one process)."""
    cores = cores or os.cpu_count() or 1
    if device.startswith(("cuda", "mps")):
        return 1, cores
    memory = memory if memory is not None else _memory()
    threads = 1 if cores <= 4 else 2
    workers = max(1, min(cores // threads, int(memory // MEMORY_PER_WORKER)))
    return workers, threads


def _memory() -> float:
    """Bytes of physical memory (inf where the system does not say)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return float("inf")


def _keys(item) -> Iterator[tuple]:
    """What an item shares with others: its training run, its surrogate's, its poisoned set."""
    yield ("train", learned_key(item.cfg))
    if item.suite in CHECKED_SUITES:
        yield ("train", learned_key(surrogate_config(item.cfg)))
    if item.suite == "poison" and poison_set(item.cfg) is not None:
        yield ("poison", poison_set(item.cfg))


def item_groups(items) -> list[list[int]]:
    """Indices of `items` grouped so that items sharing a run, a surrogate or a poisoned set are
    in one group (in plan order); groups in the order of their first item."""
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple, int] = {}
    for i, item in enumerate(items):
        for key in _keys(item):
            if key in owner:
                a, b = root(owner[key]), root(i)
                parent[max(a, b)] = min(a, b)
            else:
                owner[key] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(items)):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def _start_worker(threads: int) -> None:
    """A worker's torch threads: its share of the cores (set before any work)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def _run_group(items, run: Callable, kwargs: dict,
               threads: int) -> list[tuple[str, float, dict]]:
    """Run a group's items in order in this worker, with `threads` torch threads (set here, in
    the task, so a local process and a cluster's worker alike): [(key, seconds, record)]."""
    _start_worker(threads)
    out = []
    for item in items:
        start = time.perf_counter()
        record = run(item, **kwargs)
        out.append((item.key, time.perf_counter() - start, record))
    return out


def run_parallel(items, *, workers: int, threads: int, run: Callable,
                 on_done: Callable[[str, float, dict], None] | None = None,
                 pool: Callable[[], Executor] | None = None,
                 cost: Callable[[object], float] | None = None,
                 **kwargs) -> dict[str, tuple[float, dict]]:
    """Run `run(item, **kwargs)` for every item in `workers` processes of `threads` torch
    threads each, groups of items that share work in one process (`item_groups`); returns
    {item key: (seconds, record)}; `on_done(key, seconds, record)` is called in this process as
    each item's group finishes. A pool whose worker died is replaced and the unfinished groups
    run again (their runs resume from their checkpoints), up to `RESTARTS` times, then
    WorkerDied names the items in flight. `run` must be importable by name (a module-level
    function): workers are started with `spawn`. pool: a factory of the concurrent.futures
    Executor the groups run on (default: `workers` local processes; `cluster.dask_pool` for a
    Dask cluster, which reschedules a dead worker's task itself). cost(item) -> its estimated
    seconds: the groups start longest first (the last group to start is then a short one, not
    a long one left running on one worker's threads while the others idle)."""
    groups = [[items[i] for i in g] for g in item_groups(items)]
    if cost is not None:
        groups.sort(key=lambda group: -sum(cost(item) for item in group))  # stable on ties
    pending, results, restarts = list(range(len(groups))), {}, 0
    context = multiprocessing.get_context("spawn")  # no torch state forked into a worker
    while pending:
        try:
            with (pool or (lambda: ProcessPoolExecutor(max_workers=workers,
                                                       mp_context=context)))() as executor:
                futures = {executor.submit(_run_group, groups[g], run, kwargs, threads): g
                           for g in pending}
                while futures:
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in done:
                        g = futures.pop(future)
                        for key, seconds, record in future.result():
                            results[key] = (seconds, record)
                            if on_done is not None:
                                on_done(key, seconds, record)
                        pending.remove(g)
        except BrokenProcessPool:
            restarts += 1
            if restarts > RESTARTS:
                lost = [item.key for g in pending for item in groups[g]]
                raise WorkerDied(f"a worker process died {restarts} times (killed, or out of "
                                 f"memory: try fewer --workers); every finished run, epoch and "
                                 f"evaluation is kept, and the same command resumes. Not done: "
                                 f"{', '.join(lost[:5])}{' ...' if len(lost) > 5 else ''}") \
                    from None
            print(f"a worker process died; starting {len(pending)} unfinished groups of items "
                  f"again (their runs resume from their checkpoints)", flush=True)
    return results
