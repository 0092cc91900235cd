"""A run folder's life cycle: where a config's run lives (a readable name plus a key), and
opening it (reuse a finished run, resume an unfinished one, or start), checkpointing each epoch
and finishing it. The files are written atomically by `runio`.

    rdir = run_path(cfg, data)
    start, history, finished = open_run(rdir, cfg=cfg, model=model, loss=loss, optimizer=opt,
                                        scheduler=sched, generators=gens)
    save_epoch(rdir, ...) after every epoch; finish_run(rdir, ...) at the end
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..config import EVAL_ONLY, RunConfig, keyed_fields
from ..errors import DataFileError
from . import io as runio
from .versions import computation_version

__all__ = ["run_name", "run_path", "open_run", "save_epoch", "finish_run", "check_record",
           "learned_fields", "learned_key", "HISTORY_NAME", "CONFIG_NAME"]

HISTORY_NAME = "history.json"
CONFIG_NAME = "config.json"


def run_name(cfg: RunConfig) -> str:
    """Readable part of a run folder's name, e.g. 'mnist-resnet18-dfl-pcl-pgd'."""
    parts = [cfg.dataset, cfg.model if cfg.model != "wrn" else f"wrn{cfg.wrn_depth}-{cfg.widen_factor}",
             "dfl" if cfg.dfl else "plain", cfg.loss, cfg.train_attack]
    if cfg.method != "standard":
        parts.append(cfg.method)
    if cfg.precision != "fp32":
        parts.append(cfg.precision)
    if cfg.poison != "none":  # a poisoned run is told from the clean one, and by its rate
        parts.append(f"{cfg.poison}{cfg.poison_fraction * 100:g}")
        if cfg.poison_surrogate == "victim":  # and a poison crafted against the victim itself
            parts.append("adaptive")
    return "-".join(parts + [f"s{cfg.seed}"])


def run_path(cfg: RunConfig, data, *, runs_root=None) -> Path:
    """The run folder: a readable name plus a hash of config, data fingerprint and the training
    computation's declared version (`runs.versions`)."""
    # evaluation and engineering knobs do not change what is learned: they stay out of the key, so
    # a run made with channels-last on a GPU is reused on a CPU, and a bigger n_eval retrains nothing
    config = {k: v for k, v in keyed_fields(cfg.to_dict()).items() if k not in EVAL_ONLY}
    key = runio.run_key(config=config, data_fingerprint=data.fingerprint,
                        versions=computation_version("train"))
    return runio.keyed_folder(root=runs_root or runio.default_runs_root(), name=run_name(cfg), key=key)


def learned_fields(config: dict) -> dict:
    """The fields of a config dict that decide what a run learns (EVAL_ONLY left out), as JSON
    reads them back (tuples as lists): what a run's key and its records must agree on."""
    return {k: v for k, v in keyed_fields(json.loads(json.dumps(config))).items()
            if k not in EVAL_ONLY}


def learned_key(cfg: RunConfig) -> str:
    """`learned_fields` of cfg as one hashable text: configs that train the same run share it."""
    return runio.canonical_json(learned_fields(cfg.to_dict()))


def check_record(path: Path, *, config: dict | None, cfg: RunConfig) -> None:
    """DataFileError naming `path` unless the config a run record holds (config.json, the
    checkpoint's, done.json's) is `cfg` in every learned field: a folder edited or copied by
    hand is never used under a label it does not have. `config` None: the record holds none."""
    if config is None:
        return
    if not isinstance(config, dict):
        raise DataFileError(f"run record {path} holds no config dict; move the folder "
                            f"{path.parent} away to train the run anew")
    want, found = learned_fields(cfg.to_dict()), learned_fields(config)
    wrong = [f"{k}={found.get(k, '(missing)')!r} where the run is {want[k]!r}"
             for k in want if found.get(k, "(missing)") != want[k]]
    if wrong:
        shown = "; ".join(wrong[:3]) + (f"; and {len(wrong) - 3} more" if len(wrong) > 3 else "")
        raise DataFileError(f"run record {path} disagrees with the run its folder's key names: "
                            f"{shown}. It was edited or copied by hand: restore it, or move the "
                            f"folder {path.parent} away to train the run anew")


def _json_text(value) -> str:
    """value as sorted JSON text: equal for equal records, NaN included (NaN != NaN)."""
    return json.dumps(value, sort_keys=True, default=runio.json_default)


def _check_folder(rdir: Path, *, cfg: RunConfig) -> None:
    """config.json and done.json checked against cfg (`check_record`)."""
    for name in (CONFIG_NAME, runio.DONE_NAME):
        path = rdir / name
        if path.exists():
            record = runio.read_json(path)
            config = record if name == CONFIG_NAME else (
                record.get("config") if isinstance(record, dict) else None)
            check_record(path, config=config, cfg=cfg)


def open_run(rdir: Path, *, cfg: RunConfig, model: nn.Module, loss: nn.Module, optimizer,
             scheduler, generators: dict[str, torch.Generator], resume: bool = True,
             write: bool = True) -> tuple[int, list[dict], bool]:
    """(first epoch to train, history so far, finished). A finished run's weights are loaded
    into model and loss; an unfinished one with a checkpoint (and `resume`) also gets its
    optimiser, scheduler and RNG states back; otherwise the config is written (unless `write`
    is False: a process other than rank 0) and training starts at epoch 0."""
    ckpt = rdir / runio.CHECKPOINT_NAME
    _check_folder(rdir, cfg=cfg)  # records that disagree with the key are refused, not used
    finished = runio.is_finished(rdir)
    if not (finished or (resume and ckpt.exists())):
        if write:
            runio.write_json(rdir / CONFIG_NAME, cfg.to_dict())
        return 0, [], False
    state = runio.load_checkpoint(ckpt)
    check_record(ckpt, config=state.get("config"), cfg=cfg)
    if finished and (rdir / HISTORY_NAME).exists() \
            and _json_text(runio.read_json(rdir / HISTORY_NAME)) != _json_text(state["history"]):
        raise DataFileError(f"run record {rdir / HISTORY_NAME} disagrees with the finished "
                            f"run's checkpoint {ckpt} (its epochs differ): restore it, or move "
                            f"the folder {rdir} away to train the run anew")
    runio.check_compatible(state["model"], model)
    runio.check_compatible(state["loss"], loss)
    model.load_state_dict(state["model"])
    loss.load_state_dict(state["loss"])
    if finished:
        print(f"reusing finished run {rdir} ({len(state['history'])} epochs): not training again")
        return len(state["history"]), state["history"], True
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    runio.set_rng_state(state["rng"], generators)
    print(f"resuming {rdir} at epoch {state['epoch'] + 2} of {cfg.epochs}")
    return state["epoch"] + 1, state["history"], False


def save_epoch(rdir: Path, *, epoch: int, cfg: RunConfig, model, loss, optimizer, scheduler,
               generators, history: list[dict]) -> None:
    """The checkpoint (everything resuming needs) and the history, each written atomically."""
    runio.save_checkpoint(rdir / runio.CHECKPOINT_NAME, state={
        "model": model.state_dict(), "loss": loss.state_dict(),
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "epoch": epoch, "history": history, "config": cfg.to_dict(),
        "rng": runio.rng_state(generators)})
    runio.write_json(rdir / HISTORY_NAME, history)


def finish_run(rdir: Path, *, cfg: RunConfig, device, history: list[dict]) -> None:
    """`done.json`: the provenance, written last; its presence marks the run finished."""
    runio.write_json(rdir / runio.DONE_NAME, runio.provenance(
        config=cfg.to_dict(), seed=cfg.seed, device=str(device),
        wall_seconds=sum(h["train_seconds"] + h["val_seconds"] for h in history)))
