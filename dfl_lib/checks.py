"""Input validation shared by the library: one clear error per kind of bad input.

Every public entry point (attacks, models, evaluation) calls these so that a wrong shape, a
value outside [0, 1] or a negative budget fails loudly with the offending value named, instead of
silently producing a meaningless robustness number.
"""
from __future__ import annotations

import math

import torch

__all__ = ["check_images", "check_labels", "check_nonnegative", "check_known"]


def check_images(x: torch.Tensor, *, name: str = "x", channels: int | None = None) -> None:
    """Require a float batch of images (N, C, H, W) with every value in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor in [0, 1], got dtype {x.dtype}")
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} has {x.shape[1]} channels, expected {channels}")
    if x.numel() and x.device.type != "meta":  # meta tensors (shape checks) hold no values
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0 or math.isnan(lo) or math.isnan(hi):
            raise ValueError(
                f"{name} must lie in [0, 1] (pixel units; normalisation is inside the model), "
                f"got values in [{lo:.4g}, {hi:.4g}]"
            )


def check_labels(y: torch.Tensor, *, n: int, name: str = "y") -> None:
    """Require integer class labels of shape (n,)."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(y).__name__}")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {tuple(y.shape)}")


def check_nonnegative(value: float, *, name: str) -> None:
    """Require a finite number >= 0 (budgets, step sizes, weights)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")


def check_known(name: str, registry: dict, *, kind: str) -> None:
    """Require `name` to be a key of `registry`, listing the known names otherwise."""
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(sorted(registry))}")
