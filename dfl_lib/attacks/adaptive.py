"""The adaptive attack (Tramer et al. 2020, "On adaptive attacks to adversarial example
defenses"): PGD on the defence's own objective instead of cross-entropy.

The objective comes from the defence's loss (`loss.adaptive_objective(ce_weight=...)`: for the
PCL, the distance to the own centroid minus the distance to the nearest wrong one, on the
loss's own feature and geometry), so this file knows no loss: a new defence supplies its
objective and the attack uses it.
"""
from __future__ import annotations

from ..errors import UsageError
from .base import _Best, _outcome, iterate_linf
from .pgd import pgd
from .registry import AttackSpec, _signature_defaults, register_runner


@register_runner(AttackSpec(
    name="pgd_adaptive", norm="Linf", kind="adaptive", objective="adaptive",
    needs=("defence_loss",), fn=pgd,
    summary="PGD on cross-entropy, then PGD on the defence's own objective (the PCL: CE plus the "
            "pull towards the nearest wrong centroid) from there",
    defaults={**_signature_defaults(pgd), "loss_fn": "adaptive_objective", "ce_weight": 1.0,
              "warm_start": True},
    # two PGD runs of `steps` each when warm-started
    cost=lambda settings, robust: settings["steps"] * (
        (2 if settings.get("warm_start", True) else 1) * settings.get("restarts", 1))))
def pgd_adaptive(model, x, y, *, generator, seed, defence_loss=None, ce_weight=1.0,
                 warm_start=True, **kw):
    """The adaptive attack on a defence that supplies its objective
    (`defence_loss.adaptive_objective(ce_weight=...)`; the model must return (logits, features)
    with return_features=True).

    warm_start=True (the default): first PGD on cross-entropy (the plain PGD of the same
    settings and generator), then `steps` more PGD steps on the defence's objective starting
    from each example's CE result, without a random start; an example counts as broken when
    either stage breaks it (one `_Best` over both). So the attack is never weaker than plain
    PGD with the same settings, per example: the first version (the objective alone, from a
    random start) was weaker than PGD-10 on every PCL model of the quick study (issue 19).
    ce_weight: weight of cross-entropy inside the defence's objective (the PCL's distance
    term has its own scale: own centroid minus nearest wrong one)."""
    make = getattr(defence_loss, "adaptive_objective", None)
    if make is None:
        raise UsageError("pgd_adaptive needs defence_loss=<the run's loss with an "
                         f"adaptive_objective>, got {type(defence_loss).__name__}")
    objective = make(ce_weight=ce_weight)
    if not warm_start:
        return pgd(model, x, y, loss_fn=objective, generator=generator, **kw)
    x = x.detach()
    best = _Best()
    x_ce = pgd(model, x, y, generator=generator, **kw)  # keep_best: the per-example best CE iterate
    best.update(x_ce, *_outcome(model, x_ce, y, objective))
    eps, steps = kw["eps"], kw.get("steps", 10)
    alpha = kw.get("alpha") or 2.5 * eps / max(steps, 1)
    return iterate_linf(model, x, y, eps=eps, alpha=alpha, steps=steps, loss_fn=objective,
                        start=x_ce, best=best)
