"""The training methods in one place: what the paper's method and each baseline change in the
training loop, as small hooks the loop calls (the attack, the loss, the learning rates).

Methods (`cfg.method`):
  standard  the paper's setting: one loss (CE, PCL, ...) on clean and attacked samples;
  mustafa   baseline 1, as Mustafa et al.'s scripts run it (`BASELINE_NOTES["mustafa"]`);
  dynamic   baseline 2, as Wang et al.'s code runs it (`BASELINE_NOTES["dynamic"]`).
Each note says what we follow and every remaining difference with its reason; evaluation copies
the note of a baseline run into its metrics, so reports show it beside the numbers.

Hooks: `training_attack(cfg, epoch, generator)`, `epoch_loss(cfg, loss, epoch, ce)`,
`loss_options(cfg)`, `centre_groups(cfg, loss)`, `lr_factors(cfg, n_groups)`, `warmup(cfg, ...)`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from .attacks import ATTACKS
from .config import RunConfig, milestones
from .dynamic import SelfWeightedCrossEntropy, dynamic_criterion, dynamic_pgd
from .errors import UsageError

__all__ = ["BASELINE_NOTES", "training_attack", "epoch_loss", "loss_options", "centre_groups",
           "lr_factors", "warmup", "regime", "mustafa_stage"]

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




def regime(cfg: RunConfig) -> str:
    """"clean" or "adversarial": which of a baseline's settings apply."""
    return "clean" if cfg.train_attack == "none" else "adversarial"


def loss_options(cfg: RunConfig) -> dict:
    """Keyword arguments for `build_loss(cfg.loss, ...)` that the config or the method sets."""
    if cfg.method == "mustafa":
        return {"w_conprox": MUSTAFA_W_CONPROX[regime(cfg)]}
    if cfg.loss in ("pcl", "pcl_legacy"):
        return {"w_intra": cfg.pcl_w_intra, "w_inter": cfg.pcl_w_inter, "margin": cfg.pcl_margin}
    return {}


def centre_groups(cfg: RunConfig, loss: nn.Module) -> list[dict]:
    """Optimiser groups for the loss's own parameters (centroids), no weight decay.

    Rate: cfg.centroid_lr, else the loss's `default_centroid_lr`, else (None) the model's rate.
    Mustafa et al.'s centres get their scripts' plain-SGD rates."""
    if hasattr(loss, "centroid_param_groups"):  # Mustafa et al.: their own centre steps
        return loss.centroid_param_groups(MUSTAFA_CENTRE_LR[regime(cfg)])
    params = list(loss.parameters())
    if not params:
        return []
    lr = cfg.centroid_lr if cfg.centroid_lr is not None else loss.default_centroid_lr
    group = {"params": params, "weight_decay": 0.0}
    return [group if lr is None else {**group, "lr": lr}]


def lr_factors(cfg: RunConfig, n_groups: int) -> list[Callable[[int], float]]:
    """Per-group lr factors by epoch (group 0 = the model): cfg.schedule, or for Mustafa et al.
    their two stages (stage 1: / 10 at 81, 122, 140 of 164 epochs; stage 2: a tenth of the base
    rate, constant; their centre groups keep their own fixed rates, never decayed)."""
    marks = sorted({max(1, round(cfg.epochs * m)) for m in milestones(cfg)})

    def schedule(epoch: int) -> float:
        if cfg.schedule == "multistep":
            return 0.1 ** sum(epoch >= m for m in marks)
        if cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * epoch / cfg.epochs))
        return 1.0

    if cfg.method != "mustafa":
        return [schedule] * n_groups

    def model_factor(epoch: int) -> float:
        if mustafa_stage(cfg, epoch) == 2:
            return MUSTAFA_STAGE2_LR  # constant: their stage-2 schedule never fired
        stage1 = _mustafa_stage1_epochs(cfg)
        return 0.1 ** sum(epoch >= round(stage1 * m) for m in MUSTAFA_STAGE1_MILESTONES)

    return [model_factor] + [lambda epoch: 1.0] * (n_groups - 1)


def warmup(cfg: RunConfig, *, epoch: int, n_batches: int) -> Callable[[int], float] | None:
    """Linear lr warm-up over the first cfg.lr_warmup_epochs epochs, per batch (None after)."""
    total = cfg.lr_warmup_epochs * n_batches
    if total <= 0 or epoch * n_batches >= total:
        return None
    return lambda i: min(1.0, (epoch * n_batches + i + 1) / total)


def training_attack(cfg: RunConfig, *, epoch: int, generator: torch.Generator) -> Callable | None:
    """The attack used to make training samples at `epoch`, with its settings bound."""
    if cfg.train_attack == "none" or (cfg.method == "mustafa" and mustafa_stage(cfg, epoch) == 1):
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
    raise UsageError(f"method 'mustafa' trains with fgsm or pgd, not {kind!r}")


def _mustafa_stage1_epochs(cfg: RunConfig) -> int:
    return max(1, round(cfg.epochs * MUSTAFA_SPLIT[regime(cfg)]))


def mustafa_stage(cfg: RunConfig, epoch: int) -> int:
    """1 (softmax) or 2 (prototype conformity) for Mustafa et al.'s two-stage training."""
    return 1 if epoch < _mustafa_stage1_epochs(cfg) else 2


def epoch_loss(cfg: RunConfig, loss: nn.Module, epoch: int, ce: nn.Module) -> nn.Module:
    """The loss of this epoch: Mustafa et al. train with softmax first, then add prototype
    conformity; Wang et al. weight each example's CE by itself from the second epoch on."""
    if cfg.method == "mustafa" and mustafa_stage(cfg, epoch) == 1:
        return ce
    if cfg.method == "dynamic" and cfg.dynamic_loss_weighting and epoch > 0:
        return SelfWeightedCrossEntropy()
    return loss


