"""Training-set poisoning: attacks that change the training set (images, labels or both) before
a network is trained on it. In this project "poisoned" means only this; perturbations of test
inputs at inference time are "adversarial" examples or "evasion" attacks (`dfl_lib.attacks`),
whatever the paper calls them.

    backdoor.py      BadNets (Gu et al. 2017) and the label-consistent backdoor (Turner et al.
                     2019): a trigger patch; `triggered_test_set` and `attack_success_rate`
    availability.py  bounded perturbations of every image, labels unchanged: adversarial poisons
                     (Fowl et al. 2021) and error-minimising noise (Huang et al. 2021)
    labels.py        label flipping, random or pairwise
    detect.py        finding the poisoned samples in feature space: spectral signatures (Tran,
                     Li & Madry 2018), activation clustering (Chen et al. 2018), AUROC and
                     recall at a fixed false-positive rate
    base.py          the `PoisonedSet` every poison returns, and the shared argument checks
    registry.py      every poison registered with what it is (kind, what crafting needs,
                     whether it changes a subset, its cost): `POISONS`, `get_poison`

Every function takes uint8 images (N, C, H, W) and labels (N,), never modifies them, is
deterministic given its `seed`, refuses a bad budget with a one-line UsageError before any work,
and returns a PoisonedSet recording which samples it changed and with what parameters.

May import: the core modules (errors, validation), data (`to_float`) and attacks (PGD, the
L-inf projection, logits); never models, losses, training, evaluation or the study (a reference
network is handed in by the caller).
"""
# imported in this order, the poisons register in the study's order: the backdoors, the
# availability poisons, label flipping
from .backdoor import (POSITIONS, attack_success_rate, badnets, clean_label, stamp_trigger,
                       trigger_mask, triggered_test_set)
from .availability import MinMinSchedule, adversarial_poison, error_minimising
from .base import PoisonedSet
from .detect import (activation_clustering_scores, activation_clusters, detection_metrics,
                     spectral_signature_scores)
from .labels import MODES, label_flip
from .registry import POISONS, PoisonBudget, PoisonEntry, get_poison, register_poison

__all__ = ["POISONS", "PoisonBudget", "PoisonEntry", "get_poison", "register_poison",
           "PoisonedSet", "POSITIONS", "MODES", "stamp_trigger", "trigger_mask", "badnets",
           "clean_label", "triggered_test_set", "attack_success_rate", "adversarial_poison",
           "error_minimising", "MinMinSchedule", "label_flip", "spectral_signature_scores",
           "activation_clusters", "activation_clustering_scores", "detection_metrics"]
