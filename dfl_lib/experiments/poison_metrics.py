"""What a poisoned run does (notebook 07), measured once per run: clean test accuracy, the
backdoor's attack success rate, and whether the poisoned training samples stand out in the
model's feature space (activation clustering, spectral signatures: AUROC and recall at 5%
false positives).

    m = poison_metrics(cfg, runs_root="runs/quick")   # metrics-poison.json in the run folder

A run trained on a poisoned set is an ordinary run (`experiments.run.train_run`): its config
names the poisoning (`RunConfig.poison*`), `experiments.poisoned` crafts the set once per
configuration. The grid of poisoned runs the study trains is `study.plan.poison_grid`.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..config import RunConfig
from ..device import resolve_device
from ..evaluation.featurespace import penultimate_features
from ..evaluation.robust import eval_subset
from ..poisoning import POISONS as REGISTERED
from ..poisoning import get_poison, triggered_test_set
from ..poisoning.detect import (activation_clustering_scores, detection_metrics,
                                spectral_signature_scores)
from ..runs import io as runio
from ..runs.versions import computation_version
from ..training.loop import predict
from .keys import key_config
from .run import train_run

__all__ = ["POISONS", "BACKDOORS", "DETECTABLE", "poison_metrics"]

# the package's registered poisons (`poisoning.registry`) as this module found them; code that
# must see a poison registered later asks `poisoning.POISONS` / `get_poison` instead
POISONS = tuple(REGISTERED)
BACKDOORS = tuple(n for n, e in REGISTERED.items() if e.kind == "backdoor")
# poisons that change a subset of the training set (the detectors look for that subset)
DETECTABLE = tuple(n for n, e in REGISTERED.items() if e.subset)


def _metrics_key(cfg: RunConfig) -> str:
    spec = {"config": key_config(cfg),
            "code": computation_version("poison_metrics")}
    return runio.short_hash(spec)


def _labels(model, x: torch.Tensor) -> torch.Tensor:
    """Predicted labels (N,) on the CPU, in batches of 250 (`training.loop.predict`)."""
    return predict(model, x, batch_size=250).argmax(1).cpu()


def _detection(model, data, *, device, seed: int) -> dict:
    """The detectors on the penultimate features of the whole training set, labelled as the
    poisoned set labels it (a subsample would change the share of poison within the target
    class, which activation clustering reads: it flags the smaller cluster)."""
    is_poison = np.zeros(len(data.y_train), dtype=bool)
    is_poison[data.poisoned.indices.numpy()] = True
    feats = penultimate_features(model, data.to_float(data.x_train).to(device)).numpy()
    labels = data.y_train.numpy()
    out = {}
    for name, scores in (("activation clustering",
                          activation_clustering_scores(feats, labels, seed=seed)),
                         ("spectral signatures", spectral_signature_scores(feats, labels))):
        out[name] = detection_metrics(scores, is_poison, fpr=0.05)
    return out


def poison_metrics(cfg: RunConfig, *, data_root=None, runs_root=None, reuse: bool = True) -> dict:
    """Train (or reuse) the poisoning run `cfg` and measure, on its evaluation subset of the
    clean test set (cfg.n_eval images, the seed's subset): clean accuracy; for a backdoor the
    attack success rate (the triggered images of every other class classified as the target);
    for a poison that changes a subset, the detectors' AUROC and recall at 5% false positives.
    Per-example results are saved beside (masks-poison/*.npy) for the study's intervals.
    Written to metrics-poison.json in the run folder, reused when its key matches."""
    start = time.perf_counter()
    run = train_run(cfg, data_root=data_root, runs_root=runs_root, progress=False)
    rdir = Path(run["run_dir"])
    path = rdir / "metrics-poison.json"
    key = _metrics_key(cfg)
    if reuse and path.exists():
        saved = runio.read_json(path)
        if saved.get("metrics_key") == key:
            return {**saved, "path": str(path)}
    model, data = run["model"].eval(), run["data"]
    device = resolve_device(cfg.device)
    model.to(device)
    x, y = eval_subset(data, n=cfg.n_eval or len(data.y_test), seed=cfg.seed)
    correct = (_labels(model, x.to(device)) == y).numpy()
    masks = {"clean": correct}
    out = {"poison": cfg.poison, "fraction": cfg.poison_fraction if cfg.poison != "none" else 0.0,
           "n_eval": len(y), "clean_accuracy": 100.0 * float(correct.mean()),
           "n_train": len(data.y_train),
           "n_poisoned": int(len(data.poisoned.indices)) if data.poisoned is not None else 0,
           "history_final": run["history"][-1]}
    if cfg.poison != "none" and get_poison(cfg.poison).kind == "backdoor":
        xu8 = (x * 255).round().to(torch.uint8)
        xt, yt = triggered_test_set(xu8, y, target=cfg.poison_target,
                                    patch_size=cfg.poison_patch)
        hit = (_labels(model, data.to_float(xt).to(device)) == cfg.poison_target).numpy()
        masks["attack success"] = hit
        out["attack_success_rate"] = 100.0 * float(hit.mean())
        out["n_triggered"] = len(yt)
    if cfg.poison != "none" and get_poison(cfg.poison).subset:
        out["detection"] = _detection(model, data, device=device, seed=cfg.seed)
    folder = rdir / "masks-poison"
    folder.mkdir(parents=True, exist_ok=True)
    for name, mask in masks.items():
        np.save(folder / f"{name.replace(' ', '_')}.npy", mask.astype(bool))
    out.update(metrics_key=key, run=rdir.name, provenance=runio.provenance(
        config=cfg.to_dict(), seed=cfg.seed, device=str(device),
        wall_seconds=time.perf_counter() - start))
    runio.write_json(path, out)
    return {**out, "path": str(path)}
