"""The adaptive attack (Tramer et al. 2020, "On adaptive attacks to adversarial example
defenses"): PGD on the defence's own objective instead of cross-entropy.

The objective comes from the defence's loss (`loss.adaptive_objective(ce_weight=...)`: for the
PCL, the distance to the own centroid minus the distance to the nearest wrong one, on the
loss's own feature and geometry), so this file knows no loss: a new defence supplies its
objective and the attack uses it.
"""
from __future__ import annotations

from ..errors import UsageError
from .pgd import pgd
from .registry import _signature_defaults, register_runner


@register_runner("pgd_adaptive", norm="Linf", kind="adaptive", objective="adaptive",
                 needs=("defence_loss",), fn=pgd,
                 summary="PGD on the defence's own objective (the PCL: towards the nearest "
                         "wrong centroid)",
                 defaults={**_signature_defaults(pgd), "loss_fn": "adaptive_objective",
                           "ce_weight": 0.0})
def pgd_adaptive(model, x, y, *, generator, seed, defence_loss=None, ce_weight=0.0, **kw):
    """pgd(..., loss_fn=defence_loss.adaptive_objective(ce_weight=ce_weight)); the model must
    return (logits, features) with return_features=True."""
    make = getattr(defence_loss, "adaptive_objective", None)
    if make is None:
        raise UsageError("pgd_adaptive needs defence_loss=<the run's loss with an "
                         f"adaptive_objective>, got {type(defence_loss).__name__}")
    return pgd(model, x, y, loss_fn=make(ce_weight=ce_weight), generator=generator, **kw)
