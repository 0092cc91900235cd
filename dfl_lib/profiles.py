"""One source of profiles: every per-profile size in one table (the run's scaling and its
deviations from the paper, the study plan's backbone, seeds, headline evaluation and subsets,
Figure 4's 2-D networks), with one check of the name (`get_profile`).

    smoke   seconds per run, for tests
    quick   the whole study on a 2-core CPU
    paper   the paper's settings, for a GPU

A Profile changes a run's *size*; a baseline's own hyperparameters come from its defence file.
Every way a profile departs from the paper is listed (`deviations`, `plan_deviations`), so
reports print them beside the numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import UsageError

__all__ = ["Profile", "PROFILES", "get_profile"]


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
    seeds: tuple[int, ...] = (0, 1, 2)  # seeds of the headline cells (1 seed elsewhere)
    headline_suite: str = "full"      # the headline cells' strong evaluation suite
    headline_n_eval: int = 0          # its test subset (0 = the run's n_eval)
    # engineering settings (EVAL_ONLY fields: they never change a run's key)
    engineering: dict = field(default_factory=dict)
    # evaluation subsets per dataset where they differ from n_eval (EVAL_ONLY: re-evaluates,
    # never retrains)
    n_eval_per_dataset: dict = field(default_factory=dict)
    plan_deviations: tuple[str, ...] = ()  # how the plan departs from the paper here
    # --- Figure 4's 2-D networks (dfl_lib.study.geometry_runs): training images, epochs, lr,
    # test images ---
    geometry: tuple[int, int, float, int] = (60_000, 10, 0.05, 10_000)


_BF16 = ("training (its attack, forward and loss) under bf16 autocast, weights in fp32; every "
         "evaluation in fp32. 1.45x faster per PGD-training epoch on this CPU, and the robust "
         "accuracy of its models agrees with fp32 training within seed noise (3 seeds, MNIST: "
         "reports/benchmarks/bf16-agreement.json)")

PROFILES: dict[str, Profile] = {
    "paper": Profile(
        name="paper",
        summary="the paper's settings, for a GPU",
        overrides={"precision": "bf16"},
        deviations={"data": "CIFAR-10 is the JPEG copy where the original batches are "
                            "unavailable",
                    "precision": _BF16},
        backbone="resnet50", seeds=(0, 1, 2), headline_suite="full", headline_n_eval=0,
        plan_deviations=("3 seeds for the headline cells, 1 elsewhere",),
        geometry=(60_000, 10, 0.05, 10_000),
    ),
    "quick": Profile(
        name="quick",
        summary="the whole study on a 2-core CPU",
        overrides={"width": 16, "n_val": 500, "n_eval": 500, "monitor_size": 100,
                   "wrn_depth": 16, "widen_factor": 2, "lr": 0.05, "batch_size": 128,
                   "aa_queries": 1000, "cw_l2_search_steps": 5, "lr_warmup_epochs": 1.0,
                   "precision": "bf16"},
        per_dataset={
            # sized so the whole notebook study (about 45 training runs, their evaluations
            # and the notebooks) fits in 120 minutes on a 2-core CPU: reports/benchmarks
            "mnist": {"n_train": 3000, "epochs": 4},
            "fashion_mnist": {"n_train": 3000, "epochs": 4},
            "cifar10_jpeg": {"n_train": 3000, "epochs": 4},
            "cifar10": {"n_train": 3000, "epochs": 4},
        },
        deviations={
            "width": "networks 1/4 as wide (width 16 instead of 64)",
            "wrn_depth": "WRN-16-2 instead of WRN-34-10",
            "widen_factor": "WRN-16-2 instead of WRN-34-10",
            "n_train": "3,000 training images instead of the full "
                       "training sets",
            "epochs": "4 epochs instead of the paper's 50 (MNIST) / 100 (CIFAR-10) "
                      "(and of the baselines' own 120 (Dynamic) and 564 / 664 (Mustafa et al.))",
            "batch_size": "batch 128 instead of 64 (fewer, cheaper steps on a CPU)",
            "lr": "lr 0.05 instead of 0.1 with the larger batch (baselines keep their own lr)",
            "lr_warmup_epochs": "linear lr warm-up over the first epoch, for every "
                                "depth, variant and baseline alike: without it ResNet-50 "
                                "diverges in its first steps of PGD training and stays at "
                                "chance (reports/fidelity-pcl-depth)",
            "n_val": "500 validation images held out instead of 1,000",
            "monitor_size": "the per-epoch PGD monitor on 100 validation images instead of 200",
            "n_eval": "evaluation on a fixed subset of 500 test images instead of all 10,000",
            "aa_queries": "AutoAttack's Square with 1,000 queries instead of 5,000 (APGD and FAB "
                          "keep 100 iterations)",
            "precision": _BF16,
            "cw_l2_search_steps": "C&W-L2 with 5 binary-search steps instead of 9 (each keeps "
                                  "1,000 Adam steps: with far fewer, pixels at 0 or 1, where "
                                  "tanh is flat, cannot move)",
        },
        backbone="resnet18", seeds=(0, 1, 2), headline_suite="headline", headline_n_eval=100,
        n_eval_per_dataset={"cifar10_jpeg": 250},
        plan_deviations=(
            "ResNet-18 (width 16) stands for the paper's ResNet-50 in Tables 1-5; the depth "
            "study (Figures 1, 3, 5) keeps ResNet-18/34/50",
            "3 seeds for the headline cells (no defence, PGD training, DFL + PCL with PGD "
            "training), 1 seed elsewhere",
            "CIFAR-10 cells evaluated on 250 test images (MNIST: 500)",
            "AutoAttack, the gradient-masking checks and transfer only on the headline cells, "
            "seed 0, on 100 test images; every cell gets PGD-50 and the per-example worst case",
            "C&W-L2 with binary search is left out of the quick study (5 x 1,000 Adam steps "
            "per image would cost more than the rest of the evaluation); it runs in the paper "
            "profile's 'full' suite"),
        # about 10 s per 2-D net at quick, 1 thread
        geometry=(10_000, 3, 0.05, 1000),
    ),
    "smoke": Profile(
        name="smoke",
        summary="seconds per run, for tests",
        overrides={"width": 4, "n_train": 256, "n_val": 64, "n_eval": 64, "monitor_size": 32,
                   "epochs": 2, "batch_size": 64, "attack_steps": 2, "cw_steps": 2,
                   "aa_steps": 5, "aa_queries": 100, "cw_l2_search_steps": 2, "cw_l2_steps": 5,
                   "wrn_depth": 10, "widen_factor": 1, "model": "resnet18",
                   "precision": "fp32"},
        deviations={key: "tiny networks, 256 training images, 2 epochs, 2-step attacks: checks "
                         "plumbing, not results"
                    for key in ("width", "n_train", "n_val", "n_eval", "monitor_size", "epochs",
                                "attack_steps", "cw_steps", "aa_steps", "aa_queries",
                                "cw_l2_search_steps", "cw_l2_steps", "wrn_depth", "widen_factor",
                                "model")}
                   | {"precision": "fp32 training: the tests exercise the plain path (bf16 has "
                                   "its own test)"},
        backbone="resnet18", seeds=(0, 1), headline_suite="headline", headline_n_eval=0,
        # contiguous: torch 2.14.1 on this CPU aborts ("double free or corruption") in the
        # input-gradient backward of a channels-last width-4 ResNet-18 with 2 threads (FAB-T
        # inside AutoAttack on 3-5 CIFAR-10 images), and never with contiguous memory or 1 thread
        engineering={"channels_last": False},
        plan_deviations=("plumbing only: every table cell, 2 seeds for the headline cells",),
        geometry=(512, 1, 0.05, 200),
    ),
}


def get_profile(name: str) -> Profile:
    """The profile called `name`; UsageError listing the known ones."""
    if name not in PROFILES:
        raise UsageError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    return PROFILES[name]
