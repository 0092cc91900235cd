"""CW-inf: the C&W margin loss (Carlini & Wagner 2017) inside L-inf PGD, the field's
fixed-budget use of the C&W objective (Madry et al.'s "CW-inf")."""
from __future__ import annotations

import torch

from .base import margin_loss
from .pgd import pgd
from .registry import register


@register("cw_pgd", norm="Linf", kind="white-box", objective="cw",
          summary="CW-inf: the C&W margin loss inside L-inf PGD",
          cost=lambda s: float(s["steps"] * s["restarts"]))
def cw_pgd(model, x, y, *, eps: float, alpha: float | None = None, steps: int = 10,
           kappa: float = 0.0, random_start: bool = True, restarts: int = 1,
           generator: torch.Generator | None = None, keep_best: bool = True) -> torch.Tensor:
    """L-inf PGD on the C&W margin loss (Madry et al.'s "CW-inf"; Carlini & Wagner 2017):
    `pgd(..., loss_fn=margin_loss(kappa))`, the field's fixed-budget use of the C&W objective.

    kappa caps the margin pursued: at 0 an example stops moving once misclassified. A larger
    kappa (e.g. 50) keeps pushing examples away from the boundary.
    x (N, C, H, W), y (N,) -> (N, C, H, W).
    """
    return pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, random_start=random_start,
               restarts=restarts, loss_fn=margin_loss(kappa), generator=generator,
               keep_best=keep_best)
