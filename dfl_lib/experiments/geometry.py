"""The paper's Figure 4 as a computation: train a small CNN whose penultimate layer is 2-D with
each loss (CE, centre loss, additive margin, PCL), then read off the 2-D features, their
clusters, the classifier's decision regions in that plane, and where PGD moves the points.

    model, loss = train_2d(loss="pcl", x=x_train, y=y_train, epochs=3, lr=0.05, seed=0)
    f = features_2d(model, x_test)                                # (N, 2)
    labels, extent = decision_regions(model, extent=feature_extent(f), resolution=300)
    ratio = separation_ratio(f, y_test)                           # lower = tighter clusters
    f_adv = attacked_features(model, x_test, y_test, eps=0.1)     # (N, 2)

Computing only; the figures are drawn by `dfl_lib.figures.geometry`. Images are float (N, 1, 28,
28) in [0, 1] (uint8 is converted); normalisation is the model's first layer, so eps is in pixel
units.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import pgd
from ..data.datasets import batch_indices, to_float
from ..errors import UsageError
from ..losses import LOSSES, build_loss
from ..models.blocks import CosineClassifier, Normalize
from ..validation import check_images, check_labels, check_nonnegative, require_eval

__all__ = ["Net2D", "GEOMETRY_LOSSES", "train_2d", "features_2d", "feature_extent",
           "class_centroids", "separation_ratio", "decision_regions", "attacked_features",
           "share_in_true_region"]

NUM_CLASSES = 10
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)  # the full MNIST training set, in [0, 1] units
# the losses a 2-D feature layer can carry (Mustafa et al.'s needs two feature layers and its own
# two-stage training, so it is left out)
GEOMETRY_LOSSES = ("ce", "center", "am_softmax", "pcl", "pcl_legacy")
# optimiser: SGD as the study trains (momentum 0.9, weight decay 5e-4 on the model only)
MOMENTUM, WEIGHT_DECAY = 0.9, 5e-4
GRAD_CLIP = 5.0  # max gradient norm: a cosine head on 2-D features has |d cos/d f| = 1/|f|,
                 # with |f| ~ 0.07 at init, and without a clip its first steps blow the norms up
# 2-D settings that differ from the registry's defaults. Additive margin: ten classes share one
# circle, 36 degrees apart, so a margin is attainable only below 1 - cos 36deg = 0.19, and scale
# 30 saturates the softmax. Test accuracy (1,000 MNIST test images; 10,000 training images, 3
# epochs, lr 0.05, seed 0): s 30 / m 0.35: 0.68, s 30 / m 0.1: 0.72, s 10 / m 0.1: 0.87 (CE:
# 0.95). CosFace's lower bound on the scale for 10 classes at 99% is about 6.
LOSS_DEFAULTS_2D = {"am_softmax": {"margin": 0.1, "scale": 10.0}}


class Net2D(nn.Module):
    """A small CNN for 1x28x28 images with a 2-D penultimate layer (Wen et al.'s "LeNet++" idea,
    smaller): Normalize -> 3 x [conv 3x3 (5x5 first), BN, PReLU, max-pool 2] -> FC 128, PReLU ->
    FC 2 ("penultimate", no activation, so the features can take any direction in the plane)
    -> head. head="linear" (CE, centre loss, PCL) or "cosine" (additive margin, logits = scale *
    cos(f, w_k)); the cosine head's class directions start evenly round the circle: from random
    directions they stay crowded in a half circle (test accuracy 0.62 instead of 0.87 in the
    setting of `LOSS_DEFAULTS_2D`). `feature_dims` = {"pooled": 128, "penultimate": 2}, as the
    study's models.
    """

    def __init__(self, *, num_classes: int = NUM_CLASSES, head: str = "linear",
                 cosine_scale: float = 30.0, mean=MNIST_MEAN, std=MNIST_STD,
                 widths: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        self.num_classes, self.in_channels = num_classes, 1
        self.normalize = Normalize(mean, std)
        layers, c_in = [], 1
        for i, c in enumerate(widths):  # 28 -> 14 -> 7 -> 3
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(c_in, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c),
                       nn.PReLU(c), nn.MaxPool2d(2)]
            c_in = c
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * 3 * 3, 128), nn.PReLU())
        self.to_2d = nn.Linear(128, 2)
        if head == "linear":
            self.head = nn.Linear(2, num_classes)
        elif head == "cosine":
            self.head = CosineClassifier(2, num_classes, scale=cosine_scale)
            with torch.no_grad():  # class k's direction at angle 2 pi k / K
                angle = 2 * math.pi * torch.arange(num_classes) / num_classes  # (K,)
                self.head.weight.copy_(torch.stack([angle.cos(), angle.sin()], dim=1))  # (K, 2)
        else:
            raise UsageError(f"unknown head {head!r}; known: cosine, linear")
        self.feature_dims = {"pooled": 128, "penultimate": 2}

    def forward(self, x: torch.Tensor, return_features: bool = False):
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise UsageError(f"Net2D expects images (N, 1, 28, 28), got {tuple(x.shape)}")
        pooled = self.body(self.normalize(x))  # (N, 128)
        f = self.to_2d(pooled)  # (N, 2)
        logits = self.head(f)  # (N, K)
        return (logits, {"pooled": pooled, "penultimate": f}) if return_features else logits


# --------------------------------------------------------------------------- training

def _images(x: torch.Tensor, *, name: str = "x") -> torch.Tensor:
    """uint8 or float images -> float (N, 1, 28, 28) in [0, 1], or a ValueError naming the fault."""
    if isinstance(x, torch.Tensor) and x.dtype == torch.uint8:
        x = to_float(x)
    check_images(x, name=name, channels=1)
    if tuple(x.shape[2:]) != (28, 28):
        raise UsageError(f"{name} must be 28x28 images (N, 1, 28, 28), got {tuple(x.shape)}")
    return x


def _labels(y: torch.Tensor, *, n: int) -> torch.Tensor:
    check_labels(y, n=n)
    if n and (int(y.min()) < 0 or int(y.max()) >= NUM_CLASSES):
        raise UsageError(f"labels must be in 0..{NUM_CLASSES - 1}, got {int(y.min())}.."
                         f"{int(y.max())}")
    return y.long()


def _check_loss_name(loss: str) -> None:
    if loss not in GEOMETRY_LOSSES:
        why = " (it needs two feature layers)" if loss in LOSSES else ""
        raise UsageError(f"unknown loss {loss!r} for the 2-D study{why}; known: "
                         f"{', '.join(GEOMETRY_LOSSES)}")


def _build(loss: str, *, seed: int, loss_kwargs: dict | None) -> tuple[Net2D, nn.Module]:
    """Model and loss for `loss`, weights drawn from a generator seeded with `seed` (the global
    RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        options = {**LOSS_DEFAULTS_2D.get(loss, {}), **(loss_kwargs or {})}
        criterion = build_loss(loss, num_classes=NUM_CLASSES, seed=seed,
                               feature_dims={"pooled": 128, "penultimate": 2}, **options)
        head = "cosine" if loss == "am_softmax" else "linear"
        scale = getattr(criterion, "scale", 30.0)  # the cosine head's scale must match the loss's
        model = Net2D(head=head, cosine_scale=scale)
    return model, criterion


def _optimizer(model: nn.Module, criterion: nn.Module, *, lr: float) -> torch.optim.SGD:
    """SGD over the model (group 0) and the loss's centroids (group 1, if any), as the study's
    trainer builds it (`defences.centre_groups`): centroids without weight decay, at the loss's
    `default_centroid_lr` (centre loss 0.1; PCL None = the model's lr)."""
    groups = [{"params": list(model.parameters())}]
    centroids = list(criterion.parameters())
    if centroids:
        c_lr = getattr(criterion, "default_centroid_lr", None)
        groups.append({"params": centroids, "weight_decay": 0.0,
                       "lr": lr if c_lr is None else c_lr})
    return torch.optim.SGD(groups, lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)


def train_2d(*, loss: str, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int = 128,
             lr: float, seed: int, device: str | torch.device = "cpu",
             loss_kwargs: dict | None = None) -> tuple[Net2D, nn.Module]:
    """Train a `Net2D` with the loss `loss` (one of `GEOMETRY_LOSSES`, built by
    `losses.build_loss` with 10 classes and 2-D features; `loss_kwargs` go to its constructor,
    over the 2-D defaults `LOSS_DEFAULTS_2D`).

    x: images (N, 1, 28, 28), float in [0, 1] or uint8; y: labels (N,) in 0..9. SGD with
    momentum 0.9, weight decay 5e-4 on the model, a constant lr and the model's gradient norm
    clipped at 5; the loss's centroids get their own group (see `_optimizer`). epochs=0 returns
    the initial model. Same seed, same data -> the same model. Returns (model in eval mode, loss
    module), both on `device`.
    """
    _check_loss_name(loss)
    x = _images(x)
    y = _labels(y, n=x.shape[0])
    for name, v, least in (("epochs", epochs, 0), ("batch_size", batch_size, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            raise UsageError(f"{name} must be an integer >= {least}, got {v!r}")
    check_nonnegative(lr, name="lr")
    model, criterion = _build(loss, seed=seed, loss_kwargs=loss_kwargs)
    model.to(device)
    criterion.to(device)
    opt = _optimizer(model, criterion, lr=lr)
    gen = torch.Generator().manual_seed(seed)  # batch order
    model.train()
    for _ in range(epochs):
        for idx in batch_indices(len(y), batch_size=batch_size, generator=gen):
            xb, yb = x[idx].to(device), y[idx].to(device)
            logits, feats = model(xb, return_features=True)
            value = criterion(logits, yb, feats)
            opt.zero_grad(set_to_none=True)
            value.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=GRAD_CLIP)
            opt.step()
    opt.zero_grad(set_to_none=True)
    return model.eval(), criterion


# --------------------------------------------------------------------------- reading the plane

def _require_eval(model: nn.Module) -> None:
    require_eval(model, what="reading its feature plane")


@torch.no_grad()
def features_2d(model: nn.Module, x: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
    """The 2-D penultimate features (N, 2) of images x (N, 1, 28, 28), on the CPU, no grad."""
    _require_eval(model)
    x = _images(x)
    device = next(model.parameters()).device
    out = [model(x[idx].to(device), return_features=True)[1]["penultimate"].cpu()
           for idx in batch_indices(len(x), batch_size=batch_size, shuffle=False)]
    return torch.cat(out) if out else torch.zeros(0, 2)


def feature_extent(*features: torch.Tensor, pad: float = 0.08) -> tuple[float, float, float, float]:
    """A square (xmin, xmax, ymin, ymax) covering every point of the (N_i, 2) arrays, centred on
    them and widened by `pad` times its side on each edge: panels drawn with it keep angles and
    distances undistorted (equal units on both axes)."""
    f = torch.cat([t.detach().float().cpu().reshape(-1, 2) for t in features])
    lo, hi = f.min(0).values, f.max(0).values  # (2,), (2,)
    centre = (lo + hi) / 2  # (2,)
    half = float((hi - lo).max().clamp_min(1e-6)) * (0.5 + pad)
    return (float(centre[0]) - half, float(centre[0]) + half,
            float(centre[1]) - half, float(centre[1]) + half)


def class_centroids(features: torch.Tensor, y: torch.Tensor, *,
                    num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """Mean feature per class (K, d) for features (N, d) and labels (N,); an absent class's row
    is NaN."""
    y = y.to(features.device).long()
    onehot = F.one_hot(y, num_classes).to(features.dtype)  # (N, K)
    counts = onehot.sum(0)  # (K,)
    sums = onehot.T @ features  # (K, d)
    return sums / counts[:, None]  # 0/0 = NaN for an absent class


def separation_ratio(features: torch.Tensor, y: torch.Tensor, *, directions: bool = False) -> float:
    """intra / inter: how tight the class clusters are compared with how far apart they are.

        intra = mean_i || f_i - mu_{y_i} ||          (each feature to its own class mean)
        inter = mean_{a < b} || mu_a - mu_b ||         (over pairs of classes present)

    Lower is better: 0 = every class collapsed onto a point; about 1 or more = clusters as wide
    as the gaps between them. It is invariant to scaling the features, so losses with feature
    norms of very different size compare fairly. directions=True measures the unit vectors
    f / |f| instead: the geometry that cosine heads and PCL (which works on directions) shape,
    where a cluster stretched along its ray is still tight.
    """
    f = features.detach().double()
    if f.dim() != 2 or f.shape[0] != len(y):
        raise UsageError(f"features must be (N, d) with N = len(y) = {len(y)}, "
                         f"got {tuple(f.shape)}")
    if directions:
        f = F.normalize(f, dim=1)
    y = y.to(f.device).long()
    present = torch.unique(y)
    if len(present) < 2:
        raise UsageError("separation_ratio needs at least two classes")
    mu = class_centroids(f, y, num_classes=int(y.max()) + 1)  # (K, d), NaN rows for absent ones
    intra = (f - mu[y]).norm(dim=1).mean()
    gaps = torch.cdist(mu[present], mu[present])  # (P, P)
    i, j = torch.triu_indices(len(present), len(present), offset=1)
    return float(intra / gaps[i, j].mean())


@torch.no_grad()
def decision_regions(model: nn.Module, *, extent, resolution: int) -> tuple[torch.Tensor, tuple]:
    """The classifier head's prediction on a resolution x resolution grid of the feature plane.

    extent = (xmin, xmax, ymin, ymax). Returns (labels (R, R) int64, extent): labels[i, j] is
    the class of the cell centre (xmin + (j + 0.5) dx, ymin + (i + 0.5) dy), with dx = (xmax -
    xmin) / R and dy = (ymax - ymin) / R: row i runs along feature 2 upwards from ymin, column j
    along feature 1, so `imshow(labels, origin="lower", extent=extent)` puts every cell in place.
    """
    _require_eval(model)
    xmin, xmax, ymin, ymax = (float(v) for v in extent)
    if not (xmin < xmax and ymin < ymax):
        raise UsageError(f"extent must be (xmin, xmax, ymin, ymax) with min < max, got {extent}")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise UsageError(f"resolution must be a positive integer, got {resolution!r}")
    head = model.head
    device = next(head.parameters()).device
    steps = (torch.arange(resolution, dtype=torch.float32) + 0.5) / resolution  # (R,) in (0, 1)
    xs, ys = xmin + steps * (xmax - xmin), ymin + steps * (ymax - ymin)  # (R,), (R,)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # (R, R) each: row = feature 2
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)  # (R*R, 2)
    labels = torch.cat([head(points[idx].to(device)).argmax(1).cpu()
                        for idx in batch_indices(len(points), batch_size=65536, shuffle=False)])
    return labels.view(resolution, resolution), (xmin, xmax, ymin, ymax)


@torch.no_grad()
def share_in_true_region(model: nn.Module, features: torch.Tensor, y: torch.Tensor) -> float:
    """Share of 2-D features (N, 2) that the head assigns to their true class y (N,). For features
    of attacked images it is exactly the model's accuracy under that attack."""
    _require_eval(model)
    device = next(model.head.parameters()).device
    pred = model.head(features.to(device)).argmax(1).cpu()
    return float((pred == y.cpu()).float().mean())


def attacked_features(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                      steps: int = 10, seed: int = 0, batch_size: int = 500) -> torch.Tensor:
    """2-D features (N, 2) of L-inf PGD images (`attacks.pgd`: CE, random start drawn from a
    generator seeded with `seed`, step 2.5 eps / steps, each example's worst iterate). eps is in
    pixel units; eps = 0 gives the clean features exactly."""
    _require_eval(model)
    check_nonnegative(eps, name="eps")
    x = _images(x)
    y = _labels(y, n=x.shape[0])
    if eps == 0:
        return features_2d(model, x, batch_size=batch_size)
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)  # CPU generator: the same start on every device
    adv = [pgd(model, x[idx].to(device), y[idx].to(device), eps=eps, steps=steps,
               generator=gen).cpu()
           for idx in batch_indices(len(x), batch_size=batch_size, shuffle=False)]
    return features_2d(model, torch.cat(adv), batch_size=batch_size)
