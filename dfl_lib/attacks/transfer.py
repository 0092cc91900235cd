"""Transfer attacks (Papernot et al. 2017): adversarial examples crafted on an independently
trained surrogate, then shown to the model. A black-box check: if they beat the white-box
attacks on the model itself, its gradients are masked (Carlini et al. 2019)."""
from __future__ import annotations

from ..errors import UsageError
from ..validation import check_known
from .base import frozen
from .pgd import pgd
from .registry import REGISTRY, AttackSpec, _signature_defaults, register_runner


@register_runner(AttackSpec(
    name="transfer", norm="Linf", kind="transfer", objective="ce", needs=("surrogate",),
    summary="examples crafted on an independently trained surrogate (craft= attack)",
    defaults={**_signature_defaults(pgd), "craft": "pgd"},
    cost=lambda s, robust: float(s["steps"] * s.get("restarts", 1))))
def transfer(model, x, y, *, generator, seed, surrogate=None, craft="pgd", **kw):
    """Examples crafted by `craft` (a registered white-box attack) on `surrogate`, for `model`."""
    if surrogate is None:
        raise UsageError("transfer needs surrogate=<an independently trained model in eval mode>")
    if surrogate is model:
        raise UsageError("the transfer surrogate must be a different model from the one attacked")
    crafting = {n: e for n, e in REGISTRY.items() if e.kind == "white-box" and e.fn is not None}
    check_known(craft, crafting, kind="crafting attack")
    with frozen(surrogate):
        return crafting[craft].run(surrogate, x, y, generator=generator, seed=seed, **kw)
