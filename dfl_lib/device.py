"""Which torch device a run uses: the config's `device` string, resolved once.

    device = resolve_device("auto")     # cuda when present, else cpu
"""
from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(name: str) -> torch.device:
    """"auto" -> CUDA when available, else the CPU; anything else must name a device torch
    knows ("cpu", "cuda", "cuda:1", "meta", ...). A CUDA device on a machine without one is an
    error, never a silent fallback to the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use 'auto', 'cpu', 'cuda' or 'cuda:<index>'"
                         ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA device here; use "
                         "'auto' or 'cpu'")
    return device
