"""One source of profiles: every per-profile size in one table (the run's scaling and its
deviations from the paper, the study plan's backbone, seeds, headline evaluation and subsets,
Figure 4's 2-D networks), with one check of the name (`get_profile`).

    smoke       seconds per run, for tests
    quick       the study on a 2-core CPU within 120 minutes: MNIST in the field's regime
    quick-full  what quick leaves out on the same CPU, resumable: every MNIST cell at 3 seeds
                and CIFAR-10 at illustration scale (it reuses quick's runs)
    quick-full-depth, quick-full-clean, quick-full-pgd, quick-full-poisoning, quick-full-cifar
                quick-full in five parts, each within one 180-minute session of a fresh
                machine (`QUICK_FULL_PARTS`)
    paper       the paper's settings, for a GPU
    gpu         the CIFAR-10 claims on one GPU, sized to reach CIFAR-10's regime

A Profile changes a run's *size*; a baseline's own hyperparameters come from its defence file.
Every way a profile departs from the paper is listed (`deviations`, `plan_deviations`), so
reports print them beside the numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .errors import UsageError

__all__ = ["Profile", "PROFILES", "QUICK_FULL_PARTS", "get_profile"]


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    overrides: dict = field(default_factory=dict)
    per_dataset: dict = field(default_factory=dict)
    # {config field (or "data"): how the profile departs from the paper there}; a test checks
    # that every field where a profile's config differs from the paper profile's is listed
    deviations: dict = field(default_factory=dict)
    # --- the study plan at this profile (dfl_lib.study.plan) ---
    backbone: str = "resnet50"        # what stands for the paper's ResNet-50 in Tables 1-5
    seeds: tuple[int, ...] = (0, 1, 2)  # seeds of the cells in `seeded` (1 seed elsewhere)
    # whose table cells the plan makes: "cifar10" is the original CIFAR-10; "cifar10_jpeg" its
    # JPEG copy, only where a profile chooses it (and says so: the `-jpeg` profiles, quick-full)
    datasets: tuple[str, ...] = ("mnist", "cifar10")
    # the table rows the plan trains ("all": every row of the paper's tables)
    rows: tuple[str, ...] | str = "all"
    # (row, setting) table cells trained with every seed; "all": every cell
    seeded: tuple[tuple[str, str], ...] | str = "all"
    # the cells of `rows` outside `seeded`: trained with seed 0 (True) or not at this profile
    # (False: another profile's, e.g. quick leaves them to quick-full)
    single_seed_cells: bool = True
    # cells trained with seed 0 whatever `single_seed_cells` says: a part's regime anchor, the
    # PGD-trained ResNet whose AutoAttack accuracy gates its robustness verdicts
    # (dfl_lib.paper.regime), so that a part never reads another part's runs
    anchor_cells: tuple[tuple[str, str], ...] = ()
    # the depth study (Figures 1, 3, 5): its size where it differs from the cells', and seeds
    depth: dict = field(default_factory=dict)
    depth_seeds: tuple[int, ...] = (0, 1, 2)
    depth_clean: bool = True          # the depth study's clean-training runs (seed 0)
    # test images of the end evaluation of every PGD-trained depth run (suite "depth": PGD-10,
    # PGD-50, AutoAttack): robust accuracy and the regime gate of the depth claims; 0: none
    depth_eval_n: int = 0
    # the no-warm-up controls' size where it differs from the depth study's (they diverge or
    # not within their first epochs)
    depth_control: dict = field(default_factory=dict)
    min_seeds: int = 3                # seeds a row needs to enter a verdict
    # the training-set poisoning study (notebook 07): its runs' size ({"n_train", "epochs"}),
    # the default poison fraction, the backdoor's rate sweep, and optionally the grid's "rows",
    # "seeds", "poisons" (default: every registered one), the poisons also trained with PGD
    # ("adversarial_training"), those also crafted against each defended victim itself
    # ("adaptive"; default: every poison crafted against a network) and the clean-label
    # backdoor's shares of its target class tried beside "fraction" ("clean_label_sweep");
    # {} = none
    poisoning: dict = field(default_factory=dict)
    runs_dir: str = ""                # runs root name under runs/ ("" = the profile's name)
    headline_suite: str = "full"      # the headline cells' strong evaluation suite
    headline_n_eval: int = 0          # its test subset (0 = the run's n_eval)
    # engineering settings (EVAL_ONLY fields: they never change a run's key)
    engineering: dict = field(default_factory=dict)
    # evaluation subsets per dataset where they differ from n_eval (EVAL_ONLY: re-evaluates,
    # never retrains)
    n_eval_per_dataset: dict = field(default_factory=dict)
    plan_deviations: tuple[str, ...] = ()  # how the plan departs from the paper here
    # --- Figure 4's 2-D networks (dfl_lib.experiments.geometry_runs): training images, epochs, lr,
    # test images ---
    geometry: tuple[int, int, float, int] = (60_000, 10, 0.05, 10_000)
    # the files each figure is saved as (`study.notebook.Notebook.save_figure`): PNG for the
    # reports and the site, PDF for a paper
    figure_formats: tuple[str, ...] = ("png", "pdf")
    # the time the study may take at this profile, minutes per part ({} = no budget): "base"
    # (the depth study, the table cells, the headline evaluations, notebooks 01-06),
    # "poisoning" (its runs, notebook 07), "notebook 08" (the paper's numbers explained: no
    # profile names that study, a test keeps it so); the index sets the
    # measured time of each beside it
    budget_minutes: dict = field(default_factory=dict)
    # the notebooks the profile's report has ("all": every one); a part of a split profile runs
    # only those its plan feeds (a notebook loads a missing run by training it, untimed)
    notebooks: tuple[str, ...] | str = "all"


_BF16 = ("training (its attack, forward and loss) under bf16 autocast where the device computes "
         "bf16 natively (a CPU with AVX512-BF16 or AMX, a CUDA GPU with bf16), fp32 elsewhere "
         "(bf16 emulated on an AVX2 CPU runs 7-15x slower than fp32: benchmarks/README.md, "
         "section 7); weights in fp32, every "
         "evaluation in fp32. bf16 is 1.45x faster per PGD-training epoch on the AVX-512 CPU, "
         "and the robust accuracy of its models agrees with fp32 training within seed noise "
         "(3 seeds, MNIST: reports/benchmarks/bf16-agreement.json); each run's name, key and "
         "provenance say which it used")

# the depth study at quick: 5,000 images x 6 epochs with an lr warm-up over 2 epochs: 80 steps,
# as many as the table cells' 1-epoch warm-up over 10,000 images and as the fidelity study's
# (reports/fidelity-pcl-depth: ResNet-50 + DFL 95% clean under PGD-10 training, fp32). With a
# 1-epoch warm-up here (40 steps) ResNet-50 + DFL did not train under PGD-10 in any of 3 seeds
# (74 / 64 / 29% clean; ResNet-50 without the DFL 95-96%: reports/quick-full-depth at 614906d);
# with 80 steps under bf16 it does (seed 0: 95.4% clean, 84% under the PGD-10 monitor). At
# 3,000 x 4 epochs (94 steps) ResNet-50 + DFL stays at 32% even with a 2-epoch warm-up.
_DEPTH = {"n_train": 5000, "epochs": 6, "lr_warmup_epochs": 2.0}
# the poisoning study at quick (notebook 07): MNIST, 5,000 training images x 4 epochs, 10%
# poisoned, the backdoor's rate sweep at 1% and 5%. At 4 epochs (seed 0, 500 test images) the
# plain ResNet reaches 98.4% clean, 98.0% on the BadNets set with 100% attack success, DFL + PCL
# 97.4% / 100%; PGD-trained 97.6% (unpoisoned) and 96.6% / 100% (BadNets); 6 epochs gave 98.0 /
# 99.9% and cost the poisoning study 14 minutes more than its allowance (issue 20)
# The clean-label backdoor's share is of its target class: 10% (about 50 images) did not take
# hold on the plain ResNet (0.2% success), so it is also tried at half and all of the class
_QUICK_POISONING = {"n_train": 5000, "epochs": 4, "fraction": 0.1, "sweep": (0.01, 0.05),
                    "clean_label_sweep": (0.5, 1.0)}
# quick's poisoning headline: BadNets against the plain ResNet and DFL + PCL, 3 seeds, with the
# unpoisoned references and the 5% rate point; every other poison, row and the PGD-trained
# poisons are quick-full-poisoning's (the same configs, so the same runs)
_QUICK_POISONING_HEADLINE = {**_QUICK_POISONING, "poisons": ("badnets",), "sweep": (0.05,),
                             "rows": ("resnet", "dfl_pcl"), "adversarial_training": ()}
_FULL_POISONING = {"n_train": 0, "epochs": 50, "fraction": 0.1, "sweep": (0.01, 0.05),
                   "clean_label_sweep": (0.5, 1.0)}
# CIFAR-10 epochs at the gpu profile (see its deviations)
_GPU_EPOCHS = 40
# MNIST epochs at quick: the least that reaches the regime with a margin (studies/
# regime_scale.py, reports/benchmarks/regime-scale.jsonl; PGD-trained ResNet-18, seed 0, 250
# test images): 10,000 x 4 epochs 98.4% clean, 85.2% under AutoAttack (at the gate, within one
# standard error of it); 10,000 x 6 epochs 99.2% clean, 87.6% under AutoAttack
_MNIST_EPOCHS = 6
_QUICK_OVERRIDES = {"width": 16, "n_val": 500, "n_eval": 500, "monitor_size": 100,
                    "wrn_depth": 16, "widen_factor": 2, "lr": 0.05, "batch_size": 128,
                    "aa_queries": 1000, "cw_l2_search_steps": 5, "lr_warmup_epochs": 1.0,
                    "precision": "auto"}
# MNIST sized to reach the field's regime (a PGD-trained ResNet-18 >= 85% under AutoAttack at
# eps 0.3: studies/regime_scale.py); CIFAR-10 at illustration scale (quick-full only)
_QUICK_SIZES = {
    "mnist": {"n_train": 10_000, "epochs": _MNIST_EPOCHS},
    "fashion_mnist": {"n_train": 10_000, "epochs": _MNIST_EPOCHS},
    "cifar10_jpeg": {"n_train": 3000, "epochs": 4},
    "cifar10": {"n_train": 3000, "epochs": 4},
}
_QUICK_DEVIATIONS = {
    "width": "networks 1/4 as wide (width 16 instead of 64)",
    "wrn_depth": "WRN-16-2 instead of WRN-34-10",
    "widen_factor": "WRN-16-2 instead of WRN-34-10",
    "n_train": "10,000 MNIST training images (CIFAR-10: 3,000) instead of the full training "
               "sets",
    "epochs": "a few epochs (MNIST: the least that reaches the field's regime; CIFAR-10: 4) "
              "instead of the paper's 50 (MNIST) / 100 (CIFAR-10) (and of the baselines' own "
              "120 (Dynamic) and 564 / 664 (Mustafa et al.))",
    "batch_size": "batch 128 instead of 64 (fewer, cheaper steps on a CPU)",
    "lr": "lr 0.05 instead of 0.1 with the larger batch (baselines keep their own lr)",
    "lr_warmup_epochs": "linear lr warm-up over the first 80 steps (the first epoch of the "
                        "tables' 10,000 images, the first two of the depth study's 5,000), for "
                        "every depth, variant and baseline alike: without it ResNet-50 diverges "
                        "in its first steps of PGD training and stays at chance "
                        "(reports/fidelity-pcl-depth; the depth study shows it beside controls "
                        "without it)",
    "n_val": "500 validation images held out instead of 1,000",
    "monitor_size": "the per-epoch PGD monitor on 100 validation images instead of 200",
    "n_eval": "evaluation on a fixed subset of 500 test images instead of all 10,000",
    "aa_queries": "AutoAttack's Square with 1,000 queries instead of 5,000 (APGD and FAB "
                  "keep 100 iterations)",
    "precision": _BF16,
    "cw_l2_search_steps": "C&W-L2 with 5 binary-search steps instead of 9 (each keeps "
                          "1,000 Adam steps: with far fewer, pixels at 0 or 1, where "
                          "tanh is flat, cannot move)",
}

PROFILES: dict[str, Profile] = {
    "paper": Profile(
        name="paper",
        summary="the paper's settings, for a GPU",
        overrides={"precision": "auto"},
        deviations={"precision": _BF16},
        backbone="resnet50", seeds=(0, 1, 2), headline_suite="full", headline_n_eval=0,
        poisoning=_FULL_POISONING, depth_eval_n=1000,  # the depth runs' AutoAttack, as gpu's
        plan_deviations=("3 seeds for every cell and the depth study",),
        geometry=(60_000, 10, 0.05, 10_000),
    ),
    "gpu": Profile(
        name="gpu",
        summary="the CIFAR-10 claims on one GPU, sized to reach CIFAR-10's regime",
        overrides={"precision": "auto", "batch_size": 128, "lr": 0.1},
        per_dataset={"cifar10_jpeg": {"epochs": _GPU_EPOCHS}, "cifar10": {"epochs": _GPU_EPOCHS}},
        deviations={"precision": _BF16,
                    "batch_size": "batch 128 instead of 64 (the GPU's throughput; lr kept at "
                                  "0.1)",
                    "epochs": f"{_GPU_EPOCHS} epochs instead of the paper's 100 (and the "
                              "baselines' own 120 / 664) for every row, sized by the FLOP "
                              "estimate to fit one GPU in a day (`make plan PROFILE=gpu`); "
                              "PGD training of a ResNet reaches about 80% clean within this "
                              "many epochs with step decay, and the regime gate says whether "
                              "these runs did"},
        backbone="resnet50", seeds=(0, 1, 2), headline_suite="full", headline_n_eval=1000,
        datasets=("cifar10",), seeded="all", poisoning=_FULL_POISONING,
        # the depth study (Figures 1, 3, 5) on the paper's quantities, 5 seeds, each PGD-trained
        # run's end evaluated with AutoAttack on 1,000 test images (the regime gate and the
        # robust readings): 18 AutoAttack evaluations of ResNet-18/34/50 are 12 h of a 2-core
        # CPU at 500 images (`make plan PROFILE=quick-full-depth` with them), minutes on a GPU
        # at quick's table-cell recipe (10,000 images x 6 epochs, lr 0.05, an 80-step warm-up:
        # a width-16 ResNet-18 reaches 86.8-87.6% under AutoAttack there), the paper's width
        depth={"n_train": 10_000, "epochs": 6, "lr_warmup_epochs": 1.0, "lr": 0.05},
        depth_seeds=(0, 1, 2, 3, 4), depth_clean=True, depth_eval_n=1000,
        plan_deviations=(
            "CIFAR-10's cells (the MNIST cells run at quick and quick-full, on a CPU); the "
            "paper's networks (ResNet-50, WRN-34-10) and data, 3 seeds for every cell",
            "the depth study (MNIST, ResNet-18/34/50 with and without the DFL) at 5 seeds, "
            "10,000 images x 6 epochs, each PGD-trained run's end under AutoAttack on 1,000 test "
            "images (the regime gate and the robust readings of Figures 1 and 5)",
            "AutoAttack, C&W-L2 with binary search, the masking checks and transfer on the "
            "headline cells, seed 0, on 1,000 test images"),
        geometry=(60_000, 10, 0.05, 10_000),
    ),
    "quick": Profile(
        name="quick",
        summary="the study on a 2-core CPU within 120 minutes: MNIST in the field's regime",
        overrides=_QUICK_OVERRIDES,
        per_dataset=_QUICK_SIZES,
        deviations=_QUICK_DEVIATIONS,
        backbone="resnet18", seeds=(0, 1, 2), headline_suite="headline", headline_n_eval=250,
        datasets=("mnist",),
        # within 120 minutes on a 2-core CPU of either kind (AVX-512 with bf16, or AVX2 training
        # in fp32 at about 2.3x the time): the MNIST headline, Tables 1 and 3's plain ResNet and
        # DFL + PCL, without and with PGD training, each at 3 seeds, with their AutoAttack
        # cells; the explorer; the poisoning headline (BadNets). The depth study, the DFL-only
        # and PCL-only rows, the baselines Mustafa et al. and Dynamic, the other poisons and
        # CIFAR-10 are the quick-full parts' (the same configs, so the same runs)
        rows=("resnet", "dfl_pcl"),
        seeded=(("resnet", "no defence"), ("resnet", "adversarial training"),
                ("dfl_pcl", "no defence"), ("dfl_pcl", "adversarial training")),
        single_seed_cells=False,
        depth=_DEPTH, depth_seeds=(), depth_clean=False, depth_control={"epochs": 2},
        poisoning=_QUICK_POISONING_HEADLINE,
        notebooks=("02-decision-geometry", "03-robustness-tables", "04-training-curves",
                   "05-feature-space", "06-explore", "07-data-poisoning", "08-forensics"),
        n_eval_per_dataset={"cifar10_jpeg": 250},
        plan_deviations=(
            "MNIST only: CIFAR-10's regime (the gate: a PGD-trained ResNet at 70% clean and 40% "
            "under AutoAttack, where the field's reach 80-84% and 43-47%) is out of reach on 2 "
            "CPU cores; the CIFAR-10 claims run at the gpu "
            "profile (and at illustration scale, without verdicts, in quick-full)",
            "ResNet-18 (width 16) stands for the paper's ResNet-50 in Tables 1-5; the depth "
            "study (Figures 1, 3, 5: ResNet-18/34/50) is quick-full-depth's",
            "the table cells train on 10,000 MNIST images x 6 epochs",
            "the plain ResNet and DFL + PCL cells, without and with PGD training, at 3 seeds; "
            "the DFL-only and PCL-only rows and the baselines Mustafa et al. and Dynamic are "
            "quick-full's (3 seeds each: quick-full-clean, quick-full-pgd), so at quick a margin "
            "claim is tested against the plain ResNet alone, where it can only be refuted",
            "the poisoning headline only: BadNets (10% of 5,000 MNIST images x 4 epochs, and the "
            "5% rate point) against the plain ResNet and DFL + PCL, 3 seeds retraining the "
            "victim on one poisoned set (crafted with poison seed 0); the other poisons and the "
            "PGD-trained victims are quick-full-poisoning's",
            "AutoAttack, the gradient-masking checks and transfer on the headline cells, seed 0, "
            "on 250 test images (its standard error at 88% is 2 points); every cell gets PGD-50 "
            "and the per-example worst case on 500",
            "C&W-L2 with binary search is left out of the quick study (5 x 1,000 Adam steps "
            "per image would cost more than the rest of the evaluation); it runs in the paper "
            "profile's 'full' suite"),
        # about 10 s per 2-D net at quick, 1 thread
        geometry=(10_000, 3, 0.05, 1000),
        # the whole study within 120 minutes (issue 37): its plan, notebooks 02-06, the
        # poisoning headline with notebook 07, and notebook 08
        budget_minutes={"base": 95, "poisoning": 15, "notebook 08": 10},
    ),
    "quick-full": Profile(
        name="quick-full",
        summary="what quick leaves out, on the same CPU (resumable; reuses quick's runs)",
        overrides=_QUICK_OVERRIDES,
        per_dataset=_QUICK_SIZES,
        deviations=_QUICK_DEVIATIONS,
        backbone="resnet18", seeds=(0, 1, 2), headline_suite="headline", headline_n_eval=250,
        datasets=("mnist", "cifar10_jpeg"),
        seeded=tuple((row, setting) for row in ("resnet", "mustafa", "dynamic", "dfl", "pcl",
                                                "dfl_pcl")
                     for setting in ("no defence", "adversarial training")),
        # the clean-training depth runs (seed 0) tell whether each configuration trains at
        # this budget: the depth verdicts' clean floor reads them (study.evidence)
        depth=_DEPTH, depth_seeds=(0, 1, 2), depth_clean=True, depth_control={"epochs": 2},
        poisoning=_QUICK_POISONING,
        n_eval_per_dataset={"cifar10_jpeg": 250},
        runs_dir="quick",
        plan_deviations=(
            "the depth study with 3 seeds; every MNIST cell at 3 seeds in the field's regime "
            "(as quick); CIFAR-10 (the JPEG "
            "copy) at illustration scale: 3,000 images x 4 epochs, below its regime, so its "
            "cells carry no verdict",
            "ResNet-18 (width 16) stands for the paper's ResNet-50 in Tables 1-5",
            "AutoAttack on the headline cells, seed 0, on 250 test images"),
        geometry=(10_000, 3, 0.05, 1000),
    ),
    "smoke": Profile(
        name="smoke",
        summary="seconds per run, for tests",
        overrides={"width": 4, "n_train": 128, "n_val": 32, "n_eval": 32, "monitor_size": 16,
                   "epochs": 2, "batch_size": 64, "attack_steps": 2, "cw_steps": 2,
                   "aa_steps": 5, "aa_queries": 100, "cw_l2_search_steps": 2, "cw_l2_steps": 5,
                   "wrn_depth": 10, "widen_factor": 1, "model": "resnet18",
                   "precision": "fp32"},
        deviations={key: "tiny networks, 128 training images, 2 epochs, 2-step attacks: checks "
                         "plumbing, not results"
                    for key in ("width", "n_train", "n_val", "n_eval", "monitor_size", "epochs",
                                "attack_steps", "cw_steps", "aa_steps", "aa_queries",
                                "cw_l2_search_steps", "cw_l2_steps", "wrn_depth", "widen_factor",
                                "model")}
                   | {"precision": "fp32 training: the tests exercise the plain path (bf16 has "
                                   "its own test)"},
        backbone="resnet18", seeds=(0, 1), headline_suite="headline", headline_n_eval=0,
        # MNIST only: the 18 CIFAR-10 items took 92 of the smoke plan's 205 s on one AVX2 core
        # and exercise no notebook code MNIST's do not (a table's CIFAR-10 rows then read "not
        # run"); CIFAR-10's cells and headline suite run end to end in tests/test_gpu_check.py
        datasets=("mnist",),
        seeded=(("resnet", "no defence"), ("resnet", "adversarial training"),
                ("dfl_pcl", "adversarial training")),
        depth_seeds=(0,), min_seeds=2, depth_eval_n=16,
        # the poisoning grid's plumbing on two rows, one seed, one poison under PGD training
        # and one crafted against the victim
        poisoning={"n_train": 128, "epochs": 2, "fraction": 0.1, "sweep": (0.05,),
                   "rows": ("resnet", "dfl_pcl"), "seeds": (0,),
                   "adversarial_training": ("adversarial",), "adaptive": ("adversarial",)},
        # contiguous: torch 2.14.1 on the AVX-512 CPU aborted ("double free or corruption") in
        # the input-gradient backward of a channels-last width-4 ResNet-18 with 2 threads (FAB-T
        # inside AutoAttack on 3-5 CIFAR-10 images); the cause, oneDNN's strided kernel on
        # narrow layers, is now avoided in every network (dfl_lib/models/narrow.py)
        engineering={"channels_last": False},
        plan_deviations=("plumbing only: every MNIST table cell, 2 seeds for the headline "
                         "cells, the depth study with 1",),
        geometry=(512, 1, 0.05, 64),
        # PNG only: nobody reads the smoke figures, and drawing each again for its PDF was a
        # tenth of the smoke notebooks' time (the PDF path runs at every other profile)
        figure_formats=("png",),
    ),
}


def get_profile(name: str) -> Profile:
    """The profile called `name`; UsageError listing the known ones."""
    if name not in PROFILES:
        raise UsageError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    return PROFILES[name]


# quick-full in parts, each within one 180-minute session on this CPU: a session may start on a
# fresh machine without runs/, and quick-full (about 5 hours here) never finishes in one. Each
# part trains its own runs (its own runs folder) with quick-full's configs, so its runs are
# quick-full's (same keys), and runs only the notebooks its plan feeds. Together with quick
# (geometry, poisoning, feature space, explorer: the same configs as quick-full's), they make
# every item of quick-full's plan (tests/test_profile_parts.py checks it). Notebook 08 stays
# quick's: its subject is the paper's no-defence numbers against quick's seed-0 models.
_PART_BUDGET = 150  # minutes: a session's 180, less installing the environment and committing
_NO_DEFENCE_ROWS = ("resnet", "mustafa", "dfl", "pcl", "dfl_pcl")
_PARTS = {
    "quick-full-depth": dict(
        summary="quick-full's depth study: ResNet-18/34/50 with and without the DFL, 3 seeds, "
                "with the clean-training runs and the no-warm-up controls",
        datasets=(), seeded=(), notebooks=("01-depth",),
        budget_minutes={"base": _PART_BUDGET}),
    "quick-full-clean": dict(
        summary="quick-full's MNIST cells without adversarial training: every row at 3 seeds "
                "(Tables 1 and 3, no defence)",
        datasets=("mnist",), depth_seeds=(),
        seeded=tuple((row, "no defence") for row in _NO_DEFENCE_ROWS),
        # Tables 1 and 3's no-defence margins are robustness claims: without the PGD-trained
        # ResNet's AutoAttack accuracy they read "not testable here" (its first report at
        # 5c00667 did); seed 0 and its headline evaluation: 10 minutes of plan, 14.3 measured
        # (reports/quick-full-clean)
        anchor_cells=(("resnet", "adversarial training"),),
        notebooks=("03-robustness-tables",), budget_minutes={"base": _PART_BUDGET}),
    "quick-full-pgd": dict(
        summary="quick-full's PGD-trained MNIST cells: every row at 3 seeds (Table 3's "
                "adversarial row, Figure 6), with the ResNet's no-defence reference",
        datasets=("mnist",), depth_seeds=(),
        seeded=tuple((row, "adversarial training") for row in _NO_DEFENCE_ROWS + ("dynamic",))
        + (("resnet", "no defence"),),
        notebooks=("03-robustness-tables", "04-training-curves"),
        budget_minutes={"base": _PART_BUDGET}),
    "quick-full-poisoning": dict(
        summary="quick-full's poisoning study: every poison on every row, the headline poisons "
                "at 3 seeds, the perturbation poisons and the backdoor under PGD training, the "
                "backdoors' rate sweeps, each poison that attacks a network also crafted "
                "against each defended victim itself (notebook 07)",
        datasets=(), depth_seeds=(), seeded=(), poisoning=_QUICK_POISONING,
        notebooks=("07-data-poisoning",), budget_minutes={"poisoning": _PART_BUDGET}),
    "quick-full-cifar": dict(
        summary="quick-full's CIFAR-10 (JPEG copy) cells at illustration scale, below its "
                "regime and without verdicts",
        datasets=("cifar10_jpeg",), depth_seeds=(), notebooks=("03-robustness-tables",),
        single_seed_cells=True,  # the WideResNet cell (Table 6), seed 0, as in quick-full
        budget_minutes={"base": _PART_BUDGET}),
}
# the paper's and the GPU's profiles on the JPEG copy of CIFAR-10 (../shared/data), by choice:
# the original where one has it (`python -m dfl_lib data --download`), the copy labelled as such
# where not; never one silently for the other
for _name in ("paper", "gpu"):
    _p = PROFILES[_name]
    PROFILES[f"{_name}-jpeg"] = replace(
        _p, name=f"{_name}-jpeg",
        summary=f"{_p.summary}; CIFAR-10 as its JPEG copy, by choice",
        datasets=tuple("cifar10_jpeg" if d == "cifar10" else d for d in _p.datasets),
        deviations={**_p.deviations, "data": "CIFAR-10 is a JPEG copy of the original images "
                                             "(chosen with this profile): its numbers are not "
                                             "directly comparable with published CIFAR-10 "
                                             "numbers"})
QUICK_FULL_PARTS = tuple(_PARTS)
for _name, _changes in _PARTS.items():
    PROFILES[_name] = replace(
        PROFILES["quick-full"], **{"single_seed_cells": False, "poisoning": {}, **_changes},
        name=_name, runs_dir="", plan_deviations=PROFILES["quick-full"].plan_deviations + (
            f"a part of quick-full ({_changes['summary']}); the other parts and quick make the "
            "rest",))
