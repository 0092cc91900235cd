"""Training: the loop that trains one run, clean or adversarial, with the paper's method or a
baseline, checkpointed every epoch, resumable, reused when finished, locked against a second
process.

    cfg = make_config("quick", dataset="mnist", train_attack="pgd")   # experiments.configs
    data = load_data(cfg)                                              # experiments.data
    model, loss = build_components(cfg, data)
    history = train(model, loss, data, cfg)          # list of per-epoch dicts

What each method changes (attack, loss, rates) lives in its defence (`dfl_lib.defences`); the
run folder's life cycle (reuse, resume, checkpoint, finish) in `runs.folder`; the inner epoch
in `training.loop.train_epoch`; the lock in `runs.lock`. The data a run trains on, poisoned or
not, is prepared above this module (`experiments.data.load_data`).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from ..attacks import logits_of, pgd
from ..config import RunConfig
from ..data.datasets import balanced_indices
from .. import defences
from ..device import resolve_device
from ..errors import UsageError
from ..losses import build_loss
from ..models.resnet import build_model
from ..runs import folder as runfolder
from ..runs import io as runio
from ..runs.lock import run_lock
from . import distributed
from .loop import Adversary, EpochSetup, TrainStep, batch_indices, to_float, train_epoch

__all__ = ["architecture_options", "build_components", "build_optimizer", "build_scheduler", "train", "validate"]


def architecture_options(cfg: RunConfig) -> dict:
    """`build_model`'s options beyond width and DFL that a config implies: a WideResNet's depth
    and widening, Mustafa et al.'s extra layer, AM-softmax's cosine head."""
    extra = {"depth": cfg.wrn_depth, "widen_factor": cfg.widen_factor} if cfg.model == "wrn" else {}
    if cfg.extra_fc:
        extra["extra_fc"] = cfg.extra_fc
    if cfg.loss == "am_softmax":
        extra["head"] = "cosine"
    return extra


def build_components(cfg: RunConfig, data) -> tuple[nn.Module, nn.Module]:
    """The model and loss a config describes, sized for `data` (channels, classes, statistics),
    on cfg.device.

    The weights are drawn from the global RNG seeded with cfg.seed, so the same config gives the
    same initial model (resume and the channels-last comparison rely on it).
    """
    defences.get_defence(cfg.method).validate(cfg)  # a config replaced since it was composed
    if cfg.precision == "auto":  # it would name a run by what it did not decide
        raise UsageError("precision 'auto' reached training unresolved: compose the config with "
                         "make_config (or experiments.configs.checked), which picks bf16 or fp32 "
                         "for its device")
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, num_classes=data.num_classes, in_channels=data.in_channels,
                        width=cfg.width, dfl=cfg.dfl, mean=data.mean, std=data.std,
                        **architecture_options(cfg))
    loss = build_loss(cfg.loss, num_classes=data.num_classes, feature_dims=model.feature_dims,
                      seed=cfg.seed, **defences.loss_options(cfg))
    device = resolve_device(cfg.device)
    return model.to(device), loss.to(device)


def build_optimizer(cfg: RunConfig, model: nn.Module, loss: nn.Module) -> torch.optim.Optimizer:
    """SGD over the model (group 0) and the loss's centroids (`defences.centre_groups`)."""
    groups = [{"params": list(model.parameters())}] + defences.centre_groups(cfg, loss)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def build_scheduler(cfg: RunConfig, opt) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch lr factors for every group (`defences.lr_factors`)."""
    return torch.optim.lr_scheduler.LambdaLR(opt, defences.lr_factors(cfg, len(opt.param_groups)))


@torch.no_grad()
def _loss_and_acc(model, loss, x, y, *, batch_size, device) -> tuple[float, float]:
    total, correct = 0.0, 0
    for idx in batch_indices(len(y), batch_size=batch_size, shuffle=False):
        xb, yb = to_float(x[idx]).to(device), y[idx].to(device)
        logits, feats = model(xb, return_features=True)
        total += float(loss(logits, yb, feats)) * len(idx)
        correct += int((logits.argmax(1) == yb).sum())
    return total / max(len(y), 1), correct / max(len(y), 1)


@torch.no_grad()
def _correct(model, x, y, *, batch_size) -> torch.Tensor:
    """Whether each example of x (N, C, H, W) float in [0, 1] is classified as y: bool (N,)."""
    return torch.cat([logits_of(model, x[idx]).argmax(1) == y[idx]
                      for idx in batch_indices(len(y), batch_size=batch_size, shuffle=False)])


def monitor_indices(y_val: torch.Tensor, *, n: int, num_classes: int, seed: int) -> torch.Tensor:
    """The PGD monitor's fixed subset of the validation split: n class-balanced indices (n,).
    A prefix would do only for shuffled files: the image-folder CIFAR-10 copy keeps file order,
    class by class, so its first 100 validation images are two classes."""
    return balanced_indices(y_val.long().cpu(), n=n, num_classes=num_classes,
                            generator=torch.Generator().manual_seed(seed))


def validate(model, loss, data, cfg: RunConfig) -> dict:
    """Validation loss/accuracy on clean samples, and on PGD samples of a fixed monitor batch.

    The PGD monitor uses the full eps, a fixed class-balanced subset and a fixed random start
    each epoch, so a sudden collapse of its accuracy (catastrophic overfitting of FGSM training)
    is a real change of the model. As in evaluation, an example counts as robust only if it is
    classified correctly both clean and under attack (PGD keeps each example's worst iterate
    from a random start, which a misclassified clean image can survive).
    """
    model.eval()
    device = resolve_device(cfg.device)
    out = {}
    if len(data.y_val) == 0:
        return out
    out["val_loss"], out["val_acc"] = _loss_and_acc(model, loss, data.x_val, data.y_val,
                                                    batch_size=cfg.eval_batch_size, device=device)
    k = min(cfg.monitor_size, len(data.y_val))
    if k:
        idx = monitor_indices(data.y_val, n=k, num_classes=data.num_classes,
                              seed=cfg.seed + 12345)
        x, y = to_float(data.x_val[idx]).to(device), data.y_val[idx].to(device)
        gen = torch.Generator().manual_seed(cfg.seed + 12345)
        x_adv = pgd(model, x, y, eps=cfg.eps, steps=cfg.attack_steps, generator=gen)
        out["val_adv_loss"], _ = _loss_and_acc(model, loss, x_adv, y,
                                               batch_size=cfg.eval_batch_size, device=device)
        robust = (_correct(model, x, y, batch_size=cfg.eval_batch_size)
                  & _correct(model, x_adv, y, batch_size=cfg.eval_batch_size))  # (k,)
        out["val_adv_acc"] = float(robust.float().mean())
    return out


def train(model: nn.Module, loss: nn.Module, data, cfg: RunConfig, *, runs_root=None,
          resume: bool = True, progress: bool = True,
          on_epoch_end: Callable[[int, Path], None] | None = None) -> list[dict]:
    """Train `model` with `loss` on `data` as `cfg` says; returns the per-epoch history: one dict
    per epoch with the training loss, its terms ("train_<term>"), accuracy and error on the
    training batches as attacked, the gradient L2 norms at the stem and the head averaged over
    the batches ("train_grad_stem", "train_grad_head"; `loop.gradient_norms`), the validation
    monitor's clean and PGD accuracy and loss, and the catastrophic-overfitting flag.

    The run folder is keyed by the config, the data fingerprint and the training computation's
    declared version (`runs.versions`). A finished run is loaded, not trained again; an
    unfinished one resumes from its last checkpoint when `resume` is True. `on_epoch_end(epoch,
    run_dir)` is called after each checkpoint is written. The folder is locked while this runs: a
    second process asking for the same run waits, then reuses it (`runs.lock.run_lock`).
    """
    torch.manual_seed(cfg.seed)
    rdir = runfolder.run_path(cfg, data, runs_root=runs_root)
    distributed.init_from_env(resolve_device(cfg.device))  # under torchrun: who is rank 0
    main = distributed.is_main()
    if main:
        rdir.mkdir(parents=True, exist_ok=True)
    with run_lock(rdir) if main else nullcontext():  # under torchrun, rank 0 owns the folder
        return _train_in(rdir, model, loss, data, cfg, resume=resume, progress=progress,
                         on_epoch_end=on_epoch_end)


def _train_in(rdir: Path, model, loss, data, cfg: RunConfig, *, resume, progress,
              on_epoch_end) -> list[dict]:
    # set-up: processes (torchrun), device and memory layout, optimiser, schedule, generators
    device = resolve_device(cfg.device)
    shard = distributed.current_shard()  # train() started the process group, if any
    if shard.world > 1:
        device = distributed.local_device(device)
        distributed.use_global_batchnorm(model)
    main = shard.rank == 0
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(device=device, memory_format=memory_format)
    loss.to(device)
    # a finished run is only loaded: no optimiser to restore (torch's first optimiser in a
    # process imports torch._dynamo, 2.3 s on a 2-core CPU, paid by every notebook that reads runs)
    loading = runio.is_finished(rdir)
    opt = None if loading else build_optimizer(cfg, model, loss)
    sched = None if loading else build_scheduler(cfg, opt)
    gens = {"data": torch.Generator().manual_seed(cfg.seed),
            "attack": torch.Generator().manual_seed(cfg.seed + 1)}
    state = dict(cfg=cfg, model=model, loss=loss, optimizer=opt, scheduler=sched, generators=gens)
    # rank 0 opens (or creates) the run first; the others then read what it holds
    opened = runfolder.open_run(rdir, resume=resume, **state) if main else None
    distributed.barrier()
    start_epoch, history, finished = opened or runfolder.open_run(rdir, resume=resume,
                                                                  write=False, **state)
    if finished:
        model.eval()
        return history
    ce = build_loss("ce", num_classes=data.num_classes, feature_dims=model.feature_dims)
    n_batches = math.ceil(len(data.y_train) / cfg.batch_size)
    # on a GPU the uint8 training set lives there (CIFAR-10: 150 MB): no per-batch copies
    x_train, y_train = ((data.x_train.to(device), data.y_train.to(device))
                        if device.type == "cuda" else (data.x_train, data.y_train))
    bar = _progress(range(start_epoch, cfg.epochs), enabled=progress, desc=runfolder.run_name(cfg))

    for epoch in bar:
        # train one epoch: the method says which attack, loss and warm-up apply now
        row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"]}
        epoch_loss = defences.epoch_loss(cfg, loss, epoch, ce)
        attack = defences.training_attack(cfg, epoch=epoch, generator=gens["attack"])
        setup = EpochSetup(
            optimizer=opt, batch_size=cfg.batch_size, generator=gens["data"],
            augment=cfg.augment, memory_format=memory_format, device=device,
            autocast_dtype=torch.bfloat16 if cfg.precision == "bf16" else None,
            shard=shard, step_module=_ddp(TrainStep(model, epoch_loss), cfg, device, shard),
            lr_factor=defences.warmup(cfg, epoch=epoch, n_batches=n_batches))
        adversary = (Adversary(attack=attack, fraction=cfg.adv_fraction, mode=cfg.adv_mode)
                     if attack is not None else None)
        stats = train_epoch(model, epoch_loss, x_train, y_train, setup=setup, adversary=adversary)
        sched.step()
        row.update(train_loss=stats["loss"], train_acc=stats["acc"], train_error=1 - stats["acc"],
                   train_seconds=stats["seconds"],
                   **{f"train_{name}": v for name, v in stats["terms"].items()},
                   **{f"train_grad_{name}": v for name, v in stats["gradients"].items()})
        if not main:  # rank 0 validates and writes; the others go on to the next epoch
            continue
        # evaluate: clean and PGD validation, catastrophic-overfitting flag
        start = time.perf_counter()
        row.update(validate(model, loss, data, cfg))
        row["val_seconds"] = time.perf_counter() - start
        best_adv = max([0.0] + [h.get("val_adv_acc", 0.0) for h in history])
        # catastrophic overfitting: robust accuracy collapses to under half its best so far
        row["collapse"] = bool(best_adv > 0.1 and row.get("val_adv_acc", 1.0) < 0.5 * best_adv)
        history.append(row)
        # checkpoint
        runfolder.save_epoch(rdir, epoch=epoch, history=history, **state)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{row.get('val_acc', 0):.3f}",
                            adv=f"{row.get('val_adv_acc', 0):.3f}")
        if on_epoch_end is not None:
            on_epoch_end(epoch, rdir)
    if main:
        runfolder.finish_run(rdir, cfg=cfg, device=device, history=history)
    distributed.barrier()  # every process returns once the run is finished on disk
    model.eval()
    return history if main else runio.read_json(rdir / runfolder.HISTORY_NAME)


def _ddp(step: TrainStep, cfg: RunConfig, device: torch.device, shard) -> nn.Module | None:
    """DistributedDataParallel over model and loss when several processes train; else None
    (train_epoch calls model and loss directly). Mustafa et al.'s first stage leaves the
    prototype loss unused, which DDP must be told."""
    if shard.world == 1:
        return None
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(step, device_ids=[device.index] if device.type == "cuda"
                                   else None, find_unused_parameters=cfg.method == "mustafa")


def _progress(it, *, enabled: bool, desc: str):
    if not enabled:
        return it
    from tqdm.auto import tqdm  # notebook-aware bars under Jupyter, plain ones in a terminal

    return tqdm(it, desc=desc, unit="epoch")
