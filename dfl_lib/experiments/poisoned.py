"""The training set a config names, poisoned as its `poison` fields say (issue 20), cached by
configuration like a run: the same config and data give the same poisoned set, crafted once.

    data = load_data(cfg, runs_root="runs/quick")   # experiments.data.load_data calls poison_dataset
    data.poisoned                                   # PoisonedSet (indices, kind, params) or None

Poisons that attack a model (the clean-label backdoor's hard examples, adversarial poisons) are
crafted against a clean-trained reference network on the same data, trained here with its own
seed (poison_seed + 2000, so it is never a victim); error-minimising noise trains a fresh network
inside its min-min loop (Huang et al. 2021). Which network: the plain ResNet of the victim's depth
and width (`poison_surrogate="resnet"`, the default: the poison must transfer to a defended
victim), or the victim's own network and loss (`"victim"`: an attacker who knows the defence).
Everything here is seeded by `poison_seed` (the attacker's), never by the victim's `seed`: the
seeds of a poisoning cell train victims on one poisoned set.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ..config import RunConfig, keyed_fields
from ..poisoning import PoisonBudget, PoisonedSet, get_poison
from ..runs import io as runio
from ..runs.versions import computation_version
from ..training.trainer import build_components, train
from .keys import key_config

__all__ = ["poison_dataset", "reference_config", "poison_key", "adaptive_differs"]


def reference_config(cfg: RunConfig) -> RunConfig:
    """The clean-trained network poisons are crafted against: the config's data, depth and width,
    no training attack, no poisoning, its own seed (the poison's seed + 2000); with
    `poison_surrogate` "resnet" the plain ResNet (no DFL, CE), with "victim" the victim's DFL,
    loss and extra layer as configured (an attacker who knows the defence)."""
    ref = cfg.replace(poison="none", train_attack="none", method="standard",
                      seed=cfg.poison_seed + 2000, poison_seed=0, poison_surrogate="resnet")
    if cfg.poison_surrogate == "victim":
        return ref
    return ref.replace(dfl=False, loss="ce", extra_fc=0)


def adaptive_differs(cfg: RunConfig) -> bool:
    """Whether crafting `cfg.poison` against the victim itself (`poison_surrogate="victim"`)
    gives another poisoned set than crafting it against the plain ResNet: for a poison crafted
    against a trained reference, where the victim's DFL, loss or extra layer differ from the
    plain ResNet's; for error-minimising noise, whose min-min loop trains a fresh network with
    its own cross-entropy, only where the victim's network differs (the DFL, the extra layer):
    a PCL-only victim has the plain ResNet's network, so its "adaptive" poison is the same."""
    entry = get_poison(cfg.poison)
    victim = reference_config(cfg.replace(poison_surrogate="victim"))
    plain = reference_config(cfg.replace(poison_surrogate="resnet"))
    if entry.needs == "reference":
        return victim != plain
    if entry.needs == "fresh":
        return (victim.dfl, victim.extra_fc) != (plain.dfl, plain.extra_fc)
    return False


def _poison_fields(cfg: RunConfig) -> dict:
    return {k: v for k, v in keyed_fields(cfg.to_dict()).items() if k.startswith("poison")}


def poison_key(cfg: RunConfig, data) -> str:
    """12 hex digits over what the poisoned set depends on: the poison fields, the clean data's
    fingerprint, the poison's seed (in the poison fields), the reference run's config and the
    poisoning code; not the victim's training seed."""
    spec = {"poison": _poison_fields(cfg), "data": data.fingerprint,
            "eps": cfg.eps, "reference": key_config(reference_config(cfg))
            if get_poison(cfg.poison).needs != "nothing" else None,
            "code": computation_version("poison", "train")}
    return runio.short_hash(spec)


def _reference_model(cfg: RunConfig, data, *, runs_root):
    ref = reference_config(cfg)
    model, loss = build_components(ref, data)
    train(model, loss, data, ref, runs_root=runs_root, progress=False)
    return model.eval()


def _craft(cfg: RunConfig, data, *, runs_root):
    """The poisoned training set, crafted by the registered poison `cfg.poison` with the
    network it needs: a clean-trained reference, or a fresh one seeded by the attacker."""
    entry = get_poison(cfg.poison)
    model = None
    if entry.needs == "reference":
        model = _reference_model(cfg, data, runs_root=runs_root)
    elif entry.needs == "fresh":
        torch.manual_seed(cfg.poison_seed + 2000)
        model, _ = build_components(reference_config(cfg), data)
    budget = PoisonBudget(fraction=cfg.poison_fraction, target=cfg.poison_target,
                          patch_size=cfg.poison_patch, eps=cfg.poison_eps or cfg.eps,
                          batch_size=cfg.batch_size, seed=cfg.poison_seed)
    return entry.craft(data.x_train, data.y_train, num_classes=data.num_classes, budget=budget,
                       model=model)


def poison_dataset(cfg: RunConfig, data, *, runs_root=None):
    """`data` with its training split poisoned as `cfg` says (cfg.poison "none": `data` itself),
    the PoisonedSet in `.poisoned`. The poisoned set is saved under <runs_root>/poisons/ by
    `poison_key` (atomically) and read back when it exists. Validation and test splits are never
    poisoned. Raises UsageError (from the poisoning function) for a budget the data cannot take
    (a target class it lacks, a patch larger than its images)."""
    if cfg.poison == "none":
        return data

    folder = Path(runs_root or runio.default_runs_root()) / "poisons"
    path = folder / f"{data.name}-{cfg.poison}-s{cfg.poison_seed}-{poison_key(cfg, data)}.pt"
    if path.exists():
        saved = torch.load(path, weights_only=False)
        poisoned = PoisonedSet(**saved)
    else:
        poisoned = _craft(cfg, data, runs_root=runs_root)
        folder.mkdir(parents=True, exist_ok=True)
        runio.save_checkpoint(path, state=dataclasses.asdict(poisoned))
    out = type(data).from_arrays(name=data.name, source=f"{data.source}, poisoned: "
                                 f"{cfg.poison}", classes=data.classes, x_train=poisoned.x,
                                 y_train=poisoned.y, x_val=data.x_val, y_val=data.y_val,
                                 x_test=data.x_test, y_test=data.y_test, augment=data.augment)
    # the model normalises with the clean data's statistics: a poison must not move them
    out = dataclasses.replace(out, mean=data.mean, std=data.std, poisoned=poisoned)
    return out
