"""The names the study's notebooks import, beside `dfl_lib`'s public surface: the plan's
configs and finished records, the verdicts against the paper's claims, the figures and a
notebook's bookkeeping. They serve the notebooks; code of one's own needs `dfl_lib.PUBLIC` only
(load a trained model, evaluate any model with a suite, the DFL and the PCL in one's own loop).

    from dfl_lib import build_model, eval_subset                 # the public surface
    from dfl_lib.notebook_api import Notebook, cell_results      # the notebooks' own names

Imported lazily as `dfl_lib` is: a name loads only the module that defines it. A test checks
that the notebooks import from these two tables only (tests/test_layers.py).
"""
from __future__ import annotations

from . import lazy_name

# name -> (defining module under dfl_lib, what it is)
NOTEBOOK_NAMES = {
    # configuration
    "profile_deviations": ("experiments.configs", "how a profile departs from the paper, as texts for reports"),
    # runs
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
    "poison_verdicts": ("study.poison_verdicts", "the paper's poisoning claim judged per poison from the effects"),
    "poisoned_feature_panels": ("study.poison_records", "clean vs poisoned training samples in feature space (UMAP)"),
    "poison_bars": ("figures.poisoning", "clean accuracy and backdoor success per poison and defence"),
    "rate_sweep": ("figures.poisoning", "the backdoor against its poison rate"),
    "detection_bars": ("figures.poisoning", "the detectors' AUROC per poison and defence"),
    "poison_fraction": ("study.plan", "the poisoning grid's default poison rate"),
    "adaptive_bars": ("figures.poisoning", "poisons crafted against the plain ResNet vs against the victim itself"),
    "poisoned_umap": ("figures.poisoning", "UMAP panels of clean and poisoned training samples"),
    # forensics (notebook 08 only): flawed evaluations, on purpose
    "forensic_flaws": ("forensics.study", "the honest evaluation, each named flawed one, their combinations"),
    "forensic_records": ("forensics.study", "each flawed evaluation on the study's MNIST models beside the paper's cells"),
    "forensic_consistency": ("forensics.study", "per flaw and setting: how many of the paper's cells it lands on"),
    "forensic_cells": ("forensics.study", "per printed cell: the paper, our honest number, the flaws that land on it"),
    "forensic_statement": ("forensics.study", "which flawed evaluations are consistent with the paper's numbers, in words"),
    "forensics_heatmap": ("figures.forensics", "every evaluation on every model and column beside the paper's numbers"),
    # the paper: numbers, comparison, verdicts
    "table_rows": ("paper.comparison", "every printed cell beside ours, from finished results"),
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
    "explore_subject": ("study.explore_subject", "the explorer's model: committed weights or a "
                        "profile's run"),
    # figures and tables
    "curve_grid": ("figures.curves", "training curves from run histories, seeds as mean and band"),
    "warmup_figure": ("figures.curves", "Figure 1 here: ResNet-50 with and without the lr warm-up"),
    "format_accuracy_table": ("figures.tables", "a plain-text table of evaluation rows, one column per run"),
}
__all__ = ["NOTEBOOK_NAMES", *NOTEBOOK_NAMES]


def __getattr__(name: str):
    return lazy_name(NOTEBOOK_NAMES, name, owner="dfl_lib.notebook_api",
                     hint="; the public surface is dfl_lib.PUBLIC")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(NOTEBOOK_NAMES))
