"""One source of configuration: a frozen dataclass whose defaults are the paper's values, the
types and ranges of its fields, and the paper's per-dataset values. The ground floor: it imports
nothing of the package but its errors.

Settings the paper leaves open carry the field's usual values and are listed in `FIELD_DEFAULTS`.
A run's config is composed above this module, from a profile (`dfl_lib.profiles`) and a defence's
own defaults and checks (`dfl_lib.defences`), by `dfl_lib.experiments.configs.make_config`.

    cfg = RunConfig().replace(dataset="mnist", train_attack="pgd")   # checked field by field
    cfg.to_dict()        # plain, JSON-safe dict
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import types
import typing
from dataclasses import dataclass
from typing import Literal

from .errors import UsageError, UsageTypeError

__all__ = ["RunConfig", "FIELD_DEFAULTS", "DATASET_DEFAULTS", "EVAL_ONLY", "KEYED_WHEN_SET",
           "keyed_fields", "SCALED",
           "SEED_MAX", "field_type", "field_choices", "milestones"]


# Closed sets of names, as types: `field_type` reads them and `_apply` checks them, in one place.
# (Tests keep Dataset, Model and Loss equal to the DATASETS, MODELS and LOSSES registries.)
Dataset = Literal["mnist", "fashion_mnist", "cifar10", "cifar10_jpeg", "image_folder", "npz"]
Model = Literal["resnet18", "resnet34", "resnet50", "wrn"]
Loss = Literal["ce", "pcl", "pcl_legacy", "center", "am_softmax", "prototype_conformity"]
Schedule = Literal["multistep", "cosine", "constant"]
TrainAttack = Literal["none", "fgsm", "pgd", "cw"]
AdvMode = Literal["replace", "concat"]
Precision = Literal["auto", "fp32", "bf16"]
Surrogate = Literal["resnet", "victim"]


@dataclass(frozen=True)
class RunConfig:
    # --- data (paper: MNIST and CIFAR-10; here CIFAR-10 is the JPEG copy) ---
    dataset: Dataset = "cifar10_jpeg"
    data_path: str = ""       # for the "npz" and "image_folder" datasets
    n_train: int = 0          # 0 = the whole training set minus n_val
    n_val: int = 1000         # held out of the training set for the validation curves
    n_eval: int = 0           # fixed, seeded evaluation subset of the test set; 0 = all of it
    augment: bool = True      # random crop (pad 4) + flip; the dataset default is applied
    # --- model (paper: ResNet-50 with DFL) ---
    model: Model = "resnet50"
    width: int = 64           # 64 = standard ResNet; 16 = standard WRN
    wrn_depth: int = 34       # WRN-34-10: the paper names no size (recorded guess)
    widen_factor: int = 10
    dfl: bool = True
    extra_fc: int = 0         # 0 = none; Mustafa et al.'s model adds a 1024-d FC layer
    loss: Loss = "pcl"        # see LOSSES; "pcl_legacy" = the raw-distance form, for comparison
    pcl_w_intra: float = 1.0  # paper: every term weight 1 (Eq. 5)
    pcl_w_inter: float = 1.0
    pcl_margin: float | None = None   # None = the loss's own documented default
    centroid_lr: float | None = None  # None = the loss's own default (PCL: the model's lr)
    # --- optimisation (paper: lr 0.1, batch 64, 100 epochs CIFAR-10 / 50 MNIST) ---
    epochs: int = 100
    lr: float = 0.1
    batch_size: int = 64
    momentum: float = 0.9     # field default (paper silent)
    weight_decay: float = 5e-4  # field default (paper silent)
    schedule: Schedule = "multistep"  # lr / 10 at the milestones: field default
    lr_milestones: str = "0.5,0.75"  # shares of the epochs where "multistep" divides lr by 10
    lr_warmup_epochs: float = 0.0  # linear lr warm-up from 0 over this many epochs, per batch
    # --- adversarial training (paper: 10 iterations, eps 0.03 CIFAR-10 / 0.3 MNIST, C&W c 0.1) ---
    method: str = "standard"  # a registered defence: "standard", "mustafa", "dynamic", ...
    train_attack: TrainAttack = "none"  # "none" = the paper's "no defense"
    eps: float = 0.03         # pixel units in [0, 1]
    attack_steps: int = 10
    alpha: float = 0.0        # 0 = the attack's default step (PGD: 2.5 * eps / steps)
    adv_fraction: float = 0.5  # share of each batch attacked (recorded guess)
    adv_mode: AdvMode = "replace"  # "replace": attacked samples replace their clean ones in the batch;
                               # "concat": clean batch + attacked copies (Mustafa et al.)
    fgsm_random_start: bool = False
    cw_c: float = 0.1         # the paper's C&W (L2, fixed c, no search): non-informative, see
    cw_steps: int = 10        # experiment.attack_suite; the paper's "10 iterations"
    cw_l2_budget: float = 2.0  # L2 budget for the C&W-L2 row with binary search (per dataset)
    cw_l2_search_steps: int = 9  # Carlini & Wagner's binary search over c
    cw_l2_steps: int = 1000   # Adam steps per search step (lr 0.01, early abort)
    eps_ramp_epochs: int = 0  # linear eps warm-up; 0 = full eps from the first epoch
    dynamic_box_aware: bool = False  # FOSC over the eps-ball intersected with [0, 1]
    dynamic_loss_weighting: bool = True  # Wang et al.'s code: each example's CE weighted by itself
    # --- training-set poisoning (dfl_lib.poisoning; the paper's "poisoned" inputs are test-time
    # adversarial examples, which the attack fields above cover) ---
    # "none" or a registered poison (`poisoning.POISONS`: a new one is a new file, so the names
    # are checked where a config is composed, `experiments.configs.checked`)
    poison: str = "none"
    poison_fraction: float = 0.1  # share poisoned: of the training set (badnets, label_flip) or
                                  # of the target class (clean_label); perturbation poisons: all
    poison_target: int = 0    # the backdoor's target class
    poison_eps: float = 0.0   # the perturbation poisons' L-inf budget, pixel units; 0 = eps
    poison_patch: int = 3     # the trigger's side, pixels
    # the seed the poisoned set is crafted with: the attacker's, apart from the victim's `seed`,
    # so the seeds of a poisoning cell retrain the victim on one poisoned set (crafting an
    # adversarial poison costs several trainings here)
    poison_seed: int = 0
    # the network a poison that needs one (`poisoning.registry.NEEDS`) is crafted against:
    # "resnet", the plain ResNet of the victim's depth and width, trained clean (a poison that
    # must transfer to the defended victim); "victim", the victim's own network and loss (its
    # DFL and PCL) trained clean: an attacker who knows the defence (issue 39)
    poison_surrogate: Surrogate = "resnet"
    # --- evaluation and monitoring ---
    eval_batch_size: int = 250
    aa_steps: int = 100       # AutoAttack's APGD/FAB iterations (standard: 100)
    aa_queries: int = 5000    # AutoAttack's Square queries (standard: 5000)
    monitor_size: int = 200   # fixed validation batch for the per-epoch PGD (overfitting monitor)
    # --- engineering ---
    seed: int = 0
    channels_last: bool = True
    # "bf16": training (its attack, forward and loss) under bf16 autocast, weights and optimiser
    # in fp32; evaluation always runs in fp32. Changes what is learned, so it is in the run key.
    # "auto": bf16 where the device computes it natively, fp32 elsewhere; resolved where a
    # config is composed (`experiments.configs.make_config`), so a run's key names what it used
    precision: Precision = "fp32"
    device: str = "auto"      # "auto" = CUDA when present, else the CPU; or "cpu", "cuda:1", ...

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **overrides) -> "RunConfig":
        """A copy with `overrides`, each checked for its field's type and range (UsageError,
        UsageTypeError). A defence's own checks run where the config is composed
        (`experiments.configs.make_config`) and again when a run is built (`training`)."""
        return _apply(self, overrides)


# Fields that change how a run is evaluated or executed, not what it learns: kept out of the run
# key, so changing them reuses the trained model.
# seeds: numpy and torch take any non-negative integer below 2**32; the code derives others
# from a run's seed by adding small offsets (the surrogate +1000, the monitor +12345)
SEED_OFFSET_MAX = 12345
SEED_MAX = 2**31 - 1 - SEED_OFFSET_MAX

EVAL_ONLY = ("n_eval", "eval_batch_size", "aa_steps", "aa_queries", "device", "channels_last",
             "cw_l2_budget", "cw_l2_search_steps", "cw_l2_steps")

# Fields added after runs were stored, with the value every earlier run had: at that value a
# field stays out of every key (runs, evaluations, poisoned sets, poison metrics) and out of the
# comparison with a stored record, so adding it re-keys and retrains nothing (`keyed_fields`).
KEYED_WHEN_SET = {"poison_surrogate": "resnet"}


def keyed_fields(config: dict) -> dict:
    """`config` (a `RunConfig.to_dict()`, or one read back from a record) without the
    `KEYED_WHEN_SET` fields that hold their old value: what keys and record checks compare."""
    return {k: v for k, v in config.items()
            if k not in KEYED_WHEN_SET or v != KEYED_WHEN_SET[k]}


# What the paper leaves open and we fill with the field's usual values.
FIELD_DEFAULTS = {
    "momentum": "SGD momentum 0.9 (paper names only lr 0.1)",
    "weight_decay": "weight decay 5e-4",
    "schedule": "lr divided by 10 at 50% and 75% of the epochs",
    "augment": "random crop with 4-pixel padding and horizontal flip, CIFAR-10 only",
    "adv_fraction": "half of each batch adversarial (the paper 'augments' the input space)",
    "n_val": "1,000 training images held out for validation curves",
    "pcl_margin": "hinge margin of the inter-class push (the paper's Eq. 4 is unbounded)",
    "loss": "PCL measured on directions (unit sphere), see losses.PolarisedContrastiveLoss",
    "cw_l2_budget": "L2 budget of the C&W-L2 row: 2.0 on MNIST (Croce & Hein's), 0.5 on "
                    "CIFAR-10 (RobustBench's)",
    "seed": "seeds 0, 1, 2 for spreads",
}

# The paper's per-dataset values, applied when a config names the dataset.
DATASET_DEFAULTS = {
    "mnist": {"epochs": 50, "eps": 0.3, "augment": False, "cw_l2_budget": 2.0},
    "fashion_mnist": {"epochs": 50, "eps": 0.1, "augment": False, "cw_l2_budget": 1.5},
    "cifar10": {"epochs": 100, "eps": 0.03, "augment": True, "cw_l2_budget": 0.5},
    "cifar10_jpeg": {"epochs": 100, "eps": 0.03, "augment": True, "cw_l2_budget": 0.5},
    "npz": {"augment": False},
    "image_folder": {"augment": False},
}

# A method's own defaults (the baselines as their authors ran them) live in its defence file
# (`dfl_lib.defences`): `get_defence(method).config_defaults(...)`.
# What a profile scales for every method alike (the run's size), even where a method sets it.
SCALED = ("epochs", "n_train", "n_val", "n_eval", "width", "wrn_depth", "widen_factor")


@functools.lru_cache(maxsize=1)
def _hints() -> types.MappingProxyType:
    """RunConfig's type hints, resolved once: its annotations are strings (`from __future__
    import annotations`), and resolving them on every field of every config made
    `typing.get_type_hints` 10 of the 12 s of building the quick study's plan."""
    return types.MappingProxyType(typing.get_type_hints(RunConfig))


def field_type(key: str) -> tuple[type, bool]:
    """(the field's base type, whether None is allowed), from RunConfig's type hints; a closed
    set of names (Literal) has base type str (`field_choices` gives the names)."""
    hints = _hints()
    if key not in hints:
        close = difflib.get_close_matches(key, hints, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(f"unknown config key {key!r}; {hint}known: {', '.join(sorted(hints))}")
    hint = hints[key]
    if typing.get_origin(hint) is Literal:
        return str, False
    args = typing.get_args(hint)
    if args and type(None) in args:  # `float | None`
        return next(a for a in args if a is not type(None)), True
    return hint, False


def field_choices(key: str) -> tuple[str, ...] | None:
    """The names a closed-set field allows (its Literal's values), else None."""
    field_type(key)  # unknown keys: the same error
    hint = _hints()[key]
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else None


def _apply(cfg: RunConfig, overrides: dict) -> RunConfig:
    """Replace fields, keeping each default's type (an int is accepted for a float)."""
    clean = {}
    for key, value in overrides.items():
        want, optional = field_type(key)
        if value is None and optional:
            clean[key] = None
            continue
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if want is float and type(value) is float and not math.isfinite(value):
            raise UsageError(f"config key {key!r} must be a finite number, got {value!r}")
        if type(value) is not want:
            raise UsageTypeError(
                f"config key {key!r} must be {want.__name__}{' or None' * optional}, got "
                f"{type(value).__name__} {value!r}"
            )
        choices = field_choices(key)
        if choices is not None and value not in choices:
            raise UsageError(f"unknown {key} {value!r}; known: {', '.join(choices)}")
        clean[key] = value
    out = dataclasses.replace(cfg, **clean)
    _validate(out)
    return out


def milestones(cfg: RunConfig) -> tuple[float, ...]:
    """cfg.lr_milestones as shares of the epochs, e.g. "0.5,0.75" -> (0.5, 0.75)."""
    try:
        shares = tuple(float(t) for t in cfg.lr_milestones.split(",") if t.strip())
    except ValueError:
        raise UsageError(f"lr_milestones must be comma-separated numbers in (0, 1], got "
                         f"{cfg.lr_milestones!r}") from None
    if any(not 0 < m <= 1 for m in shares) or list(shares) != sorted(shares):
        raise UsageError(f"lr_milestones must be increasing shares of the epochs in (0, 1], got "
                         f"{cfg.lr_milestones!r}")
    return shares


# fields whose values mean something only inside a range: (low, high, why); bounds inclusive
_RANGES = {
    "eps": (0.0, 1.0, "an L-inf budget in pixel units on images in [0, 1] (MNIST 0.3, "
                      "CIFAR-10 8/255 = 0.031)"),
    "alpha": (0.0, 1.0, "a step in pixel units on images in [0, 1] (0 = the attack's default)"),
    "adv_fraction": (0.0, 1.0, "the share of each batch attacked"),
    "momentum": (0.0, 0.999, "SGD momentum (1 or more never forgets a gradient)"),
    "poison_fraction": (0.0, 1.0, "the share of the training set (or of the target class) "
                                  "poisoned"),
    "poison_eps": (0.0, 1.0, "the poisons' L-inf budget in pixel units on images in [0, 1] "
                             "(0 = the config's eps)"),
}


def _check_ranges(cfg: RunConfig) -> None:
    for key, (low, high, why) in _RANGES.items():
        value = getattr(cfg, key)
        if not low <= value <= high:
            raise UsageError(f"config key {key!r} is {why}: it must lie in [{low:g}, {high:g}], "
                             f"got {value:g}")
    if cfg.lr <= 0:
        raise UsageError(f"config key 'lr' must be > 0 (nothing would learn), got {cfg.lr:g}")
    for key in ("lr_warmup_epochs", "eps_ramp_epochs"):
        if getattr(cfg, key) > cfg.epochs:
            raise UsageError(f"config key {key!r} ({getattr(cfg, key):g}) is longer than the run "
                             f"(epochs={cfg.epochs}); it must be at most epochs")
    if cfg.dataset in ("npz", "image_folder") and not cfg.data_path:
        raise UsageError(f"dataset {cfg.dataset!r} reads the file or folder given by data_path: "
                         "set --set data_path=<path>")
    if not re.fullmatch(r"auto|cpu|meta|mps|cuda(:\d+)?", cfg.device):
        raise UsageError(f"config key 'device' must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', "
                         f"got {cfg.device!r}")


def _validate(cfg: RunConfig) -> None:
    for key in ("eps", "alpha", "lr", "momentum", "weight_decay", "cw_c", "centroid_lr",
                "pcl_w_intra", "pcl_w_inter", "pcl_margin", "lr_warmup_epochs", "cw_l2_budget"):
        value = getattr(cfg, key)
        if value is not None and value < 0:
            raise UsageError(f"config key {key!r} must be >= 0, got {value}")
    for key in ("epochs", "batch_size", "attack_steps", "width", "eval_batch_size", "aa_steps",
                "aa_queries", "cw_l2_search_steps", "cw_l2_steps", "poison_patch"):
        if getattr(cfg, key) < 1:
            raise UsageError(f"config key {key!r} must be >= 1, got {getattr(cfg, key)}")
    for key in ("n_train", "n_val", "n_eval", "monitor_size", "eps_ramp_epochs", "cw_steps",
                "extra_fc", "poison_target"):
        if getattr(cfg, key) < 0:
            raise UsageError(f"config key {key!r} must be >= 0, got {getattr(cfg, key)}")
    for key in ("seed", "poison_seed"):  # names folders (s0) and seeds torch and numpy
        if not 0 <= getattr(cfg, key) <= SEED_MAX:
            raise UsageError(f"config key {key!r} is a random seed: a whole number in "
                             f"[0, {SEED_MAX}] (the study uses 0, 1, 2, ...; further seeds are "
                             f"derived from it by adding up to {SEED_OFFSET_MAX}), got "
                             f"{getattr(cfg, key)}")
    _check_ranges(cfg)
    milestones(cfg)
    if cfg.loss == "prototype_conformity" and cfg.extra_fc == 0:
        raise UsageError("loss 'prototype_conformity' acts on the pooled features and Mustafa et "
                         "al.'s extra FC layer: set extra_fc (theirs: 1024); without it both "
                         "layers are the same vector and the regulariser counts twice")
