"""Which torch device a run uses (the config's `device` string, resolved once) and how many CPU
threads torch uses (chosen once, here, by every entry point: the CLI, the study runner, the
notebooks, the benchmarks).

    device = resolve_device("auto")     # cuda when present, else cpu
    set_threads()                       # $OMP_NUM_THREADS, else every core
    resolve_precision("auto", device)   # "bf16" where the device computes it natively, else "fp32"
"""
from __future__ import annotations

import os
import typing

import torch

from .config import Precision
from .errors import UsageError

__all__ = ["resolve_device", "key_device", "set_threads", "native_bf16", "resolve_precision", "PRECISIONS"]

PRECISIONS = typing.get_args(Precision)  # ("auto", "fp32", "bf16"): the config's closed set
# CPU flags of native bf16 arithmetic (Linux /proc/cpuinfo names): AVX512-BF16, AMX-BF16.
# Without them bf16 autocast on a CPU is emulated, 7-8x slower than fp32 (AVX2, measured)
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def set_threads(n: int | None = None) -> int:
    """Torch's intra-op threads: $OMP_NUM_THREADS (torchrun sets 1 per process; a second torch
    process beside this one should get cores / 2), else n, else every core. Returns the number.
    Two processes with every core each slow each other far more than 2x on a small CPU."""
    want = int(os.environ.get("OMP_NUM_THREADS", 0) or n or os.cpu_count() or 1)
    torch.set_num_threads(want)
    return want


def resolve_device(name: str) -> torch.device:
    """"auto" -> CUDA when available, else Apple's MPS when available, else the CPU; anything
    else must name a device torch knows ("cpu", "cuda", "cuda:1", "mps", "meta", ...). A CUDA or
    MPS device on a machine without one is an error, never a silent fallback to the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use 'auto', 'cpu', 'cuda' or 'cuda:<index>'"
                         ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} asked for, but torch sees no CUDA device here; use "
                         "'auto' or 'cpu'")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"device {name!r} asked for, but torch sees no MPS device here (Apple "
                         "silicon with a torch built for it); use 'auto' or 'cpu'")
    return device


def key_device(name: str) -> str:
    """The name a stored result's key uses for the device `name`: "auto" where `name` resolves
    to the device "auto" resolves to on this machine (on a CPU-only machine "cpu" and "auto"
    are one device, so an evaluation asked for with either is one computation), else `name`.
    Raises UsageError as `resolve_device` does."""
    return "auto" if resolve_device(name) == resolve_device("auto") else name


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 natively: a CUDA GPU with bf16 (Ampere and newer), a CPU
    with AVX512-BF16 or AMX (read from /proc/cpuinfo on Linux; elsewhere oneDNN's own check).
    Apple's MPS: False (its bf16 autocast is not the study's tested path)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    flags = _cpu_flags()
    if flags is not None:
        return any(flag in flags for flag in BF16_CPU_FLAGS)
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _cpu_flags() -> set[str] | None:
    """The CPU's flags as Linux lists them, or None where /proc/cpuinfo does not exist."""
    try:
        text = open("/proc/cpuinfo", encoding="ascii", errors="replace").read()
    except OSError:
        return None
    return {flag for line in text.splitlines() if line.startswith("flags")
            for flag in line.partition(":")[2].split()}


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto" -> "bf16" where `device` computes bf16 natively (`native_bf16`), else "fp32";
    "fp32" and "bf16" are kept (a user's choice: bf16 on an AVX2 CPU runs, slowly).
    UsageError for anything else."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"
