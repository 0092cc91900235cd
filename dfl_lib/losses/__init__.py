"""Training losses, one file each, and the registry `LOSSES` notebooks loop over:

    ce                    cross-entropy (base.py)
    pcl, pcl_legacy       the paper's Polarised Contrastive Loss, on the unit sphere and in its
                          raw-distance form (pcl.py); PCL supplies its own adaptive objective
    center                the centre loss (centre.py)
    am_softmax            the additive margin softmax (margin.py)
    prototype_conformity  Mustafa et al.'s loss (prototype_conformity.py)

    loss = build_loss("pcl", num_classes=10, feature_dims=model.feature_dims)
    loss(logits, y, features); loss.components(...)      # the sum, and the weighted terms
    loss.adaptive_objective(ce_weight=0.0)              # where defined: a loss_fn for attacks

May import: the core modules (errors, validation, numerics) only; losses know nothing of models,
attacks, training, evaluation or the study.
"""
from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from ..validation import check_known
from .base import CrossEntropy, pairwise_distance, rows_of, squared_distances
from .centre import CenterLoss
from .margin import AdditiveMarginSoftmax
from .pcl import LegacyPolarisedContrastiveLoss, PolarisedContrastiveLoss
from .prototype_conformity import PrototypeConformityLoss

__all__ = ["CrossEntropy", "PolarisedContrastiveLoss", "LegacyPolarisedContrastiveLoss",
           "CenterLoss", "AdditiveMarginSoftmax", "PrototypeConformityLoss", "LOSSES",
           "build_loss", "pairwise_distance", "squared_distances", "rows_of"]

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
