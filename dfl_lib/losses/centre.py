"""The centre loss (Wen et al. 2016): cross-entropy plus half the squared distance of each
feature to its learnable class centre."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..validation import check_nonnegative
from .base import _Loss, _check_batch, _check_sizes, _features, _init_centroids, rows_of


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
