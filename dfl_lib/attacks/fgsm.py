"""FGSM (Goodfellow et al. 2015, "Explaining and harnessing adversarial examples"): one
signed-gradient step of eps; with a random start, Wong et al. 2020's "fast" FGSM."""
from __future__ import annotations

import torch

from .base import LossFn, ce_loss, check_attack_inputs, iterate_linf, random_start_linf
from .registry import register


@register("fgsm", norm="Linf", kind="white-box", objective="ce",
          summary="FGSM (Goodfellow et al. 2015): one signed-gradient step of eps",
          cost=lambda s: 1.0)
def fgsm(model, x, y, *, eps: float, random_start: bool = False, alpha: float | None = None,
         loss_fn: LossFn = ce_loss, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fast Gradient Sign Method (Goodfellow et al. 2015): x + eps * sign(grad), clamped to [0, 1].

    Exactly `bim(..., steps=1, alpha=eps)`. With random_start (Wong et al. 2020, "fast"
    adversarial training) it starts uniformly in the eps-ball (drawn with `generator`), steps
    alpha (default 1.25 * eps) and projects back to the ball. x (N, C, H, W), y (N,) -> (N, C, H, W).
    """
    check_attack_inputs(model, x, y, eps=eps, alpha=alpha)
    if random_start:
        start = random_start_linf(x.detach(), eps=eps, generator=generator)
        alpha = 1.25 * eps if alpha is None else alpha
    else:
        start, alpha = x, eps if alpha is None else alpha
    return iterate_linf(model, x.detach(), y, eps=eps, alpha=alpha, steps=1, loss_fn=loss_fn,
                        start=start)
