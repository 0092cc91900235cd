"""Input validation shared by the library: one clear error per kind of bad input.

Every public entry point (attacks, models, evaluation) calls these so that a wrong shape, a
value outside [0, 1] or a negative budget fails loudly with the offending value named, instead of
silently producing a meaningless robustness number.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .errors import UsageError, UsageTypeError


__all__ = ["check_images", "check_labels", "check_nonnegative", "check_known", "require_eval",
           "check_num_classes"]


def check_images(x: torch.Tensor, *, name: str = "x", channels: int | None = None) -> None:
    """Require a float batch of images (N, C, H, W) with every value in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        raise UsageTypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise UsageTypeError(f"{name} must be a floating-point tensor in [0, 1], got dtype {x.dtype}")
    if x.dim() != 4:
        raise UsageError(f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise UsageError(f"{name} has {x.shape[1]} channels, expected {channels}")
    if x.numel() and x.device.type != "meta":  # meta tensors (shape checks) hold no values
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0 or math.isnan(lo) or math.isnan(hi):
            raise UsageError(
                f"{name} must lie in [0, 1] (pixel units; normalisation is inside the model), "
                f"got values in [{lo:.4g}, {hi:.4g}]"
            )


def check_labels(y: torch.Tensor, *, n: int, name: str = "y") -> None:
    """Require integer class labels of shape (n,)."""
    if not isinstance(y, torch.Tensor):
        raise UsageTypeError(f"{name} must be a torch.Tensor, got {type(y).__name__}")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise UsageTypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if y.shape != (n,):
        raise UsageError(f"{name} must have shape ({n},), got {tuple(y.shape)}")


def check_nonnegative(value: float, *, name: str) -> None:
    """Require a finite number >= 0 (budgets, step sizes, weights)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageTypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{name} must be a finite number >= 0, got {value}")


def check_known(name: str, registry: dict, *, kind: str) -> None:
    """Require `name` to be a key of `registry`, listing the known names otherwise."""
    if name not in registry:
        raise UsageError(f"unknown {kind} {name!r}; known: {', '.join(sorted(registry))}")


def require_eval(model: nn.Module, *, what: str = "evaluating") -> None:
    """Require every submodule of `model` in eval mode; never switch it.

    The one guard of every path that judges, attacks or extracts features from a model (attacks,
    clean and transfer rows, surrogates, masking checks, features for UMAP, the explorer): a
    BatchNorm left in train mode normalises with the batch's statistics and rewrites its running
    buffers at every forward, so the model judged would not be the model trained, and the model
    would leave the evaluation changed. Checking only the top module misses a submodule switched
    back to train mode (e.g. `model.eval(); model.stem.train()`).

    Raises UsageError naming up to three submodules still in train mode.
    """
    if not isinstance(model, nn.Module):
        raise UsageTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
    if training:
        more = ", ..." if len(training) > 3 else ""
        raise UsageError(f"put the model in eval mode (model.eval()) before {what}: in train mode "
                         "BatchNorm uses batch statistics and updates its running buffers (in "
                         f"train mode: {', '.join(training[:3])}{more})")


def check_num_classes(n_classes: int, *, attack: str, minimum: int, why: str) -> None:
    """Require at least `minimum` classes for `attack` (e.g. the DLR loss reads the third-largest
    logit, so APGD-DLR needs 3 classes and its targeted form 4; FAB-T and APGD-T need a target
    class besides the true one). Raises UsageError naming the class count and the attack, before
    any work is done."""
    if n_classes < minimum:
        raise UsageError(f"attack {attack!r} needs a model with at least {minimum} classes "
                         f"({why}); this model has {n_classes}")
