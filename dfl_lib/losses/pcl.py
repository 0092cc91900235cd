"""The Polarised Contrastive Loss (the paper's Eq. 2-5): cross-entropy plus an intra-class pull
to learnable class centroids and an inter-class push, on the unit sphere; its raw-distance
(legacy) form for comparison; and the adaptive objective an attack uses against it."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError, UsageTypeError
from ..numerics import stat_dtype
from ..validation import check_nonnegative
from .base import (_Loss, _check_batch, _check_sizes, _features, _init_centroids,
                   _mean_over_others, pairwise_distance, rows_of)


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

    def adaptive_objective(self, *, ce_weight: float = 0.0):
        """The objective an adaptive attack maximises against this loss, as a `loss_fn` for
        `dfl_lib.attacks.pgd` (model, x, y) -> (N,):

            d(f, c_y) - min_{j != y} d(f, c_j)   (+ ce_weight * CE)

        on f = features[self.feature] and this loss's own distance (`distances`: on the unit
        sphere, or raw for the legacy form). Maximising it pulls f towards the nearest wrong
        centroid and away from its own, the direction the loss trained against (Tramer et al.
        2020: attack the defence's objective). The centroids get no gradient."""
        check_nonnegative(ce_weight, name="ce_weight")
        feature, k = self.feature, self.num_classes

        def objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            out = model(x, return_features=True)
            if not isinstance(out, tuple):
                raise UsageTypeError("the adaptive attack needs a model with forward(x, "
                                     "return_features=True) -> (logits, features)")
            logits, feats = out
            if feature not in feats:
                raise KeyError(f"the model returned no features[{feature!r}]; it has "
                               f"{sorted(feats)}")
            f = feats[feature]  # (N, d)
            if f.shape[1] != self.feature_dim:
                raise UsageError(f"features[{feature!r}] are {f.shape[1]}-d, centroids "
                                 f"{self.feature_dim}-d")
            dist = self.distances(f)  # (N, K); torch.autograd.grad fills no centroid .grad
            own = dist.gather(1, y[:, None]).squeeze(1)
            nearest_other = dist.masked_fill(F.one_hot(y, k).bool(), float("inf")).amin(1)
            value = own - nearest_other
            if ce_weight:
                value = value + ce_weight * F.cross_entropy(logits, y, reduction="none")
            return value

        objective.__name__ = f"pcl_objective[{feature}]"
        return objective

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
