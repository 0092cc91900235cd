"""The plan's finished runs as records for figures: {"history": [...], labels...}.

Each loader goes through `train_run`, so a finished run is loaded (never retrained) and a
missing one is trained, with the plan's own config.

    records = depth_records("quick", runs_root="runs/quick")   # Figures 1, 3, 5
"""
from __future__ import annotations

from .plan import DEPTHS, SETTINGS, cell_config, depth_config

__all__ = ["with_errors", "depth_records", "component_records", "defence_records", "load_run", "DEPTH_LABELS",
           "SETTING_LABELS"]

DEPTH_LABELS = {"resnet18": "ResNet-18", "resnet34": "ResNet-34", "resnet50": "ResNet-50"}
SETTING_LABELS = {"adversarial training": "PGD-10 training", "no defence": "no defence"}


def load_run(cfg, *, runs_root=None, data_root=None) -> dict:
    """{"model", "loss", "data", "history", "run_dir"} of a plan run (trained if missing)."""
    from .experiment import train_run

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
    """One record per depth x DFL x setting of the depth study (MNIST, CE)."""
    out = []
    for setting in ("adversarial training", "no defence"):
        for model in DEPTHS:
            for dfl in (False, True):
                cfg = depth_config(profile, model=model, dfl=dfl, setting=setting, device=device)
                run = load_run(cfg, runs_root=runs_root, data_root=data_root)
                out.append({"history": run["history"], "depth": DEPTH_LABELS[model],
                            "model": model, "dfl": dfl,
                            "variant": "with DFL" if dfl else "without DFL",
                            "setting": SETTING_LABELS[setting], "run": run["run_dir"].name,
                            "n_val": len(run["data"].y_val)})
    return out


def component_records(profile: str, *, dataset: str, runs_root=None, data_root=None,
                      device: str = "auto") -> list[dict]:
    """Figure 6a: DFL, PCL and both under PGD training (seed 0), on `dataset`."""
    labels = {"dfl": "DFL", "pcl": "PCL", "dfl_pcl": "DFL + PCL"}
    out = []
    for row, label in labels.items():
        cfg = cell_config(profile, dataset=dataset, row=row, setting="adversarial training",
                          device=device)
        run = load_run(cfg, runs_root=runs_root, data_root=data_root)
        out.append({"history": run["history"], "component": label, "row": row,
                    "dataset": dataset, "kind": "PGD-10 training", "run": run["run_dir"].name})
    return out


def defence_records(profile: str, *, dataset: str, runs_root=None, data_root=None,
                    device: str = "auto") -> list[dict]:
    """Figure 6b: the ResNet baseline with no defence and with PGD training (seed 0)."""
    out = []
    for setting in SETTINGS:
        cfg = cell_config(profile, dataset=dataset, row="resnet", setting=setting, device=device)
        run = load_run(cfg, runs_root=runs_root, data_root=data_root)
        out.append({"history": run["history"], "setting": SETTING_LABELS[setting],
                    "dataset": dataset, "model": "ResNet (CE)", "run": run["run_dir"].name})
    return out
