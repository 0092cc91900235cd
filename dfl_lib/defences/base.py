"""What every defence is: a training method as hooks the training loop calls (the attack that
makes training samples, the loss of each epoch, the loss's options, the optimiser groups of its
centroids, the learning-rate factors), its configuration defaults and checks, and its notes on
how it differs from its authors' code. The paper's method is the base behaviour; a baseline
overrides what its authors' code does differently.

    @register_defence
    class MyDefence(Defence):
        name = "mine"
        def training_attack(self, cfg, *, epoch, generator): ...

Adding a defence is one new file registering a subclass (see defences/__init__.py).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from ..attacks import ATTACKS
from ..config import RunConfig, milestones
from ..errors import UsageError

__all__ = ["Defence", "DEFENCES", "register_defence", "get_defence", "regime", "warmup",
           "ramped_eps", "schedule"]

DEFENCES: dict[str, "Defence"] = {}


def register_defence(cls: type) -> type:
    """Class decorator: register an instance of a `Defence` subclass under its `name`."""
    if not (isinstance(cls, type) and issubclass(cls, Defence)) or not cls.name:
        raise UsageError("register_defence takes a Defence subclass with a name")
    if cls.name in DEFENCES:
        raise UsageError(f"defence {cls.name!r} is registered twice")
    DEFENCES[cls.name] = cls()
    return cls


def get_defence(name: str) -> "Defence":
    """The registered defence `name` (cfg.method); UsageError listing the known ones."""
    if name not in DEFENCES:
        raise UsageError(f"unknown method {name!r}; known: {', '.join(sorted(DEFENCES))}")
    return DEFENCES[name]


def regime(cfg: RunConfig) -> str:
    """"clean" or "adversarial": which of a baseline's settings apply."""
    return "clean" if cfg.train_attack == "none" else "adversarial"


def ramped_eps(cfg: RunConfig, epoch: int) -> float:
    """The training eps at `epoch`: cfg.eps, ramped linearly over cfg.eps_ramp_epochs if set."""
    return cfg.eps * min(1.0, (epoch + 1) / cfg.eps_ramp_epochs) if cfg.eps_ramp_epochs else cfg.eps


def schedule(cfg: RunConfig) -> Callable[[int], float]:
    """The model's lr factor by epoch: cfg.schedule ("multistep" at cfg.lr_milestones, "cosine",
    "constant")."""
    marks = sorted({max(1, round(cfg.epochs * m)) for m in milestones(cfg)})

    def factor(epoch: int) -> float:
        if cfg.schedule == "multistep":
            return 0.1 ** sum(epoch >= m for m in marks)
        if cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * epoch / cfg.epochs))
        return 1.0

    return factor


def warmup(cfg: RunConfig, *, epoch: int, n_batches: int) -> Callable[[int], float] | None:
    """Linear lr warm-up over the first cfg.lr_warmup_epochs epochs, per batch (None after)."""
    total = cfg.lr_warmup_epochs * n_batches
    if total <= 0 or epoch * n_batches >= total:
        return None
    return lambda i: min(1.0, (epoch * n_batches + i + 1) / total)


class Defence:
    """The paper's training (the base behaviour): one loss (CE, PCL, ...) on clean and attacked
    samples, attacked with cfg.train_attack at cfg.eps, the schedule of cfg.schedule."""

    name: str = ""
    # how it follows its authors' code and what still differs (copied into its metrics); None
    # for the paper's own method
    notes: str | None = None

    def config_defaults(self, *, train_attack: str) -> dict:
        """Config fields this method sets before the profile scales the run (its authors' lr,
        batch, epochs, ...)."""
        return {}

    def validate(self, cfg: RunConfig) -> None:
        """Raise UsageError for a config this method cannot train."""

    def loss_options(self, cfg: RunConfig) -> dict:
        """Keyword arguments for `build_loss(cfg.loss, ...)` that the config or the method sets."""
        if cfg.loss in ("pcl", "pcl_legacy"):
            return {"w_intra": cfg.pcl_w_intra, "w_inter": cfg.pcl_w_inter,
                    "margin": cfg.pcl_margin}
        return {}

    def centre_groups(self, cfg: RunConfig, loss: nn.Module) -> list[dict]:
        """Optimiser groups for the loss's own parameters (centroids), no weight decay. Rate:
        cfg.centroid_lr, else the loss's `default_centroid_lr`, else (None) the model's rate."""
        params = list(loss.parameters())
        if not params:
            return []
        lr = cfg.centroid_lr if cfg.centroid_lr is not None else loss.default_centroid_lr
        group = {"params": params, "weight_decay": 0.0}
        return [group if lr is None else {**group, "lr": lr}]

    def lr_factors(self, cfg: RunConfig, n_groups: int) -> list[Callable[[int], float]]:
        """Per-group lr factors by epoch (group 0 = the model)."""
        return [schedule(cfg)] * n_groups

    def training_attack(self, cfg: RunConfig, *, epoch: int,
                        generator: torch.Generator) -> Callable | None:
        """The attack that makes training samples at `epoch`, its settings bound (None: clean)."""
        if cfg.train_attack == "none":
            return None
        eps, alpha = ramped_eps(cfg, epoch), cfg.alpha or None
        if cfg.train_attack == "fgsm":
            return partial(ATTACKS["fgsm"], eps=eps, random_start=cfg.fgsm_random_start,
                           alpha=alpha, generator=generator)
        if cfg.train_attack == "pgd":
            # the last iterate, as Madry et al. train (evaluation keeps the per-example best)
            return partial(ATTACKS["pgd"], eps=eps, alpha=alpha, steps=cfg.attack_steps,
                           generator=generator, keep_best=False)
        return partial(ATTACKS["cw"], c=cfg.cw_c, steps=cfg.cw_steps)

    def epoch_loss(self, cfg: RunConfig, loss: nn.Module, epoch: int, ce: nn.Module) -> nn.Module:
        """The loss trained at `epoch` (`ce`: plain cross-entropy, for methods that switch)."""
        return loss
