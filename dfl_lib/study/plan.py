"""The notebook study's run plan: every training run and evaluation the notebooks need, for a
profile, in the order the runner executes them.

Notebooks never build their own configs: they ask the plan (`cell_config`, `depth_config`,
`poison_config`), so a configuration two notebooks need is the same config, trained once and
reused by the run cache. The poisoning study's grid (`poison_grid`) is part of the plan.

    items = study_plan("quick")          # [PlanItem(key, cfg, suite, n_eval, notebooks), ...]
    cfg = cell_config("quick", dataset="mnist", row="dfl_pcl", setting="adversarial training")
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import RunConfig
from ..errors import UsageError
from ..experiments.configs import checked, make_config
from ..experiments.poisoned import adaptive_differs
from ..paper.comparison import paper_dataset
from ..poisoning import POISONS, get_poison
from ..profiles import get_profile

__all__ = ["PlanItem", "ROW_OVERRIDES", "SETTINGS", "DATASETS", "TABLE_ROWS", "HEADLINE_ROWS",
           "DEPTHS", "study_plan", "cell_config", "poison_fraction", "depth_config", "seeds",
           "cell_seeds", "datasets", "table_backbone", "headline_suite", "headline_n_eval",
           "plan_deviations", "DEPTH_CONTROLS", "runs_dir_name", "table_rows_of", "POISON_ROWS",
           "HEADLINE_POISON_ROWS", "HEADLINE_POISONS", "ADVERSARIAL_POISONS", "poison_config",
           "poison_grid"]

# the paper's two datasets (CIFAR-10 here is the JPEG copy: ../shared/data/README.md)
# the datasets a profile may make table cells of: MNIST, CIFAR-10, and its JPEG copy by choice
DATASETS = ("mnist", "cifar10", "cifar10_jpeg")
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
# the depth study's controls for Figure 1 (seed 0): ResNet-50 without the lr warm-up, with and
# without the DFL, under PGD training (the divergence the paper's Figure 1 may show), and the
# DFL one with clean training, which separates "adversarial" from "a deep net at this lr"
DEPTH_CONTROLS = (("resnet50", False, "adversarial training"),
                  ("resnet50", True, "adversarial training"),
                  ("resnet50", True, "no defence"))
@dataclass(frozen=True)
class PlanItem:
    key: str                 # e.g. "mnist | dfl_pcl | adversarial training | s0"
    cfg: RunConfig
    suite: str | None        # None: train only (the curves need no attack table)
    notebooks: tuple[str, ...]
    role: str                # "depth", "cell", "poison" or "headline"


def table_backbone(profile: str) -> str:
    """What stands for the paper's ResNet-50 in Tables 1-5 (`profiles.Profile.backbone`)."""
    return get_profile(profile).backbone


def seeds(profile: str) -> tuple[int, ...]:
    """The profile's seeds (of the cells it trains with every seed: `cell_seeds`)."""
    return get_profile(profile).seeds


def datasets(profile: str) -> tuple[str, ...]:
    """The datasets whose table cells the profile's plan makes."""
    return get_profile(profile).datasets


def cell_seeds(profile: str, *, row: str, setting: str) -> tuple[int, ...]:
    """The seeds a table cell group (row, setting) is trained with at this profile: every seed
    where the profile's `seeded` names it (or is "all"), else seed 0, or none where the profile
    trains no single-seed cells (`Profile.single_seed_cells`) and does not name it among its
    regime anchors (`Profile.anchor_cells`)."""
    p = get_profile(profile)
    if p.seeded == "all" or (row, setting) in p.seeded:
        return p.seeds
    if (row, setting) in p.anchor_cells:
        return (0,)
    return (0,) if p.single_seed_cells else ()


def table_rows_of(profile: str) -> tuple[str, ...]:
    """The table rows the profile's plan trains (`Profile.rows`)."""
    rows = get_profile(profile).rows
    return TABLE_ROWS if rows == "all" else tuple(r for r in TABLE_ROWS if r in rows)


def runs_dir_name(profile: str) -> str:
    """The folder under runs/ holding the profile's runs (quick-full shares quick's)."""
    return get_profile(profile).runs_dir or profile


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
    if row == "wrn":
        # `width` is a ResNet's first stage (64 standard) and a WideResNet's base (16 standard:
        # stages 16k, 32k, 64k); the profile's width scales both alike. Without this the paper
        # profile built WRN-34-10 four times too wide (640 channels in its first stage)
        base["width"] = max(1, make_config(profile, dataset=dataset).width // 4)
    return make_config(profile, **{**base, **ROW_OVERRIDES[row]})


def depth_config(profile: str, *, model: str, dfl: bool, setting: str, seed: int = 0,
                 warmup: bool = True, device: str = "auto") -> RunConfig:
    """A run of the depth study (Figures 1, 3, 5): MNIST, CE, with or without the DFL, at the
    profile's depth-study size (`Profile.depth`; where it has none, the same config as the
    table's 'resnet' / 'dfl' cells at the backbone's depth). warmup=False: the control without
    the lr warm-up, at the profile's control size (`Profile.depth_control`)."""
    p = get_profile(profile)
    extra = dict(p.depth)
    if not warmup:
        extra.update(p.depth_control, lr_warmup_epochs=0.0)
    return make_config(profile, dataset="mnist", model=model, dfl=dfl, loss="ce", seed=seed,
                       train_attack=SETTINGS[setting], device=device, **p.engineering, **extra)


def _cells(profile: str):
    """(dataset, row, setting, seed) of every table cell run of the profile's datasets."""
    for dataset in datasets(profile):
        for setting in SETTINGS:
            for row in table_rows_of(profile):
                if row == "dynamic" and setting == "no defence":
                    continue
                for seed in cell_seeds(profile, row=row, setting=setting):
                    yield dataset, row, setting, seed
    for dataset in datasets(profile):  # Table 6: the WideResNet on CIFAR-10 (or its copy)
        if paper_dataset(dataset) == "cifar10":
            for seed in cell_seeds(profile, row="wrn", setting="adversarial training"):
                yield dataset, "wrn", "adversarial training", seed


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

    depth_books = ("01-depth", "04-training-curves")
    for seed in get_profile(profile).depth_seeds:
        for model in DEPTHS:
            for dfl in (False, True):
                # PGD training (the claims) with every seed; clean training with seed 0
                clean = seed == 0 and get_profile(profile).depth_clean
                for setting in (SETTINGS if clean else ("adversarial training",)):
                    cfg = depth_config(profile, model=model, dfl=dfl, setting=setting,
                                       seed=seed, device=device)
                    name = f"mnist | {model}{' + DFL' if dfl else ''} | {setting} | s{seed}"
                    add(PlanItem(name, cfg, None, depth_books, "depth"))
                    n_eval = get_profile(profile).depth_eval_n
                    if n_eval and setting == "adversarial training":  # robust accuracy
                        add(PlanItem(f"{name} | depth", cfg.replace(n_eval=n_eval), "depth",
                                     ("01-depth",), "depth"))
    for model, dfl, setting in (DEPTH_CONTROLS if get_profile(profile).depth_seeds else ()):
        cfg = depth_config(profile, model=model, dfl=dfl, setting=setting, warmup=False,
                           device=device)
        add(PlanItem(f"mnist | {model}{' + DFL' if dfl else ''} | {setting} | s0 | no warm-up",
                     cfg, None, ("01-depth",), "depth"))
    for dataset, row, setting, seed in _cells(profile):
        cfg = cell_config(profile, dataset=dataset, row=row, setting=setting, seed=seed,
                          device=device)
        books = ("03-robustness-tables",) + (("04-training-curves",) if dataset == "mnist"
                                              else ())
        add(PlanItem(f"{dataset} | {row} | {setting} | s{seed}", cfg, "table", books, "cell"))

    for key, cfg in poison_grid(profile, device=device):
        add(PlanItem(key, cfg, "poison", ("07-data-poisoning",), "poison"))
    suite, n_eval = headline_suite(profile), headline_n_eval(profile)
    for dataset in datasets(profile):
        for row, setting in HEADLINE_ROWS:
            if not cell_seeds(profile, row=row, setting=setting):
                continue  # a cell another profile trains (a part of quick-full)
            cfg = cell_config(profile, dataset=dataset, row=row, setting=setting, seed=0,
                              device=device)
            cfg = cfg.replace(n_eval=n_eval) if n_eval else cfg
            books = ("03-robustness-tables", "05-feature-space") if dataset == "mnist" else \
                ("03-robustness-tables",)
            add(PlanItem(f"{dataset} | {row} | {setting} | s0 | {suite}", cfg, suite, books,
                         "headline"))
    return items


# How the plan departs from the paper at every profile (each profile's own: its
# `plan_deviations` in dfl_lib/profiles.py; the config's: `experiments.configs.profile_deviations`).
# ------------------------------------------------------------------ the poisoning study's grid
# (notebook 07): each poisoned run is the table cell's config at the profile's poisoning size,
# trained on the training set the poison gives (`experiments.poisoned`)

POISON_ROWS = ("resnet", "dfl", "pcl", "dfl_pcl")
# the rows compared with every seed and, for the perturbation poisons and the backdoor, under
# PGD training too (the field's answer to perturbation poisons)
HEADLINE_POISON_ROWS = ("resnet", "dfl_pcl")
HEADLINE_POISONS = ("badnets", "adversarial")
ADVERSARIAL_POISONS = ("badnets", "adversarial", "error_min")


def poison_config(profile: str, *, poison: str, row: str, setting: str, seed: int = 0,
                  fraction: float | None = None, surrogate: str = "resnet",
                  device: str = "auto") -> RunConfig:
    """The run of one poisoning cell: the table cell's config (`plan.cell_config`) at the
    profile's poisoning size (`Profile.poisoning`), trained on the training set poisoned by
    `poison` ("none": the same size, unpoisoned, the reference), crafted against `surrogate`
    ("resnet": the plain ResNet; "victim": the row's own network, `RunConfig.poison_surrogate`).
    UsageError for an unknown poison or a surrogate for a poison that is crafted against none."""
    if poison != "none":
        get_poison(poison)  # UsageError naming the registered poisons
    sizes = dict(get_profile(profile).poisoning)
    if not sizes:
        raise UsageError(f"profile {profile!r} has no poisoning study")
    frac = sizes.pop("fraction")
    for key in ("sweep", "clean_label_sweep", "rows", "seeds", "adversarial_training",
                "poisons", "adaptive"):
        sizes.pop(key, None)
    cfg = cell_config(profile, dataset="mnist", row=row, setting=setting, seed=seed,
                      device=device)
    if poison == "none":
        return checked(cfg.replace(**sizes, poison_surrogate=surrogate))  # UsageError if set
    return checked(cfg.replace(poison=poison, **sizes, poison_surrogate=surrogate,
                               poison_fraction=fraction if fraction is not None else frac))


def poison_fraction(profile: str) -> float:
    """The poisoning grid's default poison rate (`Profile.poisoning["fraction"]`): every cell's,
    but the rate sweeps' (which go above it as well as below: the clean-label backdoor's share
    of its class up to 1). UsageError for a profile without a poisoning study."""
    sizes = get_profile(profile).poisoning
    if not sizes:
        raise UsageError(f"profile {profile!r} has no poisoning study")
    return float(sizes["fraction"])


def poison_grid(profile: str, *, device: str = "auto") -> list[tuple[str, RunConfig]]:
    """(key, config) of every run of the poisoning study, in the order the runner trains them:
    the unpoisoned references, every poison on every row with clean training (seed 0), the
    headline poisons and rows with every seed, the perturbation poisons and the backdoor under
    PGD training, the backdoors' poison-rate sweeps (BadNets', the clean-label backdoor's), and
    the poisons crafted against the victim itself (an attacker who knows the defence,
    `Profile.poisoning["adaptive"]`; by default every poison that is crafted against a network):
    on every defended row with clean training, and with every seed on the headline rows for the
    headline poisons. Their keys end in "| crafted against the victim"; the other keys are as
    before."""
    p = get_profile(profile)
    if not p.poisoning:
        return []
    out: list[tuple[str, RunConfig]] = []

    def add(poison, row, setting, seed=0, fraction=None, surrogate="resnet"):
        cfg = poison_config(profile, poison=poison, row=row, setting=setting, seed=seed,
                            fraction=fraction, surrogate=surrogate, device=device)
        rate = f" | rate {cfg.poison_fraction:g}" if fraction is not None else ""
        adaptive = " | crafted against the victim" if surrogate == "victim" else ""
        key = f"poison | {poison} | {row} | {setting} | s{seed}{rate}{adaptive}"
        if all(cfg != c for _, c in out):
            out.append((key, cfg))

    rows = p.poisoning.get("rows", POISON_ROWS)
    seeds = p.poisoning.get("seeds", p.seeds)
    # every registered poison, a newcomer's included, unless the profile names a few
    poisons = p.poisoning.get("poisons", tuple(POISONS))
    trained = p.poisoning.get("adversarial_training", ADVERSARIAL_POISONS)
    for row in rows:
        add("none", row, "no defence")
    for row in HEADLINE_POISON_ROWS if trained else ():  # the PGD-trained poisons' references
        add("none", row, "adversarial training")
    for poison in poisons:
        for row in rows:
            add(poison, row, "no defence")
    for poison in (x for x in HEADLINE_POISONS if x in poisons):
        for row in HEADLINE_POISON_ROWS:
            for seed in seeds[1:]:
                add(poison, row, "no defence", seed=seed)
    for poison in trained:
        for row in HEADLINE_POISON_ROWS:
            add(poison, row, "adversarial training")
    for fraction in p.poisoning.get("sweep", ()):
        for row in HEADLINE_POISON_ROWS:
            add("badnets", row, "no defence", fraction=fraction)
    # the clean-label backdoor needs a larger share (of its target class) to take hold: at 10%
    # (about 50 images at 5,000) it reached 0.2% success on the plain ResNet (issue 39)
    for fraction in p.poisoning.get("clean_label_sweep", ()) if "clean_label" in poisons else ():
        for row in HEADLINE_POISON_ROWS:
            add("clean_label", row, "no defence", fraction=fraction)
    adaptive = p.poisoning.get("adaptive", tuple(x for x in poisons
                                                 if get_poison(x).needs != "nothing"))
    for poison in adaptive:  # the plain ResNet's own poison is already crafted against itself
        # only where the victim's own poison differs from the plain ResNet's
        # (`experiments.poisoned.adaptive_differs`: error-minimising noise on a PCL-only victim
        # is the same set)
        differ = [r for r in rows if r != "resnet" and adaptive_differs(poison_config(
            profile, poison=poison, row=r, setting="no defence", device=device))]
        for row in differ:
            add(poison, row, "no defence", surrogate="victim")
        if poison in HEADLINE_POISONS:
            for row in (r for r in HEADLINE_POISON_ROWS if r in differ):
                for seed in seeds[1:]:
                    add(poison, row, "no defence", seed=seed, surrogate="victim")
    return out


_PLAN_DEVIATIONS_ALL = (
    "the tables' 'adversarial training' rows are PGD-10 training (the paper trains with FGSM, "
    "PGD and C&W and does not say which its tables use)",
    "Dynamic has no 'no defence' run (it is adversarial training by construction)",
    "the paper's C&W column is CW-inf (the C&W margin inside L-inf PGD); the literal C&W-L2 "
    "setting is a labelled, non-informative row")


def plan_deviations(profile: str) -> tuple[str, ...]:
    """How the study plan departs from the paper at this profile (for reports)."""
    return _PLAN_DEVIATIONS_ALL + get_profile(profile).plan_deviations
