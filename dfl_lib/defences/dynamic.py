"""Baseline 2: Wang et al. (ICML 2019), "On the convergence and robustness of adversarial
training" ("Dynamic" adversarial training).

PGD whose examples stop moving, one by one, once their first-order stationary condition (FOSC)
falls to the epoch's criterion c_t; c_t tightens to 0 over the first 5/6 of training, so early
epochs train on weak adversarial examples and late epochs on strong ones.

FOSC of example k at x (Wang et al., Eq. 5), with g the input gradient of the loss at x:
    c(x) = max_{x' in X} <x' - x, g> = eps * ||g||_1 - <x - x0, g>     for X = L-inf ball(x0, eps)
The box-aware variant takes X = ball intersected with [0, 1]^d, which matters on MNIST where most
pixels sit at 0 or 1 and the plain formula counts gains the box forbids.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks.base import ce_loss, check_attack_inputs, iterate_linf, random_start_linf
from ..config import RunConfig
from ..errors import UsageError
from ..numerics import stat_dtype
from .base import Defence, ramped_eps, register_defence

__all__ = ["Dynamic", "fosc", "dynamic_criterion", "dynamic_pgd", "SelfWeightedCrossEntropy"]


def fosc(x: torch.Tensor, x0: torch.Tensor, grad: torch.Tensor, *, eps: float,
         box_aware: bool = False) -> torch.Tensor:
    """Per-example FOSC (N,) >= 0 for points x in the eps-ball around x0 (all (N, C, H, W)).

    In at least fp32 (`stat_dtype`): a sum over every pixel (3072 on CIFAR-10) compared with
    c_t, which bf16 would round to 8 bits. (The attack's images and input gradients are fp32
    even under autocast; this keeps FOSC fp32 for any caller.)"""
    dtype = stat_dtype(x, x0, grad)
    x, x0, grad = x.to(dtype), x0.to(dtype), grad.to(dtype)
    lo, hi = x0 - eps, x0 + eps
    if box_aware:
        lo, hi = lo.clamp(min=0.0), hi.clamp(max=1.0)
    # the linear maximiser over the box [lo, hi] picks hi where g > 0 and lo where g < 0
    best = torch.where(grad > 0, hi, lo)
    return ((best - x) * grad).flatten(1).sum(1)


def dynamic_criterion(epoch: int, *, epochs: int, c_max: float = 0.5) -> float:
    """c_t = c_max * max(1 - t / (5T/6), 0): Wang et al.'s 0.5 * (1 - t/100) at T = 120."""
    return c_max * max(1.0 - epoch / (5.0 * epochs / 6.0), 0.0)


def dynamic_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, c_threshold: float,
                alpha: float | None = None, steps: int = 10, random_start: bool = True,
                box_aware: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """PGD-`steps` (step eps/4 by default) where an example stops moving once its FOSC is
    <= c_threshold, in the order of Wang et al.'s code (pgd_attack.py, LinfPGDAttack.perturb):
    from the random start the first step is always taken; after every step the FOSC is measured
    at the new point with the gradient there, and it decides whether the example takes the next
    step (the gradient is reused for that step). It is the library's PGD iteration with a
    per-example stop (`attacks.base.iterate_linf(moving=...)`); FOSC uses the per-example loss, so one
    example's gradient does not depend on the batch size.

    Differences from their code: the random start is clamped to [0, 1] before the first gradient
    (theirs is clipped only after the first step), and the box-aware FOSC is an option.
    x, result: (N, C, H, W) in [0, 1], detached.
    """
    check_attack_inputs(model, x, y, eps=eps, c_threshold=c_threshold, alpha=alpha, steps=steps)
    alpha = eps / 4 if alpha is None else alpha
    x0 = x.detach()
    start = random_start_linf(x0, eps=eps, generator=generator) if random_start and eps > 0 else x0

    def moving(x_adv: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:  # (N,) bool
        return fosc(x_adv, x0, grad, eps=eps, box_aware=box_aware) > c_threshold

    return iterate_linf(model, x0, y, eps=eps, alpha=alpha, steps=steps, loss_fn=ce_loss,
                        start=start, moving=moving)


class SelfWeightedCrossEntropy(nn.Module):
    """Wang et al.'s training loss after the first epoch (train_models.py: `sample_weight =
    max(-y log p)`): each example's CE weighted by its own (detached) CE, mean over the batch,
    so badly fitted adversarial examples count more. Component "weighted_ce".

    Their weights come from a separate inference-mode prediction on the adversarial batch; here
    they come from the training forward pass itself (BatchNorm in train mode), which spares a
    forward pass per batch. Features are ignored.
    """

    def components(self, logits, y, features=None) -> dict[str, torch.Tensor]:
        # in at least fp32 (autocast's own policy for cross_entropy, kept without autocast too)
        ce = F.cross_entropy(logits.to(stat_dtype(logits)), y, reduction="none")  # (N,)
        return {"weighted_ce": (ce.detach() * ce).mean()}

    def forward(self, logits, y, features=None) -> torch.Tensor:
        return sum(self.components(logits, y, features).values())


@register_defence
class Dynamic(Defence):
    """cfg.method = "dynamic": Wang et al.'s FOSC-stopped PGD training."""

    name = "dynamic"
    notes = (
        "Wang et al. (ICML 2019) 'Dynamic' adversarial training, as their code runs it "
        "(YisenWang/dynamic_adv_training: train_models.py, pgd_attack.py). Followed: PGD-10 with "
        "step eps/4 and a random start, whose first step is always taken, then FOSC measured at "
        "each new point decides per example whether it steps again, with c_t = 0.5 (1 - t / "
        "(5T/6)); adversarial samples only; lr 0.01, / 10 at 1/2 and 5/6 of the epochs (their "
        "60 and 100 of 120), batch 128, no weight decay; from the second epoch each example's CE "
        "weighted by itself. Differences: their Keras SGD also decays the lr as 1 / (1 + 1e-4 * "
        "updates) (not reproduced: our schedule is per epoch); the loss weights come from the "
        "training forward pass (theirs: a separate inference-mode prediction); the random start "
        "is clamped to [0, 1] before the first gradient; CIFAR-10 augmentation is the study's "
        "(crop with 4-pixel padding and flips; theirs: rotations of 10 degrees, shifts of 20%, "
        "flips); the network is the study's backbone (theirs: their own CNNs); the profile's "
        "scaling of epochs and data applies, and the quick profile's lr warm-up applies to every "
        "method alike.")

    def config_defaults(self, *, train_attack: str) -> dict:
        # Wang et al. (train_models.py): lr 0.01, batch 128, 120 epochs, lr / 10 at epochs 60
        # and 100, adversarial samples only
        return {"loss": "ce", "dfl": False, "lr": 0.01, "batch_size": 128, "epochs": 120,
                "lr_milestones": "0.5,0.8333", "adv_fraction": 1.0, "weight_decay": 0.0}

    def validate(self, cfg: RunConfig) -> None:
        if cfg.train_attack != "pgd":
            raise UsageError("method 'dynamic' is adversarial training with PGD: set "
                             "train_attack='pgd'")
        if cfg.dynamic_loss_weighting and cfg.loss != "ce":
            raise UsageError("method 'dynamic' weights each example's CE (Wang et al.'s code): "
                             "set loss='ce', or dynamic_loss_weighting=false to train another "
                             "loss")

    def training_attack(self, cfg: RunConfig, *, epoch: int,
                        generator: torch.Generator) -> Callable | None:
        c_t = dynamic_criterion(epoch, epochs=cfg.epochs)
        return partial(dynamic_pgd, eps=ramped_eps(cfg, epoch), alpha=cfg.alpha or None,
                       steps=cfg.attack_steps, c_threshold=c_t, box_aware=cfg.dynamic_box_aware,
                       generator=generator)

    def epoch_loss(self, cfg: RunConfig, loss: nn.Module, epoch: int, ce: nn.Module) -> nn.Module:
        """From the second epoch on, each example's CE weighted by itself."""
        if cfg.dynamic_loss_weighting and epoch > 0:
            return SelfWeightedCrossEntropy()
        return loss
