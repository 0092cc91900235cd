"""Availability ("indiscriminate") poisons: every training image moved within an L-inf ball,
labels unchanged, so that a network trained on them generalises badly to clean test data.

    budget = PoisonBudget(fraction=1.0, target=0, patch_size=3, eps=8/255, batch_size=128,
                          seed=0)   # these two poisons read only eps, batch_size and seed
    poisoned = adversarial_poison(x, y, num_classes=10, model=reference.eval(), budget=budget)
    poisoned = error_minimising(x, y, num_classes=10, model=fresh_net, budget=budget,
                                schedule=MinMinSchedule(rounds=3))

- `adversarial_poison` (Fowl et al. 2021, "Adversarial examples make strong poisons"): PGD
  against a clean-trained reference network; the class-targeted variant (each image pushed
  towards class y + 1 mod K) is the paper's strongest.
- `error_minimising` (Huang et al. 2021, "Unlearnable examples", sample-wise noise): a min-min
  problem: the noise MINIMISES the training loss of a network that is trained on the noisy data
  at the same time, so the noise becomes a shortcut the network learns instead of the content.

eps is in pixel units of images in [0, 1]; after rounding back to uint8 a pixel moves by at most
eps + 0.5/255. Adversarial training at the poison's budget is the known counter-measure.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks.base import ce_loss, logits_of, project_linf
from ..attacks.pgd import pgd
from ..errors import UsageError, UsageTypeError
from ..validation import check_nonnegative
from .base import (PoisonedSet, check_count, check_dataset, check_eps, check_fraction,
                   check_instance, check_num_classes, check_reference, check_seed, model_device,
                   to_float, to_uint8)
from .registry import PoisonBudget, register_poison

__all__ = ["MinMinSchedule", "adversarial_poison", "error_minimising"]

# Huang et al.'s optimiser for the min-min network (SGD, lr 0.1, momentum 0.9, weight decay 5e-4)
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4


def _toward(model: nn.Module, x: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """-CE(logits, goal) per example (N,): PGD maximises it, so it pulls x towards `goal`."""
    return -F.cross_entropy(logits_of(model, x), goal, reduction="none")


def adversarial_poison(x: torch.Tensor, y: torch.Tensor, *, num_classes: int, model: nn.Module,
                       budget: PoisonBudget, steps: int = 20, alpha: float | None = None,
                       targeted: bool = True) -> PoisonedSet:
    """Adversarial poisons (Fowl et al. 2021): every training image perturbed by L-inf PGD
    (our `attacks.pgd`: random start from torch.Generator().manual_seed(seed), `steps` steps of
    `alpha` (default 2.5 * eps / steps), last iterate) against `model`, a clean-trained reference
    in eval mode, in batches of batch_size images. targeted=True minimises the CE to class
    (y + 1) mod num_classes (the paper's class-targeted poison); targeted=False maximises the CE
    to y. Labels unchanged.

    `budget` gives eps (`PoisonBudget.eps`, pixel units on images in [0, 1]), batch_size and
    seed; its fraction, target and patch_size are not read (every image is poisoned, there is
    no trigger). x uint8 (N, C, H, W), y (N,). Returns a PoisonedSet (kind "adversarial",
    indices all N, target None); |poisoned - clean| <= eps + 0.5/255 in [0, 1] units. The
    model's mode and parameters are left as they were. Raises UsageError for eps outside
    [0, 1], a model in train mode, labels outside [0, num_classes) or steps / batch_size below
    1, UsageTypeError for a budget that is not a PoisonBudget.
    """
    check_num_classes(num_classes)
    check_dataset(x, y, num_classes=num_classes)
    check_instance(budget, PoisonBudget, name="budget")
    eps, batch_size, seed = budget.eps, budget.batch_size, budget.seed
    check_eps(eps)
    check_count(steps, name="steps")
    if alpha is not None:
        check_nonnegative(alpha, name="alpha")
    check_count(batch_size, name="batch_size")
    check_seed(seed)
    check_reference(model)

    generator = torch.Generator().manual_seed(seed)
    device = model_device(model)
    x_out = x.clone()
    for batch in torch.arange(len(x)).split(batch_size):
        clean = to_float(x[batch]).to(device)  # (B, C, H, W) in [0, 1]
        labels = y[batch].long().to(device)
        goal = (labels + 1) % num_classes if targeted else labels
        adv = pgd(model, clean, goal, eps=eps, steps=steps, alpha=alpha, random_start=True,
                  loss_fn=_toward if targeted else ce_loss, generator=generator,
                  keep_best=False)  # keep_best would prefer iterates NOT of the goal class
        x_out[batch] = to_uint8(adv)
    return PoisonedSet(x=x_out, y=y.long().clone(), indices=torch.arange(len(x)),
                       kind="adversarial", target=None,
                       params={"eps": eps, "steps": steps,
                               "alpha": 2.5 * eps / steps if alpha is None else alpha,
                               "targeted": bool(targeted), "seed": seed})


def _descend(model: nn.Module, clean: torch.Tensor, y: torch.Tensor, noise: torch.Tensor, *,
             eps: float, alpha: float, steps: int) -> torch.Tensor:
    """`steps` signed-gradient steps that MINIMISE the CE of the true labels, from the current
    noise, projected to the eps-ball around `clean` and to [0, 1]. clean, noise (B, C, H, W);
    returns the new noise. Input gradients only: the model's parameters get no .grad."""
    x_adv = (clean + noise).clamp(0.0, 1.0)
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(logits_of(model, x_adv), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = project_linf(x_adv.detach() - alpha * grad.sign(), clean, eps=eps)
    return (x_adv - clean).detach()


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, noise: torch.Tensor | None,
              batch_size: int, device: torch.device) -> float:
    """Share of the uint8 images x (N, C, H, W), plus `noise` (float, same shape) when given,
    that the model (in eval mode) classifies as y; batch by batch, so no float copy of x."""
    correct = 0
    for batch in torch.arange(len(x)).split(batch_size):
        images = to_float(x[batch])
        if noise is not None:
            images = (images + noise[batch]).clamp(0.0, 1.0)
        logits = logits_of(model, images.to(device))
        correct += int((logits.argmax(1).cpu() == y[batch]).sum())
    return correct / max(len(x), 1)


@dataclass(frozen=True)
class MinMinSchedule:
    """How `error_minimising` runs its min-min loop (Huang et al. 2021), as opposed to what the
    poison may do (`registry.PoisonBudget`). Each round trains the network for `train_steps`
    SGD steps of learning rate `lr`, then moves every image's noise by `steps` signed-gradient
    steps of `alpha` (pixel units on images in [0, 1]; None: eps / 10, Huang et al.'s 0.8/255
    at 8/255); the loop stops once the network's accuracy on the noisy images reaches
    `stop_accuracy` (a share in [0, 1]) or after `rounds` rounds.

    The fields are checked by `error_minimising` before any work, each refused value named in a
    one-line UsageError: counts below 1, a negative alpha, stop_accuracy outside [0, 1],
    lr <= 0."""
    steps: int = 10
    alpha: float | None = None
    train_steps: int = 10
    rounds: int = 10
    stop_accuracy: float = 0.99
    lr: float = 0.1


def error_minimising(x: torch.Tensor, y: torch.Tensor, *, num_classes: int, model: nn.Module,
                     budget: PoisonBudget,
                     schedule: MinMinSchedule = MinMinSchedule()) -> PoisonedSet:
    """Error-minimising, sample-wise noise (Huang et al. 2021, "Unlearnable examples": the
    min-min objective, min over the weights of the mean over samples of min over ||delta||_inf
    <= eps of the CE).

    Starting from noise uniform in [-eps, eps], each round (i) trains `model` in train mode for
    `train_steps` SGD steps (lr, momentum 0.9, weight decay 5e-4, batches of batch_size images
    from a fresh seeded shuffle) on the currently perturbed data, then (ii) in eval mode updates
    every image's noise with `steps` signed-gradient steps of `alpha` (default eps / 10, Huang
    et al.'s 0.8/255 at 8/255) that minimise the CE of its true label, from where the noise
    was; it stops when the model's accuracy on the perturbed data reaches `stop_accuracy` or
    after `rounds` rounds. steps, alpha, train_steps, rounds, stop_accuracy and lr come from
    `schedule` (`MinMinSchedule`, its defaults when not given).

    `budget` gives eps (`PoisonBudget.eps`, pixel units on images in [0, 1]), batch_size and
    seed; its fraction, target and patch_size are not read (every image gets noise).
    `model`: a freshly initialised network; it is trained in place and left in eval mode.
    Dropout and other random layers draw from the global RNG re-seeded with `seed` inside a
    forked RNG state, so the global RNG is left as it was and the result depends only on the
    inputs, the model's initial weights and `seed`.

    x uint8 (N, C, H, W), y (N,). Returns a PoisonedSet (kind "error_min", indices all N);
    params hold the budgets, the seed, `rounds_used` and `final_accuracy` (the model's accuracy
    on the returned uint8 images). |poisoned - clean| <= eps + 0.5/255. Raises UsageError for
    eps outside [0, 1], stop_accuracy outside [0, 1], lr <= 0, or counts below 1,
    UsageTypeError for a budget or schedule of another class.
    """
    check_num_classes(num_classes)
    check_dataset(x, y, num_classes=num_classes)
    check_instance(budget, PoisonBudget, name="budget")
    check_instance(schedule, MinMinSchedule, name="schedule")
    # read once into the names the loop below always used, so its arithmetic stays as it was
    eps, batch_size, seed = budget.eps, budget.batch_size, budget.seed
    steps, alpha, train_steps = schedule.steps, schedule.alpha, schedule.train_steps
    rounds, stop_accuracy, lr = schedule.rounds, schedule.stop_accuracy, schedule.lr
    check_eps(eps)
    for name, value in {"steps": steps, "train_steps": train_steps, "rounds": rounds,
                        "batch_size": batch_size}.items():
        check_count(value, name=name)
    if alpha is not None:
        check_nonnegative(alpha, name="alpha")
    check_fraction(stop_accuracy, name="stop_accuracy")
    check_nonnegative(lr, name="lr")
    if lr == 0:
        raise UsageError("lr must be > 0: the min-min network has to learn, got 0")
    check_seed(seed)
    if not isinstance(model, nn.Module):
        raise UsageTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")

    if len(x) == 0:
        raise UsageError("error_minimising needs at least one training image, got 0")

    alpha = eps / 10 if alpha is None else alpha
    x = x.cpu()  # the noise lives on the CPU beside the images; batches go to the model
    device = model_device(model)
    labels = y.long().cpu()
    generator = torch.Generator().manual_seed(seed)
    # (N, C, H, W) float32 on the CPU: the noise persists across rounds (Huang et al.)
    noise = (2 * torch.rand(x.shape, generator=generator) - 1) * eps
    optimiser = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM,
                                weight_decay=WEIGHT_DECAY)
    cuda = [device.index or 0] if device.type == "cuda" else []
    rounds_used = 0
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        for rounds_used in range(1, rounds + 1):
            model.train()
            order = torch.cat([torch.randperm(len(x), generator=generator)
                               for _ in range(-(-train_steps * batch_size // len(x)))])
            for batch in order.split(batch_size)[:train_steps]:
                perturbed = (to_float(x[batch]) + noise[batch]).clamp(0.0, 1.0).to(device)
                loss = F.cross_entropy(logits_of(model, perturbed), labels[batch].to(device))
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
            model.eval()
            for batch in torch.arange(len(x)).split(batch_size):
                noise[batch] = _descend(model, to_float(x[batch]).to(device),
                                        labels[batch].to(device), noise[batch].to(device),
                                        eps=eps, alpha=alpha, steps=steps).cpu()
            accuracy = _accuracy(model, x, labels, noise=noise, batch_size=batch_size,
                                 device=device)
            if accuracy >= stop_accuracy:
                break
    optimiser.zero_grad(set_to_none=True)
    model.eval()
    x_out = torch.empty_like(x)
    for batch in torch.arange(len(x)).split(batch_size):
        x_out[batch] = to_uint8((to_float(x[batch]) + noise[batch]).clamp(0.0, 1.0))
    final = _accuracy(model, x_out, labels, noise=None, batch_size=batch_size, device=device)
    return PoisonedSet(x=x_out, y=labels.clone(), indices=torch.arange(len(x)),
                       kind="error_min", target=None,
                       params={"eps": eps, "steps": steps, "alpha": alpha,
                               "train_steps": train_steps, "rounds": rounds,
                               "stop_accuracy": stop_accuracy, "lr": lr, "momentum": MOMENTUM,
                               "weight_decay": WEIGHT_DECAY, "batch_size": batch_size,
                               "seed": seed, "rounds_used": rounds_used,
                               "final_accuracy": final})


# ----------------------------------------------------------------- registered (poisoning.registry)

# the adversarial poison's PGD steps (Fowl et al. use more; 20 keeps crafting to minutes here)
ADVERSARIAL_STEPS = 20
# its PGD batch: 256 whatever the run's batch_size (budget.batch_size), as it always crafted: a
# batch of another size may round the convolutions differently in their last bits, and so move
# the poisoned sets already crafted and saved
ADVERSARIAL_BATCH = 256
# error-minimising noise's signed-gradient steps per min-min round, each of eps / 5: the noise
# moves up to eps per round as with Huang et al.'s ratio halved (20 x eps / 10); 10 steps of
# eps / 10 took 205 s at quick and 5 take 102 s, both stopping after 3 rounds at 99.9% (issue 20)
MIN_MIN_STEPS = 5


@register_poison("adversarial", kind="availability", needs="reference", subset=False,
                 cost=ADVERSARIAL_STEPS * 3, share="every training image, within eps",
                 summary="adversarial poisons (Fowl et al. 2021): every image moved by targeted "
                         "PGD against a clean-trained reference network")
def _adversarial(x, y, *, num_classes: int, budget: PoisonBudget, model) -> PoisonedSet:
    return adversarial_poison(x, y, num_classes=num_classes, model=model,
                              budget=replace(budget, batch_size=ADVERSARIAL_BATCH),
                              steps=ADVERSARIAL_STEPS)


# 3 min-min rounds (where it stopped at quick, at 99.9% accuracy), each MIN_MIN_STEPS noise
# steps and about as many training steps, forward and backward
@register_poison("error_min", kind="availability", needs="fresh", subset=False,
                 cost=3 * MIN_MIN_STEPS * 3 * 1.2, share="every training image, within eps",
                 summary="error-minimising noise (Huang et al. 2021): a min-min loop that "
                         "trains a fresh network while the noise lowers its loss")
def _error_min(x, y, *, num_classes: int, budget: PoisonBudget, model) -> PoisonedSet:
    return error_minimising(x, y, num_classes=num_classes, model=model, budget=budget,
                            schedule=MinMinSchedule(steps=MIN_MIN_STEPS,
                                                    alpha=budget.eps / MIN_MIN_STEPS))
