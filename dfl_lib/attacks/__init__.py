"""Evasion attacks: one file per attack, each registering itself in `REGISTRY` with its norm,
kind, objective, defaults, class floor and cost (`registry.py`); `base.py` holds what they share
(logits, objectives, the L-inf step and projection, the iterate loop, `frozen`).

    x_adv = pgd(model.eval(), x, y, eps=0.3, steps=10)       # images and eps in [0, 1] pixels
    x_adv = run_attack("cw", model, x, y, binary_search_steps=5)
    REGISTRY["autoattack"].kind, REGISTRY["autoattack"].norm  # ask, never match names

Ours: fgsm, bim, mim, pgd, cw_pgd (CW-inf), cw (C&W-L2); the adaptive PGD on the defence's own
objective (`adaptive.py`); transfer from a surrogate (`transfer.py`); the peers' APGD-CE,
APGD-T, FAB-T, Square and AutoAttack from the pinned torchattacks (`peers.py`). Adding an attack
is one new file registering it, imported here.

May import: the core modules (errors, validation) only. Attacks know nothing of losses,
training, evaluation or the study: an adaptive objective is handed to them as a loss_fn.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..validation import check_known
# importing an attack's file registers it
from .adaptive import pgd_adaptive
from .base import LogitsOnly, LossFn, ce_loss, cw_margin, frozen, logits_of, margin_loss, \
    project_linf
from .bim import bim
from .cw import cw
from .cw_pgd import cw_pgd
from .fgsm import fgsm
from .mim import mim
from .peers import AA_QUERIES, AA_STEPS, AA_TARGETS, build_peer_attack, n_targets
from .pgd import pgd
from .registry import KINDS, NORMS, REGISTRY, AttackEntry, AttackSpec, register, register_runner
from .transfer import transfer

__all__ = ["REGISTRY", "AttackEntry", "AttackSpec", "register", "register_runner", "KINDS", "NORMS",
           "ATTACKS", "run_attack", "logits_of", "LogitsOnly", "LossFn", "project_linf",
           "ce_loss", "margin_loss", "cw_margin", "frozen", "fgsm", "bim", "mim", "pgd", "cw",
           "cw_pgd", "pgd_adaptive", "transfer", "build_peer_attack", "n_targets", "AA_STEPS", "AA_QUERIES", "AA_TARGETS"]

# our attack functions by name (the white-box ones with a function of their own)
ATTACKS: dict[str, Callable[..., torch.Tensor]] = {
    name: entry.fn for name, entry in REGISTRY.items()
    if entry.kind == "white-box" and entry.fn is not None}


def run_attack(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               **kwargs) -> torch.Tensor:
    """ATTACKS[name](model, x, y, **kwargs), with a clear error for an unknown name."""
    check_known(name, ATTACKS, kind="attack")
    return ATTACKS[name](model, x, y, **kwargs)
