"""What the losses share: the interface, distances, checks and the per-class row gather.

Every loss is an nn.Module with one interface:

    loss(logits, y, features) -> scalar
        logits (N, K); y int64 (N,); features: the dict from model(x, return_features=True),
        {"pooled": (N, d_pool), "penultimate": (N, d)}
    loss.components(logits, y, features) -> {"ce": ..., "intra": ..., ...}   (weighted terms)

`forward` is the sum of `components`. Every term is a batch mean, so a weight means the same at
any batch size. Losses with class centroids own them as parameters (K, d), drawn from a seeded
generator (never all equal; `.to(device)` moves them with the module), and compute all
feature-to-centroid distances in one batched call.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError, UsageTypeError
from ..numerics import stat_dtype
from ..validation import check_labels

__all__ = ["squared_distances", "pairwise_distance", "rows_of", "CrossEntropy"]


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


class CrossEntropy(_Loss):
    """Plain cross-entropy on the logits (the paper's Eq. 2), the baseline; features are ignored."""

    def components(self, logits, y, features=None) -> dict[str, torch.Tensor]:
        _check_batch(logits, y)
        return {"ce": F.cross_entropy(logits, y)}
