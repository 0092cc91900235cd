"""One registry of every attack the evaluation runs, each entry describing itself.

An entry carries the runner, its full default settings, its threat model (norm) and its kind,
so callers ask the registry what an attack is instead of recognising it by name:

    entry = REGISTRY["apgd_t"]        # AttackEntry(norm="Linf", kind="white-box", ...)
    entry.defaults["steps"]           # 100, the budget recorded with every result
    [n for n, e in REGISTRY.items() if e.kind == "white-box"]

Kinds: "none" (clean), "white-box" (gradient attacks on the model itself), "score-based"
(black-box, queries the model's scores), "transfer" (crafted on another model), "adaptive"
(gradient attack on the defence's own objective). Every runner has the signature
run(model in eval mode, x (B, C, H, W), y (B,), *, generator, seed, **settings) -> x_adv.
Runtime objects an attack needs (`needs`: centroids, a surrogate model) are passed as settings
by the caller; suites declare only data.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .attacks import ATTACKS, LogitsOnly, pgd
from .checks import check_known, check_nonnegative, require_eval
from .errors import UsageError, UsageTypeError
from .errors import UsageError
from .losses import pairwise_distance

__all__ = ["AttackEntry", "REGISTRY", "register", "pcl_loss", "frozen", "KINDS", "n_targets",
           "build_peer_attack", "AA_TARGETS",
           "AA_STEPS", "AA_QUERIES"]

KINDS = ("none", "white-box", "score-based", "transfer", "adaptive")
# The original AutoAttack's "standard" budgets (Croce & Hein 2020): 100 iterations for APGD and
# FAB, 5000 queries for Square. torchattacks 3.3.0's AutoAttack builds its APGD/APGD-T/FAB with
# steps=10; the runner resets them to these values so "autoattack" means the published one.
AA_STEPS = 100
AA_QUERIES = 5000


@dataclass(frozen=True)
class AttackEntry:
    """What an attack is. `defaults`: every setting a result records (the caller's settings
    override them); `objective`: the loss it maximises ("ce", "cw", "pcl", or None); `fn`: the
    library attack function the runner calls on the attacked model, if any. `min_classes`: the
    fewest classes the attack is defined for, and `classes_why` the reason (the evaluation
    refuses a model with fewer before any attack runs)."""

    name: str
    run: Callable
    norm: str | None
    kind: str
    summary: str
    defaults: Mapping = field(default_factory=dict)
    objective: str | None = None
    needs: tuple[str, ...] = ()
    fn: Callable | None = None
    min_classes: int = 2
    classes_why: str = "a classifier needs a wrong class to be pushed to"


REGISTRY: dict[str, AttackEntry] = {}


def register(name: str, *, norm: str | None, kind: str, summary: str, defaults: Mapping,
             objective: str | None = None, needs: tuple[str, ...] = (),
             fn: Callable | None = None, min_classes: int = 2,
             classes_why: str | None = None) -> Callable:
    """Decorator: add a runner to REGISTRY under `name` with its description."""
    if kind not in KINDS:
        raise UsageError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    if norm not in (None, "Linf", "L2"):
        raise UsageError(f"unknown norm {norm!r}; known: Linf, L2 (or None for clean)")

    def add(run: Callable) -> Callable:
        if name in REGISTRY:
            raise UsageError(f"attack {name!r} is registered twice")
        REGISTRY[name] = AttackEntry(name=name, run=run, norm=norm, kind=kind, summary=summary,
                                     defaults=dict(defaults), objective=objective, needs=needs,
                                     fn=fn, min_classes=min_classes,
                                     **({"classes_why": classes_why} if classes_why else {}))
        return run

    return add


def _signature_defaults(fn: Callable) -> dict:
    """An attack function's keyword-only defaults (the generator excepted)."""
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.kind == p.KEYWORD_ONLY and p.default is not p.empty and name != "generator"}


@contextmanager
def frozen(model: nn.Module):
    """Require eval mode in every submodule (`checks.require_eval`); restore every submodule's mode afterwards (torchattacks calls .eval())
    and leave the global RNG as it was (torchattacks' APGD/FAB/Square reseed it).

    The parameters stop requiring gradients meanwhile (restored after): attacks need input
    gradients only, and torchattacks' FAB calls .backward(), which would otherwise compute and
    accumulate every weight's gradient at each of its steps (FAB-T 1.28x faster on a quick
    ResNet-18, identical per-example results: benchmarks/README.md)."""
    require_eval(model, what="evaluating")
    modes = [(m, m.training) for m in model.modules()]
    needs_grad = [(p, p.requires_grad) for p in model.parameters()]
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    try:
        for p, _ in needs_grad:
            p.requires_grad_(False)
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        for m, mode in modes:
            m.train(mode)
        for p, flag in needs_grad:
            p.requires_grad_(flag)


# --------------------------------------------------------------------------- the adaptive attack

def pcl_loss(centroids, *, feature: str = "penultimate", ce_weight: float = 0.0) -> Callable:
    """The adaptive objective against a centroid defence, as a `loss_fn` for `pgd` (N,):

        d(f, c_y) - min_{j != y} d(f, c_j)   (+ ce_weight * CE)

    maximising it pulls the feature f = features[feature] towards the nearest wrong centroid and
    away from its own, the direction the Polarised Contrastive Loss trained against.
    `centroids`: a loss module with `.distances(f)` (PolarisedContrastiveLoss and its legacy
    form: d is the loss's own distance, on directions or raw), or a tensor (K, d) or module
    with `.centroids` (d is the Euclidean distance). The attack never changes the centroids.
    """
    own_distances = getattr(centroids, "distances", None)
    c = getattr(centroids, "centroids", centroids)
    if not isinstance(c, torch.Tensor) or c.dim() != 2:
        raise UsageTypeError("centroids must be a (K, d) tensor or a module with .centroids (K, d)")
    c = c.detach()
    check_nonnegative(ce_weight, name="ce_weight")

    def distances(f: torch.Tensor) -> torch.Tensor:  # (N, d) -> (N, K), no gradient to c
        if own_distances is not None:
            return own_distances(f)  # torch.autograd.grad in the attack fills no .grad
        return pairwise_distance(f, c.to(f.device, f.dtype))

    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = model(x, return_features=True)
        if not isinstance(out, tuple):
            raise UsageTypeError("pgd_pcl needs a model with forward(x, return_features=True) -> "
                            "(logits, features)")
        logits, feats = out
        if feature not in feats:
            raise KeyError(f"the model returned no features[{feature!r}]; it has {sorted(feats)}")
        f = feats[feature]  # (N, d)
        if f.shape[1] != c.shape[1]:
            raise UsageError(f"features[{feature!r}] are {f.shape[1]}-d, centroids {c.shape[1]}-d")
        dist = distances(f)  # (N, K)
        own = dist.gather(1, y[:, None]).squeeze(1)
        nearest_other = dist.masked_fill(F.one_hot(y, c.shape[0]).bool(), float("inf")).amin(1)
        value = own - nearest_other
        if ce_weight:
            value = value + ce_weight * F.cross_entropy(logits, y, reduction="none")
        return value

    loss.__name__ = f"pcl_loss[{feature}]"
    return loss


# --------------------------------------------------------------------------- runners

def _own(fn: Callable) -> Callable:
    """A runner for one of our attack functions (the generator goes where it is taken)."""
    params = inspect.signature(fn).parameters

    def run(model, x, y, *, generator, seed, **kw):
        unknown = sorted(set(kw) - set(params))
        if unknown:  # a user's typo, answered in one line rather than a TypeError inside
            known = [p for p, v in params.items() if v.kind == v.KEYWORD_ONLY and p != "generator"]
            raise UsageError(f"attack {fn.__name__!r} has no setting {unknown[0]!r}; its settings: "
                             f"{', '.join(known)}")
        if "generator" in params:
            kw.setdefault("generator", generator)
        return fn(model, x, y, **kw)
    return run


register("clean", norm=None, kind="none", summary="the unperturbed input",
         defaults={})(lambda model, x, y, *, generator, seed, eps=None: x)  # eps ignored

_OURS = {  # name: (norm, objective, summary)
    "fgsm": ("Linf", "ce", "FGSM (Goodfellow et al. 2015): one signed-gradient step of eps"),
    "bim": ("Linf", "ce", "BIM (Kurakin et al. 2017): iterative FGSM from x, step eps / steps"),
    "mim": ("Linf", "ce", "MIM (Dong et al. 2018): BIM with momentum on the L1-normalised gradient"),
    "pgd": ("Linf", "ce", "PGD (Madry et al. 2018): random start, restarts, best iterate kept"),
    "cw_pgd": ("Linf", "cw", "CW-inf: the C&W margin loss inside L-inf PGD"),
    "cw": ("L2", "cw", "C&W-L2 (Carlini & Wagner 2017): minimum-norm, binary search over c"),
}
for _name, (_norm, _objective, _summary) in _OURS.items():
    register(_name, norm=_norm, kind="white-box", summary=_summary, objective=_objective,
             defaults=_signature_defaults(ATTACKS[_name]),
             fn=ATTACKS[_name])(_own(ATTACKS[_name]))
register("pgd_ce", norm="Linf", kind="white-box", summary="PGD on cross-entropy (= pgd)",
         objective="ce", defaults=_signature_defaults(pgd), fn=pgd)(_own(pgd))


@register("pgd_pcl", norm="Linf", kind="adaptive", objective="pcl", needs=("centroids",), fn=pgd,
          summary="PGD on the PCL objective: towards the nearest wrong centroid",
          defaults={**_signature_defaults(pgd), "loss_fn": "pcl_loss", "feature": "penultimate",
                    "ce_weight": 0.0})
def _pgd_pcl(model, x, y, *, generator, seed, centroids=None, feature="penultimate",
             ce_weight=0.0, **kw):
    if centroids is None:
        raise UsageError("pgd_pcl needs centroids= (K, d), e.g. the PCL loss's .centroids")
    loss_fn = pcl_loss(centroids, feature=feature, ce_weight=ce_weight)
    return pgd(model, x, y, loss_fn=loss_fn, generator=generator, **kw)


@register("transfer", norm="Linf", kind="transfer", objective="ce", needs=("surrogate",),
          summary="examples crafted on an independently trained surrogate (craft= attack)",
          defaults={**_signature_defaults(pgd), "craft": "pgd"})
def _transfer(model, x, y, *, generator, seed, surrogate=None, craft="pgd", **kw):
    """Adversarial examples crafted on an independently trained surrogate, then shown to model."""
    if surrogate is None:
        raise UsageError("transfer needs surrogate=<an independently trained model in eval mode>")
    if surrogate is model:
        raise UsageError("the transfer surrogate must be a different model from the one attacked")
    check_known(craft, ATTACKS, kind="attack")
    with frozen(surrogate):
        return _own(ATTACKS[craft])(surrogate, x, y, generator=generator, seed=seed, **kw)


# AutoAttack's standard version targets the 9 classes with the highest logits besides the true
# one (Croce & Hein 2020, `n_target_classes = 9`); torchattacks 3.3.0 targets every other class
# (n_classes - 1), which is the same on 10 classes but 99 targeted runs on 100. Fewer classes:
# every other class.
AA_TARGETS = 9


def n_targets(n_classes: int) -> int:
    """Target classes of APGD-T and FAB-T for a model with `n_classes` outputs: min(9, K - 1)."""
    return min(AA_TARGETS, n_classes - 1)


def build_peer_attack(kind: str, model: nn.Module, *, eps: float, seed: int, n_classes: int,
                      **kw):
    """The torchattacks object for `kind` (one of PEER_ATTACKS) on `model`, L-inf, with
    AutoAttack's number of targets (`n_targets`) set on every targeted part."""
    import torchattacks  # the pinned peer library; imported only when used

    wrapped = LogitsOnly(model)
    if kind == "apgd_ce":
        atk = torchattacks.APGD(wrapped, norm="Linf", eps=eps, seed=seed, loss="ce", **kw)
    elif kind == "apgd_t":
        atk = torchattacks.APGDT(wrapped, norm="Linf", eps=eps, seed=seed,
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


def _torchattacks(kind: str) -> Callable:
    def run(model, x, y, *, generator, seed, eps, n_classes, **kw):
        return build_peer_attack(kind, model, eps=eps, seed=seed, n_classes=n_classes, **kw)(x, y)
    return run


_PEERS = {  # name: (kind, objective, defaults, summary); torchattacks 3.3.0, L-inf
    "apgd_ce": ("white-box", "ce", {"steps": AA_STEPS, "n_restarts": 1},
                "APGD-CE (Croce & Hein 2020), torchattacks"),
    "apgd_t": ("white-box", "dlr", {"steps": AA_STEPS, "n_restarts": 1},
               "APGD-T: targeted APGD on the DLR loss, the 9 likeliest other classes, torchattacks"),
    "fab": ("white-box", None, {"steps": AA_STEPS, "n_restarts": 1, "multi_targeted": True},
            "FAB-T (Croce & Hein 2020): minimum-norm, multi-targeted, torchattacks"),
    "square": ("score-based", "margin", {"n_queries": AA_QUERIES, "n_restarts": 1},
               "Square (Andriushchenko et al. 2020): random search on scores, torchattacks"),
    "autoattack": ("white-box", None, {"steps": AA_STEPS, "n_queries": AA_QUERIES},
                   "AutoAttack standard: APGD-CE, APGD-T, FAB-T, Square (torchattacks)"),
}
# the targeted DLR loss divides by z_(1) - (z_(3) + z_(4)) / 2, the sorted logits: 4 classes at least
_DLR_T = (4, "its targeted DLR loss reads the 4th-largest logit (Croce & Hein 2020, Eq. 7)")
_MIN_CLASSES = {"apgd_t": _DLR_T, "autoattack": (_DLR_T[0], "its APGD-T part: " + _DLR_T[1])}
for _name, (_kind, _objective, _defaults, _summary) in _PEERS.items():
    _least, _why = _MIN_CLASSES.get(_name, (2, None))
    register(_name, norm="Linf", kind=_kind, summary=_summary, objective=_objective,
             defaults=_defaults, min_classes=_least, classes_why=_why)(_torchattacks(_name))
PEER_ATTACKS = tuple(_PEERS)  # need eps= and n_classes (filled in by the evaluation)
__all__.append("PEER_ATTACKS")
