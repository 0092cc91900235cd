"""The evaluation suites as data: which attack rows each suite runs, and each row's settings as
a template over the run's config (like AutoAttack's `set_version`), under one threat model the
suite sets once (as AutoAttack's evaluator does): the L-inf ball of the config's eps.

    threat = threat_model(cfg)        # ThreatModel("Linf", cfg.eps), built here only
    attack_suite(cfg, suite="full")   # {row name: {"attack": ..., settings...}}, plain data
    table, flags = evaluate_suite(model, x, y, cfg=cfg, suite="full")  # the rows, the checks

`evaluate_suite` is where a run's evaluation meets its config: it builds the threat model and
the rows, and hands the threat model to `evaluate` and the masking checks, so eps goes from the
config to the attacks' L-inf projection through this file, `robust.py` and the attack's own
files (`attacks/base.py` runs our attack functions and projects), never through the caller.

The L-inf rows name no eps: `evaluate` gives them the threat model's. The C&W-L2 rows keep
their own L2 budget (a second threat model, reported apart).

A settings value that is a string naming a config field (or a derived value below) is read from
the config; anything else is used as it is. Runtime objects an attack needs (the defence's
loss, a surrogate) are not part of a suite: `evaluate(..., live=...)` passes them beside it.
"""
from __future__ import annotations

import torch
from torch import nn

from ..attacks import REGISTRY
from ..config import RunConfig
from ..errors import UsageError
from ..losses import LOSSES
from .checks import CheckBudget, masking_checks
from .robust import EvalTable, evaluate
from .threat import ThreatModel

__all__ = ["ROWS", "SUITES", "CHECKED_SUITES", "PAPER_COLUMNS", "PAPER_SETTING_CW_NOTE",
           "attack_suite", "threat_model", "paper_column_rows", "evaluate_suite",
           "TRANSFER_ROW"]

PAPER_SETTING_CW_NOTE = (
    "non-informative: the paper's literal C&W (L2, fixed c = 0.1, 10 Adam steps of lr 0.01, no "
    "binary search) barely moves pixels at exactly 0 or 1 (tanh box, 81% of MNIST pixels) and "
    "does not search c, so it reads about clean accuracy on any model; the study's C&W column "
    "is CW-inf, and the C&W-L2 row with binary search is the real L2 C&W")

# row key: (row name template, attack, settings template[, note])
ROWS = {
    "clean": ("clean", "clean", {}),
    "fgsm": ("FGSM", "fgsm", {}),
    "pgd": ("PGD-{attack_steps}", "pgd", {"steps": "attack_steps"}),
    # the paper's C&W column: the C&W margin inside L-inf PGD (CW-inf), as the Dynamic AT
    # baseline's tables use it
    "cw_inf": ("CW-inf (PGD-{attack_steps})", "cw_pgd", {"steps": "attack_steps"}),
    "cw_l2_paper": ("C&W-L2 paper setting (c={cw_c:g}, {cw_steps} steps)", "cw",
                    {"c": "cw_c", "steps": "cw_steps", "binary_search_steps": 0},
                    PAPER_SETTING_CW_NOTE),
    "pgd_strong": ("PGD-{strong_steps} x3 restarts", "pgd",
                   {"steps": "strong_steps", "restarts": 3}),
    "pgd_long": ("PGD-{strong_steps}", "pgd", {"steps": "strong_steps"}),
    "cw_inf_strong": ("CW-inf (PGD-{strong_steps})", "cw_pgd",
                      {"steps": "strong_steps"}),
    # Carlini & Wagner's binary search over c (from the paper's c, x10 until success, then
    # bisection), Adam at lr 0.01 with early abort, reported at an L2 budget
    "cw_l2_search": ("C&W-L2 (search, L2 <= {cw_l2_budget:g})", "cw",
                     {"c": "cw_c", "steps": "cw_l2_steps", "lr": 0.01,
                      "binary_search_steps": "cw_l2_search_steps", "l2_budget": "cw_l2_budget"}),
    "autoattack": ("AutoAttack", "autoattack",
                   {"steps": "aa_steps", "n_queries": "aa_queries"}),
    # PGD on the defence's own objective; only for a loss that supplies one (the PCL)
    "adaptive_pcl": ("adaptive PGD-{strong_steps} (PCL)", "pgd_adaptive",
                     {"steps": "strong_steps"}),
}
SUITES = {
    "paper": ("clean", "fgsm", "pgd", "cw_inf", "cw_l2_paper"),
    # every table cell of the notebook study: the paper's columns plus a longer PGD and the
    # adaptive attack, cheap enough for every cell on a CPU
    "table": ("clean", "fgsm", "pgd", "cw_inf", "cw_l2_paper", "pgd_long", "adaptive_pcl"),
    "full": ("clean", "fgsm", "pgd", "cw_inf", "cw_l2_paper", "pgd_strong", "cw_inf_strong",
             "cw_l2_search", "autoattack", "adaptive_pcl"),
    # the headline cells at the quick profile: "full" without the C&W-L2 binary search (5 x
    # 1,000 Adam steps per image would cost more than the rest of the study's evaluation)
    "headline": ("clean", "fgsm", "pgd", "cw_inf", "pgd_strong", "cw_inf_strong", "autoattack",
                 "adaptive_pcl"),
    # the depth study's runs at their end (Figures 1, 3, 5: robust accuracy, and the regime
    # gate, which reads the plain ResNet-18's AutoAttack accuracy)
    "depth": ("clean", "pgd", "pgd_long", "autoattack"),
}
# suites that also run the transfer attack and the gradient-masking checks
CHECKED_SUITES = ("full", "headline")
# the row of the transfer attack, added to a checked suite when a surrogate is given
TRANSFER_ROW = "transfer PGD (undefended surrogate)"
# the paper's three test-time attacks -> the rows that stand for them
PAPER_COLUMNS = {"FGSM": "fgsm", "PGD": "pgd", "C&W": "cw_inf"}


def threat_model(cfg: RunConfig) -> ThreatModel:
    """The threat model every suite evaluates this config's runs under: L-inf at cfg.eps (pixel
    units), the paper's and the field's for MNIST and CIFAR-10."""
    return ThreatModel("Linf", cfg.eps)


def _values(cfg: RunConfig) -> dict:
    """The config's fields plus the derived values templates may name."""
    return {**cfg.to_dict(), "strong_steps": 5 * cfg.attack_steps}


def _row(cfg: RunConfig, key: str) -> tuple[str, dict]:
    name, attack, template, *note = ROWS[key]
    values = _values(cfg)
    spec = {"attack": attack}
    for setting, value in template.items():
        spec[setting] = values[value] if isinstance(value, str) else value
    if note:
        spec["note"] = note[0]
    return name.format(**values), spec


def attack_suite(cfg: RunConfig, *, suite: str = "full") -> dict[str, dict]:
    """{row name: {"attack": registry name, settings...[, "note"]}} of `suite` for this config."""
    if suite not in SUITES:
        raise UsageError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    rows = [k for k in SUITES[suite] if _applies(cfg, ROWS[k][1])]
    return dict(_row(cfg, key) for key in rows)


def _applies(cfg: RunConfig, attack: str) -> bool:
    """Whether a row's attack can run on this config's runs: an attack that needs the defence's
    loss runs only where that loss supplies an adaptive objective."""
    if "defence_loss" not in REGISTRY[attack].needs:
        return True
    return hasattr(LOSSES[cfg.loss], "adaptive_objective")


def paper_column_rows(cfg: RunConfig) -> dict[str, str]:
    """{paper column: the row name that stands for it in this config's suites}."""
    return {column: _row(cfg, key)[0] for column, key in PAPER_COLUMNS.items()}


def evaluate_suite(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, cfg: RunConfig,
                   suite: str = "full", live: dict | None = None,
                   surrogate: nn.Module | None = None,
                   masks_dir=None) -> tuple[EvalTable, list[dict]]:
    """Evaluate `model` (eval mode) on (x (n, C, H, W) in [0, 1], y (n,)) with this config's
    `suite` under its threat model (`threat_model(cfg)`, built here and handed on: every L-inf
    row and check runs at its eps), cfg.eval_batch_size and cfg.seed; for a checked suite
    (`CHECKED_SUITES`), also the masking checks (`checks.masking_checks`, reusing the table's
    masks) with PGD-`cfg.attack_steps`, 5x that for the stronger PGD, and Square with
    cfg.aa_queries.

    live: runtime objects the rows may need ({"defence_loss": the run's loss}); surrogate: an
    undefended model of the same architecture for the transfer row and check 7 (checked suites
    only; None for neither). masks_dir: where `evaluate` saves each row's mask (None: nowhere).
    Returns (the `EvalTable`, the checks' flags: [] for an unchecked suite). Raises UsageError
    for an unknown suite, a surrogate given to an unchecked suite, and as `evaluate` does.
    """
    threat = threat_model(cfg)
    attacks = attack_suite(cfg, suite=suite)  # plain data; live objects go separately
    checked = suite in CHECKED_SUITES
    live = dict(live or {})
    if surrogate is not None:
        if not checked:
            raise UsageError(f"a transfer surrogate is for the checked suites "
                             f"({', '.join(CHECKED_SUITES)}), not {suite!r}")
        live["surrogate"] = surrogate
        attacks[TRANSFER_ROW] = {"attack": "transfer", "steps": 5 * cfg.attack_steps}
    table = evaluate(model, x, y, attacks=attacks, threat=threat, batch_size=cfg.eval_batch_size,
                     seed=cfg.seed, masks_dir=masks_dir, live=live)
    if not checked:
        return table, []
    budget = CheckBudget(pgd_steps=cfg.attack_steps, strong_steps=5 * cfg.attack_steps,
                         square_queries=cfg.aa_queries)
    # reuses the table's FGSM, PGD, Square and transfer masks
    flags = masking_checks(model, x, y, threat=threat, results=table, surrogate=surrogate,
                           budget=budget, batch_size=cfg.eval_batch_size, seed=cfg.seed)
    return table, flags
