"""Backdoor poisons: a fixed trigger patch that the trained network learns to read as "class t".

    poisoned = badnets(x, y, num_classes=10, fraction=0.1, target=0, seed=0)
    budget = PoisonBudget(fraction=0.1, target=0, patch_size=3, eps=8/255, batch_size=256, seed=0)
    poisoned = clean_label(x, y, num_classes=10, model=reference.eval(), budget=budget)
    x_trig, y_true = triggered_test_set(x_test, y_test, target=0)
    asr = attack_success_rate(model(x_trig).argmax(1), target=0)

- `badnets` (Gu et al. 2017, "BadNets"): stamp the trigger on a share of the training images of
  other classes and relabel them to the target.
- `clean_label` (Turner et al. 2019, "Label-consistent backdoor attacks"): stamp the trigger
  only on target-class images, labels unchanged, after an eps-bounded PGD has made them hard to
  learn from their content, so the network leans on the trigger instead.

The trigger is a patch_size x patch_size checkerboard (value on the cells whose row + column is
even, counted from the patch's top-left, 0 on the others), one pixel in from the chosen corner,
in every channel. It is ART's `add_pattern_bd` pattern (distance=2 at the bottom-right) with its
top-left cell lit too and its unlit cells set to 0 rather than left as they were, so the trigger
looks the same on every image.
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from ..attacks.pgd import pgd
from ..errors import UsageError, UsageTypeError
from ..validation import check_labels
from .base import (PoisonedSet, check_choice, check_count, check_dataset, check_eps,
                   check_fraction, check_instance, check_num_classes, check_patch,
                   check_reference, check_seed, check_target, check_uint8_images, choose,
                   count_of, model_device, to_float, to_uint8)
from .registry import PoisonBudget, register_poison

__all__ = ["POSITIONS", "trigger_mask", "stamp_trigger", "badnets", "clean_label",
           "triggered_test_set", "attack_success_rate"]

POSITIONS = ("bottom-right", "bottom-left", "top-right", "top-left")


def _corner(image_size: tuple[int, int], *, patch_size: int, position: str) -> tuple[int, int]:
    """(top row, left column) of the patch: one pixel in from the chosen corner."""
    h, w = image_size
    top = 1 if position.startswith("top") else h - 1 - patch_size
    left = 1 if position.endswith("left") else w - 1 - patch_size
    return top, left


def _check_trigger(image_size: tuple[int, int], *, patch_size: int, position: str) -> None:
    check_choice(position, POSITIONS, name="trigger position")
    check_patch(patch_size, image_size=image_size)


def trigger_mask(image_size: tuple[int, int], *, patch_size: int = 3,
                 position: str = "bottom-right") -> torch.Tensor:
    """bool (H, W): True on the pixels the trigger overwrites (its whole square, lit and unlit
    cells). Raises UsageError for an unknown position or a patch that does not fit."""
    _check_trigger(image_size, patch_size=patch_size, position=position)
    top, left = _corner(image_size, patch_size=patch_size, position=position)
    mask = torch.zeros(image_size, dtype=torch.bool)
    mask[top:top + patch_size, left:left + patch_size] = True
    return mask


def stamp_trigger(x: torch.Tensor, *, patch_size: int = 3, position: str = "bottom-right",
                  value: int = 255) -> torch.Tensor:
    """x uint8 (N, C, H, W) -> a new uint8 tensor with the checkerboard trigger stamped on every
    image and channel (Gu et al. 2017's pattern trigger; see the module docstring). Pixels outside
    the patch are unchanged. Raises UsageError for non-uint8 images, an unknown position, a patch
    that does not fit with its one-pixel margin, or a value outside 0..255."""
    check_uint8_images(x)
    _check_trigger(tuple(x.shape[2:]), patch_size=patch_size, position=position)
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageTypeError(f"value must be an int grey level, got {type(value).__name__}")
    if not 0 <= value <= 255:
        raise UsageError(f"value must be a grey level in 0..255, got {value}")
    top, left = _corner(tuple(x.shape[2:]), patch_size=patch_size, position=position)
    parity = torch.arange(patch_size)[:, None] + torch.arange(patch_size)[None, :]  # (p, p)
    pattern = torch.where(parity % 2 == 0, value, 0).to(torch.uint8).to(x.device)
    out = x.clone()
    out[:, :, top:top + patch_size, left:left + patch_size] = pattern  # broadcast over N, C
    return out


def badnets(x: torch.Tensor, y: torch.Tensor, *, num_classes: int, fraction: float,
            target: int, patch_size: int = 3, position: str = "bottom-right",
            seed: int) -> PoisonedSet:
    """BadNets (Gu et al. 2017): round(fraction * N) images whose label is not `target`, drawn
    with torch.Generator().manual_seed(seed), get the trigger and the label `target`.

    x uint8 (N, C, H, W), y (N,) in [0, num_classes). `fraction` is a share of the whole
    training set. Returns a PoisonedSet (kind "badnets") whose indices are the relabelled
    samples. Raises UsageError for a fraction outside [0, 1] or asking for more images than
    the other classes hold, a target class the dataset lacks, an unknown position or a patch
    that does not fit."""
    check_num_classes(num_classes)
    check_dataset(x, y, num_classes=num_classes)
    check_fraction(fraction)
    check_target(target, num_classes=num_classes)
    _check_trigger(tuple(x.shape[2:]), patch_size=patch_size, position=position)
    check_seed(seed)

    generator = torch.Generator().manual_seed(seed)
    candidates = (y.cpu() != target).nonzero().flatten()
    indices = choose(candidates, count=count_of(fraction, len(y)), generator=generator,
                     what=f"images are not of target class {target}")
    x_out, y_out = x.clone(), y.long().clone()
    x_out[indices] = stamp_trigger(x[indices], patch_size=patch_size, position=position)
    y_out[indices] = target
    return PoisonedSet(x=x_out, y=y_out, indices=indices, kind="badnets", target=target,
                       params={"fraction": fraction, "patch_size": patch_size,
                               "position": position, "value": 255, "seed": seed,
                               "n_poisoned": len(indices)})


def clean_label(x: torch.Tensor, y: torch.Tensor, *, num_classes: int, model: nn.Module,
                budget: PoisonBudget, steps: int = 10,
                position: str = "bottom-right") -> PoisonedSet:
    """The label-consistent backdoor (Turner et al. 2019, adversarial-perturbation variant).

    round(fraction * n_target) images of the target class (n_target of them in y), drawn with
    torch.Generator().manual_seed(seed), are perturbed by untargeted L-inf PGD (our
    `attacks.pgd`, `steps` steps, random start from the same generator, last iterate, batches of
    batch_size images) against `model`, a clean-trained reference in eval mode, then rounded to
    uint8 and stamped with the patch_size x patch_size trigger at `position`. Labels are
    unchanged. Outside the patch |poisoned - clean| <= eps + 0.5/255 in [0, 1] units (eps in
    pixel units; the half level is the rounding to uint8).

    `budget` gives every field: fraction (`PoisonBudget.fraction`, a share of the target
    class), target, patch_size (pixels), eps, batch_size and seed. x uint8 (N, C, H, W),
    y (N,). Returns a PoisonedSet (kind "clean_label"). The model's mode and parameters are
    left as they were. Raises UsageError for a model in train mode, eps outside [0, 1], a
    fraction outside [0, 1], a target class the dataset lacks, an unknown position or a patch
    that does not fit, UsageTypeError for a budget that is not a PoisonBudget.
    """
    check_num_classes(num_classes)
    check_dataset(x, y, num_classes=num_classes)
    check_instance(budget, PoisonBudget, name="budget")
    # read once into the names the crafting below always used, so it stays as it was
    fraction, target, eps = budget.fraction, budget.target, budget.eps
    patch_size, batch_size, seed = budget.patch_size, budget.batch_size, budget.seed
    check_fraction(fraction)
    check_target(target, num_classes=num_classes)
    check_eps(eps)
    check_count(steps, name="steps")
    check_count(batch_size, name="batch_size")
    _check_trigger(tuple(x.shape[2:]), patch_size=patch_size, position=position)
    check_seed(seed)
    check_reference(model)

    generator = torch.Generator().manual_seed(seed)
    candidates = (y.cpu() == target).nonzero().flatten()
    indices = choose(candidates, count=count_of(fraction, len(candidates)), generator=generator,
                     what=f"images are of target class {target}")
    device = model_device(model)
    x_out = x.clone()
    for batch in indices.split(batch_size):
        clean = to_float(x[batch]).to(device)  # (B, C, H, W) in [0, 1]
        hard = pgd(model, clean, y[batch].long().to(device), eps=eps, steps=steps,
                   random_start=True, generator=generator, keep_best=False)
        x_out[batch] = stamp_trigger(to_uint8(hard), patch_size=patch_size, position=position)
    return PoisonedSet(x=x_out, y=y.long().clone(), indices=indices, kind="clean_label",
                       target=target,
                       params={"fraction": fraction, "eps": eps, "steps": steps,
                               "patch_size": patch_size, "position": position, "value": 255,
                               "seed": seed, "n_poisoned": len(indices)})


def triggered_test_set(x: torch.Tensor, y: torch.Tensor, *, target: int, patch_size: int = 3,
                       position: str = "bottom-right") -> tuple[torch.Tensor, torch.Tensor]:
    """The test images of every class but `target`, triggered, with their true labels:
    (uint8 (M, C, H, W), int64 (M,)), M = number of non-target images. The backdoor's attack
    success rate is the share of them the poisoned model calls `target`
    (`attack_success_rate`); target-class images are left out because calling them `target`
    is no success. Raises UsageError for a negative target, an unknown position or a patch that
    does not fit."""
    check_uint8_images(x)
    if isinstance(target, bool) or not isinstance(target, int):
        raise UsageTypeError(f"target must be an int class, got {type(target).__name__}")
    if target < 0:
        raise UsageError(f"target class must be >= 0, got {target}")
    check_labels(y, n=len(x))
    _check_trigger(tuple(x.shape[2:]), patch_size=patch_size, position=position)
    keep = y != target
    return (stamp_trigger(x[keep], patch_size=patch_size, position=position),
            y[keep].long().clone())


def attack_success_rate(predictions: torch.Tensor, *, target: int) -> float:
    """Share in [0, 1] of triggered images classified as `target`; predictions: int class
    labels (M,) of the images `triggered_test_set` gives. Raises UsageError when there are no
    predictions (the rate is undefined) or they are not (M,) class labels."""
    if not isinstance(predictions, torch.Tensor) or predictions.is_floating_point():
        raise UsageTypeError("predictions must be an integer tensor of class labels (M,) "
                             "(argmax of the logits), got "
                             f"{getattr(predictions, 'dtype', type(predictions).__name__)}")
    if predictions.dim() != 1 or len(predictions) == 0:
        raise UsageError(f"predictions must have shape (M,) with M >= 1, got "
                         f"{tuple(predictions.shape)}")
    return float((predictions == target).double().mean())


# ----------------------------------------------------------------- registered (poisoning.registry)

# the label-consistent backdoor's PGD steps on its hard examples (Turner et al. use more; 20
# keeps crafting to minutes on a CPU)
CLEAN_LABEL_STEPS = 20
# its PGD batch: 256 whatever the run's batch_size (budget.batch_size), as it always crafted: a
# batch of another size may round the convolutions differently in their last bits, and so move
# the poisoned sets already crafted and saved
CLEAN_LABEL_BATCH = 256


@register_poison("badnets", kind="backdoor", needs="nothing", subset=True, cost=0.0,
                 share="of the training set",
                 summary="BadNets (Gu et al. 2017): a trigger patch, the label set to the target")
def _badnets(x, y, *, num_classes: int, budget: PoisonBudget, model) -> PoisonedSet:
    return badnets(x, y, num_classes=num_classes, fraction=budget.fraction, target=budget.target,
                   patch_size=budget.patch_size, seed=budget.seed)


@register_poison("clean_label", kind="backdoor", needs="reference", subset=True,
                 cost=0.1 * CLEAN_LABEL_STEPS * 3, share="of the target class",
                 summary="label-consistent backdoor (Turner et al. 2019): target-class images "
                         "made hard by PGD, then triggered, labels unchanged")
def _clean_label(x, y, *, num_classes: int, budget: PoisonBudget, model) -> PoisonedSet:
    return clean_label(x, y, num_classes=num_classes, model=model,
                       budget=replace(budget, batch_size=CLEAN_LABEL_BATCH),
                       steps=CLEAN_LABEL_STEPS)
