"""Detectors of poisoned training samples in feature space: spectral signatures and activation
clustering, with the metrics that say how well a score finds the poison.

    f = penultimate_features(model, x_train)                    # (N, d), evaluation.featurespace
    s_spec = spectral_signature_scores(f, y_train)              # (N,), higher = more suspicious
    s_ac = activation_clustering_scores(f, y_train, seed=0)     # (N,), higher = more suspicious
    ids, is_small = activation_clusters(f, y_train, seed=0)     # (N,) cluster 0/1, (N,) bool
    m = detection_metrics(s_spec, is_poison, fpr=0.05)          # AUROC, recall at 5% FPR

Both detectors work class by class on the labels the training set carries (a BadNets poison
carries its target label, so it hides among that class's clean samples); a class with fewer than
2 samples cannot be split and is skipped: its samples score 0, in cluster 0, never "small".
Scores are pooled over classes by `detection_metrics`, so one AUROC answers "does the score
rank the poison above the clean samples of every class?".

The Adversarial Robustness Toolbox (ART) ships both detectors around a classifier; these take
the features directly (the study computes them once), need no ART, and are checked against
ART's helpers in tests/test_poison_detect.py. Where they differ from ART, the docstrings say so.
Imports numpy, torch (inputs may be tensors), scikit-learn and `dfl_lib.errors`; nothing from
the rest of `dfl_lib.poisoning`.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from ..errors import UsageError, UsageTypeError

__all__ = ["spectral_signature_scores", "activation_clustering_scores", "activation_clusters",
           "detection_metrics"]


# --------------------------------------------------------------------------- input checks

def _as_array(x, *, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        # float64 before numpy: numpy has no bfloat16, and the detectors work in float64
        return (x.double() if x.is_floating_point() else x).numpy()
    if isinstance(x, np.ndarray):
        return x
    raise UsageTypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")


def _check_inputs(features, labels) -> tuple[np.ndarray, np.ndarray]:
    """features (N, d) -> float64 array, labels (N,) -> int64 array, or UsageError."""
    f = _as_array(features, name="features")
    y = _as_array(labels, name="labels")
    if f.ndim != 2 or f.shape[0] == 0 or f.shape[1] == 0:
        raise UsageError(f"features must have shape (N, d) with N, d >= 1, got {f.shape}")
    if f.dtype == np.bool_ or not (np.issubdtype(f.dtype, np.floating)
                                   or np.issubdtype(f.dtype, np.integer)):
        raise UsageTypeError(f"features must be real numbers, got dtype {f.dtype}")
    if y.shape != (f.shape[0],):
        raise UsageError(f"labels must have shape ({f.shape[0]},) (one per feature row), "
                         f"got {y.shape}")
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise UsageTypeError(f"labels must hold integer class labels, got dtype {y.dtype}")
    f = f.astype(np.float64)  # float64: class means and SVDs over thousands of rows
    if not np.isfinite(f).all():
        raise UsageError("features must be finite (found NaN or inf)")
    return f, y.astype(np.int64)


def _check_int(value, *, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UsageError(f"{name} must be an int >= {minimum}, got {value!r}")


def _classes(labels: np.ndarray):
    """(class, row indices) for each class in `labels` with at least 2 samples."""
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        if len(rows) >= 2:  # one sample cannot be centred or split: skipped, score 0
            yield c, rows


# --------------------------------------------------------------------------- spectral signatures

def spectral_signature_scores(features, labels) -> np.ndarray:
    """Spectral-signature outlier score of every sample (Tran, Li & Madry 2018, "Spectral
    signatures in backdoor attacks", NeurIPS, Algorithm 1).

    features (N, d) real (numpy or torch), labels (N,) int. Per class c with rows R_c (n_c, d):
    centre them, M = R_c - mean(R_c); take the top right singular vector v of M (unit norm); the
    score of row i is (M_i . v)^2, in squared feature units. Returns float64 (N,); higher = more
    suspicious (the paper removes, per class, the 1.5 eps highest, eps the expected number of
    poisons, and retrains). A class with fewer than 2 samples scores 0. Scores are not rescaled
    per class: pooled over classes (as `detection_metrics` does) a class with a large spread
    ranks above a tight one, where the paper only ever compares scores within a class.

    ART 1.20's `SpectralSignatureDefense.spectral_signature_scores(R)` finds v from the centred
    rows but then returns |R_i . v| of the UNcentred rows, which ranks differently whenever the
    class mean has a component along v; given pre-centred rows it returns the square root of
    these scores. Raises UsageError (UsageTypeError for wrong types) on a shape, dtype or
    non-finite value that cannot be meant.
    """
    f, y = _check_inputs(features, labels)
    scores = np.zeros(len(y))
    for _, rows in _classes(y):
        centred = f[rows] - f[rows].mean(axis=0)  # (n_c, d)
        # the SVD of the centred rows, as in the paper, not an eigendecomposition of their
        # covariance: it keeps full precision when one direction dominates
        _, _, vt = np.linalg.svd(centred, full_matrices=False)  # vt (min(n_c, d), d)
        scores[rows] = (centred @ vt[0]) ** 2  # the sign of v cancels in the square
    return scores


# --------------------------------------------------------------------------- activation clustering

def _reduce(centred: np.ndarray, *, n_components: int, reduce: str,
            seed: int) -> np.ndarray | None:
    """One class's centred features (n_c, d) -> (n_c, k) for clustering, or None when every
    row is the same (nothing to split)."""
    from sklearn.decomposition import PCA, FastICA
    from sklearn.exceptions import ConvergenceWarning

    d = centred.shape[1]
    if d <= n_components:  # ART clusters the activations as they are in this case
        return centred if np.any(centred) else None
    # FastICA whitens each component to unit variance, so a component of numerically zero
    # variance (fewer samples than components, or features of low rank) would be rounding
    # noise blown up to the scale of the signal: keep at most the rank's worth
    k = min(n_components, int(np.linalg.matrix_rank(centred)))
    if k == 0:
        return None
    if reduce == "pca":  # ART's ActivationDefence default: variances kept, not whitened
        return PCA(n_components=k, random_state=seed).fit_transform(centred)  # (n_c, k)
    # ART's settings (activation_defence.reduce_dimensionality), plus a seed ART does not set
    ica = FastICA(n_components=k, max_iter=1000, tol=0.005, whiten="unit-variance",
                  random_state=seed)
    with warnings.catch_warnings():
        # Gaussian directions have no independent components to converge to; the unmixing is
        # orthogonal at every iteration, so the distances KMeans sees are the same either way
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ica.fit_transform(centred)  # (n_c, k)


# KMeans restarts (ART: one). After FastICA's whitening a planted 9% sub-cluster explains at
# most one unit of variance beside nine units of Gaussian noise, and k-means++ starts often end
# in a split of the noise: on one test class (the poison 15 standard deviations off) 10 starts
# missed it for 4 KMeans seeds in 10, 100 starts for none (~0.3 s per class of 5,000 rows on
# one thread).
_KMEANS_STARTS = 100
REDUCTIONS = ("fastica", "pca")


def _cluster(features, labels, *, n_components: int, reduce: str, seed: int):
    """(ids, is_small, scores), each (N,), as documented by the two public functions."""
    from sklearn.cluster import KMeans

    f, y = _check_inputs(features, labels)
    _check_int(n_components, name="n_components", minimum=1)
    _check_int(seed, name="seed", minimum=0)
    if reduce not in REDUCTIONS:
        raise UsageError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    ids = np.zeros(len(y), dtype=np.int64)
    is_small = np.zeros(len(y), dtype=bool)
    scores = np.zeros(len(y))
    for _, rows in _classes(y):
        z = _reduce(f[rows] - f[rows].mean(axis=0), n_components=n_components, reduce=reduce,
                    seed=seed)
        if z is None:
            continue
        n_c = len(rows)
        km = KMeans(n_clusters=2, n_init=_KMEANS_STARTS, random_state=seed).fit(z)
        sizes = np.bincount(km.labels_, minlength=2)  # (2,)
        small = 1 if sizes[1] <= sizes[0] else 0  # equal sizes: KMeans's cluster 1
        label = km.labels_ if small == 1 else 1 - km.labels_  # (n_c,) 1 = the smaller cluster
        c_large, c_small = km.cluster_centers_[1 - small], km.cluster_centers_[small]  # (k,)
        gap = np.linalg.norm(c_small - c_large)
        margin = np.zeros(n_c)
        if gap > 0:  # in [-1, 1] by the triangle inequality; > 0 = nearer the small centre
            margin = (np.linalg.norm(z - c_large, axis=1)
                      - np.linalg.norm(z - c_small, axis=1)) / gap
            margin = np.clip(margin, -1.0, 1.0)
        own_share = sizes[np.where(label == 1, small, 1 - small)] / n_c  # (n_c,)
        ids[rows] = label
        is_small[rows] = (label == 1) & (sizes[small] < sizes[1 - small])
        scores[rows] = (1.0 - own_share) + margin / (2 * n_c)
    return ids, is_small, scores


def activation_clusters(features, labels, *, n_components: int = 10, reduce: str = "fastica",
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Activation clustering (Chen et al. 2018, "Detecting backdoor attacks on deep neural
    networks by activation clustering", arXiv:1811.03728, SafeAI@AAAI 2019): per class, the
    centred features reduced to `n_components` dimensions (reduce="fastica", the paper's ICA,
    or "pca"), split in two by KMeans.

    features (N, d) real (numpy or torch), labels (N,) int. Returns (ids int64 (N,), is_small
    bool (N,)): ids is 1 for the class's smaller cluster and 0 for its larger one (equal sizes:
    KMeans's order); is_small is True in a cluster strictly smaller than the other, the one
    Chen et al. (and ART's default "smaller" analysis) flag as poison. A class with fewer than
    2 samples, or whose rows are all equal, is not split (ids 0, is_small False).

    As ART's `activation_defence.cluster_activations` (whose default is reduce="FastICA", with
    FastICA(max_iter=1000, tol=0.005); ART's `ActivationDefence` class passes "PCA"), with no
    reduction when d <= n_components. Differences: the features are centred first (FastICA and
    PCA centre anyway), the components are capped at the rank of the class's features, the
    reduction and KMeans are seeded with `seed`, and KMeans keeps the best of 100 starts where
    ART makes one. FastICA's output is whitened and KMeans is rotation-invariant, so with
    "fastica" the split is KMeans's on the top principal components each scaled to unit
    variance: the poison's direction then weighs no more than a noise direction, which "pca"
    (variances kept) avoids. On Gaussian test features (a class of 200 unit Gaussians in 32-d
    plus 20 poisons shifted by 6 standard deviations) "fastica" missed the poison for 3 data
    seeds in 8 and "pca" for none; at 8 standard deviations both found it every time. ART's
    single KMeans start, after FastICA, missed it for most random starts even at 15.
    Raises UsageError on bad shapes, dtypes, non-finite values, n_components < 1, an unknown
    `reduce`, or seed < 0.
    """
    ids, is_small, _ = _cluster(features, labels, n_components=n_components, reduce=reduce,
                                seed=seed)
    return ids, is_small


def activation_clustering_scores(features, labels, *, n_components: int = 10,
                                 reduce: str = "fastica", seed: int = 0) -> np.ndarray:
    """A continuous activation-clustering suspicion score per sample, so AUROC is defined:
    the clusters of `activation_clusters` (same arguments, same result), then for sample i of
    class c (n_c samples) in a cluster holding a share s_i of the class,

        score_i = (1 - s_i) + margin_i / (2 n_c),
        margin_i = (|z_i - centre_large| - |z_i - centre_small|) / |centre_small - centre_large|,

    with z_i the reduced features. The first term is Chen et al.'s relative-size criterion
    (poison fills a small cluster): a poisoned class's small cluster scores near 1, its large
    one near 0, and both halves of an unpoisoned class, split about evenly, near 0.5, so the
    poison also ranks above the clean classes when scores are pooled (membership in the
    smaller cluster alone would tie it with half of every clean class). The margin, in [-1, 1],
    breaks ties within a cluster (nearer the small centre = more suspicious) and shifts a score
    by at most half a sample's share, so within a class every member of the smaller cluster
    scores at least as high as every member of the larger.

    Returns float64 (N,) in [-0.5 / n_c, 1]; skipped classes (see `activation_clusters`) score
    0. Raises UsageError as `activation_clusters` does.
    """
    _, _, scores = _cluster(features, labels, n_components=n_components, reduce=reduce,
                            seed=seed)
    return scores


# --------------------------------------------------------------------------- metrics

def detection_metrics(scores, is_poison, *, fpr: float = 0.05) -> dict:
    """How well `scores` (N,) (higher = more suspicious) find the samples where `is_poison` (N,)
    (bool, or int 0/1) is True. Returns plain Python numbers, JSON-ready:

      auroc:          sklearn's roc_auc_score (0.5 = chance, 1 = every poison above every clean;
                      tied scores count half);
      recall_at_fpr:  the share of poisoned samples flagged by the lowest threshold t whose
                      false-positive rate (the share of clean samples with score >= t) is at
                      most `fpr`; tied scores are flagged together, so a tie that would cross
                      the budget is left unflagged (0.0 when even the top score is over it);
      fpr:            the budget given; fpr_achieved: the clean share flagged at t (<= fpr);
      threshold:      t (None when nothing can be flagged);
      n, n_poison:    the number of samples and of poisoned ones.

    Raises UsageError when the lengths differ, scores are not finite, is_poison is not 0/1,
    there are no poisoned or no clean samples, or fpr is outside [0, 1].
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    s = _as_array(scores, name="scores")
    p = _as_array(is_poison, name="is_poison")
    if s.ndim != 1 or p.ndim != 1 or len(s) != len(p):
        raise UsageError(f"scores and is_poison must be 1-D of one length, got shapes "
                         f"{s.shape} and {p.shape}")
    if s.dtype == np.bool_ or not (np.issubdtype(s.dtype, np.floating)
                                   or np.issubdtype(s.dtype, np.integer)):
        raise UsageTypeError(f"scores must be real numbers, got dtype {s.dtype}")
    s = s.astype(np.float64)
    if not np.isfinite(s).all():
        raise UsageError("scores must be finite (found NaN or inf)")
    if not (p.dtype == np.bool_ or np.issubdtype(p.dtype, np.integer)) \
            or not np.isin(p, (0, 1)).all():
        raise UsageError(f"is_poison must be bool or 0/1 integers, got dtype {p.dtype} with "
                         f"values {np.unique(p)[:5].tolist()}")
    p = p.astype(bool)
    n_poison, n_clean = int(p.sum()), int((~p).sum())
    if n_poison == 0 or n_clean == 0:
        raise UsageError(f"is_poison needs both poisoned and clean samples, got {n_poison} "
                         f"poisoned and {n_clean} clean")
    if isinstance(fpr, bool) or not isinstance(fpr, (int, float)) or not 0.0 <= fpr <= 1.0:
        raise UsageError(f"fpr must be a number in [0, 1], got {fpr!r}")

    # roc_curve's thresholds are the distinct scores, high to low (the first is +inf, nothing
    # flagged); at each, rate = share with score >= threshold
    false_rate, true_rate, thresholds = roc_curve(p, s, drop_intermediate=False)
    allowed = np.flatnonzero(np.rint(false_rate * n_clean) <= fpr * n_clean + 1e-9)  # by count
    best = allowed[-1]  # rates rise as the threshold falls: the last allowed is the lowest
    return {
        "auroc": float(roc_auc_score(p, s)),
        "recall_at_fpr": float(true_rate[best]),
        "fpr": float(fpr),
        "fpr_achieved": float(false_rate[best]),
        "threshold": None if np.isinf(thresholds[best]) else float(thresholds[best]),
        "n": len(s),
        "n_poison": n_poison,
    }
