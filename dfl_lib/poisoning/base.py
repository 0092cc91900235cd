"""What every poison shares: the `PoisonedSet` it returns, the argument checks it runs before any
work, the seeded choice of which samples to poison, and the float <-> uint8 conversions.

Images are uint8 (N, C, H, W) in 0..255 as `dfl_lib.data.Dataset` holds them; budgets (eps) are
in pixel units of images in [0, 1], as for the evasion attacks, so eps = 8/255 allows a change of
8 grey levels (plus at most half a level from rounding back to uint8).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..data.datasets import to_float
from ..errors import UsageError, UsageTypeError
from ..validation import check_labels, require_eval

__all__ = ["PoisonedSet", "check_fraction", "check_num_classes", "check_target", "check_eps",
           "check_patch", "check_uint8_images", "check_dataset", "check_seed", "check_count",
           "check_choice", "check_instance", "check_reference", "choose", "count_of", "to_uint8",
           "to_float", "model_device"]


@dataclass(frozen=True, eq=False)  # eq=False: == on tensors is elementwise, not a bool
class PoisonedSet:
    """A training set after poisoning, and what was done to it.

    x        uint8 (N, C, H, W), the poisoned images (a new tensor, never the caller's)
    y        int64 (N,), the poisoned labels
    indices  int64 (M,), sorted: the samples whose image and/or label the poison changed; every
             other sample is identical to the clean set, image and label
    kind     the poison's name: "badnets", "clean_label", "adversarial", "error_min", "label_flip"
    params   plain values (numbers, strings) giving every budget and the seed, enough to redo it
    target   the backdoor's target class, None for poisons without one
    """

    x: torch.Tensor
    y: torch.Tensor
    indices: torch.Tensor
    kind: str
    params: dict = field(default_factory=dict)
    target: int | None = None

    def __repr__(self) -> str:  # the default would print whole tensors
        n = len(self.y)
        return (f"PoisonedSet({self.kind!r}, {len(self.indices)} of {n} samples changed, "
                f"target={self.target}, params={self.params})")

    @property
    def fraction(self) -> float:
        """The share of samples poisoned, len(indices) / N."""
        return len(self.indices) / max(len(self.y), 1)


# --------------------------------------------------------------------------- argument checks

def _check_int(value, *, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageTypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")


def check_fraction(fraction: float, *, name: str = "fraction") -> None:
    """Require a share in [0, 1]."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise UsageTypeError(f"{name} must be a number in [0, 1], got {type(fraction).__name__}")
    if not 0.0 <= fraction <= 1.0:  # also refuses NaN
        raise UsageError(f"{name} must lie in [0, 1] (a share of the samples), got {fraction}")


def check_num_classes(num_classes: int, *, minimum: int = 2) -> None:
    """Require the dataset's class count as an int >= `minimum`."""
    _check_int(num_classes, name="num_classes")
    if num_classes < minimum:
        raise UsageError(f"num_classes must be >= {minimum}, got {num_classes}")


def check_target(target: int, *, num_classes: int) -> None:
    """Require a target class the dataset has: an int in [0, num_classes)."""
    _check_int(target, name="target")
    if not 0 <= target < num_classes:
        raise UsageError(f"target class {target} is not a class of this dataset: expected an int "
                         f"in [0, {num_classes - 1}]")


def check_eps(eps: float, *, name: str = "eps") -> None:
    """Require an L-inf budget in [0, 1] (pixel units on images in [0, 1]: 8/255, not 8)."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise UsageTypeError(f"{name} must be a number in [0, 1], got {type(eps).__name__}")
    if not 0.0 <= eps <= 1.0:
        raise UsageError(f"{name} must lie in [0, 1] (pixel units on images in [0, 1], e.g. "
                         f"8/255), got {eps}")


def check_patch(patch_size: int, *, image_size: tuple[int, int]) -> None:
    """Require a trigger of side >= 1 that fits the (H, W) image with its one-pixel margin."""
    _check_int(patch_size, name="patch_size")
    if patch_size < 1:
        raise UsageError(f"patch_size must be >= 1 pixel, got {patch_size}")
    h, w = image_size
    if patch_size + 1 > min(h, w):
        raise UsageError(f"patch_size {patch_size} is too large for {h}x{w} images: the patch "
                         f"and its one-pixel margin must fit, so at most {min(h, w) - 1}")


def check_uint8_images(x: torch.Tensor, *, name: str = "x") -> None:
    """Require uint8 images (N, C, H, W) in 0..255 (the Dataset's layout, not floats)."""
    if not isinstance(x, torch.Tensor):
        raise UsageTypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype != torch.uint8:
        raise UsageTypeError(f"{name} must be uint8 images in 0..255 (the Dataset's x_train), "
                             f"got dtype {x.dtype}")
    if x.dim() != 4:
        raise UsageError(f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}")


def check_dataset(x: torch.Tensor | None, y: torch.Tensor, *, num_classes: int) -> None:
    """Require uint8 images (N, C, H, W) (when given) and integer labels (N,) in
    [0, num_classes)."""
    if x is not None:
        check_uint8_images(x)
    check_labels(y, n=len(x) if x is not None else len(y))
    if y.dim() != 1:
        raise UsageError(f"y must have shape (N,), got {tuple(y.shape)}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise UsageError(f"labels must lie in [0, {num_classes - 1}] for num_classes="
                         f"{num_classes}, got values in [{int(y.min())}, {int(y.max())}]")


def check_seed(seed: int) -> None:
    """Require an int seed (None would make the poison irreproducible)."""
    _check_int(seed, name="seed")


def check_count(value: int, *, name: str, minimum: int = 1) -> None:
    """Require an int >= minimum (steps, rounds, batch sizes)."""
    _check_int(value, name=name)
    if value < minimum:
        raise UsageError(f"{name} must be >= {minimum}, got {value}")


def check_choice(value: str, choices: tuple[str, ...], *, name: str) -> None:
    """Require one of a closed set of names (positions, modes)."""
    if value not in choices:
        raise UsageError(f"unknown {name} {value!r}; expected one of {', '.join(choices)}")


def check_instance(value, cls: type, *, name: str) -> None:
    """Require a parameter object of class `cls` (a PoisonBudget, a MinMinSchedule): a dict or
    None would otherwise fail later on a missing attribute, far from the call."""
    if not isinstance(value, cls):
        raise UsageTypeError(f"{name} must be a {cls.__name__}, got {type(value).__name__}")


def check_reference(model: nn.Module) -> None:
    """Require the clean reference model in eval mode (its BatchNorm must not move while poisons
    are crafted against it)."""
    require_eval(model, what="crafting poisons against it")


# --------------------------------------------------------------------------- shared pieces

def choose(candidates: torch.Tensor, *, count: int, generator: torch.Generator,
           what: str) -> torch.Tensor:
    """`count` of the int64 `candidates` (M,), drawn without replacement with `generator`,
    sorted. UsageError when fewer than `count` candidates exist."""
    if count > len(candidates):
        raise UsageError(f"cannot poison {count} samples: only {len(candidates)} {what}")
    picked = candidates[torch.randperm(len(candidates), generator=generator)[:count]]
    return picked.sort().values


def count_of(fraction: float, n: int) -> int:
    """round(fraction * n) (Python's round: halves go to the even neighbour)."""
    return round(fraction * n)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] -> uint8 0..255, rounded to the nearest level: a perturbation of
    at most eps in [0, 1] units becomes at most eps + 0.5/255 after rounding."""
    return (x.detach().cpu() * 255.0).round_().clamp_(0, 255).to(torch.uint8)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameterless model)."""
    return next(model.parameters(), torch.empty(0)).device

