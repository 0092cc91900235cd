"""One L-inf attack loop and one judge with every flaw as an option, so a flawed evaluation is
the honest one with named options changed (`flaws.Flaw.options`).

With the default options the loop is the library's attack exactly: `flawed_attack(column="PGD-10")`
equals `attacks.pgd(..., keep_best=False)` with the same generator, "FGSM" equals `attacks.fgsm`,
"C&W" equals `attacks.cw_pgd(..., keep_best=False)` (tests/test_forensics.py).

Options (each a flaw when changed; `flaws.FLAWS` explains them):
    objective  "ce" | "clipped_log_softmax" | "probability" | "features" | "centroid"
    mode       "eval" | "train" (attack and judge with BatchNorm on batch statistics) |
               "train_attack" (attack in train mode, judge in eval mode)
    eps_units  "pixel" | "normalised" (eps and step size read in standardised units: x std)
    clip       "image" (clamp x_adv to [0, 1]) | "none" | "delta" (clamp the perturbation to
               [0, 1] instead of the image: only brightening survives)
    judge      "labels" | "clean_predictions" | "correct_subset"
    source     "self" | "plain" (craft on another model, the run without the DFL, and judge this one)
    cw         "inf" (the study's C&W column: PGD on the C&W margin) | "fixed_c" (C&W-L2 at
               c = 0.1, 10 Adam steps, no search, reported as accuracy)
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..attacks.base import logit_margin, logits_of, project_linf
from ..attacks.cw import cw, cw_once
from ..errors import UsageError

__all__ = ["DEFAULTS", "COLUMNS", "flawed_attack", "judge", "flawed_accuracy"]

DEFAULTS = {"objective": "ce", "mode": "eval", "eps_units": "pixel", "clip": "image",
            "judge": "labels", "source": "self", "cw": "inf"}
CHOICES = {"objective": ("ce", "clipped_log_softmax", "probability", "features", "centroid"),
           "mode": ("eval", "train", "train_attack"), "eps_units": ("pixel", "normalised"),
           "clip": ("image", "none", "delta"), "judge": ("labels", "clean_predictions",
                                                         "correct_subset"),
           "source": ("self", "plain"), "cw": ("inf", "fixed_c")}
# the paper's three columns as this study runs them: (steps, random start)
COLUMNS = {"FGSM": (1, False), "PGD-10": (10, True), "C&W": (10, True)}
KERAS_EPSILON = 1e-7  # keras.backend.epsilon(): categorical_crossentropy clips to [eps, 1 - eps]


def check_options(options: dict) -> dict:
    """The defaults updated with `options`; UsageError naming an unknown option or value."""
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise UsageError(f"unknown forensic options {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    for key, value in options.items():
        if value not in CHOICES[key]:
            raise UsageError(f"forensic option {key}={value!r}; expected one of {CHOICES[key]}")
    return {**DEFAULTS, **options}


def _objective(name: str, *, column: str, loss=None, clean_features=None) -> Callable:
    """(model, x_adv, y) -> per-example loss (N,) to maximise."""
    if column == "C&W":
        if name != "ce":
            raise UsageError("the objective flaws replace cross-entropy; the C&W column's "
                             "objective is the C&W margin")
        return lambda m, x, y: logit_margin(logits_of(m, x), y).clamp(max=0.0)
    if name == "ce":
        return lambda m, x, y: F.cross_entropy(logits_of(m, x), y, reduction="none")
    if name == "clipped_log_softmax":
        def clipped(m, x, y):
            p = torch.softmax(logits_of(m, x), dim=1).gather(1, y[:, None]).squeeze(1)
            return -torch.log(p.clamp(KERAS_EPSILON, 1.0 - KERAS_EPSILON))
        return clipped
    if name == "probability":
        return lambda m, x, y: -torch.softmax(logits_of(m, x), dim=1).gather(
            1, y[:, None]).squeeze(1)
    if name == "features":
        def features(m, x, y):
            f = m(x, return_features=True)[1]["penultimate"]
            return (f - clean_features).pow(2).sum(1)
        return features
    if name == "centroid":
        if loss is None or not hasattr(loss, "distances"):
            raise UsageError("the 'centroid' objective needs a loss with centroids (PCL)")
        return lambda m, x, y: loss.distances(
            m(x, return_features=True)[1][loss.feature]).gather(1, y[:, None]).squeeze(1)
    raise UsageError(f"unknown objective {name!r}")


def _clip(x_adv, x, *, eps, clip):
    if clip == "image":
        return project_linf(x_adv, x, eps=eps)
    delta = torch.clamp(x_adv - x, -eps, eps)
    if clip == "delta":  # the perturbation clamped to [0, 1] instead of the image
        delta = delta.clamp(0.0, 1.0)
    return x + delta


def _attacked_model(model: nn.Module, mode: str) -> nn.Module:
    """The model as the flawed attack sees it: itself (eval), or a copy in train mode (BatchNorm
    on batch statistics; the copy's running statistics move, the study's model is untouched)."""
    if mode == "eval":
        return model
    twin = copy.deepcopy(model)
    twin.train()
    return twin


def flawed_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, column: str,
                  eps: float, options: dict | None = None, loss=None,
                  generator: torch.Generator | None = None,
                  attacked: nn.Module | None = None) -> torch.Tensor:
    """Adversarial images (N, C, H, W) for the paper's `column` ("FGSM", "PGD-10", "C&W") at eps
    (pixel units unless options say otherwise), crafted with the flaws in `options` on `model`
    (or on `attacked`, a prepared copy). The last iterate, as the library's attacks with
    keep_best=False. alpha: eps for FGSM, 2.5 eps / steps otherwise (Madry et al.'s ratio)."""
    o = check_options(options or {})
    if column not in COLUMNS:
        raise UsageError(f"unknown column {column!r}; expected one of {list(COLUMNS)}")
    x, y = x.detach(), y.detach()
    attacked = attacked if attacked is not None else _attacked_model(
        model, "train" if o["mode"] in ("train", "train_attack") else "eval")
    if column == "C&W" and o["cw"] == "fixed_c":
        # the paper's stated C&W: L2, c = 0.1, 10 Adam steps of lr 0.01, no binary search
        # (as the study's "C&W-L2 paper setting" row runs it)
        return cw(attacked, x, y, c=0.1, steps=10, lr=0.01, binary_search_steps=0) \
            if not attacked.training else _cw_train_mode(attacked, x, y)
    steps, random_start = COLUMNS[column]
    scale = float(model.normalize.std.mean()) if o["eps_units"] == "normalised" else 1.0
    eps_used = eps * scale
    alpha = eps_used if column == "FGSM" else 2.5 * eps_used / steps
    clean_features = None
    if o["objective"] == "features":
        with torch.no_grad():
            clean_features = attacked(x, return_features=True)[1]["penultimate"]
    objective = _objective(o["objective"], column=column, loss=loss,
                           clean_features=clean_features)
    if random_start:
        device = generator.device if generator is not None else x.device
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype,
                           device=device).to(x.device)
        x_adv = _clip(x + eps_used * (2 * noise - 1), x, eps=eps_used, clip=o["clip"])
    else:
        x_adv = x.clone()
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(objective(attacked, x_adv, y).sum(), x_adv)
        x_adv = _clip(x_adv.detach() + alpha * grad.sign(), x, eps=eps_used, clip=o["clip"])
    return x_adv.detach()


def _cw_train_mode(model, x, y):
    """The library's C&W refuses a model in train mode (its guard); the flaw needs it anyway."""
    c = torch.full((len(x),), 0.1, dtype=x.dtype)
    found, _, x_adv = cw_once(model, x, y, c=c, kappa=0.0, steps=10, lr=0.01)
    return torch.where(found[:, None, None, None], x_adv, x)


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return logits_of(model, x).argmax(1)


def judge(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor, *, clean_pred: torch.Tensor,
          options: dict | None = None, judged: nn.Module | None = None) -> np.ndarray:
    """Per-example hits (bool array) as the flawed evaluation counts them: accuracy is their mean.
    "labels": prediction == true label (honest); "clean_predictions": == the model's clean
    prediction; "correct_subset": == true label, over the clean-correct examples only (a shorter
    array). Judged in eval mode, or (mode "train") by the train-mode copy `judged`."""
    o = check_options(options or {})
    pred = _predict(judged if (o["mode"] == "train" and judged is not None) else model, x_adv)
    if o["judge"] == "clean_predictions":
        return (pred == clean_pred).numpy()
    hits = (pred == y).numpy()
    if o["judge"] == "correct_subset":
        return hits[(clean_pred == y).numpy()]
    return hits


def flawed_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, column: str,
                    eps: float, options: dict | None = None, loss=None,
                    plain: nn.Module | None = None, seed: int = 0,
                    batch_size: int = 250, cache: dict | None = None) -> np.ndarray:
    """Hits (bool array) of `model` under the flawed evaluation `options` of the paper's
    `column`, in batches (train-mode BatchNorm reads each batch's statistics); `plain` is the
    model a "source": "plain" evaluation crafts on. x (N, C, H, W) in [0, 1], y (N,).
    `cache` (a dict the caller keeps per model and images) reuses the adversarial images of an
    evaluation that differs only in how it judges them."""
    o = check_options(options or {})
    if o["source"] == "plain" and plain is None:
        raise UsageError("source 'plain' needs the model to craft on (plain=...)")
    crafted_on = plain if o["source"] == "plain" else model
    attacked = _attacked_model(crafted_on, "train" if o["mode"] in ("train", "train_attack")
                               else "eval")
    judged = attacked if (o["mode"] == "train" and o["source"] == "self") else \
        _attacked_model(model, "train") if o["mode"] == "train" else None
    key = (column, eps, seed, batch_size, tuple(sorted((k, v) for k, v in o.items()
                                                     if k != "judge")))
    if cache is not None and key in cache:
        batches = cache[key]
    else:
        generator = torch.Generator().manual_seed(seed)
        batches = []
        with _no_weight_grads(model, plain, attacked, judged):
            for i in range(0, len(y), batch_size):
                xb, yb = x[i:i + batch_size], y[i:i + batch_size]
                clean_pred = _predict(judged if judged is not None else model, xb)
                x_adv = flawed_attack(crafted_on, xb, yb, column=column, eps=eps, options=o,
                                      loss=loss if o["source"] == "self" else None,
                                      generator=generator, attacked=attacked)
                batches.append((i, x_adv, clean_pred))
        if cache is not None:
            cache[key] = batches
    return np.concatenate([judge(model, x_adv, y[i:i + batch_size], clean_pred=clean_pred,
                                 options=o, judged=judged) for i, x_adv, clean_pred in batches])


@contextmanager
def _no_weight_grads(*models):
    """Input gradients only (as `attacks.base.frozen`, without its eval-mode guard: the flaws
    include train mode); every parameter's flag restored afterwards."""
    params = {id(p): p for m in models if m is not None for p in m.parameters()}
    flags = {k: p.requires_grad for k, p in params.items()}
    try:
        for p in params.values():
            p.requires_grad_(False)
        yield
    finally:
        for k, p in params.items():
            p.requires_grad_(flags[k])
