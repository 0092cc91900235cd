"""Label-flipping: the images stay as they are, a share of the labels is changed to another
class: the simplest training-set poison (random label noise; Biggio, Nelson & Laskov 2011 study
it against SVMs), and the baseline the stronger poisons are compared with.

    poisoned = label_flip(y, x, num_classes=10, fraction=0.2, seed=0)                # uniform
    poisoned = label_flip(y, x, num_classes=10, fraction=0.2, seed=0, mode="pairwise")  # y -> y+1
"""
from __future__ import annotations

import torch

from .base import (PoisonedSet, check_choice, check_dataset, check_fraction, check_num_classes,
                   check_seed, choose, count_of)
from .registry import PoisonBudget, register_poison

__all__ = ["MODES", "label_flip"]

MODES = ("random", "pairwise")


def label_flip(y: torch.Tensor, x: torch.Tensor | None = None, *, num_classes: int,
               fraction: float, seed: int, mode: str = "random") -> PoisonedSet:
    """Flip round(fraction * N) labels, drawn with torch.Generator().manual_seed(seed), to
    another class: mode "random" uniformly among the num_classes - 1 other classes (from the
    same generator), mode "pairwise" to (y + 1) mod num_classes. Every flipped label differs
    from its original.

    y (N,) in [0, num_classes); x uint8 (N, C, H, W) or None. Returns a PoisonedSet (kind
    "label_flip", target None) whose x is a copy of x, or None when no images were given.
    Raises UsageError for a fraction outside [0, 1], an unknown mode, fewer than 2 classes or
    labels outside [0, num_classes).
    """
    check_num_classes(num_classes)
    check_dataset(x, y, num_classes=num_classes)
    check_fraction(fraction)
    check_choice(mode, MODES, name="label-flip mode")
    check_seed(seed)

    generator = torch.Generator().manual_seed(seed)
    y_out = y.long().cpu().clone()
    indices = choose(torch.arange(len(y)), count=count_of(fraction, len(y)),
                     generator=generator, what="samples exist")
    if mode == "random":
        # a shift of 1..K-1 classes, uniform: uniform over the other classes, never the same
        shift = torch.randint(1, num_classes, (len(indices),), generator=generator)
    else:
        shift = torch.ones(len(indices), dtype=torch.long)
    y_out[indices] = (y_out[indices] + shift) % num_classes
    return PoisonedSet(x=None if x is None else x.clone(), y=y_out, indices=indices,
                       kind="label_flip", target=None,
                       params={"fraction": fraction, "mode": mode, "seed": seed,
                                   "n_poisoned": len(indices)})


@register_poison("label_flip", kind="labels", needs="nothing", subset=True, cost=0.0,
                 share="of the training set",
                 summary="label flipping: a share of the labels moved to another class at random")
def _label_flip(x, y, *, num_classes: int, budget: PoisonBudget, model) -> PoisonedSet:
    return label_flip(y, x, num_classes=num_classes, fraction=budget.fraction, seed=budget.seed)
