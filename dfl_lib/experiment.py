"""One run end to end, as the CLI and the notebooks use it: load data, build, train (or reuse),
evaluate with an attack suite, and write metrics with provenance into the run folder.

    result = train_run(cfg)                      # {"model", "loss", "data", "history", "run_dir"}
    metrics = evaluate_run(cfg, suite="full")    # {"table", "masking", "path", ...}
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from . import runio
from .config import RunConfig
from .evaluate import eval_subset, evaluate
from .masking import masking_checks
from .train import build_components, load_data, run_path, train

__all__ = ["train_run", "attack_suite", "surrogate_config", "evaluate_run"]


def train_run(cfg: RunConfig, *, data_root=None, runs_root=None, data=None,
              progress: bool = True) -> dict:
    """Train (or reuse, or resume) the run `cfg` describes."""
    data = data if data is not None else load_data(cfg, root=data_root)
    model, loss = build_components(cfg, data)
    history = train(model, loss, data, cfg, runs_root=runs_root, progress=progress)
    return {"model": model.eval(), "loss": loss, "data": data, "history": history,
            "run_dir": run_path(cfg, data, runs_root=runs_root)}


def surrogate_config(cfg: RunConfig) -> RunConfig:
    """An independently trained, undefended model of the same architecture: the transfer source."""
    return cfg.replace(dfl=False, loss="ce", extra_fc=0, train_attack="none", method="standard",
                       seed=cfg.seed + 1000)


def attack_suite(cfg: RunConfig, *, suite: str = "full") -> dict[str, dict]:
    """Attack name -> settings. "paper": the paper's FGSM, PGD-10 and C&W (c = 0.1, fixed);
    "full": plus stronger PGD (more steps, restarts), C&W margin inside PGD, AutoAttack and, for
    PCL-trained models, the adaptive feature-space attack."""
    eps, steps = cfg.eps, cfg.attack_steps
    attacks = {
        "clean": {"attack": "clean"},
        "FGSM": {"attack": "fgsm", "eps": eps},
        f"PGD-{steps}": {"attack": "pgd", "eps": eps, "steps": steps},
        f"C&W (c={cfg.cw_c})": {"attack": "cw", "c": cfg.cw_c, "steps": cfg.cw_steps},
    }
    if suite == "paper":
        return attacks
    if suite != "full":
        raise ValueError(f"unknown suite {suite!r}; known: full, paper")
    strong_steps = 5 * steps
    attacks.update({
        f"PGD-{strong_steps} x3 restarts": {"attack": "pgd", "eps": eps, "steps": strong_steps,
                                            "restarts": 3},
        f"C&W-PGD-{strong_steps}": {"attack": "cw_pgd", "eps": eps, "steps": strong_steps},
        "AutoAttack": {"attack": "autoattack", "eps": eps, "steps": cfg.aa_steps,
                       "n_queries": cfg.aa_queries},
    })
    if cfg.loss == "pcl":
        attacks[f"adaptive PGD-{strong_steps} (PCL)"] = {"attack": "pgd_pcl", "eps": eps,
                                                        "steps": strong_steps}
    return attacks


def evaluate_run(cfg: RunConfig, *, suite: str = "full", data_root=None, runs_root=None,
                 transfer: bool = True, progress: bool = True) -> dict:
    """Evaluate the run `cfg` describes on its fixed evaluation subset; writes metrics.json."""
    start = time.perf_counter()
    run = train_run(cfg, data_root=data_root, runs_root=runs_root, progress=progress)
    model, loss, data = run["model"], run["loss"], run["data"]
    x, y = eval_subset(data, n=cfg.n_eval, seed=cfg.seed)
    attacks = attack_suite(cfg, suite=suite)
    for spec in attacks.values():
        if spec["attack"] == "pgd_pcl":
            spec["centroids"] = loss.centroids.detach()
    surrogate = None
    if transfer and suite == "full":
        surrogate = train_run(surrogate_config(cfg), data=data, runs_root=runs_root,
                              progress=progress)["model"]
        attacks["transfer PGD (undefended surrogate)"] = {
            "attack": "transfer", "eps": cfg.eps, "steps": 5 * cfg.attack_steps,
            "surrogate": surrogate}
    rdir = Path(run["run_dir"])
    table = evaluate(model, x, y, attacks=attacks, batch_size=cfg.eval_batch_size, seed=cfg.seed,
                     masks_dir=rdir / f"masks-{suite}")
    flags = []
    if suite == "full":  # reuses the table's FGSM, PGD, Square and transfer masks
        flags = masking_checks(model, x, y, eps=cfg.eps, results=table, surrogate=surrogate,
                               pgd_steps=cfg.attack_steps, strong_steps=5 * cfg.attack_steps,
                               square_queries=cfg.aa_queries, batch_size=cfg.eval_batch_size,
                               seed=cfg.seed)
    metrics = {
        "dataset": data.source, "run": rdir.name, "suite": suite, "n_eval": len(y),
        "n_train": len(data.y_train), "train_seconds": _train_seconds(run["history"]),
        "table": list(table), "masking": flags,
        "provenance": runio.provenance(config=cfg.to_dict(), seed=cfg.seed, device=cfg.device,
                                       wall_seconds=time.perf_counter() - start),
    }
    path = rdir / f"metrics-{suite}.json"
    runio.write_json(path, metrics)
    return {**metrics, "path": str(path)}


def _train_seconds(history: list[dict]) -> float:
    return sum(h.get("train_seconds", 0.0) + h.get("val_seconds", 0.0) for h in history)
