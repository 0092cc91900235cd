"""Training: clean or adversarial, with the paper's method or the two baselines, checkpointed
atomically every epoch, resumable, and reused when the same run has already finished.

    cfg = make_config("quick", dataset="mnist", train_attack="pgd")
    data = load_dataset(cfg.dataset, n_train=cfg.n_train, n_val=cfg.n_val, seed=cfg.seed)
    model, loss = build_components(cfg, data)
    history = train(model, loss, data, cfg)          # list of per-epoch dicts

Methods (`cfg.method`):
  standard  the paper's setting: one loss (CE, PCL, ...) on clean and attacked samples;
  mustafa   baseline 1 as Mustafa et al.'s scripts run it: `BASELINE_NOTES["mustafa"]`;
  dynamic   baseline 2 as Wang et al.'s code runs it: `BASELINE_NOTES["dynamic"]`.
Each note says what we follow and every remaining difference with its reason; evaluation copies
the note of a baseline run into its metrics, so reports show it beside the numbers.
A profile scales every method's epochs and data alike; its deviations list says how.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch import nn

from . import runio
from .attacks import ATTACKS, pgd
from .config import EVAL_ONLY, RunConfig, milestones
from .device import resolve_device
from .dynamic import SelfWeightedCrossEntropy, dynamic_criterion, dynamic_pgd
from .losses import build_loss
from .loops import batch_indices, to_float, train_epoch
from .models import build_model
from .runlock import run_lock

__all__ = ["build_components", "build_optimizer", "build_scheduler", "train", "run_name",
           "run_path", "training_attack", "validate", "BASELINE_NOTES"]

log = logging.getLogger(__name__)

BASELINE_NOTES = {
    "mustafa": (
        "Mustafa et al. (ICCV 2019), as their scripts run it (aamir-mustafa/pcl-adversarial-"
        "defense: softmax_training.py, pcl_training.py, pcl_training_adversarial_*.py). "
        "Followed: a softmax (CE) stage trained clean, then the prototype-conformity stage "
        "(adversarial when train_attack is set), epochs split 164 : 400 (164 : 500 adversarial); "
        "stage-1 lr / 10 at 81, 122 and 140 of 164 epochs; stage-2 model lr a tenth of stage "
        "1's (their 0.01 after 0.1), constant (their stage-2 schedule writes an optimiser key "
        "SGD never reads, so it never fired); Prox / ConProx on the pooled features and a "
        "1024-d FC layer, w_prox 1, w_conprox 1e-4 (1e-5 adversarial); centres by plain SGD at "
        "fixed rates 0.5 (Prox) and 1e-4 (ConProx; 1e-5 adversarial), never decayed, their "
        "gradients divided by the term's weight; weight decay 1e-4; attacked copies "
        "concatenated to the clean batch; per batch eps ~ U(2/3 eps, 5/3 eps) (their U(0.02, "
        "0.05) at CIFAR-10's eps 0.03), PGD from x itself (no random start), step "
        "eps * (2/255) / 0.03 (their 2/255). Differences: the network is the study's backbone "
        "(theirs: ResNet-110) so the baseline row compares losses, not architectures; one batch "
        "size for both stages (theirs: 128 softmax, 64 + 64 attacked in the PCL stage); their "
        "code's flaws are not reproduced (double normalisation inside their attack, the clean "
        "batch modified in place, their loss code's casts and clamps: see "
        "losses.PrototypeConformityLoss); the profile's scaling of epochs and data applies, and "
        "the quick profile's lr warm-up applies to every method alike."),
    "dynamic": (
        "Wang et al. (ICML 2019) 'Dynamic' adversarial training, as their code runs it "
        "(YisenWang/dynamic_adv_training: train_models.py, pgd_attack.py). Followed: PGD-10 with "
        "step eps/4 and a random start, whose first step is always taken, then FOSC measured at "
        "each new point decides per example whether it steps again, with c_t = 0.5 (1 - t / "
        "(5T/6)); adversarial samples only; lr 0.01, / 10 at 1/2 and 5/6 of the epochs (their "
        "60 and 100 of 120), batch 128, no weight decay; from the second epoch each example's CE "
        "weighted by itself. Differences: their Keras SGD also decays the lr as 1 / (1 + 1e-4 * "
        "updates) (not reproduced: our schedule is per epoch); the loss weights come from the "
        "training forward pass (theirs: a separate inference-mode prediction); the random start "
        "is clamped to [0, 1] before the first gradient; CIFAR-10 augmentation is the study's "
        "(crop with 4-pixel padding and flips; theirs: rotations of 10 degrees, shifts of 20%, "
        "flips); the network is the study's backbone (theirs: their own CNNs); the profile's "
        "scaling of epochs and data applies, and the quick profile's lr warm-up applies to every "
        "method alike."),
}
# Mustafa et al.'s settings, keyed by "clean" / "adversarial" (their pcl_training.py and
# pcl_training_adversarial_*.py scripts)
MUSTAFA_CENTRE_LR = {"clean": {"prox": 0.5, "conprox": 1e-4},  # plain SGD, never decayed
                     "adversarial": {"prox": 0.5, "conprox": 1e-5}}
MUSTAFA_W_CONPROX = {"clean": 1e-4, "adversarial": 1e-5}
MUSTAFA_STAGE2_LR = 0.1  # their stage-2 network lr (0.01) over their stage-1 lr (0.1)
MUSTAFA_STAGE1_MILESTONES = (81 / 164, 122 / 164, 140 / 164)  # softmax_training.py: lr / 10
MUSTAFA_SPLIT = {"clean": 164 / 564, "adversarial": 164 / 664}  # share of epochs in softmax stage
MUSTAFA_EPS_RANGE = (0.02 / 0.03, 0.05 / 0.03)  # their U(0.02, 0.05) over CIFAR-10's eps 0.03
MUSTAFA_ALPHA = (2 / 255) / 0.03  # their PGD step 2/255, over CIFAR-10's eps 0.03


def build_components(cfg: RunConfig, data) -> tuple[nn.Module, nn.Module]:
    """The model and loss a config describes, sized for `data` (channels, classes, statistics).

    The weights are drawn from the global RNG seeded with cfg.seed, so the same config gives the
    same initial model (resume and the channels-last comparison rely on it).
    """
    torch.manual_seed(cfg.seed)
    extra = {"depth": cfg.wrn_depth, "widen_factor": cfg.widen_factor} if cfg.model == "wrn" else {}
    if cfg.extra_fc:
        extra["extra_fc"] = cfg.extra_fc
    if cfg.loss == "am_softmax":
        extra["head"] = "cosine"
    model = build_model(cfg.model, num_classes=data.num_classes, in_channels=data.in_channels,
                        width=cfg.width, dfl=cfg.dfl, mean=data.mean, std=data.std, **extra)
    loss_kw = {}
    if cfg.loss in ("pcl", "pcl_legacy"):
        loss_kw = {"w_intra": cfg.pcl_w_intra, "w_inter": cfg.pcl_w_inter,
                   "margin": cfg.pcl_margin}
    if cfg.method == "mustafa":
        loss_kw = {"w_conprox": MUSTAFA_W_CONPROX[_regime(cfg)]}
    loss = build_loss(cfg.loss, num_classes=data.num_classes, feature_dims=model.feature_dims,
                      seed=cfg.seed, **loss_kw)
    device = resolve_device(cfg.device)
    return model.to(device), loss.to(device)


def _regime(cfg: RunConfig) -> str:
    return "clean" if cfg.train_attack == "none" else "adversarial"


def run_name(cfg: RunConfig) -> str:
    """Readable part of a run folder's name, e.g. 'mnist-resnet18-dfl-pcl-pgd'."""
    parts = [cfg.dataset, cfg.model if cfg.model != "wrn" else f"wrn{cfg.wrn_depth}-{cfg.widen_factor}",
             "dfl" if cfg.dfl else "plain", cfg.loss, cfg.train_attack]
    if cfg.method != "standard":
        parts.append(cfg.method)
    return "-".join(parts + [f"s{cfg.seed}"])


def run_path(cfg: RunConfig, data, *, runs_root=None) -> Path:
    """The run folder: a readable name plus a hash of config, data fingerprint and code version."""
    # evaluation and engineering knobs do not change what is learned: they stay out of the key, so
    # a run made with channels-last on a GPU is reused on a CPU, and a bigger n_eval retrains nothing
    config = {k: v for k, v in cfg.to_dict().items() if k not in EVAL_ONLY}
    key = runio.run_key(config=config, data_fingerprint=data.fingerprint,
                        code_version=runio.code_version())
    return runio.run_dir(root=runs_root or runio.default_runs_root(), name=run_name(cfg), key=key)


def training_attack(cfg: RunConfig, *, epoch: int, generator: torch.Generator) -> Callable | None:
    """The attack used to make training samples at `epoch`, with its settings bound."""
    if cfg.train_attack == "none" or (cfg.method == "mustafa" and _mustafa_stage(cfg, epoch) == 1):
        return None  # Mustafa et al.'s adversarial scripts start from a clean softmax model
    eps = cfg.eps * min(1.0, (epoch + 1) / cfg.eps_ramp_epochs) if cfg.eps_ramp_epochs else cfg.eps
    alpha = cfg.alpha or None
    if cfg.method == "dynamic":
        c_t = dynamic_criterion(epoch, epochs=cfg.epochs)
        return partial(dynamic_pgd, eps=eps, alpha=alpha, steps=cfg.attack_steps, c_threshold=c_t,
                       box_aware=cfg.dynamic_box_aware, generator=generator)
    if cfg.method == "mustafa":
        return partial(_mustafa_attack, kind=cfg.train_attack, eps=eps, steps=cfg.attack_steps,
                       generator=generator)
    if cfg.train_attack == "fgsm":
        return partial(ATTACKS["fgsm"], eps=eps, random_start=cfg.fgsm_random_start, alpha=alpha,
                       generator=generator)
    if cfg.train_attack == "pgd":
        # the last iterate, as Madry et al. train (evaluation keeps the per-example best)
        return partial(ATTACKS["pgd"], eps=eps, alpha=alpha, steps=cfg.attack_steps,
                       generator=generator, keep_best=False)
    return partial(ATTACKS["cw"], c=cfg.cw_c, steps=cfg.cw_steps)


def _mustafa_attack(model, x, y, *, kind: str, eps: float, steps: int,
                    generator: torch.Generator):
    """Mustafa et al.'s training attack: per batch eps ~ U(2/3, 5/3) * eps; PGD from x itself
    (no random start) with a fixed step, or FGSM (one step of the drawn eps)."""
    lo, hi = MUSTAFA_EPS_RANGE
    draw = eps * (lo + (hi - lo) * float(torch.rand((), generator=generator)))
    if kind == "fgsm":
        return ATTACKS["fgsm"](model, x, y, eps=draw)
    if kind == "pgd":
        return ATTACKS["pgd"](model, x, y, eps=draw, alpha=eps * MUSTAFA_ALPHA, steps=steps,
                              random_start=False, keep_best=False)
    raise ValueError(f"method 'mustafa' trains with fgsm or pgd, not {kind!r}")


@torch.no_grad()
def _loss_and_acc(model, loss, x, y, *, batch_size, device) -> tuple[float, float]:
    total, correct = 0.0, 0
    for idx in batch_indices(len(y), batch_size=batch_size, shuffle=False):
        xb, yb = to_float(x[idx]).to(device), y[idx].to(device)
        logits, feats = model(xb, return_features=True)
        total += float(loss(logits, yb, feats)) * len(idx)
        correct += int((logits.argmax(1) == yb).sum())
    return total / max(len(y), 1), correct / max(len(y), 1)


def validate(model, loss, data, cfg: RunConfig) -> dict:
    """Validation loss/accuracy on clean samples, and on PGD samples of a fixed monitor batch.

    The PGD monitor uses the full eps and a fixed random start each epoch, so a sudden collapse of
    its accuracy (catastrophic overfitting of FGSM training) is a real change of the model.
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
        x, y = to_float(data.x_val[:k]).to(device), data.y_val[:k].to(device)
        gen = torch.Generator().manual_seed(cfg.seed + 12345)
        x_adv = pgd(model, x, y, eps=cfg.eps, steps=cfg.attack_steps, generator=gen)
        out["val_adv_loss"], out["val_adv_acc"] = _loss_and_acc(
            model, loss, x_adv, y, batch_size=cfg.eval_batch_size, device=device)
    return out


def build_optimizer(cfg: RunConfig, model: nn.Module, loss: nn.Module) -> torch.optim.Optimizer:
    """SGD over the model (group 0) and the loss's centroids (their own groups, no decay).

    Centroid rate: cfg.centroid_lr, else the loss's `default_centroid_lr`, else (None) the
    model's rate. Mustafa et al.'s centres get their scripts' plain-SGD rates."""
    groups = [{"params": list(model.parameters())}]
    if hasattr(loss, "centroid_param_groups"):  # Mustafa et al.: their own centre steps
        groups += loss.centroid_param_groups(MUSTAFA_CENTRE_LR[_regime(cfg)])
    elif any(True for _ in loss.parameters()):  # learnable class centroids: own lr, no decay
        lr = cfg.centroid_lr if cfg.centroid_lr is not None else loss.default_centroid_lr
        group = {"params": list(loss.parameters()), "weight_decay": 0.0}
        groups.append(group if lr is None else {**group, "lr": lr})
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def build_scheduler(cfg: RunConfig, opt) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-group lr factors by epoch: cfg.schedule, or for Mustafa et al. their two stages
    (stage 1: / 10 at 81, 122, 140 of 164 epochs; stage 2: a tenth of the base rate, constant;
    their centre groups keep their own fixed rates, never decayed)."""
    marks = sorted({max(1, round(cfg.epochs * m)) for m in milestones(cfg)})

    def schedule(epoch: int) -> float:
        if cfg.schedule == "multistep":
            return 0.1 ** sum(epoch >= m for m in marks)
        if cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * epoch / cfg.epochs))
        return 1.0

    def model_factor(epoch: int) -> float:
        if cfg.method != "mustafa":
            return schedule(epoch)
        if _mustafa_stage(cfg, epoch) == 2:
            return MUSTAFA_STAGE2_LR  # constant: their stage-2 schedule never fired
        stage1 = _mustafa_stage1_epochs(cfg)
        return 0.1 ** sum(epoch >= round(stage1 * m) for m in MUSTAFA_STAGE1_MILESTONES)

    other = (lambda epoch: 1.0) if cfg.method == "mustafa" else schedule
    factors = [model_factor] + [other] * (len(opt.param_groups) - 1)
    return torch.optim.lr_scheduler.LambdaLR(opt, factors)


def _warmup(cfg: RunConfig, *, epoch: int, n_batches: int) -> Callable[[int], float] | None:
    """Linear lr warm-up over the first cfg.lr_warmup_epochs epochs, per batch (None after)."""
    total = cfg.lr_warmup_epochs * n_batches
    if total <= 0 or epoch * n_batches >= total:
        return None
    return lambda i: min(1.0, (epoch * n_batches + i + 1) / total)


def _mustafa_stage1_epochs(cfg: RunConfig) -> int:
    return max(1, round(cfg.epochs * MUSTAFA_SPLIT[_regime(cfg)]))


def _mustafa_stage(cfg: RunConfig, epoch: int) -> int:
    """1 (softmax) or 2 (prototype conformity) for Mustafa et al.'s two-stage training."""
    return 1 if epoch < _mustafa_stage1_epochs(cfg) else 2


def _stage_loss(cfg: RunConfig, loss: nn.Module, epoch: int, ce: nn.Module) -> nn.Module:
    """The loss of this epoch: Mustafa et al. train with softmax first, then add prototype
    conformity; Wang et al. weight each example's CE by itself from the second epoch on."""
    if cfg.method == "mustafa" and _mustafa_stage(cfg, epoch) == 1:
        return ce
    if cfg.method == "dynamic" and cfg.dynamic_loss_weighting and epoch > 0:
        return SelfWeightedCrossEntropy()
    return loss


def train(model: nn.Module, loss: nn.Module, data, cfg: RunConfig, *, runs_root=None,
          resume: bool = True, progress: bool = True,
          on_epoch_end: Callable[[int, Path], None] | None = None) -> list[dict]:
    """Train `model` with `loss` on `data` as `cfg` says; returns the per-epoch history.

    The run folder is keyed by the config, the data fingerprint and the code version. A finished
    run is loaded, not trained again; an unfinished one resumes from its last checkpoint when
    `resume` is True. `on_epoch_end(epoch, run_dir)` is called after each checkpoint is written.
    The folder is locked while this runs: a second process asking for the same run waits, then
    reuses it (`runlock.run_lock`).
    """
    torch.manual_seed(cfg.seed)
    rdir = run_path(cfg, data, runs_root=runs_root)
    rdir.mkdir(parents=True, exist_ok=True)
    with run_lock(rdir):
        return _train_in(rdir, model, loss, data, cfg, resume=resume, progress=progress,
                         on_epoch_end=on_epoch_end)


def _train_in(rdir: Path, model, loss, data, cfg: RunConfig, *, resume, progress,
              on_epoch_end) -> list[dict]:
    ckpt_path = rdir / runio.CHECKPOINT_NAME
    device = resolve_device(cfg.device)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(device=device, memory_format=memory_format)
    loss.to(device)

    opt = build_optimizer(cfg, model, loss)
    sched = build_scheduler(cfg, opt)
    gens = {"data": torch.Generator().manual_seed(cfg.seed),
            "attack": torch.Generator().manual_seed(cfg.seed + 1)}
    history: list[dict] = []
    start_epoch = 0
    if runio.is_finished(rdir) or (resume and ckpt_path.exists()):
        state = runio.load_checkpoint(ckpt_path)
        runio.check_compatible(state["model"], model)
        runio.check_compatible(state["loss"], loss)
        model.load_state_dict(state["model"])
        loss.load_state_dict(state["loss"])
        history = state["history"]
        if runio.is_finished(rdir):
            print(f"reusing finished run {rdir} ({len(history)} epochs): not training again")
            model.eval()
            return history
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        runio.set_rng_state(state["rng"], gens)
        start_epoch = state["epoch"] + 1
        print(f"resuming {rdir} at epoch {start_epoch + 1} of {cfg.epochs}")
    else:
        runio.write_json(rdir / "config.json", cfg.to_dict())

    ce = build_loss("ce", num_classes=data.num_classes, feature_dims=model.feature_dims)
    n_batches = math.ceil(len(data.y_train) / cfg.batch_size)
    epochs = range(start_epoch, cfg.epochs)
    bar = _progress(epochs, enabled=progress, desc=run_name(cfg))
    best_adv = 0.0
    for epoch in bar:
        attack = training_attack(cfg, epoch=epoch, generator=gens["attack"])
        row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"]}
        stats = train_epoch(model, _stage_loss(cfg, loss, epoch, ce), data.x_train, data.y_train,
                            optimizer=opt, batch_size=cfg.batch_size, generator=gens["data"],
                            attack=attack, adv_fraction=cfg.adv_fraction, adv_mode=cfg.adv_mode,
                            augment=cfg.augment, memory_format=memory_format, device=device,
                            lr_factor=_warmup(cfg, epoch=epoch, n_batches=n_batches))
        sched.step()
        row.update(train_loss=stats["loss"], train_acc=stats["acc"], train_error=1 - stats["acc"],
                   train_seconds=stats["seconds"],
                   **{f"train_{name}": v for name, v in stats["terms"].items()})
        start = time.perf_counter()
        row.update(validate(model, loss, data, cfg))
        row["val_seconds"] = time.perf_counter() - start
        best_adv = max([best_adv] + [h.get("val_adv_acc", 0.0) for h in history])
        # catastrophic overfitting: robust accuracy collapses to under half its best so far
        row["collapse"] = bool(best_adv > 0.1 and row.get("val_adv_acc", 1.0) < 0.5 * best_adv)
        history.append(row)
        runio.save_checkpoint(ckpt_path, state={
            "model": model.state_dict(), "loss": loss.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "epoch": epoch, "history": history,
            "config": cfg.to_dict(), "rng": runio.rng_state(gens)})
        runio.write_json(rdir / "history.json", history)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{row.get('val_acc', 0):.3f}",
                            adv=f"{row.get('val_adv_acc', 0):.3f}")
        if on_epoch_end is not None:
            on_epoch_end(epoch, rdir)
    runio.write_json(rdir / runio.DONE_NAME, runio.provenance(
        config=cfg.to_dict(), seed=cfg.seed, device=str(device),
        wall_seconds=sum(h["train_seconds"] + h["val_seconds"] for h in history)))
    model.eval()
    return history


def _progress(it, *, enabled: bool, desc: str):
    if not enabled:
        return it
    from tqdm.auto import tqdm  # notebook-aware bars under Jupyter, plain ones in a terminal

    return tqdm(it, desc=desc, unit="epoch")


def load_data(cfg: RunConfig, *, root=None):
    """The dataset a config names: its training subset, validation hold-out and full test set."""
    from .data import load_dataset

    return load_dataset(cfg.dataset, root=root, path=cfg.data_path or None,
                        n_train=cfg.n_train or None, n_val=cfg.n_val, seed=cfg.seed)
