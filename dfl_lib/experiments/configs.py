"""A run's config, composed: the paper's defaults (`config.RunConfig`), the dataset's paper
values, the method's own defaults and checks (its defence file, `dfl_lib.defences`), the
profile's sizes (`dfl_lib.profiles`) and the caller's overrides, in that order.

    cfg = make_config("quick", dataset="mnist", train_attack="pgd")
    profile_deviations("quick")    # how the profile departs from the paper, for reports
"""
from __future__ import annotations

from ..config import DATASET_DEFAULTS, SCALED, RunConfig
from ..defences import get_defence
from ..device import resolve_device, resolve_precision
from ..errors import UsageError
from ..poisoning import POISONS, get_poison
from ..profiles import get_profile

__all__ = ["make_config", "profile_deviations", "checked"]


def make_config(profile: str = "quick", **overrides) -> RunConfig:
    """Paper defaults -> the dataset's paper values -> the method's own (baselines) -> the
    profile (which scales the run's size for every method, but does not replace a baseline's
    own hyperparameters) -> explicit overrides. precision "auto" (the study's profiles) is
    resolved here for cfg.device: bf16 where it computes bf16 natively, fp32 elsewhere
    (`device.resolve_precision`), so the run's key and provenance name what it trains in.
    UsageError (naming the field and what it takes) for an unknown profile, field, value or a
    combination the method refuses."""
    p = get_profile(profile)
    dataset = overrides.get("dataset", RunConfig.dataset)
    method = overrides.get("method", RunConfig.method)
    method_defaults = get_defence(method).config_defaults(
        train_attack=overrides.get("train_attack", RunConfig.train_attack))
    scaled = {**p.overrides, **p.per_dataset.get(dataset, {})}
    scaled = {k: v for k, v in scaled.items() if k in SCALED or k not in method_defaults}
    layered = {"dataset": dataset, **DATASET_DEFAULTS.get(dataset, {}), **method_defaults,
               **scaled, **overrides}
    return checked(RunConfig().replace(**layered))


def checked(cfg: RunConfig) -> RunConfig:
    """`cfg` with precision "auto" resolved for its device (before it names any run), after its
    method's own checks (`Defence.validate`) and its poison's name (a registered one,
    `poisoning.get_poison`); UsageError naming what is wrong."""
    if cfg.precision == "auto":
        cfg = cfg.replace(precision=resolve_precision("auto", resolve_device(cfg.device)))
    get_defence(cfg.method).validate(cfg)
    if cfg.poison != "none":
        entry = get_poison(cfg.poison)
        if cfg.poison_surrogate != "resnet" and entry.needs == "nothing":
            raise UsageError(f"poison_surrogate={cfg.poison_surrogate!r}: poison "
                             f"{cfg.poison!r} is crafted against no network; a surrogate "
                             f"applies to "
                             f"{', '.join(n for n, e in POISONS.items() if e.needs != 'nothing')}")
    elif cfg.poison_surrogate != "resnet":
        raise UsageError(f"poison_surrogate={cfg.poison_surrogate!r} without a poison: set "
                         f"poison too, or leave poison_surrogate at 'resnet'")
    return cfg


def profile_deviations(profile: str) -> tuple[str, ...]:
    """The ways a profile departs from the paper, for reports (each text once)."""
    return tuple(dict.fromkeys(get_profile(profile).deviations.values()))
