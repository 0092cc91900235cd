"""Defences: one file per training method, each a registered `Defence` with its configuration
defaults and checks, its training hooks and its notes on how it differs from its authors' code.

    standard.py   the paper's method: ResNet with or without the DFL, CE or the PCL, clean or
                  adversarially trained (the base behaviour, `base.Defence`)
    mustafa.py    baseline 1, Mustafa et al. (ICCV 2019), as their scripts run it
    dynamic.py    baseline 2, Wang et al. (ICML 2019) "Dynamic" adversarial training

The training loop asks the run's defence (`get_defence(cfg.method)`) for each hook; the
functions below do exactly that. Adding a defence is one new file registering a `Defence`
subclass (`@register_defence`), imported before its config is made.

May import: the core modules, data, models, losses and attacks; never training, evaluation or
the study.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..config import RunConfig
from . import dynamic, mustafa, standard  # noqa: F401  (each registers its defence)
from .base import DEFENCES, Defence, get_defence, regime, register_defence, warmup
from .dynamic import SelfWeightedCrossEntropy, dynamic_criterion, dynamic_pgd, fosc
from .mustafa import mustafa_stage

__all__ = ["DEFENCES", "Defence", "register_defence", "get_defence", "BASELINE_NOTES",
           "loss_options", "centre_groups", "lr_factors", "training_attack", "epoch_loss",
           "warmup", "regime", "mustafa_stage", "SelfWeightedCrossEntropy", "dynamic_criterion",
           "dynamic_pgd", "fosc"]


def baseline_notes() -> dict[str, str]:
    """{method: its notes} of every registered defence that has notes (the baselines)."""
    return {name: d.notes for name, d in DEFENCES.items() if d.notes}


BASELINE_NOTES = baseline_notes()


def loss_options(cfg: RunConfig) -> dict:
    return get_defence(cfg.method).loss_options(cfg)


def centre_groups(cfg: RunConfig, loss: nn.Module) -> list[dict]:
    return get_defence(cfg.method).centre_groups(cfg, loss)


def lr_factors(cfg: RunConfig, n_groups: int) -> list[Callable[[int], float]]:
    return get_defence(cfg.method).lr_factors(cfg, n_groups)


def training_attack(cfg: RunConfig, *, epoch: int, generator: torch.Generator) -> Callable | None:
    return get_defence(cfg.method).training_attack(cfg, epoch=epoch, generator=generator)


def epoch_loss(cfg: RunConfig, loss: nn.Module, epoch: int, ce: nn.Module) -> nn.Module:
    return get_defence(cfg.method).epoch_loss(cfg, loss, epoch, ce)
