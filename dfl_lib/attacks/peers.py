"""The peers' attacks, from the pinned torchattacks 3.3.0 (Croce & Hein 2020's AutoAttack and its
parts, Andriushchenko et al. 2020's Square), registered like ours, with AutoAttack's standard
budgets unless overridden: L-inf, and APGD-CE / APGD-T under the L2 threat model ("apgd_ce_l2",
"apgd_t_l2": eps is then the L2 radius). Each needs eps= and receives the model's class count."""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .base import LogitsOnly
from .registry import AttackSpec, register_runner

__all__ = ["AA_STEPS", "AA_QUERIES", "AA_TARGETS", "n_targets", "build_peer_attack"]

# The original AutoAttack's "standard" budgets (Croce & Hein 2020): 100 iterations for APGD and
# FAB, 5000 queries for Square. torchattacks 3.3.0's AutoAttack builds its APGD/APGD-T/FAB with
# steps=10; the runner resets them to these values so "autoattack" means the published one.
AA_STEPS = 100
AA_QUERIES = 5000
# AutoAttack's standard version targets the 9 classes with the highest logits besides the true
# one (Croce & Hein 2020, `n_target_classes = 9`); torchattacks 3.3.0 targets every other class
# (n_classes - 1), which is the same on 10 classes but 99 targeted runs on 100. Fewer classes:
# every other class.
AA_TARGETS = 9


def build_peer_attack(kind: str, model: nn.Module, *, eps: float, seed: int, n_classes: int,
                      **kw):
    """The torchattacks object for `kind` (a registered peer attack) on `model`, L-inf (L2 for
    the "_l2" kinds, eps the L2 radius), with AutoAttack's number of targets (`n_targets`) set
    on every targeted part."""
    import torchattacks  # the pinned peer library; imported only when used

    wrapped = LogitsOnly(model)
    norm = _norm(kind)
    if kind in ("apgd_ce", "apgd_ce_l2"):
        atk = torchattacks.APGD(wrapped, norm=norm, eps=eps, seed=seed, loss="ce", **kw)
    elif kind in ("apgd_t", "apgd_t_l2"):
        atk = torchattacks.APGDT(wrapped, norm=norm, eps=eps, seed=seed,
                                 n_classes=n_classes, **kw)
    elif kind == "fab":
        atk = torchattacks.FAB(wrapped, norm="Linf", eps=eps, seed=seed, n_classes=n_classes,
                               **kw)
    elif kind == "square":
        atk = torchattacks.Square(wrapped, norm="Linf", eps=eps, seed=seed, **kw)
    else:  # autoattack, standard version: APGD-CE, APGD-T, FAB-T, Square
        steps, n_queries = kw.pop("steps"), kw.pop("n_queries")
        atk = torchattacks.AutoAttack(wrapped, norm="Linf", eps=eps, version="standard",
                                      n_classes=n_classes, seed=seed, **kw)
        for sub in atk._autoattack.attacks:
            if isinstance(sub, torchattacks.Square):
                sub.n_queries = n_queries
            else:
                sub.steps = steps
    for part in getattr(getattr(atk, "_autoattack", None), "attacks", [atk]):
        if hasattr(part, "n_target_classes"):  # APGD-T and FAB-T
            part.n_target_classes = n_targets(n_classes)
    return atk


def _norm(kind: str) -> str:
    """The threat model's norm of a registered peer attack: "L2" for the "_l2" kinds."""
    return "L2" if kind.endswith("_l2") else "Linf"


def n_targets(n_classes: int) -> int:
    """Target classes of APGD-T and FAB-T for a model with `n_classes` outputs: min(9, K - 1)."""
    return min(AA_TARGETS, n_classes - 1)


def _torchattacks(kind: str) -> Callable:
    def run(model, x, y, *, generator, seed, eps, n_classes, **kw):
        return build_peer_attack(kind, model, eps=eps, seed=seed, n_classes=n_classes, **kw)(x, y)
    return run


def _aa_passes(s, robust: float) -> float:
    """AutoAttack's passes per image: APGD-CE on all, then on the still-robust share APGD-T
    (9 x steps), FAB-T (9 x steps, about 1.5 passes a step) and Square (queries are forwards)."""
    steps, queries = s["steps"], s["n_queries"]
    return steps + robust * (9 * steps + 1.5 * 9 * steps + queries / 3)


_PEERS = {  # name: (kind, objective, defaults, summary, cost)
    "apgd_ce": ("white-box", "ce", {"steps": AA_STEPS, "n_restarts": 1},
                "APGD-CE (Croce & Hein 2020), torchattacks",
                lambda s, robust: float(s["steps"] * s["n_restarts"])),
    "apgd_t": ("white-box", "dlr", {"steps": AA_STEPS, "n_restarts": 1},
               "APGD-T: targeted APGD on the DLR loss, the 9 likeliest other classes, torchattacks",
               lambda s, robust: float(AA_TARGETS * s["steps"] * s["n_restarts"])),
    "fab": ("white-box", None, {"steps": AA_STEPS, "n_restarts": 1, "multi_targeted": True},
            "FAB-T (Croce & Hein 2020): minimum-norm, multi-targeted, torchattacks",
            lambda s, robust: 1.5 * AA_TARGETS * s["steps"] * s["n_restarts"]),
    "square": ("score-based", "margin", {"n_queries": AA_QUERIES, "n_restarts": 1},
               "Square (Andriushchenko et al. 2020): random search on scores, torchattacks",
               lambda s, robust: s["n_queries"] / 3 * robust),
    "autoattack": ("white-box", None, {"steps": AA_STEPS, "n_queries": AA_QUERIES},
                   "AutoAttack standard: APGD-CE, APGD-T, FAB-T, Square (torchattacks)", _aa_passes),
}
# AutoAttack's two APGD parts under the L2 threat model (Croce & Hein 2020 run AutoAttack at L2
# as at L-inf): the same kind, objective, budgets and cost; eps is the L2 radius, in pixel units
_L2_SUMMARIES = {"apgd_ce": "APGD-CE, L2 threat model (Croce & Hein 2020), torchattacks",
                 "apgd_t": "APGD-T, L2 threat model: targeted APGD on the DLR loss, the 9 "
                           "likeliest other classes, torchattacks"}
for _base, _summary in _L2_SUMMARIES.items():
    _kind, _objective, _defaults, _, _cost = _PEERS[_base]
    _PEERS[f"{_base}_l2"] = (_kind, _objective, dict(_defaults), _summary, _cost)
# the targeted DLR loss divides by z_(1) - (z_(3) + z_(4)) / 2, the sorted logits: 4 classes at least
_DLR_T = (4, "its targeted DLR loss reads the 4th-largest logit (Croce & Hein 2020, Eq. 7)")
_MIN_CLASSES = {"apgd_t": _DLR_T, "apgd_t_l2": _DLR_T,
                "autoattack": (_DLR_T[0], "its APGD-T part: " + _DLR_T[1])}
for _name, (_kind, _objective, _defaults, _summary, _cost) in _PEERS.items():
    _least, _why = _MIN_CLASSES.get(_name, (2, None))
    register_runner(AttackSpec(
        name=_name, norm=_norm(_name), kind=_kind, summary=_summary, objective=_objective,
        defaults=_defaults, required=("eps",), fill_defaults=True, takes_classes=True,
        min_classes=_least, cost=_cost, **({"classes_why": _why} if _why else {})))(
            _torchattacks(_name))
