"""Feature space of clean vs perturbed (adversarial) samples: features, cluster metrics, UMAP.

    clean = penultimate_features(model, x)                 # (N, d) on the CPU
    perturbed = penultimate_features(model, x_adv)         # (N, d), row i is x[i] attacked
    metrics = clustering_metrics(clean, perturbed, y)      # plain floats, JSON-ready
    clean_2d, perturbed_2d = umap_embedding(clean, perturbed, seed=0)

The centroids are the per-class means of the CLEAN features; the perturbed features are judged
against them, which is the paper's picture: does an attack move a sample's feature into another
class's cluster (PCL pulls features to their class and pushes classes apart)? UMAP is fitted on
the clean features only, so the perturbed points are placed on the clean features' axes.
Plotting lives in `featurespace_plots`; nothing here draws.
"""
from __future__ import annotations

import sys
import warnings

import numpy as np
import torch
from torch import nn

from ..errors import UsageError, UsageTypeError
from ..validation import check_images, require_eval

__all__ = ["penultimate_features", "clustering_metrics", "umap_embedding"]


def penultimate_features(model: nn.Module, x: torch.Tensor, *, batch_size: int = 250,
                         feature: str = "penultimate") -> torch.Tensor:
    """features[feature] of `model(x, return_features=True)` for images x (N, C, H, W) in [0, 1],
    as a float tensor (N, d) on the CPU, computed without gradients in batches of `batch_size`
    on the model's device.

    The model must be in eval mode in every submodule (`validation.require_eval`, the guard the
    attacks use; UsageError otherwise): BatchNorm then runs on its running statistics, which stay
    untouched, and the model's mode is never switched.
    """
    check_images(x, name="x")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive int, got {batch_size!r}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else x.device
    require_eval(model, what="extracting features")
    out = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            result = model(x[start:start + batch_size].to(device), return_features=True)
            if not (isinstance(result, tuple) and len(result) == 2
                    and isinstance(result[1], dict) and feature in result[1]):
                raise UsageTypeError("the model must return (logits, features) with "
                                     f"features[{feature!r}] from forward(x, return_features=True)")
            out.append(result[1][feature].detach().flatten(1).cpu())  # (B, d)
    if not out:
        raise UsageError("x holds no images")
    return torch.cat(out)  # (N, d)


# --------------------------------------------------------------------------- metrics

def _check_features(clean: torch.Tensor, perturbed: torch.Tensor, y: torch.Tensor) -> None:
    for name, t in (("clean", clean), ("perturbed", perturbed), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise UsageTypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if clean.dim() != 2:
        raise UsageError(f"clean must have shape (N, d), got {tuple(clean.shape)}")
    if perturbed.shape != clean.shape:
        raise UsageError(f"perturbed must have the shape of clean {tuple(clean.shape)} (row i "
                         f"the perturbed version of clean row i), got {tuple(perturbed.shape)}")
    if y.shape != (clean.shape[0],):
        raise UsageError(f"y must have shape ({clean.shape[0]},), got {tuple(y.shape)}")
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise UsageTypeError(f"y must hold integer class labels, got dtype {y.dtype}")
    if not (torch.isfinite(clean).all() and torch.isfinite(perturbed).all()):
        raise UsageError("clean and perturbed features must be finite (found NaN or inf)")


def clustering_metrics(clean: torch.Tensor, perturbed: torch.Tensor, y: torch.Tensor) -> dict:
    """How well the features cluster by class, clean vs perturbed; clean, perturbed (N, d) with
    row i the same sample, y (N,) its true class. Returns plain floats:

      centroid_hit_rate_perturbed: % of perturbed features whose nearest clean class mean is
                                   their true class (the clean centroids' nearest-mean accuracy);
      centroid_hit_rate_clean:     the same for the clean features (the reference);
      displacement_ratio:          mean L2 |perturbed_i - clean_i| over the mean L2 distance
                                   between two clean class means (1 = moved one class gap);
      silhouette_clean:            silhouette score (sklearn, euclidean) of clean features by y;
      silhouette_perturbed:        the same for the perturbed features, with the same true labels.

    Class means use the classes present in y (at least 2, and fewer than N for the silhouette).
    The silhouettes cost O(N^2 d): ~10 s for both at N = 10,000, d = 512 on one CPU thread.
    """
    from sklearn.metrics import silhouette_score

    _check_features(clean, perturbed, y)
    y = y.cpu().long()
    classes, counts = torch.unique(y, return_counts=True)  # (K,), (K,)
    if len(classes) < 2:
        raise UsageError(f"need at least 2 classes in y, got {len(classes)}")
    if len(classes) >= len(y):
        raise UsageError(f"the silhouette needs fewer classes than samples: {len(classes)} "
                         f"classes, {len(y)} samples")
    clean = clean.detach().cpu().double()  # float64: sums over many samples, small gaps
    perturbed = perturbed.detach().cpu().double()
    index = torch.searchsorted(classes, y)  # (N,) position of each label in `classes`
    means = torch.zeros(len(classes), clean.shape[1], dtype=torch.float64)
    means.index_add_(0, index, clean)
    means /= counts[:, None].double()  # (K, d) clean class means

    def hit_rate(f: torch.Tensor) -> float:
        nearest = torch.cdist(f, means).argmin(1)  # (N,) index into `classes`
        return 100.0 * float((nearest == index).double().mean())

    gaps = torch.pdist(means)  # (K (K-1) / 2,) distances between distinct class means
    gap = float(gaps.mean())
    if gap == 0.0:
        raise UsageError("all clean class means coincide; the displacement ratio is undefined")
    displacement = float((perturbed - clean).norm(dim=1).mean())
    labels = y.numpy()
    return {
        "centroid_hit_rate_perturbed": hit_rate(perturbed),
        "centroid_hit_rate_clean": hit_rate(clean),
        "displacement_ratio": displacement / gap,
        "silhouette_clean": float(silhouette_score(clean.numpy(), labels, metric="euclidean")),
        "silhouette_perturbed": float(silhouette_score(perturbed.numpy(), labels,
                                                       metric="euclidean")),
    }


# --------------------------------------------------------------------------- UMAP

def umap_embedding(clean: torch.Tensor, perturbed: torch.Tensor, *, seed: int,
                   n_neighbors: int = 15, min_dist: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """2-D UMAP of clean (N, d) and perturbed (M, d) features: fitted on the clean features only,
    the perturbed ones `transform`ed into that map, so both share the clean features' axes.
    Returns (clean_2d (N, 2), perturbed_2d (M, 2)) float32 arrays, the same for the same seed
    (UMAP's random_state, which also makes it run on one thread).

    transform places each new point from its nearest clean neighbours, so a perturbed feature
    lands in (or between) the clean clusters nearest to it; it is never drawn far outside the
    clean map, and distances in the plane are not feature distances: read the numbers from
    `clustering_metrics`. The first call in a process compiles UMAP's numba code (~10 s).
    """
    for name, t in (("clean", clean), ("perturbed", perturbed)):
        if not isinstance(t, torch.Tensor):
            raise UsageTypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 2:
            raise UsageError(f"{name} must have shape (N, d), got {tuple(t.shape)}")
    if perturbed.shape[1] != clean.shape[1]:
        raise UsageError(f"clean and perturbed must share the feature dimension, got "
                         f"{clean.shape[1]} and {perturbed.shape[1]}")
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, int) \
            or not 2 <= n_neighbors < clean.shape[0]:
        raise UsageError(f"n_neighbors must be an int in [2, N) with N = {clean.shape[0]} clean "
                         f"samples, got {n_neighbors!r}")
    umap = _umap()
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist,
                        metric="euclidean", random_state=seed, n_jobs=1)  # n_jobs=1: seeded anyway
    clean_2d = reducer.fit_transform(clean.detach().cpu().float().numpy())  # (N, 2)
    perturbed_2d = reducer.transform(perturbed.detach().cpu().float().numpy())  # (M, 2)
    return clean_2d.astype(np.float32), perturbed_2d.astype(np.float32)


def _umap():
    """umap-learn, imported on first use (it loads numba, ~2 s, which the metrics do not need),
    with its numba kernels cached on disk: umap-learn compiles them again in every process
    (20-40 s on one AVX2 core; notebooks 05 and 07 and a test each paid it), and numba caches
    a function only when asked (the dispatcher's enable_caching(), as cache=True does). The cache
    lies beside umap's sources or in $NUMBA_CACHE_DIR, keyed by source, signature and CPU; a
    kernel numba cannot cache (dynamic globals) is compiled as before."""
    import umap
    from numba.core.registry import CPUDispatcher

    if not _UMAP_CACHED:
        for name, module in list(sys.modules.items()):
            if name == "umap" or name.startswith("umap."):
                for value in list(vars(module).values()):
                    if isinstance(value, CPUDispatcher):
                        value.enable_caching()
        warnings.filterwarnings("ignore", message="Cannot cache compiled function",
                                module="numba")
        _UMAP_CACHED.append(True)
    return umap


_UMAP_CACHED: list = []  # once per process
