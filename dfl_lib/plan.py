"""The notebook study's run plan: every training run and evaluation the notebooks need, for a
profile, in the order the runner executes them.

Notebooks never build their own configs: they ask the plan (`cell_config`, `depth_config`), so a
configuration two notebooks need is the same config, trained once and reused by the run cache.

    items = study_plan("quick")          # [PlanItem(key, cfg, suite, n_eval, notebooks), ...]
    cfg = cell_config("quick", dataset="mnist", row="dfl_pcl", setting="adversarial training")
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import RunConfig, make_config
from .errors import UsageError

__all__ = ["PlanItem", "ROW_OVERRIDES", "SETTINGS", "DATASETS", "TABLE_ROWS", "HEADLINE_ROWS",
           "DEPTHS", "study_plan", "cell_config", "depth_config", "seeds", "table_backbone",
           "headline_suite", "headline_n_eval", "plan_deviations"]

# the paper's two datasets (CIFAR-10 here is the JPEG copy: ../shared/data/README.md)
DATASETS = ("mnist", "cifar10_jpeg")
# "no defence" = trained without attacks; "adversarial training" = PGD-10 training (the paper's
# tables do not say which of its three training attacks they use; PGD is its main one)
SETTINGS = {"no defence": "none", "adversarial training": "pgd"}
# a table row -> what it changes on the backbone (the rows' keys are paper_results.csv's)
ROW_OVERRIDES = {
    "resnet": {"dfl": False, "loss": "ce"},
    "mustafa": {"method": "mustafa"},
    "dynamic": {"method": "dynamic"},
    "dfl": {"dfl": True, "loss": "ce"},
    "pcl": {"dfl": False, "loss": "pcl"},
    "dfl_pcl": {"dfl": True, "loss": "pcl"},
    "wrn": {"model": "wrn", "dfl": True, "loss": "pcl"},
}
# rows per table cell group; Dynamic is adversarial training by construction (no "no defence"
# run exists for it) and Table 6 (WideResNet) is CIFAR-10 adversarial training only
TABLE_ROWS = ("resnet", "mustafa", "dynamic", "dfl", "pcl", "dfl_pcl")
# the headline comparison, with every seed of the profile
HEADLINE_ROWS = (("resnet", "no defence"), ("resnet", "adversarial training"),
                 ("dfl_pcl", "adversarial training"))
DEPTHS = ("resnet18", "resnet34", "resnet50")
# what stands for the paper's ResNet-50 in Tables 1-5 (a listed deviation where it differs)
_BACKBONE = {"smoke": "resnet18", "quick": "resnet18", "paper": "resnet50"}
_SEEDS = {"smoke": (0, 1), "quick": (0, 1, 2), "paper": (0, 1, 2)}
# the headline cells' strong evaluation: its suite and test subset (0 = the profile's n_eval)
_HEADLINE = {"smoke": ("headline", 0), "quick": ("headline", 100), "paper": ("full", 0)}
# engineering settings per profile (EVAL_ONLY fields: they never change a run's key). Smoke runs
# contiguous: torch 2.14.1 on this CPU aborts ("double free or corruption") in the input-gradient
# backward of a channels-last width-4 ResNet-18 with 2 threads (FAB-T inside AutoAttack on 3-5
# CIFAR-10 images), and never with contiguous memory or 1 thread
_ENGINEERING = {"smoke": {"channels_last": False}, "quick": {}, "paper": {}}
# evaluation subsets per profile and dataset where they differ from the profile's n_eval
# (EVAL_ONLY: a smaller subset re-evaluates, never retrains)
_N_EVAL = {"quick": {"cifar10_jpeg": 250}}


@dataclass(frozen=True)
class PlanItem:
    key: str                 # e.g. "mnist | dfl_pcl | adversarial training | s0"
    cfg: RunConfig
    suite: str | None        # None: train only (the curves need no attack table)
    notebooks: tuple[str, ...]
    role: str                # "depth", "cell", "surrogate" or "headline"


def table_backbone(profile: str) -> str:
    return _BACKBONE[profile]


def seeds(profile: str) -> tuple[int, ...]:
    return _SEEDS[profile]


def headline_suite(profile: str) -> str:
    return _HEADLINE[profile][0]


def headline_n_eval(profile: str) -> int:
    return _HEADLINE[profile][1]


def cell_config(profile: str, *, dataset: str, row: str, setting: str, seed: int = 0,
                device: str = "auto") -> RunConfig:
    """The run behind one table cell group (a row of a table, in one training setting)."""
    if row not in ROW_OVERRIDES:
        raise UsageError(f"unknown table row {row!r}; known: {', '.join(ROW_OVERRIDES)}")
    if setting not in SETTINGS:
        raise UsageError(f"unknown setting {setting!r}; known: {', '.join(SETTINGS)}")
    if row == "dynamic" and setting == "no defence":
        raise UsageError("Dynamic is adversarial training by construction: it has no "
                         "'no defence' run")
    base = {"model": table_backbone(profile), "dataset": dataset, "seed": seed,
            "train_attack": SETTINGS[setting], "device": device, **_ENGINEERING[profile]}
    if dataset in _N_EVAL.get(profile, {}):
        base["n_eval"] = _N_EVAL[profile][dataset]
    return make_config(profile, **{**base, **ROW_OVERRIDES[row]})


def depth_config(profile: str, *, model: str, dfl: bool, setting: str, seed: int = 0,
                 device: str = "auto") -> RunConfig:
    """A run of the depth study (Figures 1, 3, 5): MNIST, CE, with or without the DFL. At the
    table backbone's depth it is the same config as the table's 'resnet' / 'dfl' cells."""
    return make_config(profile, dataset="mnist", model=model, dfl=dfl, loss="ce", seed=seed,
                       train_attack=SETTINGS[setting], device=device, **_ENGINEERING[profile])


def _cells(profile: str, device: str):
    """(dataset, row, setting, seed) of every table cell run, headline seeds included."""
    for dataset in DATASETS:
        for setting in SETTINGS:
            for row in TABLE_ROWS:
                if row == "dynamic" and setting == "no defence":
                    continue
                for seed in (seeds(profile) if (row, setting) in HEADLINE_ROWS else (0,)):
                    yield dataset, row, setting, seed
    yield "cifar10_jpeg", "wrn", "adversarial training", 0


def study_plan(profile: str, *, device: str = "auto") -> list[PlanItem]:
    """Every run and evaluation of the study, cheapest knowledge first: the depth study's
    curves, then the table cells (one 'table' suite each), then the headline cells' strong
    evaluation (AutoAttack, adaptive attack, transfer and masking checks) on seed 0."""
    if profile not in _BACKBONE:
        raise UsageError(f"unknown profile {profile!r}; known: {', '.join(_BACKBONE)}")
    items: list[PlanItem] = []
    seen: dict[RunConfig, PlanItem] = {}

    def add(item: PlanItem) -> None:
        old = seen.get(item.cfg)
        if old is not None and old.suite == item.suite:  # the same run, needed twice
            merged = PlanItem(old.key, old.cfg, old.suite, old.notebooks + item.notebooks,
                              old.role)
            items[items.index(old)] = merged
            seen[item.cfg] = merged
            return
        items.append(item)
        seen[item.cfg] = item

    for model in DEPTHS:
        for dfl in (False, True):
            for setting in SETTINGS:
                cfg = depth_config(profile, model=model, dfl=dfl, setting=setting, device=device)
                add(PlanItem(f"mnist | {model}{' + DFL' if dfl else ''} | {setting}", cfg, None,
                             ("01-depth", "04-training-curves"), "depth"))
    for dataset, row, setting, seed in _cells(profile, device):
        cfg = cell_config(profile, dataset=dataset, row=row, setting=setting, seed=seed,
                          device=device)
        books = ("03-robustness-tables",) + (("04-training-curves",) if dataset == "mnist"
                                              else ())
        add(PlanItem(f"{dataset} | {row} | {setting} | s{seed}", cfg, "table", books, "cell"))
    suite, n_eval = headline_suite(profile), headline_n_eval(profile)
    for dataset in DATASETS:
        for row, setting in HEADLINE_ROWS:
            cfg = cell_config(profile, dataset=dataset, row=row, setting=setting, seed=0,
                              device=device)
            cfg = cfg.replace(n_eval=n_eval) if n_eval else cfg
            books = ("03-robustness-tables", "05-feature-space") if dataset == "mnist" else \
                ("03-robustness-tables",)
            add(PlanItem(f"{dataset} | {row} | {setting} | s0 | {suite}", cfg, suite, books,
                         "headline"))
    return items


# How the plan itself departs from the paper, per profile (the config's own deviations are
# `config.profile_deviations`).
_PLAN_DEVIATIONS = {
    "all": ("the tables' 'adversarial training' rows are PGD-10 training (the paper trains with "
            "FGSM, PGD and C&W and does not say which its tables use)",
            "Dynamic has no 'no defence' run (it is adversarial training by construction)",
            "the paper's C&W column is CW-inf (the C&W margin inside L-inf PGD); the literal "
            "C&W-L2 setting is a labelled, non-informative row"),
    "smoke": ("plumbing only: every table cell, 2 seeds for the headline cells",),
    "quick": ("ResNet-18 (width 16) stands for the paper's ResNet-50 in Tables 1-5; the depth "
              "study (Figures 1, 3, 5) keeps ResNet-18/34/50",
              "3 seeds for the headline cells (no defence, PGD training, DFL + PCL with PGD "
              "training), 1 seed elsewhere",
              "CIFAR-10 cells evaluated on 250 test images (MNIST: 500)",
              "AutoAttack, the gradient-masking checks and transfer only on the headline cells, "
              "seed 0, on 100 test images; every cell gets PGD-50 and the per-example worst case",
              "C&W-L2 with binary search is left out of the quick study (5 x 1,000 Adam steps "
              "per image would cost more than the rest of the evaluation); it runs in the paper "
              "profile's 'full' suite"),
    "paper": ("3 seeds for the headline cells, 1 elsewhere",),
}


def plan_deviations(profile: str) -> tuple[str, ...]:
    """How the study plan departs from the paper at this profile (for reports)."""
    if profile not in _BACKBONE:
        raise UsageError(f"unknown profile {profile!r}; known: {', '.join(_BACKBONE)}")
    return _PLAN_DEVIATIONS["all"] + _PLAN_DEVIATIONS[profile]
