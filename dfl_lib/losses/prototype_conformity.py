"""Mustafa et al. (ICCV 2019)'s prototype conformity loss ("PCL" in their paper): CE plus, on
two feature layers, the pull of each feature to its own class's p centre (Prox) and the push
away from the other classes' q centres (ConProx), as their training scripts compute it."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from ..validation import check_nonnegative
from .base import (_Loss, _check_batch, _check_sizes, _features, _init_centroids,
                   _mean_over_others, rows_of, squared_distances)


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
    the adversarial scripts' handling of the clean batch) belong to the trainer (dfl_lib.training.trainer).
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
