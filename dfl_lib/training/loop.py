"""The inner loop of training: one epoch (clean or adversarial), its settings as two small
objects (`EpochSetup`: how the epoch runs; `Adversary`: how its batches are attacked), and
batched prediction.

Datasets live in memory as uint8 tensors (N, C, H, W); batches are converted to float [0, 1] on the
fly, which is cheaper on this CPU than a DataLoader with worker processes.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import nn

from ..data.augment import augment_batch
from ..data.datasets import batch_indices, to_float  # re-exported for the loops' callers
from ..errors import UsageError
from ..numerics import stat_dtype
from .distributed import Shard, all_sum

__all__ = ["batch_indices", "to_float", "train_epoch", "EpochSetup", "Adversary", "TrainStep",
           "predict", "accuracy", "GRADIENT_PROBES", "gradient_norms"]

# the modules whose gradient norms each epoch records: the first (the stem, the same 3x3 conv
# and BatchNorm at every depth) and the last (the classifier head); a vanishing gradient shows
# as a stem gradient that shrinks with depth (the paper's Section 1 claim)
GRADIENT_PROBES = ("stem", "head")


def _forward(model: nn.Module, x: torch.Tensor, loss: nn.Module, y: torch.Tensor):
    """(logits (B, K), the loss's weighted terms {name: scalar}) for one batch."""
    logits, feats = model(x, return_features=True)
    if hasattr(loss, "components"):
        return logits, loss.components(logits, y, feats)
    return logits, {"loss": loss(logits, y, feats)}


def gradient_norms(model: nn.Module) -> dict[str, torch.Tensor]:
    """{probe: L2 norm of the gradients of `model.<probe>`'s parameters} for the probes
    (`GRADIENT_PROBES`) the model has, as 0-d tensors on its device; {} for a model without
    them (a user's own network). Read after backward, before the optimiser step."""
    out = {}
    for name in GRADIENT_PROBES:
        module = getattr(model, name, None)
        grads = ([p.grad for p in module.parameters() if p.grad is not None]
                 if isinstance(module, nn.Module) else [])
        if grads:  # the L2 norm of the concatenated gradients (torch's own, as clipping uses)
            out[name] = torch.nn.utils.get_total_norm(grads, norm_type=2.0)
    return out


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


@dataclass
class Adversary:
    """How an epoch attacks its batches: `attack(model, x, y, **kwargs)` on the first
    round(fraction * B) samples of each batch (model in eval mode: BatchNorm statistics of clean
    data, no buffer updates); mode "replace" puts the attacked samples in place of their clean
    ones (the paper "augments" the input space with its attacked samples), "concat" appends them
    to the whole clean batch (Mustafa et al.)."""

    attack: Callable
    kwargs: dict = field(default_factory=dict)
    fraction: float = 0.5
    mode: str = "replace"

    def __post_init__(self):
        if not 0.0 <= self.fraction <= 1.0:
            raise UsageError(f"adv_fraction must be in [0, 1], got {self.fraction}")
        if self.mode not in ("replace", "concat"):
            raise UsageError(f"unknown adv_mode {self.mode!r}; known: concat, replace")


@dataclass
class EpochSetup:
    """How one epoch runs, beyond the model, the loss and the data.

    generator: the batch order and augmentation draws; device: where batches go (the model's);
    autocast_dtype (torch.bfloat16): the attack, forward and loss under autocast in that dtype,
    backward and the step as usual (bf16 keeps fp32's exponent range: no loss scaling);
    lr_factor(i): scales every group's rate at batch i (a warm-up); scheduler: stepped per batch;
    shard + step_module: multi-process training (dfl_lib.training.distributed): each process
    trains on its strided shard of every global batch through `step_module`
    (DistributedDataParallel over model and loss, (x, y) -> (logits, terms)).
    """

    optimizer: torch.optim.Optimizer
    batch_size: int
    generator: torch.Generator
    augment: bool = False
    memory_format: torch.memory_format = torch.contiguous_format
    device: torch.device | str = "cpu"
    autocast_dtype: torch.dtype | None = None
    shard: Shard | None = None
    step_module: nn.Module | None = None
    lr_factor: Callable[[int], float] | None = None
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    progress: Callable[[Iterator], Iterator] | None = None

    def cast(self):
        """The autocast context of the forward passes (a no-op without autocast_dtype)."""
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=torch.device(self.device).type,
                              dtype=self.autocast_dtype)


def train_epoch(model: nn.Module, loss: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                setup: EpochSetup, adversary: Adversary | None = None) -> dict:
    """One pass over (x, y) (uint8 images (N, C, H, W) on any device, labels (N,)): each batch
    is loaded (and augmented), attacked as `adversary` says, and one optimiser step is taken on
    the loss of clean and attacked samples with their true labels.

    Returns {"loss", "acc", "n", "seconds", "terms": {term: mean}} averaged over samples (over
    the global batch under several processes), and "gradients": {probe: mean over batches of
    the probe's gradient L2 norm} (`gradient_norms`; {} for a model without the probes; the
    same on every process: DistributedDataParallel averages the gradients before the step).
    """
    s = setup
    model.train()
    base_lrs = [g["lr"] for g in s.optimizer.param_groups]
    sums = _Sums()
    batches = batch_indices(len(y), batch_size=s.batch_size, generator=s.generator)
    for i, idx in enumerate(s.progress(batches) if s.progress else batches):
        xb, yb = _load_batch(x, y, idx, setup=s)
        if adversary is not None and adversary.fraction > 0:
            xb, yb = _attack_batch(model, xb, yb, adversary=adversary, setup=s)
        if s.lr_factor is not None:
            for group, lr in zip(s.optimizer.param_groups, base_lrs):
                group["lr"] = lr * s.lr_factor(i)
        with s.cast():
            logits, parts = (_forward(model, xb, loss, yb) if s.step_module is None
                             else s.step_module(xb, yb))
            value = _total(parts)
        s.optimizer.zero_grad(set_to_none=True)
        value.backward()
        sums.add_gradients(gradient_norms(model))
        s.optimizer.step()
        if s.scheduler is not None:
            s.scheduler.step()
        sums.add(value, parts, logits, yb)
    if s.lr_factor is not None:  # the epoch's scheduler owns the base rates
        for group, lr in zip(s.optimizer.param_groups, base_lrs):
            group["lr"] = lr
    return sums.result(shard=s.shard)


def _load_batch(x, y, idx, *, setup: EpochSetup):
    """Batch `idx` as float images in [0, 1] on the device (augmented, sharded, laid out)."""
    s = setup
    if s.shard is not None and not s.augment:  # only this process's part is loaded
        idx = s.shard.take(idx)
    # uint8 to the device first (4x less to move), then to float there
    xb, yb = to_float(x[idx].to(s.device, non_blocking=True)), y[idx].to(s.device)
    if s.augment:
        xb = augment_batch(xb, generator=s.generator)
        if s.shard is not None:  # augmented as one batch, then sharded: the draws of one
            xb, yb = s.shard.take(xb), s.shard.take(yb)  # process, generators in step
    return xb.contiguous(memory_format=s.memory_format), yb


def _attack_batch(model, xb, yb, *, adversary: Adversary, setup: EpochSetup):
    """The batch with its first samples attacked (replaced, or their copies appended)."""
    k = round(adversary.fraction * len(yb))
    model.eval()
    with setup.cast():
        x_adv = adversary.attack(model, xb[:k], yb[:k], **adversary.kwargs)
    model.train()
    # new tensors: the clean batch is never modified in place
    if adversary.mode == "replace":
        xb = torch.cat([x_adv, xb[k:]])
    else:
        xb, yb = torch.cat([xb, x_adv]), torch.cat([yb, yb[:k]])
    return xb.contiguous(memory_format=setup.memory_format), yb


class _Sums:
    """The epoch's running sums, in Python floats (fp64) and an int count, over its samples."""

    def __init__(self):
        self.loss, self.correct, self.seen, self.terms = 0.0, 0, 0, {}
        self.gradients, self.steps = {}, 0
        self.start = time.perf_counter()

    def add_gradients(self, norms: dict) -> None:
        # summed as tensors on the device: no host synchronisation per batch for a record
        for name, norm in norms.items():
            self.gradients[name] = self.gradients.get(name, 0.0) + norm.detach()
        self.steps += 1

    def add(self, value, parts, logits, yb) -> None:
        self.loss += float(value.detach()) * len(yb)
        for name, part in parts.items():
            self.terms[name] = self.terms.get(name, 0.0) + float(part.detach()) * len(yb)
        self.correct += int((logits.argmax(1) == yb).sum())
        self.seen += len(yb)

    def result(self, *, shard) -> dict:
        loss, correct, seen, terms = self.loss, self.correct, self.seen, self.terms
        if shard is not None and shard.world > 1:  # this process saw its shard only
            names = list(terms)
            loss, correct, seen, *sums = all_sum([loss, correct, seen,
                                                  *(terms[k] for k in names)])
            terms = dict(zip(names, sums))
        return {"loss": loss / max(seen, 1), "acc": correct / max(seen, 1), "n": seen,
                "seconds": time.perf_counter() - self.start,
                "terms": {name: v / max(seen, 1) for name, v in terms.items()},
                "gradients": {name: float(v) / max(self.steps, 1)
                              for name, v in self.gradients.items()}}


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
