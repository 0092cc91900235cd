"""Robust-accuracy evaluation: one attack at a time, or a table of attacks with a worst-case row.

    x, y = eval_subset(data, n=1000, seed=0)                  # fixed, class-balanced test subset
    table = evaluate(model.eval(), x, y, attacks={
        "clean": {},
        "pgd-20": {"attack": "pgd", "eps": 0.3, "steps": 20},
        "autoattack": {"eps": 0.3},
    })
    json.dumps(table)            # rows are plain dicts; table.masks holds the per-example results
    as_frame(table)              # a pandas DataFrame

Conventions (AutoAttack's): an example is robust to an attack only if it is classified correctly
both clean and after the attack, so every row's accuracy is at most the clean accuracy. The last
rows, "worst case (<norm>, eps <budget>)", count an example as robust only if it survived *every*
attack of that threat model in the table (L-inf and L2 attacks are never mixed).
Every accuracy comes with a 95% Wilson interval, the settings that produced it, the largest
perturbation actually seen (L-inf and L2), the number of adversarial examples holding NaN, and
the wall time.

The model must be in eval mode; it is never switched, updated or given gradients (the attacks
differentiate with respect to the input only), and the global RNG is left as it was.
"""
from __future__ import annotations

import math
import re
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..attacks import REGISTRY, frozen, logits_of
from ..data.datasets import balanced_indices, batch_indices, to_float
from ..errors import UsageError
from ..validation import (check_images, check_known, check_labels, check_nonnegative,
                          check_num_classes)
from .fold import fold_batchnorm
from .threat import ThreatModel

__all__ = ["eval_subset", "eval_subset_indices", "wilson_interval", "robust_accuracy",
           "evaluate", "as_frame", "EvalTable", "attack_norm", "worst_case_name", "ATTACK_NAMES",
           "WORST_CASE", "ThreatModel"]

WORST_CASE = "worst case"
ATTACK_NAMES = tuple(sorted(REGISTRY))


# --------------------------------------------------------------------------- subsets and intervals

def eval_subset_indices(y: torch.Tensor, *, n: int, seed: int) -> torch.Tensor:
    """Sorted indices (n,) of a class-balanced subset of labels y (N,), drawn with
    torch.Generator().manual_seed(seed) (`dfl_lib.data.datasets.balanced_indices`: n // K per class, the
    remainder to the first classes, a short class's shortfall shared among the others). The same
    (y, n, seed) always gives the same indices."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"n must be a positive int, got {n!r}")
    y = torch.as_tensor(y).cpu().long()
    if n > len(y):
        raise UsageError(f"asked for n={n} examples but the test set has {len(y)}")
    return balanced_indices(y, n=n, num_classes=int(y.max()) + 1,
                            generator=torch.Generator().manual_seed(seed))


def eval_subset(data, *, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, seeded, class-balanced subset of `data`'s test split: (x float [0, 1], y).

    `data` is a `dfl_lib.data.datasets.Dataset` (or anything with uint8 `x_test` (N, C, H, W) and
    `y_test` (N,)). Record n and seed beside the results: they define the subset.
    """
    idx = eval_subset_indices(data.y_test, n=n, seed=seed)
    return to_float(data.x_test[idx]), torch.as_tensor(data.y_test)[idx].long()


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (z = 1.96: 95%).

    Unlike the normal approximation it stays inside [0, 1] and is not degenerate at k = 0 or
    k = n: (0, z^2 / (n + z^2)) and (n / (n + z^2), 1). n = 0 gives (0, 1): nothing is known.
    """
    if n < 0 or not 0 <= k <= n:
        raise UsageError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


# --------------------------------------------------------------------------- settings

def _settings(attack: str, kwargs: dict, *, seed: int, n_classes: int) -> dict:
    """The attack's full settings (the registry's defaults, then the caller's), JSON-safe."""
    entry = REGISTRY[attack]
    if entry.kind == "none":
        return {}
    full = dict(entry.defaults)
    if entry.kind == "transfer":  # the crafting attack's own defaults
        craft = entry.defaults["craft"]
        full.update(REGISTRY[kwargs.get("craft", craft)].defaults, craft=craft)
    if entry.takes_classes:
        full.update(norm=entry.norm, n_classes=n_classes)
    full.update(kwargs, seed=seed)
    return {k: _json_safe(v) for k, v in sorted(full.items())}


def _json_safe(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_json_safe(u) for u in v]
    if isinstance(v, dict):
        return {str(k): _json_safe(u) for k, u in v.items()}
    if isinstance(v, torch.Tensor):
        return v.item() if v.numel() == 1 else f"tensor{tuple(v.shape)}"
    if isinstance(v, nn.Module):
        n = sum(p.numel() for p in v.parameters())
        return f"{type(v).__name__}({n} parameters)"
    if callable(v):
        return getattr(v, "__name__", type(v).__name__)
    return repr(v)


# --------------------------------------------------------------------------- one attack

def attack_norm(attack: str, kwargs: dict | None = None) -> str | None:
    """The norm of an attack (its registry entry's): "Linf", "L2", or None for the clean input.
    A transfer attack has the norm of the attack it crafts with."""
    check_known(attack, REGISTRY, kind="attack")
    entry = REGISTRY[attack]
    if entry.kind == "transfer":
        return attack_norm((kwargs or {}).get("craft", entry.defaults["craft"]))
    return entry.norm


# kinds of attack that never run the model itself (clean input; crafted on a surrogate)
_UNFOLDED_KINDS = ("none", "transfer")


def robust_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, attack: str,
                    batch_size: int = 250, seed: int = 0, l2_budget: float | None = None,
                    **attack_kwargs) -> dict:
    """Accuracy of `model` (eval mode) on (x, y) under `attack`, run in batches.

    attack: a name in the attack registry (`dfl_lib.attacks.REGISTRY`): "clean"; our attacks
    (fgsm, bim, mim, pgd, cw_pgd, cw); "pgd_adaptive" (PGD on the defence's own objective, needs
    defence_loss=); "transfer" (PGD, or craft=<name>, on surrogate=<model>); torchattacks'
    "autoattack" (standard: APGD-CE, APGD-T, FAB-T, Square), "apgd_ce", "apgd_t", "fab" (FAB-T),
    "square", all L-inf and with AutoAttack's budgets unless overridden (steps=...,
    n_queries=...). attack_kwargs go to the attack (eps, ...); what the attack is (its norm, kind,
    required settings, class floor) is asked of its registry entry.
    seed: seeds the random starts (our attacks: a torch.Generator; torchattacks: its seed).
    l2_budget: for the minimum-norm L2 attack ("cw"), the L2 radius of the threat model: an
    adversarial example farther than it from x counts as a failure (accuracy at that budget).

    Returns {"attack", "norm", "threat_model", "accuracy", "ci_low", "ci_high", "n", "n_correct",
    "settings", "n_classes", "max_linf", "max_l2", "median_l2", "nan_count", "seconds", "correct"}; "correct" is a bool
    tensor (n,) on the CPU, True where the example is classified correctly both clean and
    attacked. threat_model: `ThreatModel(norm, eps or l2_budget).to_dict()`, None for the clean
    input and a minimum-norm attack without a budget. median_l2: median L2 norm of the successful perturbations (clean correct, attacked
    wrong, before the budget), None where there are none. nan_count counts adversarial examples
    holding NaN; they are replaced by the clean input (the attack failed).

    Raises UsageError before any attack runs when the model (or one of its submodules) is in
    train mode (`validation.require_eval`), when a label is not one of the model's outputs, or when
    the attack is not defined for the model's class count (APGD-T and AutoAttack need 4).
    """
    check_known(attack, REGISTRY, kind="attack")
    entry = REGISTRY[attack]
    check_images(x, name="x")
    check_labels(y, n=x.shape[0], name="y")
    missing = [s for s in entry.required if s not in attack_kwargs]
    if missing:
        raise UsageError(f"{attack} needs {missing[0]}=")
    norm = attack_norm(attack, attack_kwargs)
    if l2_budget is not None:
        check_nonnegative(l2_budget, name="l2_budget")
        if norm != "L2":
            raise UsageError(f"l2_budget is for L2 attacks; {attack} is {norm}")
    y = y.to(x.device).long()
    start = time.perf_counter()
    with frozen(model):
        n_classes = _classes_for(model, x, y, attacks=[attack])
        # attacks run on a BatchNorm-folded copy (the same function, one pass over the
        # activations fewer; `dfl_lib.evaluation.fold`); every example is judged by the model itself
        attacked = model if entry.kind in _UNFOLDED_KINDS else fold_batchnorm(model)
        kwargs = entry.settings(attack_kwargs) if entry.fill_defaults else dict(attack_kwargs)
        if entry.takes_classes:
            kwargs["n_classes"] = n_classes
        generator = torch.Generator().manual_seed(seed)
        correct, fooled_l2, max_linf, max_l2, nan_count = [], [], 0.0, 0.0, 0
        for idx in batch_indices(len(y), batch_size=batch_size, shuffle=False):
            xb, yb = x[idx], y[idx]
            x_adv = entry.run(attacked, xb, yb, generator=generator, seed=seed, **kwargs)
            x_adv = x_adv.detach().to(xb.device, xb.dtype)
            bad = torch.isnan(x_adv).flatten(1).any(1)  # (B,)
            nan_count += int(bad.sum())
            x_adv = torch.where(bad[:, None, None, None], xb, x_adv)
            with torch.no_grad():
                clean_ok = logits_of(model, xb).argmax(1) == yb
                adv_ok = logits_of(model, x_adv).argmax(1) == yb
            l2 = (x_adv - xb).flatten(1).norm(dim=1)  # (B,)
            fooled_l2.append(l2[clean_ok & ~adv_ok].cpu())
            if l2_budget is not None:  # beyond the budget the attack did not succeed
                far = l2 > l2_budget + 1e-6
                adv_ok = adv_ok | far
                x_adv = torch.where(far[:, None, None, None], xb, x_adv)
                l2 = torch.where(far, torch.zeros_like(l2), l2)
            delta = (x_adv - xb).flatten(1)
            max_linf = max(max_linf, float(delta.abs().amax()) if delta.numel() else 0.0)
            max_l2 = max(max_l2, float(l2.amax()) if l2.numel() else 0.0)
            correct.append((clean_ok & adv_ok).cpu())
    correct = torch.cat(correct) if correct else torch.zeros(0, dtype=torch.bool)
    fooled_l2 = torch.cat(fooled_l2) if fooled_l2 else torch.zeros(0)
    settings = _settings(attack, attack_kwargs, seed=seed, n_classes=n_classes)
    if l2_budget is not None:
        settings["l2_budget"] = float(l2_budget)
    eps = settings.get("eps")
    if isinstance(eps, (int, float)) and norm == "Linf" and max_linf > eps + 1e-6:
        warnings.warn(f"{attack}: largest L-inf perturbation {max_linf:.6g} exceeds eps {eps}",
                      RuntimeWarning, stacklevel=2)
    if isinstance(eps, (int, float)) and norm == "L2" and max_l2 > eps + 1e-4:
        warnings.warn(f"{attack}: largest L2 perturbation {max_l2:.6g} exceeds eps {eps}",
                      RuntimeWarning, stacklevel=2)
    if nan_count:
        warnings.warn(f"{attack}: {nan_count} adversarial examples held NaN", RuntimeWarning,
                      stacklevel=2)
    median_l2 = float(fooled_l2.median()) if len(fooled_l2) else None
    # the threat model's radius: eps for a bounded attack of either norm, the budget at which a
    # minimum-norm L2 attack (C&W) is counted
    budget = settings.get("eps") if norm == "Linf" else settings.get("l2_budget",
                                                                      settings.get("eps"))
    threat = ThreatModel(norm, budget) if norm and isinstance(budget, (int, float)) else None
    return _row(attack, correct, norm=norm, threat=threat, settings=settings, n_classes=n_classes,
                max_linf=max_linf, max_l2=max_l2, median_l2=median_l2, nan_count=nan_count,
                seconds=time.perf_counter() - start)


def _classes_for(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, attacks) -> int:
    """The model's class count K (its logits' width on one image), checked before any attack
    runs: every label must be one of its outputs and every attack defined for K classes
    (`AttackEntry.min_classes`). Raises UsageError naming K and the attack or label."""
    with torch.no_grad():
        n_classes = int(logits_of(model, x[:1]).shape[1])
    if len(y) and int(y.max()) >= n_classes:
        raise UsageError(f"label {int(y.max())} is not an output of this model: it has "
                         f"{n_classes} classes (labels 0..{n_classes - 1})")
    for attack in attacks:
        entry = REGISTRY[attack]
        check_num_classes(n_classes, attack=attack, minimum=entry.min_classes,
                          why=entry.classes_why)
    return n_classes


def _row(attack: str, correct: torch.Tensor, *, norm, threat: ThreatModel | None,
         **fields) -> dict:
    n, k = len(correct), int(correct.sum())
    lo, hi = wilson_interval(k, n)
    return {"attack": attack, "norm": norm,
            "threat_model": threat.to_dict() if threat is not None else None,
            "accuracy": k / n if n else float("nan"),
            "ci_low": lo, "ci_high": hi, "n": n, "n_correct": k, **fields, "correct": correct}


def worst_case_name(threat: ThreatModel) -> str:
    """e.g. "worst case (Linf, eps 0.3)": the row combining every attack of that threat model."""
    return f"{WORST_CASE} ({threat})"


# --------------------------------------------------------------------------- a table of attacks

class EvalTable(list):
    """The rows of `evaluate` (plain JSON-safe dicts, so json.dumps(table) works) plus
    `.masks`: {row name: bool tensor (n,)}, True where the example survived that attack."""

    def __init__(self, rows=(), masks: dict | None = None):
        super().__init__(rows)
        self.masks: dict[str, torch.Tensor] = dict(masks or {})


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, attacks: dict[str, dict],
             threat: ThreatModel | None = None, batch_size: int = 250, seed: int = 0,
             masks_dir: str | Path | None = None, live: dict | None = None) -> EvalTable:
    """One row per attack, then one "worst case" row per threat model (norm and budget): the
    per-example AND of the masks of every attack of that threat model (an example counts as
    robust only if it survived all of them). Attacks of different threat models are never
    combined, and unbounded rows (a minimum-norm attack without l2_budget) join no worst case.

    attacks: {row name: keyword arguments}; the attack is the row name unless the arguments name
    it with "attack", so one attack can appear with several settings; a "note" is copied into the
    row (e.g. why a row is non-informative):
        {"fgsm": {"eps": 0.3}, "pgd-50x5": {"attack": "pgd", "eps": 0.3, "steps": 50,
         "restarts": 5}}
    Each row: {"name", "attack", "norm", "threat_model", "accuracy", "ci_low", "ci_high", "n",
    "n_correct", "settings", "n_classes", "max_linf", "max_l2", "median_l2", "nan_count",
    "seconds"[, "note"]}; rows are grouped into worst cases by their threat_model (a
    `ThreatModel` as a dict), and a worst-case row's settings name the rows it combines. With
    masks_dir, each row's mask is saved there as <name>.npy (bool (n,)).
    threat: the threat model the suite is evaluated under (`suites.threat_model`): every row of
    an attack of its norm that names no budget of its own runs at its eps, so the budget is set
    once, here, and never copied into each row.
    live: runtime objects the attacks may need ({"defence_loss": the run's loss, "surrogate": a
    model}), kept out of `attacks` so a suite stays plain data; each row gets those its
    registry entry `needs` (a row's own setting wins).
    """
    if not attacks:
        raise UsageError("attacks is empty: give at least one, e.g. {'clean': {}}")
    taken = [name for name in attacks if name.startswith(WORST_CASE)]
    if taken:
        raise UsageError(f"{taken[0]!r}: names starting with {WORST_CASE!r} are kept for the "
                         "combined rows; rename that attack")
    chosen = {name: dict(kwargs).get("attack", name) for name, kwargs in attacks.items()}
    for attack in chosen.values():
        check_known(attack, REGISTRY, kind="attack")
    check_images(x, name="x")
    check_labels(y, n=x.shape[0], name="y")
    with frozen(model):  # every row's preconditions, before the first row's work
        n_classes = _classes_for(model, x, y.to(x.device).long(), attacks=chosen.values())
    table = EvalTable()
    for name, kwargs in attacks.items():
        kwargs = dict(kwargs)
        attack, note = kwargs.pop("attack", name), kwargs.pop("note", None)
        for need in REGISTRY[attack].needs:
            if live and need in live:
                kwargs.setdefault(need, live[need])
        if threat is not None and attack_norm(attack, kwargs) == threat.norm:
            kwargs.setdefault("eps", threat.eps)
        result = robust_accuracy(model, x, y, attack=attack, batch_size=batch_size,
                                 **{"seed": seed, **kwargs})
        table.masks[name] = result.pop("correct")
        table.append({"name": name, **result, **({"note": note} if note else {})})
    groups: dict[ThreatModel, list[dict]] = {}
    for row in table:
        threat = ThreatModel.of(row)
        if threat is not None:
            groups.setdefault(threat, []).append(row)
    for threat, rows in groups.items():
        name = worst_case_name(threat)
        worst = torch.stack([table.masks[r["name"]] for r in rows]).all(0)  # (n,)
        row = _row(WORST_CASE, worst, norm=threat.norm, threat=threat,
                   settings={"threat_model": threat.norm, "eps": threat.eps,
                             "of": [r["name"] for r in rows]},
                   n_classes=n_classes,
                   max_linf=max(r["max_linf"] for r in rows), max_l2=max(r["max_l2"] for r in rows),
                   median_l2=None, nan_count=sum(r["nan_count"] for r in rows),
                   seconds=sum(r["seconds"] for r in rows))
        table.masks[name] = row.pop("correct")
        table.append({"name": name, **row})
    if masks_dir is not None:
        save_masks(table.masks, masks_dir)
    return table


def mask_file(folder: str | Path, name: str) -> Path:
    """Where the mask of the row called `name` is saved in `folder` (names made file-safe)."""
    return Path(folder) / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") + ".npy")


def save_masks(masks: dict[str, torch.Tensor], folder: str | Path) -> list[Path]:
    """Save each mask as <folder>/<name>.npy (bool (n,)); names are made file-safe."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, mask in masks.items():
        path = mask_file(folder, name)
        np.save(path, mask.cpu().numpy().astype(bool))
        paths.append(path)
    return paths


def as_frame(rows):
    """The rows as a pandas DataFrame (settings as a column of dicts); needs pandas."""
    try:
        import pandas as pd
    except ImportError as err:  # pragma: no cover - pandas comes with the notebook dependencies
        raise ImportError("as_frame needs pandas (pip install pandas)") from err
    rows = [{k: v for k, v in r.items() if k != "correct"} for r in rows]
    return pd.DataFrame(rows)
