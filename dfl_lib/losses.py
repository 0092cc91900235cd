"""Training losses, each an nn.Module with one interface:

    loss(logits, y, features) -> scalar
        logits (N, K); y int64 (N,); features: the dict from model(x, return_features=True),
        {"pooled": (N, d_pool), "penultimate": (N, d)}
    loss.components(logits, y, features) -> {"ce": ..., "intra": ..., ...}   (weighted terms)

`forward` is the sum of `components`. Every term is a batch mean, so a weight means the same at
any batch size. Losses with class centroids own them as parameters (K, d), drawn from a seeded
generator (never all equal; `.to(device)` moves them with the module), and compute all
feature-to-centroid distances in one batched call. `build_loss(name, ...)` builds any of `LOSSES`.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_known, check_labels, check_nonnegative
from .errors import UsageError, UsageTypeError
from .numerics import stat_dtype

__all__ = ["CrossEntropy", "PolarisedContrastiveLoss", "LegacyPolarisedContrastiveLoss", "CenterLoss", "AdditiveMarginSoftmax",
           "PrototypeConformityLoss", "LOSSES", "build_loss", "pairwise_distance",
           "squared_distances"]


# --------------------------------------------------------------------------- distances

def squared_distances(f: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances (N, K) between features f (N, d) and centroids c (K, d).

    Computed from the differences (an (N, K, d) intermediate), not as |f|^2 + |c|^2 - 2 f.c: the
    expanded form cancels catastrophically in float32 when features are large compared with their
    distances (it can even go negative), exactly the regime of a well-clustered feature space.
    In at least fp32 (`stat_dtype`): bf16 features under autocast are promoted, and centroids are
    never rounded to bf16 (coordinates near 8 are 2^-4 apart in bf16: that alone moves a
    centroid by up to 0.03 per coordinate); bf16 inputs' gradients flow back in bf16.
    Result: (N, K) in stat_dtype(f, c)."""
    dtype = stat_dtype(f, c)
    f, c = f.to(dtype), c.to(dtype)
    return (f[:, None, :] - c[None, :, :]).pow(2).sum(-1)


def pairwise_distance(f: torch.Tensor, c: torch.Tensor, *, tiny: float = 1e-12) -> torch.Tensor:
    """Euclidean distances (N, K) between features f (N, d) and centroids c (K, d).

    sqrt(sq + tiny) - sqrt(tiny): the plain norm's gradient is 0/0 = NaN where a feature sits
    exactly on a centroid; this one's is 0 there, and the value is still exactly 0.
    """
    return (squared_distances(f, c) + tiny).sqrt() - math.sqrt(tiny)


# --------------------------------------------------------------------------- shared helpers

def _check_batch(logits: torch.Tensor, y: torch.Tensor) -> int:
    if not isinstance(logits, torch.Tensor):
        raise UsageTypeError(f"logits must be a tensor (N, K), got {type(logits).__name__}")
    if logits.dim() != 2:
        raise UsageError(f"logits must have shape (N, K), got {tuple(logits.shape)}")
    check_labels(y, n=logits.shape[0])
    return logits.shape[0]


def _features(features, key: str, dim: int, n: int) -> torch.Tensor:
    """features[key] checked to be (n, dim); errors name the key, the keys present and both dims."""
    if not isinstance(features, Mapping):
        raise UsageTypeError(f"this loss needs the model's features dict (model(x, return_features=True)),"
                        f" got {type(features).__name__}")
    if key not in features:
        raise KeyError(f"the loss needs features[{key!r}]; the model returned {sorted(features)}")
    f = features[key]
    if f.dim() != 2 or f.shape[1] != dim:
        raise UsageError(f"features[{key!r}] has shape {tuple(f.shape)}: {f.shape[-1]}-d, "
                         f"but the loss's centroids are {dim}-d")
    if f.shape[0] != n:
        raise UsageError(f"features[{key!r}] has {f.shape[0]} rows, logits {n}")
    return f


def _check_sizes(num_classes: int, dims: Mapping[str, int]) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) \
            or num_classes < 2:
        raise UsageError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    for name, d in dims.items():
        if isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1:
            raise UsageError(f"{name} must be a positive integer, got {d!r}")


def rows_of(table: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """table[y] (N, ...) for a table (K, ...) of per-class rows (centroids), with a deterministic
    backward. `table[y]` differentiates through index_put_(accumulate=True), which torch runs in
    parallel on the CPU once the rows hold more than ~32k values (e.g. 64 x 1024-d): the sums
    then land in a thread-dependent order and the same run gives different weights on 2 cores
    (Mustafa et al.'s 1024-d layer: a quick-study cell moved by 0.4 points between two runs).
    index_select's backward (index_add_) sums in a fixed order."""
    return table.index_select(0, y)


def _init_centroids(num_classes: int, dim: int, *, seed: int) -> nn.Parameter:
    """(K, d) centroids ~ N(0, 1): norm ~ sqrt(d), about the norm of a BN-ReLU-pooled feature."""
    gen = torch.Generator().manual_seed(seed)
    return nn.Parameter(torch.randn(num_classes, dim, generator=gen))


def _mean_over_others(values: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """mean_{j != y_i} values[i, j] for values (N, K): (N,), in at least fp32."""
    values = values.to(stat_dtype(values))
    k = values.shape[1]
    own = F.one_hot(y, k).bool()  # (N, K)
    return values.masked_fill(own, 0.0).sum(1) / (k - 1)


class _Loss(nn.Module):
    # learning rate of the loss's own parameters (centroids) unless the config sets one;
    # None = the model's learning rate and schedule
    default_centroid_lr: float | None = 0.1

    def components(self, logits, y, features=None) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, logits, y, features=None) -> torch.Tensor:
        return sum(self.components(logits, y, features).values())

    def centroid_parameters(self) -> list[nn.Parameter]:
        """The learnable centroids, for their own optimiser param group (own lr, no decay)."""
        return list(self.parameters())


# --------------------------------------------------------------------------- the losses

class CrossEntropy(_Loss):
    """Plain cross-entropy on the logits (the paper's Eq. 2), the baseline; features are ignored."""

    def components(self, logits, y, features=None) -> dict[str, torch.Tensor]:
        _check_batch(logits, y)
        return {"ce": F.cross_entropy(logits, y)}


class PolarisedContrastiveLoss(_Loss):
    """The paper's Polarised Contrastive Loss (Sec. 3.3, Eq. 2-5), on the unit sphere:

        CE + w_intra * mean_i d(f_i, c_{y_i})
           + w_inter * mean_i mean_{j != y_i} [ relu(m - d(f_i, c_j))                "inter_push"
                                               + (pi - angle(c_{y_i}, c_j)) / pi ]    "inter_angle"

    with d(f, c) = || f / |f| - c / |c| || in [0, 2] (Euclidean distance between directions),
    f = features[feature] (N, d), learnable centroids c (K, d), angle = arccos((1 - cos_eps) *
    cos(c_{y_i}, c_j)). Components: "ce", "intra", "inter_push", "inter_angle" (weighted).

    Why directions, not raw distances (`LegacyPolarisedContrastiveLoss` keeps the raw form):
    - The features are post-ReLU averages, so they are non-negative; centroids drawn from N(0, 1)
      have about half their coordinates negative, which no feature can reach. The raw intra term
      then has a floor of about 0.71 sqrt(d) even for a perfect fit, and its gradient on those
      coordinates only drives feature entries to zero. Here every centroid starts as a unit
      vector in the positive orthant (|N(0, 1)| normalised): a direction features can take.
    - Eq. 4's angle term is angular already; measuring the pull and the push on directions puts
      all three terms on one bounded scale (intra and push in [0, 2], angle in [0, 1]) whatever
      the feature dimension or the network's width, so w_intra = w_inter = 1 (the paper's) mean
      the same for every backbone, and the regulariser cannot be lowered by shrinking or
      inflating the features: CE alone sets their norm.
    - The margin is on the same scale: m = sqrt(2) by default, the distance between orthogonal
      directions. Ten orthogonal centroids fit in the positive orthant (d >= K), so a feature on
      its own centroid with the others orthogonal to it has no push left: the optimum is
      reachable. `margin` changes it; runs record it in their config.
    - Directions are taken as f / sqrt(|f|^2 + floor^2) (floor 1e-2, far below the features'
      norms, ~0.2-1.5 at init on this library's ResNets): an all-zero feature vector maps to 0
      with a bounded gradient instead of a division by zero.
    - The centroids are normalised inside the loss, so their own norm is irrelevant and their
      gradient is tangent to the sphere, of order 1 like a linear layer's weights: they train
      at the model's learning rate (`default_centroid_lr = None`).

    Departures from the literal Eq. 3-5 shared with the legacy form:
    - Eq. 3 sums over the batch; we average, so w_intra does not scale with the batch size.
    - Eq. 4 is *added* in Eq. 5 although the text says both inter-class parts are maximised;
      adding ||f_i - c_j|| pulls features towards wrong centroids and subtracting it is
      unbounded below. We push with the hinge relu(m - d(f_i, c_j)).
    - Eq. 4's arccos(w_{y_i} w_j) takes raw dot products and follows ArcFace's inter-loss, which
      pushes centres apart; we use (pi - angle) / pi in [0, 1], minimal for opposite centroids.
    - arccos' gradient is infinite at +-1; instead of a hard clamp (zero gradient exactly when two
      centroids coincide) we shrink the cosine by (1 - cos_eps): |gradient| <= 1/sqrt(2 cos_eps).
    - Eq. 4's 1/(k-1) and the arccos share one sum; we average both over j != y_i.
    """

    default_centroid_lr: float | None = None  # None: the model's learning rate and schedule

    def __init__(self, num_classes: int, feature_dim: int, *, w_intra: float = 1.0,
                 w_inter: float = 1.0, margin: float | None = None, cos_eps: float = 1e-4,
                 feature: str = "penultimate", seed: int = 0, norm_floor: float = 1e-2):
        super().__init__()
        _check_sizes(num_classes, {"feature_dim": feature_dim})
        margin = self.default_margin(feature_dim) if margin is None else margin
        for name, v in (("w_intra", w_intra), ("w_inter", w_inter), ("margin", margin),
                        ("cos_eps", cos_eps), ("norm_floor", norm_floor)):
            check_nonnegative(v, name=name)
        if not 0 < cos_eps < 1:
            raise UsageError(f"cos_eps must be in (0, 1), got {cos_eps}")
        self.num_classes, self.feature_dim, self.feature = num_classes, feature_dim, feature
        self.w_intra, self.w_inter = float(w_intra), float(w_inter)
        self.margin, self.cos_eps, self.norm_floor = float(margin), float(cos_eps), float(norm_floor)
        self.centroids = self._init(num_classes, feature_dim, seed=seed)  # (K, d)

    @staticmethod
    def default_margin(feature_dim: int) -> float:
        return math.sqrt(2.0)  # the distance between orthogonal unit vectors

    @staticmethod
    def _init(num_classes: int, dim: int, *, seed: int) -> nn.Parameter:
        """Unit vectors in the positive orthant, where non-negative features can reach them."""
        c = _init_centroids(num_classes, dim, seed=seed).detach().abs()
        return nn.Parameter(F.normalize(c, dim=1))

    def directions(self, f: torch.Tensor) -> torch.Tensor:
        """f (N, d) -> f / sqrt(|f|^2 + floor^2) (N, d): unit length unless f is (nearly) 0.
        In at least fp32: the squared norm is a sum over d entries (bf16 rounds it to 8 bits)."""
        f = f.to(stat_dtype(f))
        return f / (f.pow(2).sum(1, keepdim=True) + self.norm_floor ** 2).sqrt()

    def distances(self, f: torch.Tensor) -> torch.Tensor:
        """The loss's feature-to-centroid distances (N, K) for features f (N, d), in at least
        fp32 whatever f's dtype (the centroids are not rounded to bf16 features' dtype)."""
        c = F.normalize(self.centroids, dim=1)
        return pairwise_distance(self.directions(f), c.to(f.device))

    def centroid_closeness(self) -> torch.Tensor:
        """(K, K): (pi - angle between centroids) / pi; 1 = same direction, 0 = opposite.
        In at least fp32, autocast or not: autocast would run the matmul in bf16, whose cosines
        near 1 are 2^-8 apart, so the (1 - cos_eps) shrink (1e-4) would round away and arccos,
        steepest there, would turn that rounding into angles off by several percent."""
        unit = F.normalize(self.centroids, dim=1)
        unit = unit.to(stat_dtype(unit))
        with torch.autocast(unit.device.type, enabled=False):
            cos = (unit @ unit.T).clamp(-1.0, 1.0)  # the clamp only catches rounding past +-1
        return (math.pi - torch.arccos((1.0 - self.cos_eps) * cos)) / math.pi

    def regulariser(self, f: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted "intra", "inter_push", "inter_angle" terms for f (N, d), labels y (N,)."""
        dist = self.distances(f)  # (N, K)
        intra = dist.gather(1, y[:, None]).squeeze(1)  # (N,)
        push = _mean_over_others(F.relu(self.margin - dist), y)  # (N,)
        angle = _mean_over_others(rows_of(self.centroid_closeness(), y), y)  # (N,)
        return {"intra": self.w_intra * intra.mean(),
                "inter_push": self.w_inter * push.mean(),
                "inter_angle": self.w_inter * angle.mean()}

    def components(self, logits, y, features) -> dict[str, torch.Tensor]:
        n = _check_batch(logits, y)
        f = _features(features, self.feature, self.feature_dim, n)
        return {"ce": F.cross_entropy(logits, y), **self.regulariser(f, y)}

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, feature={self.feature!r}, "
                f"feature_dim={self.feature_dim}, w_intra={self.w_intra}, w_inter={self.w_inter}, "
                f"margin={self.margin:.4g}, cos_eps={self.cos_eps}")


class LegacyPolarisedContrastiveLoss(PolarisedContrastiveLoss):
    """The first form of our PCL, kept for comparison ("pcl_legacy"): raw Euclidean distances
    ||f - c|| between features and N(0, 1) centroids, margin sqrt(d), centroids at their own
    learning rate 0.1. Its targets are partly unreachable for non-negative features (see
    `PolarisedContrastiveLoss`); the fidelity report compares both forms."""

    default_centroid_lr: float | None = 0.1

    @staticmethod
    def default_margin(feature_dim: int) -> float:
        return math.sqrt(feature_dim)  # ~ the norm of a feature or an N(0, 1) centroid at init

    @staticmethod
    def _init(num_classes: int, dim: int, *, seed: int) -> nn.Parameter:
        return _init_centroids(num_classes, dim, seed=seed)

    def distances(self, f: torch.Tensor) -> torch.Tensor:
        """Raw distances (N, K) ||f - c||, in at least fp32 (see `squared_distances`)."""
        return pairwise_distance(f, self.centroids.to(f.device))


class CenterLoss(_Loss):
    """Centre loss (Wen et al., ECCV 2016): CE + weight * mean_i 1/2 ||f_i - c_{y_i}||^2.

    Components "ce", "center". Wen et al. move the centres with their own update rule and rate
    alpha (the mean offset of the batch's features of that class); here the centroids are plain
    parameters trained by the gradient of this loss, and the centroids' learning rate in the
    optimiser (see `centroid_parameters`) plays alpha's role. Their gradient carries the weight,
    so the effective centre step is lr * weight. Default weight 0.003 is Wen et al.'s lambda for
    their face experiments.
    """

    def __init__(self, num_classes: int, feature_dim: int, *, weight: float = 0.003,
                 feature: str = "penultimate", seed: int = 0):
        super().__init__()
        _check_sizes(num_classes, {"feature_dim": feature_dim})
        check_nonnegative(weight, name="weight")
        self.num_classes, self.feature_dim, self.feature = num_classes, feature_dim, feature
        self.weight = float(weight)
        self.centroids = _init_centroids(num_classes, feature_dim, seed=seed)  # (K, d)

    def components(self, logits, y, features) -> dict[str, torch.Tensor]:
        n = _check_batch(logits, y)
        f = _features(features, self.feature, self.feature_dim, n)
        centre = 0.5 * (f - rows_of(self.centroids, y)).pow(2).sum(1).mean()
        return {"ce": F.cross_entropy(logits, y), "center": self.weight * centre}


class AdditiveMarginSoftmax(_Loss):
    """Additive-margin softmax (CosFace, Wang et al. 2018; AM-softmax, Wang et al. 2018).

    For a model with a cosine head, logits = scale * cos(f, w_k) (build_model(..., head="cosine")
    with the same scale): CE after subtracting scale * margin from the true class's logit.
    Component "margin_ce". Features are not used. Raises ValueError when a logit exceeds `scale`
    in magnitude, i.e. the model has no cosine head or a larger scale than this loss.
    """

    def __init__(self, *, margin: float = 0.35, scale: float = 30.0):
        super().__init__()
        check_nonnegative(margin, name="margin")
        check_nonnegative(scale, name="scale")
        if scale == 0:
            raise UsageError(f"scale must be > 0, got {scale}")
        self.margin, self.scale = float(margin), float(scale)

    def components(self, logits, y, features=None) -> dict[str, torch.Tensor]:
        _check_batch(logits, y)
        top = float(logits.detach().abs().amax()) if logits.numel() else 0.0
        if top > self.scale * (1 + 1e-3):
            raise UsageError(f"AdditiveMarginSoftmax expects cosine logits scale * cos(f, w) with "
                             f"|logit| <= scale = {self.scale}, got |logit| up to {top:.4g}: build "
                             f"the model with head='cosine' and the same scale")
        # shifted in at least fp32: bf16 would round (true logit - scale * margin) to 8 bits
        logits = logits.to(stat_dtype(logits))
        shifted = logits - (self.scale * self.margin) * F.one_hot(y, logits.shape[1]).to(logits.dtype)
        return {"margin_ce": F.cross_entropy(shifted, y)}

    def extra_repr(self) -> str:
        return f"margin={self.margin}, scale={self.scale}"


class PrototypeConformityLoss(_Loss):
    """Mustafa et al. (ICCV 2019) "prototype conformity loss" (their "PCL"), the baseline:

        CE + sum over layers l of ( w_prox * Prox_l - w_conprox * ConProx_l )
        Prox_l    = mean_i ||f_i - p_{y_i}||^2                              "prox_<layer>"
        ConProx_l = mean_i mean_{j != y_i} min(||f_i - q_j||^2, cap * d_l)    "-conprox_<layer>"

    on the layers `layers` of the features dict: for their setting the 256-d pooled features and
    the extra 1024-d FC layer (a model built with extra_fc=1024: "pooled", "penultimate"). Without
    an extra FC the two keys are the same vector and the regulariser is counted twice. The
    component "conprox_<layer>" holds -w_conprox * ConProx_l (already signed).

    As in their code, Prox and ConProx keep separate centres, p (`prox`) and q (`conprox`), so a
    trainer can give them their own learning rates (theirs: plain SGD, 0.5 and 1e-4):
    `centroid_groups()` -> {"prox": [...], "conprox": [...]}, or `centroid_param_groups(lrs)`.

    Flaws in their loss code (aamir-mustafa/pcl-adversarial-defense, proximity.py and
    contrastive_proximity.py), and what we do:
    - ConProx picks the other classes by casting the own-class mask to int8, flipping it and
      casting to uint8 to index a row: this selects the K-1 others only because PyTorch still
      (deprecated) reads uint8 index tensors as masks; read as integers it would silently pick
      entries 0 and 1. We use an explicit boolean mask.
    - Squared distances come from the expansion |f|^2 + |c|^2 - 2 f.c (a deprecated addmm_
      overload), which cancels in float32 when features are large compared with their distances,
      and are clamped to [1e-12, 1e12], which zeroes the gradient of any clamped entry. We compute
      them from differences: exact, non-negative, no clamp.
    - -w_conprox * ConProx is unbounded below: pushing features and the q centres apart always
      lowers it (the push on q even grows with the distance), and only the tiny weight and the
      1e12 clamp hold it. We cap each squared distance at `conprox_cap` * d_l (default 4 d_l,
      i.e. distance 2 sqrt(d_l), twice the typical norm of a feature or centre at init and about
      1.4 times the typical initial feature-to-centre distance sqrt(2 d_l)); beyond it the push
      stops, so the term is bounded by w_conprox * cap * d_l. conprox_cap=math.inf restores theirs.
    - Batch reductions: both of theirs are already means (Prox over N entries, ConProx over the
      N(K-1) selected entries = mean_i mean_{j != y_i}), so the weights are batch-size
      independent; we keep means, as one masked (N, K) computation instead of a loop over samples.
    - Centres are created with .cuda() in the constructor and drawn from the global RNG (so they
      depend on what else was drawn before); ours come from a seeded generator and move with
      .to(device).
    - Their training scripts multiply the centres' gradients by 1/weight before the centre
      optimisers step, so a centre's step does not depend on the loss weight. Here the weight is
      in the centroids' gradient; `centroid_param_groups` divides each group's lr by its weight
      to reproduce their step.
    - Their code has no centre-to-centre term and pushes from centres (q) distinct from the ones
      features are pulled to (p); we keep that form, since the baseline's numbers come from it.
    Training flaws (the learning-rate schedule writes a key SGD never reads, so it never fires;
    the adversarial scripts' handling of the clean batch) belong to the trainer (dfl_lib.train).
    """

    def __init__(self, num_classes: int, feature_dims: Mapping[str, int], *,
                 layers: Sequence[str] = ("pooled", "penultimate"), w_prox: float = 1.0,
                 w_conprox: float = 1e-4, conprox_cap: float = 4.0, seed: int = 0):
        super().__init__()
        check_nonnegative(w_prox, name="w_prox")
        check_nonnegative(w_conprox, name="w_conprox")
        if conprox_cap != math.inf:
            check_nonnegative(conprox_cap, name="conprox_cap")
        layers = (layers,) if isinstance(layers, str) else tuple(layers)
        if not layers or len(set(layers)) != len(layers):
            raise UsageError(f"layers must be distinct feature names, got {layers}")
        missing = [k for k in layers if k not in feature_dims]
        if missing:
            raise KeyError(f"feature_dims lacks {missing}; it has {sorted(feature_dims)}")
        self.dims = {k: feature_dims[k] for k in layers}
        _check_sizes(num_classes, {f"feature_dims[{k!r}]": d for k, d in self.dims.items()})
        self.num_classes, self.layers = num_classes, layers
        self.w_prox, self.w_conprox, self.conprox_cap = float(w_prox), float(w_conprox), conprox_cap
        # one seed per (set, layer), so the p and q centres of a layer differ
        # (a list of pairs: ParameterDict would sort a plain dict's keys)
        self.prox = nn.ParameterDict([(k, _init_centroids(num_classes, d, seed=seed + 2 * i))
                                      for i, (k, d) in enumerate(self.dims.items())])
        self.conprox = nn.ParameterDict([(k, _init_centroids(num_classes, d, seed=seed + 2 * i + 1))
                                         for i, (k, d) in enumerate(self.dims.items())])

    def centroid_groups(self) -> dict[str, list[nn.Parameter]]:
        """{"prox": [p per layer], "conprox": [q per layer]}: their own optimiser groups."""
        return {"prox": list(self.prox.values()), "conprox": list(self.conprox.values())}

    def centroid_param_groups(self, lrs: Mapping[str, float]) -> list[dict]:
        """Optimiser param groups for the centres with Mustafa et al.'s steps, e.g.
        lrs={"prox": 0.5, "conprox": 1e-4}: each lr is divided by its term's weight (their
        scripts divide the centres' gradients by it), plain SGD: no momentum, no weight decay."""
        weights = {"prox": self.w_prox, "conprox": self.w_conprox}
        return [{"params": params, "lr": lrs[name] / (weights[name] or 1.0), "momentum": 0.0,
                 "weight_decay": 0.0} for name, params in self.centroid_groups().items()]

    def components(self, logits, y, features) -> dict[str, torch.Tensor]:
        n = _check_batch(logits, y)
        out = {"ce": F.cross_entropy(logits, y)}
        for key, dim in self.dims.items():
            f = _features(features, key, dim, n)
            prox = (f - rows_of(self.prox[key], y)).pow(2).sum(1).mean()
            sq = squared_distances(f, self.conprox[key]).clamp(max=self.conprox_cap * dim)  # (N, K)
            conprox = _mean_over_others(sq, y).mean()
            out[f"prox_{key}"] = self.w_prox * prox
            out[f"conprox_{key}"] = -self.w_conprox * conprox
        return out

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, dims={self.dims}, w_prox={self.w_prox}, "
                f"w_conprox={self.w_conprox}, conprox_cap={self.conprox_cap}")


# --------------------------------------------------------------------------- registry

LOSSES = {
    "ce": CrossEntropy,
    "pcl": PolarisedContrastiveLoss,
    "pcl_legacy": LegacyPolarisedContrastiveLoss,
    "center": CenterLoss,
    "am_softmax": AdditiveMarginSoftmax,
    "prototype_conformity": PrototypeConformityLoss,
}


def build_loss(name: str, *, num_classes: int, feature_dims: Mapping[str, int], seed: int = 0,
               **kwargs) -> nn.Module:
    """Build the registered loss `name`, passing the feature sizes each one needs.

    feature_dims: the model's `feature_dims`, {"pooled": d_pool, "penultimate": d}.
    kwargs go to the loss's constructor (weights, margin, feature=..., layers=...).
    """
    check_known(name, LOSSES, kind="loss")
    if name == "ce":
        return CrossEntropy(**kwargs)
    if name == "am_softmax":
        return AdditiveMarginSoftmax(**kwargs)
    if name == "prototype_conformity":
        return PrototypeConformityLoss(num_classes, feature_dims, seed=seed, **kwargs)
    key = kwargs.get("feature", "penultimate")
    if key not in feature_dims:
        raise KeyError(f"feature_dims lacks {key!r}; it has {sorted(feature_dims)}")
    return LOSSES[name](num_classes, feature_dims[key], seed=seed, **kwargs)
