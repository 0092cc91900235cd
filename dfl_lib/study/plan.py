"""The notebook study's run plan: every training run and evaluation the notebooks need, for a
profile, in the order the runner executes them.

Notebooks never build their own configs: they ask the plan (`cell_config`, `depth_config`), so a
configuration two notebooks need is the same config, trained once and reused by the run cache.

    items = study_plan("quick")          # [PlanItem(key, cfg, suite, n_eval, notebooks), ...]
    cfg = cell_config("quick", dataset="mnist", row="dfl_pcl", setting="adversarial training")
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import RunConfig, make_config
from ..errors import UsageError
from ..profiles import get_profile

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
@dataclass(frozen=True)
class PlanItem:
    key: str                 # e.g. "mnist | dfl_pcl | adversarial training | s0"
    cfg: RunConfig
    suite: str | None        # None: train only (the curves need no attack table)
    notebooks: tuple[str, ...]
    role: str                # "depth", "cell", "surrogate" or "headline"


def table_backbone(profile: str) -> str:
    """What stands for the paper's ResNet-50 in Tables 1-5 (`profiles.Profile.backbone`)."""
    return get_profile(profile).backbone


def seeds(profile: str) -> tuple[int, ...]:
    """The headline cells' seeds at this profile."""
    return get_profile(profile).seeds


def headline_suite(profile: str) -> str:
    """The suite of the headline cells' strong evaluation."""
    return get_profile(profile).headline_suite


def headline_n_eval(profile: str) -> int:
    """The headline evaluation's test subset (0 = the run's n_eval)."""
    return get_profile(profile).headline_n_eval


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
    p = get_profile(profile)
    base = {"model": p.backbone, "dataset": dataset, "seed": seed,
            "train_attack": SETTINGS[setting], "device": device, **p.engineering}
    if dataset in p.n_eval_per_dataset:
        base["n_eval"] = p.n_eval_per_dataset[dataset]
    return make_config(profile, **{**base, **ROW_OVERRIDES[row]})


def depth_config(profile: str, *, model: str, dfl: bool, setting: str, seed: int = 0,
                 device: str = "auto") -> RunConfig:
    """A run of the depth study (Figures 1, 3, 5): MNIST, CE, with or without the DFL. At the
    table backbone's depth it is the same config as the table's 'resnet' / 'dfl' cells."""
    return make_config(profile, dataset="mnist", model=model, dfl=dfl, loss="ce", seed=seed,
                       train_attack=SETTINGS[setting], device=device,
                       **get_profile(profile).engineering)


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
    get_profile(profile)  # the one check of the name
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


# How the plan departs from the paper at every profile (each profile's own: its
# `plan_deviations` in dfl_lib/profiles.py; the config's: `config.profile_deviations`).
_PLAN_DEVIATIONS_ALL = (
    "the tables' 'adversarial training' rows are PGD-10 training (the paper trains with FGSM, "
    "PGD and C&W and does not say which its tables use)",
    "Dynamic has no 'no defence' run (it is adversarial training by construction)",
    "the paper's C&W column is CW-inf (the C&W margin inside L-inf PGD); the literal C&W-L2 "
    "setting is a labelled, non-informative row")


def plan_deviations(profile: str) -> tuple[str, ...]:
    """How the study plan departs from the paper at this profile (for reports)."""
    return _PLAN_DEVIATIONS_ALL + get_profile(profile).plan_deviations
