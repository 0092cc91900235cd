"""One run: load its data, build, train (or reuse, or resume) it; evaluate the trained run with
an attack suite and write metrics with provenance into its folder. Training is the caller's
step; `train_and_evaluate` does both for the command line and the study.

    run = train_run(cfg)                            # {"model", "loss", "data", "history", "run_dir"}
    metrics = evaluate_run(run, cfg, suite="paper") # {"table", "masking", "path", ...}
    metrics = train_and_evaluate(cfg, suite="full") # both, the transfer surrogate trained too
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..config import RunConfig, keyed_fields
from ..defences import BASELINE_NOTES
from ..device import resolve_device
from ..errors import DataFileError
from ..evaluation.robust import eval_subset
from ..evaluation.suites import CHECKED_SUITES, attack_suite, evaluate_suite, paper_column_rows
from ..runs import io as runio
from ..runs.versions import computation_version
from ..runs.folder import run_path
from ..training.trainer import build_components, train
from .data import load_data
from .keys import device_aliases, key_config

__all__ = ["train_run", "surrogate_config", "evaluate_run", "train_and_evaluate",
           "finished_metrics", "saved_metrics", "eval_key"]


def train_run(cfg: RunConfig, *, data_root=None, runs_root=None, data=None,
              progress: bool = True) -> dict:
    """Train (or reuse, or resume) the run `cfg` describes."""
    data = data if data is not None else load_data(cfg, root=data_root, runs_root=runs_root)
    model, loss = build_components(cfg, data)
    history = train(model, loss, data, cfg, runs_root=runs_root, progress=progress)
    return {"model": model.eval(), "loss": loss, "data": data, "history": history,
            "run_dir": run_path(cfg, data, runs_root=runs_root)}


def surrogate_config(cfg: RunConfig) -> RunConfig:
    """An independently trained, undefended model of the same architecture: the transfer source."""
    return cfg.replace(dfl=False, loss="ce", extra_fc=0, train_attack="none", method="standard",
                       seed=cfg.seed + 1000)


def eval_key(cfg: RunConfig, *, suite: str, transfer: bool, literal_device: bool = False) -> str:
    """12 hex digits over what an evaluation's numbers depend on beyond the trained model: the
    config (evaluation fields included, the device by `key_device`), the suite's attack
    settings, and the evaluation's declared version (`runs.versions`). literal_device: the key
    over the config's own device string, as metrics written before `key_device` were keyed."""
    config = keyed_fields(cfg.to_dict()) if literal_device else key_config(cfg)
    spec = {"config": config, "suite": suite, "attacks": attack_suite(cfg, suite=suite),
            "transfer": transfer and suite in CHECKED_SUITES,
            "code": computation_version("evaluate")}
    return runio.short_hash(spec)


def saved_metrics(cfg: RunConfig, *, run_dir, suite: str, transfer: bool) -> dict | None:
    """The metrics an earlier evaluation of this run wrote under the same `eval_key` (or under
    the key over a literal name of the same device, as older metrics were keyed), or None;
    DataFileError when they name another config than their key (edited by hand)."""
    path = Path(run_dir) / f"metrics-{suite}.json"
    if not path.exists():
        return None
    saved = runio.read_json(path)
    keys = {eval_key(cfg, suite=suite, transfer=transfer)} | {
        eval_key(cfg.replace(device=name), suite=suite, transfer=transfer, literal_device=True)
        for name in device_aliases(cfg.device)}
    if saved.get("eval_key") not in keys:
        return None
    _check_metrics(path, saved=saved, cfg=cfg)
    print(f"reusing metrics {path} (evaluation key {saved['eval_key']})")
    return {**saved, "path": str(path)}


def evaluate_run(run: dict, cfg: RunConfig, *, suite: str = "full", surrogate=None,
                 wall_start: float | None = None) -> dict:
    """Evaluate a trained run (`train_run`'s result: model, loss, data, history, run_dir) as
    `cfg` says, on its fixed evaluation subset (all of the test set when cfg.n_eval is 0), on
    cfg.device; writes metrics-<suite>.json with its `eval_key` and per-example masks beside.
    Trains nothing: `surrogate` (an undefended model of the same architecture, in eval mode) is
    the transfer attack's source where the suite is checked, None for no transfer row.
    wall_start: the `time.perf_counter()` reading the recorded wall time counts from (default:
    now; `train_and_evaluate` passes its own start, so a record includes training)."""
    start = time.perf_counter() if wall_start is None else wall_start
    transfer = surrogate is not None and suite in CHECKED_SUITES
    key = eval_key(cfg, suite=suite, transfer=transfer)
    model, loss, data = run["model"], run["loss"], run["data"]
    device = resolve_device(cfg.device)
    x, y = eval_subset(data, n=cfg.n_eval or len(data.y_test), seed=cfg.seed)
    x, y = x.to(device), y.to(device)
    rdir = Path(run["run_dir"])
    # the adaptive attack asks the loss for its objective
    table, flags = evaluate_suite(model, x, y, cfg=cfg, suite=suite, live={"defence_loss": loss},
                                  surrogate=surrogate if transfer else None,
                                  masks_dir=rdir / f"masks-{suite}")
    metrics = {
        "dataset": data.source, "run": rdir.name, "suite": suite, "eval_key": key,
        "n_eval": len(y), "n_classes": data.num_classes,
        "n_train": len(data.y_train), "train_seconds": _train_seconds(run["history"]),
        "paper_columns": paper_column_rows(cfg),
        **({"baseline_note": BASELINE_NOTES[cfg.method]} if cfg.method in BASELINE_NOTES else {}),
        "table": list(table), "masking": flags,
        "provenance": runio.provenance(config=cfg.to_dict(), seed=cfg.seed, device=str(device),
                                       wall_seconds=time.perf_counter() - start),
    }
    path = rdir / f"metrics-{suite}.json"
    runio.write_json(path, metrics)
    return {**metrics, "path": str(path)}


def train_and_evaluate(cfg: RunConfig, *, suite: str = "full", data_root=None, runs_root=None,
                       transfer: bool = True, progress: bool = True, reuse: bool = True) -> dict:
    """The command line's and the study's two steps in one: train (or reuse) the run `cfg`
    describes, then evaluate it (`evaluate_run`), with the transfer surrogate trained (or
    reused) first where the suite is checked and `transfer` is set. With `reuse`, metrics
    already written under the same key are returned, not recomputed: a new attack in the suite
    or a new evaluation version re-evaluates, nothing retrains."""
    start = time.perf_counter()
    run = train_run(cfg, data_root=data_root, runs_root=runs_root, progress=progress)
    checked_transfer = transfer and suite in CHECKED_SUITES
    if reuse:
        saved = saved_metrics(cfg, run_dir=run["run_dir"], suite=suite, transfer=checked_transfer)
        if saved is not None:
            return saved
    surrogate = None
    if checked_transfer:
        surrogate = train_run(surrogate_config(cfg), data=run["data"], runs_root=runs_root,
                              progress=progress)["model"]
    return evaluate_run(run, cfg, suite=suite, surrogate=surrogate, wall_start=start)


def finished_metrics(cfg: RunConfig, *, suite: str = "full", data_root=None, runs_root=None,
                     transfer: bool = True) -> dict | None:
    """The metrics `train_and_evaluate` would return for the same arguments when the run is
    finished and was evaluated so (its metrics-<suite>.json under the same key), else None.
    Trains and evaluates nothing: the data is read only for its fingerprint, which the run's
    folder name holds."""
    data = load_data(cfg, root=data_root, runs_root=runs_root)
    run_dir = run_path(cfg, data, runs_root=runs_root)
    if not runio.is_finished(run_dir):
        return None
    return saved_metrics(cfg, run_dir=run_dir, suite=suite,
                         transfer=transfer and suite in CHECKED_SUITES)


def _check_metrics(path: Path, *, saved: dict, cfg: RunConfig) -> None:
    """DataFileError naming `path` when metrics about to be reused say they were made for
    another config than the one their evaluation key was made from (edited by hand)."""
    made_for = (saved.get("provenance") or {}).get("config") or {}
    want = keyed_fields(json.loads(json.dumps(cfg.to_dict())))
    made_for = keyed_fields(made_for)  # a field added since at its old value: the same config
    # the device is in the key, by `key_device` ("cpu" and "auto" may name one device); the
    # rest must be the config itself
    if "device" not in made_for or _without_device(made_for) != _without_device(want):
        raise DataFileError(f"run record {path} holds metrics whose provenance names another "
                            f"config than its evaluation key (edited or copied by hand): "
                            f"delete it and run the command again to re-evaluate")


def _without_device(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "device"}


def _train_seconds(history: list[dict]) -> float:
    return sum(h.get("train_seconds", 0.0) + h.get("val_seconds", 0.0) for h in history)
