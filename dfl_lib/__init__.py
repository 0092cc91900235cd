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

The public surface is `PUBLIC` below (name -> defining module, what it is), imported lazily, so
`import dfl_lib` stays cheap and `dfl_lib.<name>` loads only the module that defines it.
Notebooks import these names only: `from dfl_lib import make_config, table_rows, ...` (a test
checks it).
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
    "profile_deviations": ("experiments.configs", "how a profile departs from the paper, as texts for reports"),
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
    "evaluate_model": ("experiments.trained", "any model under one of the study's attack suites at an L-inf eps"),
    "evaluate_run": ("experiments.run", "evaluate a trained run with a suite; metrics with provenance"),
    "train_and_evaluate": ("experiments.run", "train (or reuse) a run, then evaluate it; metrics reused by key"),
    "attack_suite": ("evaluation.suites", "the 'paper' or 'full' attack suite of a config, as data"),
    "paper_column_rows": ("evaluation.suites", "which row stands for each of the paper's columns"),
    "BASELINE_NOTES": ("defences", "what each baseline follows of its authors' code, and what differs"),
    # the study (notebooks): bookkeeping, plan, records
    "Notebook": ("study.notebook", "a notebook's context: folders, figures, metrics with provenance"),
    "CIFAR_NOTE": ("study.notebook", "the sentence every CIFAR-10 result carries (the JPEG copy)"),
    "cell_config": ("study.plan", "the run behind one table cell group"),
    "table_backbone": ("study.plan", "what stands for the paper's ResNet-50 at a profile"),
    "headline_n_eval": ("study.plan", "the headline evaluation's test subset at a profile"),
    "load_run": ("study.records", "a plan run, loaded (trained if missing)"),
    "depth_records": ("study.records", "the depth study's runs as figure records"),
    "component_records": ("study.records", "DFL / PCL / both runs as figure records (Figure 6)"),
    "defence_records": ("study.records", "no defence vs adversarial training records (Figure 6)"),
    "cell_results": ("study.records", "the finished results of every table cell group"),
    "clean_vs_perturbed": ("experiments.features", "clean vs attacked features of a run, with UMAP"),
    "geometry_nets": ("experiments.geometry_runs", "Figure 4's 2-D networks, one per loss"),
    "geometry_test_set": ("experiments.geometry_runs", "Figure 4's test images"),
    "feature_panels": ("experiments.geometry_runs", "Figure 4's feature-plane panels"),
    "attack_panels": ("experiments.geometry_runs", "Figure 4's panels under attack"),
    "regions_drawer": ("experiments.geometry_runs", "the live decision-region explorer's drawer"),
    # training-set poisoning (notebook 07)
    "poison_records": ("study.poison_records", "the poisoning grid's finished runs with their measurements"),
    "poison_effects": ("study.poison_records", "each defence minus the plain ResNet under each poison, with an interval"),
    "poison_statements": ("study.poison_records", "the poisoning study's answers in plain words"),
    "poisoned_feature_panels": ("study.poison_records", "clean vs poisoned training samples in feature space (UMAP)"),
    "poison_bars": ("figures.poisoning", "clean accuracy and backdoor success per poison and defence"),
    "rate_sweep": ("figures.poisoning", "the backdoor against its poison rate"),
    "detection_bars": ("figures.poisoning", "the detectors' AUROC per poison and defence"),
    "poisoned_umap": ("figures.poisoning", "UMAP panels of clean and poisoned training samples"),
    # forensics (notebook 08 only): flawed evaluations, on purpose
    "forensic_flaws": ("forensics.study", "the honest evaluation, each named flawed one, their combinations"),
    "forensic_records": ("forensics.study", "each flawed evaluation on the study's MNIST models beside the paper's cells"),
    "forensic_consistency": ("forensics.study", "per flaw and setting: how many of the paper's cells it lands on"),
    "forensic_cells": ("forensics.study", "per printed cell: the paper, our honest number, the flaws that land on it"),
    "forensic_statement": ("forensics.study", "which flawed evaluations are consistent with the paper's numbers, in words"),
    "forensics_heatmap": ("figures.forensics", "every evaluation on every model and column beside the paper's numbers"),
    # the paper: numbers, comparison, verdicts
    "TABLES": ("paper.numbers", "the paper's tables: dataset, rows, columns"),
    "table_rows": ("paper.comparison", "every printed cell beside ours, from finished results"),
    "claims": ("paper.claims", "the paper's claims as tests (rows, cells, claimed effect), from paper_claims.csv"),
    "claim_verdict": ("paper.verdicts", "one claim's verdict: our effect's interval against the claimed effect"),
    "verdict_lines": ("paper.verdicts", "verdicts and checks as one markdown list (one format everywhere)"),
    "depth_statement": ("paper.verdicts", "the depth study's finding in plain words"),
    "clean_floor": ("paper.regime", "the clean accuracy (%) below which a run did not train"),
    "table_verdicts": ("study.evidence", "every table claim's verdict from the finished cells"),
    "depth_verdicts": ("study.evidence", "the depth claims' verdicts (Figures 1, 3, 5), every seed"),
    "rise_verdicts": ("study.evidence", "Figure 6a's claim from the component runs, every seed"),
    "strong_attack_checks": ("study.evidence", "our own check: PGD-10 against the strongest attacks (not a claim)"),
    "adaptive_checks": ("study.evidence", "our own check: the adaptive attack against PGD-50 on PCL models"),
    # figures
    "draw_pipeline": ("figures.diagram", "Figure 2 drawn from the model"),
    "paper_vs_ours": ("figures.comparison", "the paper's cells beside ours"),
    "comparison_markdown": ("figures.tables", "a comparison table as markdown"),
    "records_markdown": ("figures.tables", "records as a markdown table"),
    "sanity_curves": ("figures.sanity", "accuracy against eps, attack strength and black-box, per headline cell"),
    "masking_numbers": ("figures.sanity", "every gradient-masking check with the numbers behind its flag"),
    "plot_feature_panels": ("figures.geometry", "Figure 4's feature planes"),
    "plot_regions_under_attack": ("figures.geometry", "Figure 4's regions under attack"),
    "plot_umap_panels": ("figures.featurespace", "UMAP panels of clean and attacked features"),
    "adversarial_drawer": ("figures.explore", "draw(eps, attack) over a batch, for the explorer"),
    "explorer": ("figures.explore", "the epsilon slider and attack selector (or static figures)"),
    # figures and tables
    "curve_grid": ("figures.curves", "training curves from run histories, seeds as mean and band"),
    "warmup_figure": ("figures.curves", "Figure 1 here: ResNet-50 with and without the lr warm-up"),
    "format_accuracy_table": ("figures.tables", "a plain-text table of evaluation rows, one column per run"),
}
__all__ = ["__version__", *PUBLIC]


def __getattr__(name: str):
    if name in PUBLIC:
        module = importlib.import_module(f".{PUBLIC[name][0]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'dfl_lib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(PUBLIC))
