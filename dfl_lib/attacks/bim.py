"""BIM (Kurakin et al. 2017, "Adversarial examples in the physical world"): iterated FGSM
from x itself, step eps / steps."""
from __future__ import annotations

import torch

from .base import LossFn, ce_loss, check_attack_inputs, iterate_linf
from .registry import register


@register("bim", norm="Linf", kind="white-box", objective="ce",
          summary="BIM (Kurakin et al. 2017): iterative FGSM from x, step eps / steps",
          cost=lambda s: float(s["steps"]))
def bim(model, x, y, *, eps: float, alpha: float | None = None, steps: int = 10,
        loss_fn: LossFn = ce_loss) -> torch.Tensor:
    """Basic Iterative Method (Kurakin et al. 2017): `steps` signed-gradient steps of alpha from
    x itself (no random start), each projected to the eps-ball and [0, 1].

    alpha defaults to eps / steps: the ball's boundary is just reachable, and steps = 1 is FGSM.
    x (N, C, H, W), y (N,) -> (N, C, H, W).
    """
    check_attack_inputs(model, x, y, eps=eps, alpha=alpha, steps=steps)
    alpha = eps / max(steps, 1) if alpha is None else alpha
    return iterate_linf(model, x.detach(), y, eps=eps, alpha=alpha, steps=steps, loss_fn=loss_fn,
                        start=x)
