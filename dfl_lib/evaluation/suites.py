"""The evaluation suites as data: which attack rows each suite runs, and each row's settings as
a template over the run's config (like AutoAttack's `set_version`), under one threat model the
suite sets once (as AutoAttack's evaluator does): the L-inf ball of the config's eps.

    threat = threat_model(cfg)        # ThreatModel("Linf", cfg.eps), built here only
    attack_suite(cfg, suite="full")   # {row name: {"attack": ..., settings...}}, plain data
    evaluate(model, x, y, attacks=attack_suite(cfg), threat=threat)   # rows take its eps

The L-inf rows name no eps: `evaluate` gives them the threat model's. The C&W-L2 rows keep
their own L2 budget (a second threat model, reported apart).

A settings value that is a string naming a config field (or a derived value below) is read from
the config; anything else is used as it is. Runtime objects an attack needs (the defence's
loss, a surrogate) are not part of a suite: `evaluate(..., live=...)` passes them beside it.
"""
from __future__ import annotations

from ..attacks import REGISTRY
from ..config import RunConfig
from ..errors import UsageError
from ..losses import LOSSES
from .threat import ThreatModel

__all__ = ["ROWS", "SUITES", "CHECKED_SUITES", "PAPER_COLUMNS", "PAPER_SETTING_CW_NOTE",
           "attack_suite", "threat_model", "paper_column_rows"]

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
}
# suites that also run the transfer attack and the gradient-masking checks
CHECKED_SUITES = ("full", "headline")
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
