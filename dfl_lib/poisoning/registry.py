"""The poison registry: every training-set poison registers itself, in its own file, with what it
is (as `dfl_lib.attacks.registry` does for evasion attacks), so the crafting, the measurements,
the plan's grid and estimate, and the reports ask the registry instead of recognising names.

    @register_poison("badnets", kind="backdoor", needs="nothing", subset=True, cost=0.0,
                     share="of the training set", summary="...")
    def _badnets(x, y, *, num_classes, budget, model): ...   # -> PoisonedSet

    get_poison("badnets").craft(x, y, num_classes=10, budget=PoisonBudget(...), model=None)

Adding a poison is one new file that registers it, imported before its config is made (the
package's own poisons are imported by `dfl_lib.poisoning`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UsageError
from .base import PoisonedSet

__all__ = ["PoisonBudget", "PoisonEntry", "POISONS", "KINDS", "NEEDS", "register_poison",
           "get_poison"]

KINDS = ("backdoor", "availability", "labels")
# what the crafting needs besides the data: nothing; a clean-trained network of the victim's
# architecture to attack ("reference"); an untrained one it trains itself ("fresh")
NEEDS = ("nothing", "reference", "fresh")


@dataclass(frozen=True)
class PoisonBudget:
    """What a poison may do, from the run's config: the share of samples it may change
    (`fraction`), a backdoor's target class and trigger patch (pixels), the L-inf budget of a
    perturbation poison (`eps`, pixel units), the crafting batch size and the attacker's seed.
    The crafting functions take it whole (`backdoor.clean_label`,
    `availability.adversarial_poison`, `availability.error_minimising`) and read the fields
    they need."""
    fraction: float
    target: int
    patch_size: int
    eps: float
    batch_size: int
    seed: int


@dataclass(frozen=True)
class PoisonEntry:
    """A registered poison. craft(x uint8 (N, C, H, W), y (N,), *, num_classes, budget, model)
    -> PoisonedSet; `model` is the network `needs` names (None for "nothing"). `subset`: it
    changes a subset of the training set, which the detectors look for. `cost`: crafting work in
    forward passes per training image (the plan's estimate). `share`: how its budget reads in a
    sentence ("10% of the training set")."""
    name: str
    craft: Callable[..., PoisonedSet]
    kind: str
    needs: str
    subset: bool
    cost: float
    share: str
    summary: str


POISONS: dict[str, PoisonEntry] = {}


def register_poison(name: str, *, kind: str, needs: str, subset: bool, cost: float, share: str,
                    summary: str) -> Callable:
    """Decorator registering `craft(x, y, *, num_classes, budget, model)` as poison `name`.
    UsageError for a name registered twice or an unknown kind or need."""
    if name in POISONS or name == "none":
        raise UsageError(f"poison {name!r} is registered twice (or is the reserved 'none')")
    if kind not in KINDS or needs not in NEEDS:
        raise UsageError(f"poison {name!r}: kind must be one of {KINDS} and needs one of "
                         f"{NEEDS}, got {kind!r} and {needs!r}")

    def add(craft: Callable[..., PoisonedSet]) -> Callable[..., PoisonedSet]:
        POISONS[name] = PoisonEntry(name=name, craft=craft, kind=kind, needs=needs,
                                    subset=subset, cost=float(cost), share=share,
                                    summary=summary)
        return craft
    return add


def get_poison(name: str) -> PoisonEntry:
    """The registered poison `name`; UsageError naming the known ones."""
    if name not in POISONS:
        raise UsageError(f"unknown poison {name!r}; known: none, {', '.join(POISONS)}")
    return POISONS[name]
