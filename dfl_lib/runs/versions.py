"""What each computation of the study is, as a declared version: run keys follow what a run
computes, not where its code lives.

A run's key is its config (what it learns), its data's fingerprint and the version of each
computation it runs (`computation_version`). Moving, renaming or splitting modules, reordering
functions and editing prose keep every key, so the code is free to move. A change that alters
what a computation gives must bump its number here, in the same commit: the golden tests
(`tests/test_golden.py`) recompute small cases of every method, loss, precision, poison and
attack path and fail when a result moves while its version stands still (re-record them with
`python tests/golden.py --write` after the bump).

    computation_version("train")              # "train=1"
    computation_version("poison", "train")    # "poison=1,train=1"
"""
from __future__ import annotations

from ..errors import UsageError

__all__ = ["VERSIONS", "computation_version"]

# name -> version; bump one when what it computes changes (a new loss term, another schedule,
# a fixed attack step), never for a refactor. Each name's comment says what it covers.
VERSIONS = {
    # a trained run: data subsets and augmentation, models (the DFL), losses (PCL, the
    # baselines'), the training attacks, the defences' training steps, optimiser, schedule,
    # precision, the per-epoch validation monitor (history.json). A measurement added to the
    # history that moves no weight and no recorded number (the gradient norms) keeps the
    # version: runs made before lack the field, and its readers say so
    "train": 1,
    # a poisoned training set: the poisons' crafting (dfl_lib.poisoning), the reference model
    # they are crafted against, the poisoned subset
    "poison": 1,
    # an evaluation: the attack suites and every attack they run, the robust-accuracy loop,
    # the evaluation subset, the transfer surrogate, the masking checks (metrics-<suite>.json)
    "evaluate": 1,
    # a poisoned run's own measurements (notebook 07): attack success, clean accuracy, detectors
    "poison_metrics": 1,
    # Figure 4's 2-D networks and their training loop
    "geometry": 1,
}


def computation_version(*names: str) -> str:
    """"name=version,..." for the computations `names` (sorted, each once); UsageError for an
    unknown name."""
    unknown = [n for n in names if n not in VERSIONS]
    if unknown or not names:
        raise UsageError(f"unknown computations {unknown}; known: {', '.join(VERSIONS)}")
    return ",".join(f"{n}={VERSIONS[n]}" for n in sorted(set(names)))
