"""Clean vs poisoned (adversarially perturbed) samples in a trained model's feature space: the
numbers and the UMAP coordinates one panel of the feature-space notebook needs.

Each model is attacked white-box by its own PGD at the run's eps and steps, on the run's fixed
evaluation subset, so the perturbed features are the ones that model actually sees.

    panel = clean_vs_perturbed(run, cfg=cfg, seed=0)   # run: study_runs.load_run(cfg)
"""
from __future__ import annotations

import torch

from ..attacks import pgd
from ..device import resolve_device
from ..evaluation.featurespace import clustering_metrics, penultimate_features, umap_embedding
from ..evaluation.robust import eval_subset
from ..validation import require_eval

__all__ = ["clean_vs_perturbed"]


def clean_vs_perturbed(run: dict, *, cfg, seed: int = 0, n: int | None = None) -> dict:
    """{"y", "clean_2d", "perturbed_2d", "metrics"} for one finished run: penultimate features
    of n test images (default cfg.n_eval, else 1,000) and of their PGD versions; UMAP fitted on
    the clean features; metrics from `evaluation.featurespace.clustering_metrics` plus the accuracy on
    both. UsageError for a model with any submodule in train mode (never switched here: its
    forward would rewrite BatchNorm's running buffers; `validation.require_eval`)."""
    model, data = run["model"], run["data"]
    require_eval(model, what="reading clean and perturbed features")
    device = resolve_device(cfg.device)
    x, y = eval_subset(data, n=n or cfg.n_eval or 1000, seed=seed)  # x (N, C, H, W) in [0, 1]
    x, y = x.to(device), y.to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    x_adv = pgd(model, x, y, eps=cfg.eps, steps=cfg.attack_steps, generator=generator)
    clean = penultimate_features(model, x)          # (N, d), on the CPU
    perturbed = penultimate_features(model, x_adv)  # (N, d)
    with torch.no_grad():
        acc_clean = (model(x).argmax(1) == y).float().mean().item() * 100
        acc_adv = (model(x_adv).argmax(1) == y).float().mean().item() * 100
    y = y.cpu()
    metrics = {**clustering_metrics(clean, perturbed, y), "accuracy_clean": acc_clean,
               "accuracy_perturbed": acc_adv, "n": len(y), "eps": cfg.eps,
               "attack": f"PGD-{cfg.attack_steps}"}
    clean_2d, perturbed_2d = umap_embedding(clean, perturbed, seed=seed)
    return {"y": y.numpy(), "clean_2d": clean_2d, "perturbed_2d": perturbed_2d,
            "metrics": metrics}
