"""A trained model from what a run left, never trained again: its run folder (checkpoint.pt), a
checkpoint file, or a report's committed weights (reports/<profile>/record/weights/*.pt); and
any model evaluated with one of the study's attack suites.

    model = load_model("reports/quick/record/weights/<run>.pt")   # eval mode, on the CPU
    logits = model(x)                                            # x (N, C, H, W) in [0, 1]
    rows, checks = evaluate_model(model, x, y, suite="paper", eps=0.3)
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..config import RunConfig
from ..device import resolve_device
from ..errors import DataFileError, UsageError
from ..evaluation.robust import evaluate
from ..evaluation.suites import evaluate_suite
from ..models import build_model
from ..runs import io as runio
from ..training.trainer import architecture_options
from .configs import make_config

__all__ = ["load_model", "saved_config", "evaluate_model", "L2_SUITE"]


def load_model(path, *, device: str = "cpu") -> nn.Module:
    """The network a finished run trained, in eval mode on `device`, built from the config saved
    with its weights (architecture, width, DFL, head) and its input normalisation (saved as
    buffers), so it takes images (N, C, H, W) in [0, 1] and returns logits (N, classes).

    path: a run folder (its checkpoint.pt), a run checkpoint, or a record's weights file; all
    hold {"model": state_dict, "config": the run's config}. Raises DataFileError naming the path
    when it is missing, unreadable or holds no model and config."""
    cfg, weights = _saved(path)
    mean, std = weights["normalize.mean"].flatten(), weights["normalize.std"].flatten()
    model = build_model(cfg.model, num_classes=weights["head.weight"].shape[0],
                        in_channels=len(mean), width=cfg.width, dfl=cfg.dfl,
                        mean=mean.tolist(), std=std.tolist(), **architecture_options(cfg))
    runio.check_compatible(weights, model)
    model.load_state_dict(weights)
    model = model.to(resolve_device(device)).eval()
    # the memory format the run computed in (the last bits of a convolution depend on it)
    return model.to(memory_format=torch.channels_last) if cfg.channels_last else model


def saved_config(path) -> RunConfig:
    """The config of the run whose weights `path` holds (a run folder, a run checkpoint or a
    record's weights file); DataFileError as `load_model` raises it."""
    return _saved(path)[0]


def _saved(path) -> tuple[RunConfig, dict]:
    path = Path(path)
    file = path / runio.CHECKPOINT_NAME if path.is_dir() else path
    if not file.is_file():
        raise DataFileError(f"no trained model at {path}: expected a run folder with "
                            f"{runio.CHECKPOINT_NAME}, or a .pt file of a run's weights")
    state = runio.load_checkpoint(file)
    if not isinstance(state.get("model"), dict) or not isinstance(state.get("config"), dict):
        raise DataFileError(f"{file} holds no 'model' weights and 'config': not a run's "
                            "checkpoint or a record's weights file")
    return RunConfig().replace(**state["config"]), state["model"]


# the L2 threat model's suite: AutoAttack's two APGD parts at an L2 radius (Croce & Hein 2020),
# as studies/l2_check.py runs them on the headline models
L2_SUITE = {"clean": {}, "APGD-CE (L2)": {"attack": "apgd_ce_l2"},
            "APGD-T (L2)": {"attack": "apgd_t_l2"}}


def evaluate_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, suite: str = "headline",
                   eps: float = 0.3, profile: str = "quick", dataset: str = "mnist",
                   seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Any classifier (images (n, C, H, W) in [0, 1] in, logits out; put in eval mode here) under
    one of the study's attack suites ("paper": clean, FGSM, PGD-10, CW-inf, the paper's C&W-L2;
    "table"; "headline": PGD-50 with restarts, AutoAttack and the gradient-masking checks;
    "full": also C&W-L2 with binary search) at L-inf `eps` (pixel units), with the attack
    settings `profile` gives `dataset` (steps, AutoAttack's queries) and `seed` for the random
    starts; on x's device. The attacks that need a run's own objects are left out (the adaptive
    attack on a PCL model's loss, transfer from a surrogate). suite "l2": the L2 threat model
    at radius `eps` (the L2 norm of the perturbation, e.g. 2.0 on MNIST): clean, APGD-CE and
    APGD-T under L2 with AutoAttack's budgets (torchattacks), and their worst case.

    Returns (rows, checks): one dict per attack row {"name", "accuracy" (fraction), "ci_low",
    "ci_high" (95% Wilson), "n", "n_correct", "settings", ...}, then the worst case of each
    threat model, and, for "headline" and "full", the masking checks {"check", "passed",
    "detail", "values"} ([] otherwise). Raises UsageError for an unknown suite, profile or
    dataset, eps outside (0, 1] (L-inf) or not positive (L2), or a model with fewer than 4
    classes under "l2" (APGD-T's DLR loss needs them)."""
    if suite == "l2":
        if not eps > 0:
            raise UsageError(f"eps must be a positive L2 radius for suite 'l2', got {eps}")
        attacks = {name: ({**kw, "eps": eps} if kw else kw) for name, kw in L2_SUITE.items()}
        return list(evaluate(model.eval(), x, y, attacks=attacks, seed=seed)), []
    # a plain config: the rows that need a run's own loss (the adaptive attack) do not apply
    cfg = make_config(profile, dataset=dataset, eps=eps, seed=seed, device=str(x.device),
                      loss="ce", dfl=False)
    table, checks = evaluate_suite(model.eval(), x, y, cfg=cfg, suite=suite)
    return list(table), checks
