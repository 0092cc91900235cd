"""A run folder's life cycle: where a config's run lives (a readable name plus a key), and
opening it (reuse a finished run, resume an unfinished one, or start), checkpointing each epoch
and finishing it. The files are written atomically by `runio`.

    rdir = run_path(cfg, data)
    start, history, finished = open_run(rdir, cfg=cfg, model=model, loss=loss, optimizer=opt,
                                        scheduler=sched, generators=gens)
    save_epoch(rdir, ...) after every epoch; finish_run(rdir, ...) at the end
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..config import EVAL_ONLY, RunConfig
from . import io as runio

__all__ = ["run_name", "run_path", "open_run", "save_epoch", "finish_run", "HISTORY_NAME",
           "CONFIG_NAME"]

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
    return "-".join(parts + [f"s{cfg.seed}"])


def run_path(cfg: RunConfig, data, *, runs_root=None) -> Path:
    """The run folder: a readable name plus a hash of config, data fingerprint and code version."""
    # evaluation and engineering knobs do not change what is learned: they stay out of the key, so
    # a run made with channels-last on a GPU is reused on a CPU, and a bigger n_eval retrains nothing
    config = {k: v for k, v in cfg.to_dict().items() if k not in EVAL_ONLY}
    key = runio.run_key(config=config, data_fingerprint=data.fingerprint,
                        code_version=runio.code_version())
    return runio.keyed_folder(root=runs_root or runio.default_runs_root(), name=run_name(cfg), key=key)


def open_run(rdir: Path, *, cfg: RunConfig, model: nn.Module, loss: nn.Module, optimizer,
             scheduler, generators: dict[str, torch.Generator], resume: bool = True,
             write: bool = True) -> tuple[int, list[dict], bool]:
    """(first epoch to train, history so far, finished). A finished run's weights are loaded
    into model and loss; an unfinished one with a checkpoint (and `resume`) also gets its
    optimiser, scheduler and RNG states back; otherwise the config is written (unless `write`
    is False: a process other than rank 0) and training starts at epoch 0."""
    ckpt = rdir / runio.CHECKPOINT_NAME
    finished = runio.is_finished(rdir)
    if not (finished or (resume and ckpt.exists())):
        if write:
            runio.write_json(rdir / CONFIG_NAME, cfg.to_dict())
        return 0, [], False
    state = runio.load_checkpoint(ckpt)
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
