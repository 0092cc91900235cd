"""The attack registry: every attack registers itself, in its own file, with what it is.

An entry carries the runner, its full default settings, its threat model (norm), its kind, the
objective it maximises, what it needs at run time, the fewest classes it is defined for and its
cost, so callers ask the registry what an attack is instead of recognising it by name (timm's
`register_model` is the model):

    @register("fgsm", norm="Linf", kind="white-box", objective="ce", summary="...",
              cost=lambda s: 1.0)
    def fgsm(model, x, y, *, eps, ...): ...           # an attack function: registered as is

    entry = REGISTRY["apgd_t"]        # AttackEntry(norm="Linf", kind="white-box", ...)
    entry.defaults["steps"]           # 100, the budget recorded with every result
    [n for n, e in REGISTRY.items() if e.kind == "white-box"]

Kinds: "none" (clean), "white-box" (gradient attacks on the model itself), "score-based"
(black-box, queries the model's scores), "transfer" (crafted on another model), "adaptive"
(gradient attack on the defence's own objective). Every runner has the signature
run(model in eval mode, x (B, C, H, W), y (B,), *, generator, seed, **settings) -> x_adv;
`register` makes one from an attack function (model, x, y, **settings) -> x_adv
(`base.attack_runner`), and `register_runner(AttackSpec(...))` takes a runner as it is (peer
libraries, transfer, adaptive). Runtime objects
an attack needs (`needs`: a surrogate model, the defence's loss) are passed as settings by the
caller; suites declare only data. Adding an attack: one new file that registers it, imported by
`dfl_lib/attacks/__init__.py` (or by the user's own code before evaluating).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

from ..errors import UsageError
from .base import attack_runner

__all__ = ["AttackSpec", "AttackEntry", "REGISTRY", "register", "register_runner", "KINDS", "NORMS"]

KINDS = ("none", "white-box", "score-based", "transfer", "adaptive")
NORMS = ("Linf", "L2")


def _steps_cost(settings: Mapping) -> float:
    """Forward + backward passes per image: steps x restarts (1 where neither is set)."""
    return float(settings.get("steps", 1) * settings.get("restarts", 1))


@dataclass(frozen=True, kw_only=True)
class AttackSpec:
    """What an attack is, given to `register_runner` (and made by `register` from an attack
    function's signature).

    name: its registry name; norm: "Linf", "L2" or None (clean); kind: one of KINDS; summary: a
    line for tables; defaults: every setting a result records (the caller's settings override
    them); objective: the loss it maximises ("ce", "cw", "dlr", "margin", "adaptive", or None);
    fn: the attack function the runner calls, if any (our attacks);
    needs: runtime objects passed as settings (e.g. "surrogate", "defence_loss");
    required: settings the caller must give (e.g. "eps" for the peers' attacks);
    fill_defaults: pass `defaults` to the runner (the peers' runners take every setting);
    takes_classes: the runner receives n_classes (the model's class count);
    min_classes / classes_why: the fewest classes it is defined for, and why;
    cost(settings, robust) -> forward + backward passes per image (`robust`: the share of images
    an attack that stops on success still works on), for the plan's time estimates.
    """

    name: str
    norm: str | None
    kind: str
    summary: str
    defaults: Mapping = field(default_factory=dict)
    objective: str | None = None
    needs: tuple[str, ...] = ()
    fn: Callable | None = None
    required: tuple[str, ...] = ()
    fill_defaults: bool = False
    takes_classes: bool = False
    min_classes: int = 2
    classes_why: str = "a classifier needs a wrong class to be pushed to"
    cost: Callable[[Mapping, float], float] = field(
        default=lambda settings, robust: _steps_cost(settings))

    def settings(self, given: Mapping) -> dict:
        """The full settings of a run with `given`: the defaults, then the caller's."""
        return {**self.defaults, **given}


@dataclass(frozen=True, kw_only=True)
class AttackEntry(AttackSpec):
    """A registered attack: its `AttackSpec` and `run`, the runner the evaluation calls."""

    run: Callable


REGISTRY: dict[str, AttackEntry] = {}


def _check_description(name: str, *, norm, kind) -> None:
    if name in REGISTRY:
        raise UsageError(f"attack {name!r} is registered twice")
    if kind not in KINDS:
        raise UsageError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    if norm not in (None, *NORMS):
        raise UsageError(f"unknown norm {norm!r}; known: {', '.join(NORMS)} (or None for clean)")


def _signature_defaults(fn: Callable) -> dict:
    """An attack function's keyword-only defaults (the generator excepted)."""
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.kind == p.KEYWORD_ONLY and p.default is not p.empty and name != "generator"}


def register(name: str, *, norm: str, kind: str, summary: str, objective: str | None = None,
             cost: Callable[[Mapping], float] | None = None, min_classes: int = 2,
             classes_why: str | None = None) -> Callable:
    """Decorator for an attack function fn(model, x, y, *, <settings>) -> x_adv: registers it
    under `name` (its keyword defaults are the entry's defaults; a generator argument gets the
    evaluation's seeded generator, `base.attack_runner`) and returns it unchanged.
    cost(settings) -> passes per image (default: steps x restarts). Raises UsageError for a name
    registered twice, an unknown kind or norm."""
    _check_description(name, norm=norm, kind=kind)

    def add(fn: Callable) -> Callable:
        passes = cost or _steps_cost
        spec = AttackSpec(name=name, norm=norm, kind=kind, summary=summary,
                          defaults=_signature_defaults(fn), objective=objective, fn=fn,
                          min_classes=min_classes, cost=lambda settings, robust: passes(settings),
                          **({"classes_why": classes_why} if classes_why else {}))
        REGISTRY[name] = AttackEntry(run=attack_runner(fn), **_fields(spec))
        return fn

    return add


def register_runner(spec: AttackSpec) -> Callable:
    """Decorator for a runner run(model, x, y, *, generator, seed, **settings) -> x_adv (peer
    libraries, transfer, adaptive): registers it as `spec` describes it (see `AttackSpec`) and
    returns it unchanged. Raises UsageError for a name registered twice, an unknown kind or
    norm."""
    _check_description(spec.name, norm=spec.norm, kind=spec.kind)

    def add(run: Callable) -> Callable:
        REGISTRY[spec.name] = AttackEntry(run=run, **_fields(spec))
        return run

    return add


def _fields(spec: AttackSpec) -> dict:
    """A spec's fields by name (shallow: a dict of defaults stays the spec's own object)."""
    return {f.name: getattr(spec, f.name) for f in fields(AttackSpec)}


register_runner(AttackSpec(name="clean", norm=None, kind="none", summary="the unperturbed input",
                           cost=lambda settings, robust: 1 / 3))(  # one forward: a third of forward + backward
    lambda model, x, y, *, generator, seed, eps=None: x)  # eps ignored
