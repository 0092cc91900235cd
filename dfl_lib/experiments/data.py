"""The data a run trains and is evaluated on: its dataset's training subset (poisoned where the
config says: `experiments.poisoned`, crafted once under the runs folder), validation hold-out
and full test set.

    data = load_data(cfg, root=None, runs_root="runs/quick")
"""
from __future__ import annotations

from ..config import RunConfig
from ..data.datasets import load_dataset
from .poisoned import poison_dataset

__all__ = ["load_data"]


def load_data(cfg: RunConfig, *, root=None, runs_root=None):
    """The dataset `cfg` names (`data.datasets.load_dataset`), its subsets drawn with the run's
    seed; a poisoned run's with its `poison_seed`: the poisoned training set is the attacker's,
    so the seeds of a poisoning cell train victims (initialisation, batch order) on one set.
    Raises what `load_dataset` raises (MissingDataError, DataFileError, UsageError)."""
    subset_seed = cfg.seed if cfg.poison == "none" else cfg.poison_seed
    data = load_dataset(cfg.dataset, root=root, path=cfg.data_path or None,
                        n_train=cfg.n_train or None, n_val=cfg.n_val, seed=subset_seed)
    if cfg.poison == "none":
        return data
    return poison_dataset(cfg, data, runs_root=runs_root)
