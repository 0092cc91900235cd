"""Baseline 1: Mustafa et al. (ICCV 2019), "Adversarial defense by restricting the hidden
space of deep neural networks", as their scripts run it (aamir-mustafa/pcl-adversarial-defense):
a softmax stage, then the prototype-conformity stage, their centre rates and attack draws.
`Mustafa.notes` says what we follow and every difference, with its reason."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from ..attacks import ATTACKS
from ..config import RunConfig
from ..errors import UsageError
from .base import Defence, ramped_eps, regime, register_defence

__all__ = ["Mustafa", "mustafa_stage", "MUSTAFA_EPOCHS"]

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
# their epochs: 164 of softmax training, then 400 (clean) / 500 (adversarial) of PCL
MUSTAFA_EPOCHS = {"clean": 164 + 400, "adversarial": 164 + 500}


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


@register_defence
class Mustafa(Defence):
    """cfg.method = "mustafa": Mustafa et al.'s two-stage prototype-conformity training."""

    name = "mustafa"
    notes = (
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
        "the quick profile's lr warm-up applies to every method alike.")

    def config_defaults(self, *, train_attack: str) -> dict:
        # ResNet + a 1024-d FC layer, softmax pre-training, then the prototype-conformity stage;
        # clean and attacked batches concatenated (softmax_training.py, pcl_training*.py)
        attacked = train_attack != "none"
        return {"loss": "prototype_conformity", "dfl": False, "extra_fc": 1024,
                "adv_mode": "concat", "adv_fraction": 1.0, "weight_decay": 1e-4,
                "epochs": MUSTAFA_EPOCHS["adversarial" if attacked else "clean"]}

    def validate(self, cfg: RunConfig) -> None:
        if cfg.train_attack == "cw":
            raise UsageError("method 'mustafa' trains adversarially with fgsm or pgd (their "
                             "scripts); train_attack='cw' is not one of them")
        if cfg.loss != "prototype_conformity":
            raise UsageError("method 'mustafa' trains with loss='prototype_conformity'")

    def loss_options(self, cfg: RunConfig) -> dict:
        return {"w_conprox": MUSTAFA_W_CONPROX[regime(cfg)]}

    def centre_groups(self, cfg: RunConfig, loss: nn.Module) -> list[dict]:
        """Their centres' plain-SGD rates, never decayed."""
        return loss.centroid_param_groups(MUSTAFA_CENTRE_LR[regime(cfg)])

    def lr_factors(self, cfg: RunConfig, n_groups: int) -> list[Callable[[int], float]]:
        """Stage 1: / 10 at 81, 122, 140 of 164 epochs; stage 2: a tenth of the base rate,
        constant; their centre groups keep their own fixed rates."""
        def model_factor(epoch: int) -> float:
            if mustafa_stage(cfg, epoch) == 2:
                return MUSTAFA_STAGE2_LR  # constant: their stage-2 schedule never fired
            stage1 = _mustafa_stage1_epochs(cfg)
            return 0.1 ** sum(epoch >= round(stage1 * m) for m in MUSTAFA_STAGE1_MILESTONES)

        return [model_factor] + [lambda epoch: 1.0] * (n_groups - 1)

    def training_attack(self, cfg: RunConfig, *, epoch: int,
                        generator: torch.Generator) -> Callable | None:
        if cfg.train_attack == "none" or mustafa_stage(cfg, epoch) == 1:
            return None  # their adversarial scripts start from a clean softmax model
        return partial(_mustafa_attack, kind=cfg.train_attack, eps=ramped_eps(cfg, epoch),
                       steps=cfg.attack_steps, generator=generator)

    def epoch_loss(self, cfg: RunConfig, loss: nn.Module, epoch: int, ce: nn.Module) -> nn.Module:
        """Softmax (CE) first, then prototype conformity."""
        return ce if mustafa_stage(cfg, epoch) == 1 else loss
