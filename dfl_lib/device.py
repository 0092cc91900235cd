"""Which torch device a run uses (the config's `device` string, resolved once) and how many CPU
threads torch uses (chosen once, here, by every entry point: the CLI, the study runner, the
notebooks, the benchmarks).

    device = resolve_device("auto")     # cuda when present, else cpu
    set_threads()                       # $OMP_NUM_THREADS, else every core
"""
from __future__ import annotations

import os

import torch

from .errors import UsageError

__all__ = ["resolve_device", "set_threads"]


def set_threads(n: int | None = None) -> int:
    """Torch's intra-op threads: $OMP_NUM_THREADS (torchrun sets 1 per process; a second torch
    process beside this one should get cores / 2), else n, else every core. Returns the number.
    Two processes with every core each slow each other far more than 2x on a small CPU."""
    want = int(os.environ.get("OMP_NUM_THREADS", 0) or n or os.cpu_count() or 1)
    torch.set_num_threads(want)
    return want


def resolve_device(name: str) -> torch.device:
    """"auto" -> CUDA when available, else the CPU; anything else must name a device torch
    knows ("cpu", "cuda", "cuda:1", "meta", ...). A CUDA device on a machine without one is an
    error, never a silent fallback to the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use 'auto', 'cpu', 'cuda' or 'cuda:<index>'"
                         ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} asked for, but torch sees no CUDA device here; use "
                         "'auto' or 'cpu'")
    return device
