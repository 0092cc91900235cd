"""The plan's finished runs as records for figures: {"history": [...], labels...}.

Each loader goes through `train_run`, so a finished run is loaded (never retrained) and a
missing one is trained, with the plan's own config.

    records = depth_records("quick", runs_root="runs/quick")   # Figures 1, 3, 5
"""
from __future__ import annotations

from ..errors import DataFileError
from ..experiments.run import finished_metrics, train_and_evaluate, train_run
from ..paper.comparison import NOT_RUN, ROW_LABELS, paper_cells, table_dataset
from ..paper.numbers import TABLES
from ..profiles import get_profile
from .plan import (DEPTHS, DEPTH_CONTROLS, HEADLINE_ROWS, ROW_OVERRIDES, SETTINGS, TABLE_ROWS,
                   cell_config, cell_seeds, datasets, depth_config, headline_n_eval,
                   headline_suite, table_rows_of)

__all__ = ["with_errors", "depth_records", "component_records", "defence_records", "load_run",
           "cell_results", "MissingRuns", "depth_records_from_report", "DEPTH_LABELS",
           "SETTING_LABELS"]

DEPTH_LABELS = {"resnet18": "ResNet-18", "resnet34": "ResNet-34", "resnet50": "ResNet-50"}
SETTING_LABELS = {"adversarial training": "PGD-10 training", "no defence": "no defence"}


def load_run(cfg, *, runs_root=None, data_root=None) -> dict:
    """{"model", "loss", "data", "history", "run_dir"} of a plan run (trained if missing)."""
    run = train_run(cfg, data_root=data_root, runs_root=runs_root, progress=False)
    return {**run, "history": with_errors(run["history"])}


def with_errors(history: list[dict]) -> list[dict]:
    """The history with validation errors beside the accuracies (Figure 3 plots errors)."""
    out = []
    for epoch in history:
        extra = {f"{k[:-4]}_error": 1.0 - v for k, v in epoch.items()
                 if k in ("val_acc", "val_adv_acc") and v is not None}
        out.append({**epoch, **extra})
    return out


def depth_records(profile: str, *, runs_root=None, data_root=None,
                  device: str = "auto") -> list[dict]:
    """One record per run of the depth study (MNIST, CE): every depth x DFL with PGD training
    for each of the profile's depth seeds, with clean training for seed 0, and the controls
    without the lr warm-up (`plan.DEPTH_CONTROLS`, warmup False). A PGD-trained run's
    "evaluation" is its end evaluation (suite "depth" on `Profile.depth_eval_n` test images:
    PGD-10, PGD-50, AutoAttack, with per-example masks), None where the profile has none."""
    specs = []
    for seed in get_profile(profile).depth_seeds:
        for setting in ("adversarial training", "no defence"):
            if setting == "no defence" and (seed != 0 or not get_profile(profile).depth_clean):
                continue
            specs += [(model, dfl, setting, seed, True) for model in DEPTHS for dfl in (False, True)]
    if get_profile(profile).depth_seeds:
        specs += [(model, dfl, setting, 0, False) for model, dfl, setting in DEPTH_CONTROLS]
    out = []
    for model, dfl, setting, seed, warmup in specs:
        cfg = depth_config(profile, model=model, dfl=dfl, setting=setting, seed=seed,
                           warmup=warmup, device=device)
        run = load_run(cfg, runs_root=runs_root, data_root=data_root)
        n_eval = get_profile(profile).depth_eval_n
        evaluation = (train_and_evaluate(cfg.replace(n_eval=n_eval), suite="depth",
                                         data_root=data_root, runs_root=runs_root,
                                         progress=False)
                      if n_eval and warmup and setting == "adversarial training" else None)
        out.append({"history": run["history"], "depth": DEPTH_LABELS[model],
                    "evaluation": evaluation,
                    "model": model, "dfl": dfl, "seed": seed, "warmup": warmup,
                    "variant": "with DFL" if dfl else "without DFL",
                    "setting": SETTING_LABELS[setting], "run": run["run_dir"].name,
                    "n_val": len(run["data"].y_val), "n_train": len(run["data"].y_train),
                    "monitor_size": min(cfg.monitor_size, len(run["data"].y_val)),
                    "lr_warmup_epochs": cfg.lr_warmup_epochs})
    return out


def depth_records_from_report(metrics: dict, *, profile: str) -> list[dict]:
    """The records `depth_records` gives, rebuilt from a depth notebook's committed metrics
    (`reports/<part>/01-depth/metrics.json`: its "final" list names every run, its "curves"
    hold every run's history) without the runs themselves: a committed report's runs re-judged
    by today's claims. Image counts (training set, validation set, PGD-10 monitor) are the
    profile's depth configs' (`plan.depth_config`). DataFileError naming a run whose curve is
    missing."""
    labels = {v: k for k, v in DEPTH_LABELS.items()}
    settings = {v: k for k, v in SETTING_LABELS.items()}
    out = []
    for f in metrics["final"]:
        key = (f"{f['depth']} {f['variant']}, {f['setting']}, s{f['seed']}"
               f"{'' if f.get('warmup', True) else ', no warm-up'}")
        if key not in metrics["curves"]:
            raise DataFileError(f"the depth report's curves have no run {key!r}")
        model, dfl = labels[f["depth"]], f["variant"] == "with DFL"
        cfg = depth_config(profile, model=model, dfl=dfl, setting=settings[f["setting"]],
                           seed=f["seed"], warmup=f.get("warmup", True))
        out.append({"history": with_errors(metrics["curves"][key]), "depth": f["depth"],
                    "evaluation": None,  # a report's curves hold no end evaluation's masks
                    "model": model, "dfl": dfl, "seed": f["seed"],
                    "warmup": f.get("warmup", True), "variant": f["variant"],
                    "setting": f["setting"], "run": f.get("run", key), "n_val": cfg.n_val,
                    "n_train": cfg.n_train, "monitor_size": min(cfg.monitor_size, cfg.n_val),
                    "lr_warmup_epochs": cfg.lr_warmup_epochs})
    return out


def component_records(profile: str, *, dataset: str, runs_root=None, data_root=None,
                      device: str = "auto") -> list[dict]:
    """Figure 6a: DFL, PCL and both under PGD training, on `dataset`, every seed the plan
    trains each with."""
    out = []
    for row, label in ((r, ROW_LABELS[r]) for r in ("dfl", "pcl", "dfl_pcl")):
        if row not in table_rows_of(profile):
            continue
        for seed in cell_seeds(profile, row=row, setting="adversarial training"):
            cfg = cell_config(profile, dataset=dataset, row=row, setting="adversarial training",
                              seed=seed, device=device)
            run = load_run(cfg, runs_root=runs_root, data_root=data_root)
            out.append({"history": run["history"], "component": label, "row": row,
                        "dataset": dataset, "kind": "PGD-10 training", "seed": seed,
                        "run": run["run_dir"].name, "n_val": len(run["data"].y_val)})
    return out


def defence_records(profile: str, *, dataset: str, runs_root=None, data_root=None,
                    device: str = "auto") -> list[dict]:
    """Figure 6b: the ResNet baseline with no defence and with PGD training (seed 0)."""
    out = []
    for setting in SETTINGS:
        cfg = cell_config(profile, dataset=dataset, row="resnet", setting=setting, device=device)
        run = load_run(cfg, runs_root=runs_root, data_root=data_root)
        out.append({"history": run["history"], "setting": SETTING_LABELS[setting],
                    "dataset": dataset, "model": "ResNet (CE)", "seed": cfg.seed,
                    "run": run["run_dir"].name})
    return out


def cell_results(profile: str, *, runs_root=None, data_root=None, device: str = "auto",
                 finished_only: bool = False) -> dict[tuple[str, str, str], dict]:
    """{(dataset, row, setting): {"per_seed": [the 'table' suite's metrics, one per seed],
    "headline": the headline suite's metrics (seed 0) or None}} for every cell group of the
    paper's tables that the plan runs: the finished results the paper comparison reads
    (`dfl_lib.paper.comparison.table_rows`). Each evaluation goes through `evaluate_run`, so a
    finished one is read from its metrics file and a missing one is computed here, by the
    runner's side, never by the comparison. `finished_only`: nothing is trained or evaluated;
    MissingRuns (naming the first missing run and how many) when runs_root lacks one."""
    if finished_only:
        def evaluate(cfg, *, suite):
            found = finished_metrics(cfg, suite=suite, data_root=data_root, runs_root=runs_root)
            if found is None:
                missing.append(f"{cfg.dataset} | {cfg.model} | {cfg.loss} | {cfg.train_attack} "
                               f"| s{cfg.seed} ({suite} suite)")
            return found
    else:
        def evaluate(cfg, *, suite):
            return train_and_evaluate(cfg, suite=suite, data_root=data_root, runs_root=runs_root,
                                      progress=False)
    missing: list[str] = []

    out = {}
    for table in TABLES:
        here = table_dataset(table, among=datasets(profile))
        if here not in datasets(profile):
            continue
        for dataset, row, setting in paper_cells(table, dataset=here):
            key = (dataset, row, setting)
            if key in out or (row, setting) in NOT_RUN or row not in ROW_OVERRIDES \
                    or setting not in SETTINGS:
                continue
            if row in TABLE_ROWS and row not in table_rows_of(profile):
                continue
            headline = (row, setting) in HEADLINE_ROWS
            configs = [cell_config(profile, dataset=dataset, row=row, setting=setting, seed=s,
                                   device=device)
                       for s in cell_seeds(profile, row=row, setting=setting)]
            if not configs:  # a cell the profile leaves to another (single_seed_cells False)
                continue
            per_seed = [evaluate(cfg, suite="table") for cfg in configs]
            head = None
            if headline:
                n_eval = headline_n_eval(profile)
                cfg = configs[0].replace(n_eval=n_eval) if n_eval else configs[0]
                head = evaluate(cfg, suite=headline_suite(profile))
            out[key] = {"per_seed": per_seed, "headline": head}
    if missing:
        raise MissingRuns(f"{runs_root} lacks {len(missing)} finished evaluation(s) of the "
                          f"tables, the first: {missing[0]}")
    return out


class MissingRuns(DataFileError):
    """`cell_results(finished_only=True)` met a run or evaluation runs_root does not hold."""
