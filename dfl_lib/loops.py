"""The inner loops every training and evaluation path shares: batching in memory, one training
epoch (clean or adversarial), and batched prediction.

Datasets live in memory as uint8 tensors (N, C, H, W); batches are converted to float [0, 1] on the
fly, which is cheaper on this CPU than a DataLoader with worker processes.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from functools import partial

import torch
from torch import nn

from .augment import augment_batch
from .data import to_float  # re-exported: the loops' callers convert batches with it
from .distributed import Shard, all_sum
from .errors import UsageError
from .numerics import stat_dtype

__all__ = ["batch_indices", "to_float", "train_epoch", "TrainStep", "predict", "accuracy"]


def batch_indices(n: int, *, batch_size: int, generator: torch.Generator | None = None,
                  shuffle: bool = True) -> Iterator[torch.Tensor]:
    """Index tensors covering range(n) in batches; shuffled with `generator` when asked."""
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from order.split(batch_size)


def _forward(model: nn.Module, x: torch.Tensor, loss: nn.Module, y: torch.Tensor):
    """(logits (B, K), the loss's weighted terms {name: scalar}) for one batch."""
    logits, feats = model(x, return_features=True)
    if hasattr(loss, "components"):
        return logits, loss.components(logits, y, feats)
    return logits, {"loss": loss(logits, y, feats)}


def _total(parts: dict[str, torch.Tensor]) -> torch.Tensor:
    """The loss minimised: the sum of a loss's terms {name: scalar}, in at least fp32.

    A loss may hand back bf16 terms under autocast; Python's sum would then add them in bf16
    and round the total to 8 bits (spacing 0.0156 at a loss of 2.3: a 0.01 regulariser can
    vanish from the reported loss). Gradients are unchanged: each term's flows back in its
    own dtype."""
    return sum(part.to(stat_dtype(part)) for part in parts.values())


class TrainStep(nn.Module):
    """Model and loss as one module, (x, y) -> (logits, terms): what DistributedDataParallel
    wraps, so the loss's own parameters (the PCL's centroids) are averaged with the model's."""

    def __init__(self, model: nn.Module, loss: nn.Module):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        return _forward(self.model, x, self.loss, y)


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
    adv_mode: str = "replace",
    augment: bool = False,
    memory_format: torch.memory_format = torch.contiguous_format,
    device: torch.device | str = "cpu",
    autocast_dtype: torch.dtype | None = None,
    shard: Shard | None = None,
    step_module: nn.Module | None = None,
    lr_factor: Callable[[int], float] | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    progress: Callable[[Iterator], Iterator] | None = None,
) -> dict:
    """One pass over (x, y) (uint8 images (N, C, H, W) on any device, labels (N,)).

    With an `attack`, round(adv_fraction * B) samples of each batch (the first ones) are
    attacked; adv_mode "replace" puts the attacked samples in place of their clean ones (the
    paper "augments" the input space with poisoned samples), "concat" appends them to the whole
    clean batch (Mustafa et al.). The attack runs with the model in eval mode (BatchNorm
    statistics of clean data, no buffer updates); the loss then sees clean and attacked samples
    with their true labels. Batches are moved to `device` (the model's).
    `lr_factor(i)`, if given, scales every group's learning rate at this epoch's batch i (a
    warm-up); `scheduler`, if given, is stepped per batch. `autocast_dtype` (torch.bfloat16):
    the attack, forward and loss run under autocast in that dtype; backward and the step as
    usual (bf16 keeps fp32's exponent range: no loss scaling). Multi-process (`shard`, see
    dfl_lib.distributed): each process trains on its strided shard of every global batch,
    through `step_module` (DistributedDataParallel over model and loss, called as (x, y) ->
    (logits, terms)); the returned statistics are over the global batch.
    Returns {"loss", "acc", "n", "seconds", "terms": {term: mean}} averaged over samples.
    """
    if not 0.0 <= adv_fraction <= 1.0:
        raise UsageError(f"adv_fraction must be in [0, 1], got {adv_fraction}")
    if adv_mode not in ("replace", "concat"):
        raise UsageError(f"unknown adv_mode {adv_mode!r}; known: concat, replace")
    model.train()
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    total_loss, correct, seen, start = 0.0, 0, 0, time.perf_counter()
    terms: dict[str, float] = {}
    cast = (partial(torch.autocast, device_type=torch.device(device).type, dtype=autocast_dtype)
            if autocast_dtype is not None else nullcontext)
    batches = batch_indices(len(y), batch_size=batch_size, generator=generator)
    for i, idx in enumerate(progress(batches) if progress else batches):
        if shard is not None and not augment:  # only this process's part is loaded
            idx = shard.take(idx)
        # uint8 to the device first (4x less to move), then to float there
        xb, yb = to_float(x[idx].to(device, non_blocking=True)), y[idx].to(device)
        if augment:
            xb = augment_batch(xb, generator=generator)
            if shard is not None:  # augmented as one batch, then sharded: the draws of one
                xb, yb = shard.take(xb), shard.take(yb)  # process, generators in step
        xb = xb.contiguous(memory_format=memory_format)
        if attack is not None and adv_fraction > 0:
            k = round(adv_fraction * len(yb))
            model.eval()
            with cast():
                x_adv = attack(model, xb[:k], yb[:k], **(attack_kwargs or {}))
            model.train()
            # new tensors: the clean batch is never modified in place
            if adv_mode == "replace":
                xb = torch.cat([x_adv, xb[k:]])
            else:
                xb, yb = torch.cat([xb, x_adv]), torch.cat([yb, yb[:k]])
            xb = xb.contiguous(memory_format=memory_format)
        if lr_factor is not None:
            for group, lr in zip(optimizer.param_groups, base_lrs):
                group["lr"] = lr * lr_factor(i)
        with cast():
            if step_module is None:
                logits, parts = _forward(model, xb, loss, yb)
            else:
                logits, parts = step_module(xb, yb)
            value = _total(parts)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        # running sums in Python floats (fp64) and an int count, over the epoch's samples
        total_loss += float(value.detach()) * len(yb)
        for name, part in parts.items():
            terms[name] = terms.get(name, 0.0) + float(part.detach()) * len(yb)
        correct += int((logits.argmax(1) == yb).sum())
        seen += len(yb)
    if lr_factor is not None:  # the epoch's scheduler owns the base rates
        for group, lr in zip(optimizer.param_groups, base_lrs):
            group["lr"] = lr
    if shard is not None and shard.world > 1:  # this process saw its shard only
        names = list(terms)
        total_loss, correct, seen, *sums = all_sum([total_loss, correct, seen,
                                                    *(terms[k] for k in names)])
        terms = dict(zip(names, sums))
    return {"loss": total_loss / max(seen, 1), "acc": correct / max(seen, 1), "n": seen,
            "seconds": time.perf_counter() - start,
            "terms": {name: v / max(seen, 1) for name, v in terms.items()}}


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """Logits (N, K) for images x (uint8 or float in [0, 1]); the model's mode is left alone."""
    outs = []
    device = next(model.parameters()).device
    for idx in batch_indices(len(x), batch_size=batch_size, shuffle=False):
        out = model(to_float(x[idx]).to(device))
        outs.append(out[0] if isinstance(out, tuple) else out)
    return torch.cat(outs) if outs else torch.empty(0)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 256) -> float:
    """Share of correctly classified samples; the caller sets eval mode."""
    logits = predict(model, x, batch_size=batch_size)
    return float((logits.argmax(1) == y.to(logits.device)).float().mean())
