"""The inner loops every training and evaluation path shares: batching in memory, one training
epoch (clean or adversarial), and batched prediction.

Datasets live in memory as uint8 tensors (N, C, H, W); batches are converted to float [0, 1] on the
fly, which is cheaper on this CPU than a DataLoader with worker processes.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import torch
from torch import nn

from .augment import augment_batch

__all__ = ["batch_indices", "to_float", "train_epoch", "predict", "accuracy"]


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, C, H, W) in 0..255 -> float32 in [0, 1]; float input passes through."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


def batch_indices(n: int, *, batch_size: int, generator: torch.Generator | None = None,
                  shuffle: bool = True) -> Iterator[torch.Tensor]:
    """Index tensors covering range(n) in batches; shuffled with `generator` when asked."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from order.split(batch_size)


def _forward(model: nn.Module, x: torch.Tensor, loss: nn.Module, y: torch.Tensor):
    logits, feats = model(x, return_features=True)
    return logits, loss(logits, y, feats)


def train_epoch(
    model: nn.Module,
    loss: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generator: torch.Generator,
    attack: Callable | None = None,
    attack_kwargs: dict | None = None,
    adv_fraction: float = 0.5,
    augment: bool = False,
    memory_format: torch.memory_format = torch.contiguous_format,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    progress: Callable[[Iterator], Iterator] | None = None,
) -> dict:
    """One pass over (x, y) (uint8 images (N, C, H, W), labels (N,)).

    With an `attack`, the first round(adv_fraction * B) samples of each batch are replaced by
    their adversarial versions (the paper "augments" the input space with poisoned samples); the
    attack runs with the model in eval mode (BatchNorm statistics of clean data, no buffer
    updates), and the loss then sees clean and adversarial samples with their true labels.
    `scheduler`, if given, is stepped per batch.
    Returns {"loss", "acc", "n", "seconds"} averaged over samples.
    """
    if not 0.0 <= adv_fraction <= 1.0:
        raise ValueError(f"adv_fraction must be in [0, 1], got {adv_fraction}")
    model.train()
    total_loss, correct, seen, start = 0.0, 0, 0, time.perf_counter()
    batches = batch_indices(len(y), batch_size=batch_size, generator=generator)
    for idx in (progress(batches) if progress else batches):
        xb, yb = to_float(x[idx]), y[idx]
        if augment:
            xb = augment_batch(xb, generator=generator)
        xb = xb.contiguous(memory_format=memory_format)
        if attack is not None and adv_fraction > 0:
            k = round(adv_fraction * len(yb))
            model.eval()
            x_adv = attack(model, xb[:k], yb[:k], **(attack_kwargs or {}))
            model.train()
            # a new tensor: the clean half is never modified in place
            xb = torch.cat([x_adv, xb[k:]]).contiguous(memory_format=memory_format)
        logits, value = _forward(model, xb, loss, yb)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += float(value.detach()) * len(yb)
        correct += int((logits.argmax(1) == yb).sum())
        seen += len(yb)
    return {"loss": total_loss / max(seen, 1), "acc": correct / max(seen, 1), "n": seen,
            "seconds": time.perf_counter() - start}


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Logits (N, K) for images x (uint8 or float in [0, 1]); the model's mode is left alone."""
    outs = []
    for idx in batch_indices(len(x), batch_size=batch_size, shuffle=False):
        out = model(to_float(x[idx]))
        outs.append(out[0] if isinstance(out, tuple) else out)
    return torch.cat(outs) if outs else torch.empty(0)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 256) -> float:
    """Share of correctly classified samples; the caller sets eval mode."""
    return float((predict(model, x, batch_size=batch_size).argmax(1) == y).float().mean())
