"""L-inf PGD (Madry et al. 2018, "Towards deep learning models resistant to adversarial
attacks"): random start, restarts, and each example's best iterate kept."""
from __future__ import annotations

import torch

from ..errors import UsageError
from .base import (LossFn, _Best, _outcome, ce_loss, check_attack_inputs, iterate_linf,
                   random_start_linf)
from .registry import register


@register("pgd", norm="Linf", kind="white-box", objective="ce",
          summary="PGD (Madry et al. 2018): random start, restarts, best iterate kept",
          cost=lambda s: float(s["steps"] * s["restarts"]))
def pgd(model, x, y, *, eps: float, alpha: float | None = None, steps: int = 10,
        random_start: bool = True, restarts: int = 1, loss_fn: LossFn = ce_loss,
        generator: torch.Generator | None = None, keep_best: bool = True) -> torch.Tensor:
    """L-inf Projected Gradient Descent (Madry et al. 2018).

    Each step: x + alpha * sign(grad), clamp the perturbation to eps, clamp to [0, 1]; with
    random_start=False, keep_best=False and CE this is torchattacks.PGD(random_start=False).
    alpha defaults to 2.5 * eps / steps (Madry et al.'s ratio). Random starts are uniform in the
    eps-ball, drawn with `generator`. Each example keeps its own worst case over every iterate
    of every restart (keep_best, the evaluation default): a misclassified iterate beats a
    correctly classified one, otherwise the higher loss wins. keep_best=False returns the last
    iterate (of the best restart), as adversarial training uses it.
    x (N, C, H, W), y (N,) -> (N, C, H, W).
    """
    check_attack_inputs(model, x, y, eps=eps, alpha=alpha, steps=steps, restarts=restarts)
    if restarts < 1:
        raise UsageError(f"restarts must be >= 1, got {restarts}")
    alpha = 2.5 * eps / max(steps, 1) if alpha is None else alpha
    x = x.detach()
    best = _Best()  # over every iterate of every restart (keep_best), or their last iterates
    for _ in range(restarts):
        start = random_start_linf(x, eps=eps, generator=generator) if random_start else x
        x_adv = iterate_linf(model, x, y, eps=eps, alpha=alpha, steps=steps, loss_fn=loss_fn,
                             start=start, best=best if keep_best else None)
        if restarts == 1 or keep_best:
            continue
        best.update(x_adv, *_outcome(model, x_adv, y, loss_fn))
    return x_adv if restarts == 1 and not keep_best else best.x
