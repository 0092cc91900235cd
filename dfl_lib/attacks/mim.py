"""MIM (Dong et al. 2018, "Boosting adversarial attacks with momentum"): BIM on the
accumulated, L1-normalised gradient."""
from __future__ import annotations

import torch

from .base import LossFn, ce_loss, check_attack_inputs, iterate_linf
from .registry import register


@register("mim", norm="Linf", kind="white-box", objective="ce",
          summary="MIM (Dong et al. 2018): BIM with momentum on the L1-normalised gradient",
          cost=lambda s: float(s["steps"]))
def mim(model, x, y, *, eps: float, alpha: float | None = None, steps: int = 10,
        decay: float = 1.0, loss_fn: LossFn = ce_loss) -> torch.Tensor:
    """Momentum Iterative Method (Dong et al. 2018): BIM on the accumulated gradient
    g_t = decay * g_{t-1} + grad_t / mean|grad_t| (mean over each example's pixels).

    alpha defaults to eps / steps (as in the paper); decay 1.0 is its mu.
    x (N, C, H, W), y (N,) -> (N, C, H, W).
    """
    check_attack_inputs(model, x, y, eps=eps, alpha=alpha, steps=steps, decay=decay)
    alpha = eps / max(steps, 1) if alpha is None else alpha
    return iterate_linf(model, x.detach(), y, eps=eps, alpha=alpha, steps=steps, loss_fn=loss_fn,
                        start=x, decay=decay)
