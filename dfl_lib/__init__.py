"""dfl_lib: helpers for the dfl-study notebooks (data, models with the Defensive Feature Layer,
losses, attacks, training, evaluation, plotting and run I/O).

The public names, one line each, are in `PUBLIC` (and `__all__`); they are imported lazily, so
`import dfl_lib` stays cheap and `dfl_lib.<name>` loads only the module that defines it.
Notebooks use these names only. (`evaluate` and `train` are also module names, which Python
binds on the package once imported, so the functions are reached as `dfl_lib.evaluate.evaluate`
and `dfl_lib.train.train`, or through `evaluate_run` / `train_run`.)
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> (defining module, what it is)
PUBLIC = {
    # errors (a user's mistake, told in one line; the command line exits 2 or 1 on them)
    "UsageError": ("errors", "a value, name or shape the library cannot mean (a ValueError)"),
    "DataFileError": ("errors", "a data, checkpoint or run file missing, truncated or unreadable (an OSError)"),
    # configuration
    "make_config": ("config", "a run's config: paper defaults -> dataset -> method -> profile -> overrides"),
    "RunConfig": ("config", "the frozen run configuration (the paper's values as defaults)"),
    "PROFILES": ("config", "the smoke / quick / paper profiles and their listed deviations"),
    "profile_deviations": ("config", "how a profile departs from the paper, as texts for reports"),
    "resolve_device": ("device", "'auto' -> CUDA when present, else the CPU"),
    # data
    "load_dataset": ("data", "a dataset as in-memory uint8 tensors with seeded balanced subsets"),
    "to_float": ("data", "uint8 images -> float in [0, 1]"),
    # models and losses
    "build_model": ("models", "a ResNet-18/34/50 or WideResNet, with or without the DFL"),
    "MODELS": ("models", "the model registry"),
    "build_loss": ("losses", "a training loss by name (CE, PCL, centre, AM-softmax, Mustafa's)"),
    "LOSSES": ("losses", "the loss registry"),
    # attacks and evaluation
    "ATTACKS": ("attacks", "our attacks by name (fgsm, bim, mim, pgd, cw, cw_pgd)"),
    "run_attack": ("attacks", "run an attack by name on a batch"),
    "robust_accuracy": ("evaluate", "accuracy under one attack, with a Wilson interval and a mask"),
    "eval_subset": ("evaluate", "the fixed, seeded, class-balanced evaluation subset"),
    "masking_checks": ("masking", "the seven gradient-masking sanity checks"),
    # runs
    "build_components": ("train", "the model and loss a config describes"),
    "train_run": ("experiment", "load data, build and train the run a config describes"),
    "evaluate_run": ("experiment", "evaluate a run with a suite; metrics with provenance, reused by key"),
    "attack_suite": ("suites", "the 'paper' or 'full' attack suite of a config, as data"),
    "paper_column_rows": ("suites", "which row stands for each of the paper's columns"),
    "BASELINE_NOTES": ("methods", "what each baseline follows of its authors' code, and what differs"),
    # figures and tables
    "curve_grid": ("plots", "training curves from run histories, panels by row and metric"),
    "format_accuracy_table": ("tables", "a plain-text table of evaluation rows, one column per run"),
}
__all__ = ["__version__", *PUBLIC]


def __getattr__(name: str):
    if name in PUBLIC:
        module = importlib.import_module(f".{PUBLIC[name][0]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'dfl_lib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(PUBLIC))
