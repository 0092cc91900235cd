"""The model notebook 06's explorer shows: a trained model from committed weights (the default
when the notebook is opened by hand: the quick study's PGD-trained DFL + PCL, seed 0, so the
slider starts on a model in the field's regime without training anything), or the run of a
profile's MNIST table cell (what the study's own run of the notebook explores).

    subject = explore_subject(weights="../reports/quick/record/weights/<run>.pt")
    subject["model"], subject["data"], subject["label"], subject["name"]
"""
from __future__ import annotations

from pathlib import Path

from ..experiments.data import load_data
from ..experiments.trained import load_model, saved_config
from .plan import SETTINGS, cell_config
from .records import load_run

__all__ = ["explore_subject"]

# the study's name for a run's training setting, from its training attack (plan.SETTINGS read
# backwards); another attack is named as "<attack> training"
_SETTING_OF_ATTACK = {attack: setting for setting, attack in SETTINGS.items()}


def explore_subject(*, weights: str = "", profile: str = "smoke", row: str = "dfl_pcl",
                    setting: str = "adversarial training", runs_root=None, data_root=None,
                    device: str = "auto") -> dict:
    """{"model" (eval mode), "data" (its dataset, as the run loaded it), "label" (one line: the
    architecture, loss, setting, seed and run), "name" (the run's folder name)}.

    weights: a record's weights file, a run folder or a run checkpoint: that model, never
    trained, on the CPU or `device`; "" for the run of `profile`'s MNIST table cell (row,
    setting, seed 0), trained if missing (`records.load_run`). Raises DataFileError naming a
    weights path that holds no model, MissingDataError for a missing data root."""
    if weights:
        cfg = saved_config(weights)
        model = load_model(weights, device="cpu" if device == "auto" else device)
        data = load_data(cfg, root=data_root)
        path = Path(weights)
        name = path.name if path.is_dir() else path.stem
    else:
        cfg = cell_config(profile, dataset="mnist", row=row, setting=setting, device=device)
        run = load_run(cfg, runs_root=runs_root, data_root=data_root)
        model, data, name = run["model"].eval(), run["data"], run["run_dir"].name
    trained = _SETTING_OF_ATTACK.get(cfg.train_attack, f"{cfg.train_attack} training")
    label = (f"{cfg.model} (width {cfg.width}){' + DFL' if cfg.dfl else ''}, "
             f"{cfg.loss.upper()} loss, {trained}, seed {cfg.seed} (run {name})")
    return {"model": model, "data": data, "label": label, "name": name}
