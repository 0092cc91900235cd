"""Side-by-side timing for the benchmarks: contenders run alternately in one process (A B, B A,
A B, ...) so drift in the machine's speed hits both alike; medians over repeats; peak memory of
each in one extra call (CPU: torch's profiler's allocation record; CUDA: the allocator's
peak).

    times = alternate({"ours": lambda: pgd(...), "torchattacks": lambda: atk(x, y)}, repeats=5)
    times["ours"]["median_s"], times["ours"]["peak_mb"]
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile


class PeakMemory:
    """Peak tensor memory a block allocates, in MB. CUDA: the allocator's peak above the level
    before. CPU: torch's profiler records every allocation and free; their running sum in time
    order peaks at the block's peak (resident-set sampling misses memory the process already
    holds from earlier calls, and a sampling thread would steal time from torch's threads)."""

    def __init__(self, device: torch.device):
        self.device, self.peak_mb = device, 0.0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            self.prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
            self.prof.__enter__()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = (torch.cuda.max_memory_allocated(self.device) - self.base) / 2**20
            return
        self.prof.__exit__(*exc)
        running = peak = 0
        for event in sorted(self.prof.events(), key=lambda e: e.time_range.start):
            running += event.self_cpu_memory_usage
            peak = max(peak, running)
        self.peak_mb = peak / 2**20


def timed(fn: Callable[[], object], *, device: torch.device) -> tuple[float, object]:
    """(seconds, fn's result) of one call; CUDA work is waited for."""
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, out


def peak_memory(fn: Callable[[], object], *, device: torch.device) -> float:
    """Peak MB of tensors one call allocates, measured in a call of its own (the profiler
    slows the call down)."""
    with PeakMemory(device) as mem:
        timed(fn, device=device)
    return mem.peak_mb


def alternate(contenders: dict[str, Callable[[], object]], *, repeats: int, device: torch.device,
              warmup: int = 1, memory: bool = True) -> dict[str, dict]:
    """{name: {"median_s", "seconds" (every repeat), "peak_mb", "result" (last)}}, the
    contenders called in alternating order (A B, B A, ...) after `warmup` untimed calls each;
    then, with `memory`, one more call each for its peak memory (else peak_mb is None)."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    runs = {name: {"seconds": [], "peak_mb": None, "result": None} for name in names}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            seconds, out = timed(contenders[name], device=device)
            runs[name]["seconds"].append(seconds)
            runs[name]["result"] = out
    for name, run in runs.items():
        run["median_s"] = statistics.median(run["seconds"])
        if memory:
            run["peak_mb"] = peak_memory(contenders[name], device=device)
    return runs
