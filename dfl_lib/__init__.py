"""dfl_lib: the library behind the dfl-study notebooks, grouped by the field's concepts.

    data/        datasets in memory, subsets, on-disk readers, augmentation
    models/      ResNets and WideResNet, the Defensive Feature Layer (models/dfl.py)
    losses/      CE, the Polarised Contrastive Loss, centre loss, AM-softmax, Mustafa et al.'s
    attacks/     one file per attack, each registering itself; the peers' (torchattacks)
    defences/    one file per training method: the paper's, Mustafa et al., Dynamic
    training/    the training loop, one epoch, multi-process training
    evaluation/  robust accuracy, threat models, worst cases, masking checks, suites
    runs/        run folders, keys, locks, checkpoints, provenance
    paper/       the paper's numbers and claims, verdicts, our tables beside its
    figures/     plotting and tables only
    poisoning/   training-set poisons and their detectors
    experiments/ what one run computes: its config, data, training, evaluation, features
    study/       the plan, the runner, the notebooks' kernel and bookkeeping, the report index
    forensics/   flawed evaluations on purpose (notebook 08 only; nothing else imports it)
    core         config.py, profiles.py, errors.py, validation.py, device.py, numerics.py

The public surface is `PUBLIC` below (name -> defining module, what it is), for code of one's
own: load a trained model without retraining (`load_model`), evaluate any model with the study's
attack suites (`evaluate_model`), the DFL and the PCL in one's own training loop (`build_model`,
`build_loss`), the engine's runs (`make_config`, `train_and_evaluate`). Imported lazily, so
`import dfl_lib` stays cheap and `dfl_lib.<name>` loads only the module that defines it.
The notebooks' own names (the plan's records, verdicts, figures, bookkeeping) are in
`dfl_lib.notebook_api`; notebooks import from these two only (a test checks it).
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
    "make_config": ("experiments.configs", "a run's config: paper defaults -> dataset -> method -> profile -> overrides"),
    "RunConfig": ("config", "the frozen run configuration (the paper's values as defaults)"),
    "PROFILES": ("profiles", "the profiles (smoke, quick, quick-full and its parts, paper, gpu) and their "
               "listed deviations"),
    "resolve_device": ("device", "'auto' -> CUDA when present, else the CPU"),
    # data
    "load_dataset": ("data.datasets", "a dataset as in-memory uint8 tensors with seeded balanced subsets"),
    "to_float": ("data.datasets", "uint8 images -> float in [0, 1]"),
    # models and losses
    "build_model": ("models", "a ResNet-18/34/50 or WideResNet, with or without the DFL"),
    "MODELS": ("models.resnet", "the model registry"),
    "build_loss": ("losses", "a training loss by name (CE, PCL, centre, AM-softmax, Mustafa's)"),
    "LOSSES": ("losses", "the loss registry"),
    # attacks and evaluation
    "ATTACKS": ("attacks", "our attacks by name (fgsm, bim, mim, pgd, cw, cw_pgd)"),
    "run_attack": ("attacks", "run an attack by name on a batch"),
    "robust_accuracy": ("evaluation.robust", "accuracy under one attack, with a Wilson interval and a mask"),
    "eval_subset": ("evaluation.robust", "the fixed, seeded, class-balanced evaluation subset"),
    "masking_checks": ("evaluation.checks", "the seven gradient-masking sanity checks"),
    # runs
    "build_components": ("training.trainer", "the model and loss a config describes"),
    "train_run": ("experiments.run", "load data, build and train the run a config describes"),
    "load_model": ("experiments.trained", "a trained model from its run folder, checkpoint or a report's weights; never retrains"),
    "evaluate_model": ("experiments.trained", "any model under one of the study's attack suites at an L-inf eps, or "
                       "the L2 suite at a radius"),
    "evaluate_run": ("experiments.run", "evaluate a trained run with a suite; metrics with provenance"),
    "train_and_evaluate": ("experiments.run", "train (or reuse) a run, then evaluate it; metrics reused by key"),
    "attack_suite": ("evaluation.suites", "the 'paper' or 'full' attack suite of a config, as data"),
    # the paper: numbers, comparison, verdicts
    "TABLES": ("paper.numbers", "the paper's tables: dataset, rows, columns"),
    "claims": ("paper.claims", "the paper's claims as tests (rows, cells, claimed effect), from paper_claims.csv"),
    "claim_verdict": ("paper.verdicts", "one claim's verdict: our effect's interval against the claimed effect"),
}
__all__ = ["__version__", *PUBLIC]


def lazy_name(table: dict, name: str, *, owner: str, hint: str = ""):
    """The object `name` of a lazy table (name -> (module under dfl_lib, what it is)), its
    module imported on first use: `PUBLIC` here, `notebook_api.NOTEBOOK_NAMES` there.
    AttributeError naming `owner` (and `hint`) for a name the table lacks."""
    if name in table:
        return getattr(importlib.import_module(f"dfl_lib.{table[name][0]}"), name)
    raise AttributeError(f"module {owner!r} has no attribute {name!r}{hint}")


def __getattr__(name: str):
    return lazy_name(PUBLIC, name, owner="dfl_lib")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(PUBLIC))
