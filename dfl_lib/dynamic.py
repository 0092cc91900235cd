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

import torch
import torch.nn.functional as F
from torch import nn

from .attacks import logits_of, project_linf
from .checks import check_images, check_nonnegative

__all__ = ["fosc", "dynamic_criterion", "dynamic_pgd"]


def fosc(x: torch.Tensor, x0: torch.Tensor, grad: torch.Tensor, *, eps: float,
         box_aware: bool = False) -> torch.Tensor:
    """Per-example FOSC (N,) >= 0 for points x in the eps-ball around x0 (all (N, C, H, W))."""
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
    """PGD-`steps` (step eps/4 by default, as Wang et al.) where an example stops moving once its
    FOSC is <= c_threshold. FOSC is computed on the per-example loss, so one example's gradient
    does not depend on the batch size. x, result: (N, C, H, W) in [0, 1], detached."""
    check_images(x, name="x")
    check_nonnegative(eps, name="eps")
    check_nonnegative(c_threshold, name="c_threshold")
    if model.training:
        raise ValueError("put the model in eval mode (model.eval()) before attacking")
    alpha = eps / 4 if alpha is None else alpha
    x0 = x.detach()
    x_adv = x0.clone()
    if random_start and eps > 0:
        noise = torch.rand(x0.shape, generator=generator, dtype=x0.dtype) * 2 - 1
        x_adv = project_linf(x0 + eps * noise.to(x0.device), x0, eps=eps)
    active = torch.ones(len(x0), dtype=torch.bool, device=x0.device)  # (N,)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        # sum of per-example losses: each example's input gradient is its own loss's gradient
        loss = F.cross_entropy(logits_of(model, x_adv), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = x_adv.detach()
        c = fosc(x_adv, x0, grad, eps=eps, box_aware=box_aware)
        active &= c > c_threshold
        if not active.any():
            break
        step = alpha * grad.sign() * active.view(-1, 1, 1, 1)
        x_adv = project_linf(x_adv + step, x0, eps=eps)
    return x_adv.detach()
