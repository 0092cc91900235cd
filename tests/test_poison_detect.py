"""Feature-space poison detectors (dfl_lib.poisoning.detect): spectral signatures and activation
clustering find a poisoned sub-cluster and see nothing in clean features, do not depend on the
samples' order, agree with the Adversarial Robustness Toolbox (ART) on the same inputs, and
detection_metrics gives hand-computed answers. Synthetic Gaussian features only, no model."""
import numpy as np
import pytest
import torch

from dfl_lib.errors import UsageError
from dfl_lib.poisoning.detect import (activation_clustering_scores, activation_clusters,
                                      detection_metrics, spectral_signature_scores)

DETECTORS = {
    "spectral": spectral_signature_scores,
    "activation": activation_clustering_scores,  # FastICA, the paper's and ART's helper's
    "activation_pca": lambda f, y: activation_clustering_scores(f, y, reduce="pca"),
}


def with_nan(f: np.ndarray) -> np.ndarray:
    f = f.copy()
    f[3, 1] = np.nan
    return f


def features_with_subclusters(*, n_clean: int = 200, sub: tuple = (20, 0, 0, 0), d: int = 32,
                              shift: float = 8.0, seed: int = 0):
    """Features (N, d), labels (N,), is_poison (N,) in shuffled order: class j holds n_clean
    unit Gaussians around its mean (classes ~8 sqrt(2d) apart) plus sub[j] more around
    mean + shift * u_j (u_j a random unit vector), labelled j and marked poisoned. At shift 8
    every detector finds the poison for each of 8 data seeds; at 6 FastICA's activation
    clustering missed it for 3 (see activation_clusters)."""
    rng = np.random.default_rng(seed)
    k = len(sub)
    means = 8.0 * rng.normal(size=(k, d))  # (k, d)
    parts, labels, poison = [], [], []
    for j in range(k):
        parts.append(means[j] + rng.normal(size=(n_clean, d)))
        u = rng.normal(size=d)
        parts.append(means[j] + shift * u / np.linalg.norm(u) + rng.normal(size=(sub[j], d)))
        labels += [j] * (n_clean + sub[j])
        poison += [False] * n_clean + [True] * sub[j]
    order = rng.permutation(len(labels))
    return (np.concatenate(parts)[order], np.array(labels)[order], np.array(poison)[order])


# --------------------------------------------------------------------------- detection

@pytest.mark.parametrize("name", DETECTORS)
def test_a_poisoned_subcluster_is_found(name):
    f, y, poison = features_with_subclusters()
    m = detection_metrics(DETECTORS[name](f, y), poison, fpr=0.05)
    assert m["auroc"] > 0.95
    assert m["recall_at_fpr"] >= 0.9 and m["fpr_achieved"] <= 0.05
    assert (m["n"], m["n_poison"]) == (820, 20)


@pytest.mark.parametrize("name", DETECTORS)
def test_clean_features_give_chance_auroc(name):
    f, y, _ = features_with_subclusters(sub=(0, 0, 0, 0))
    marked = np.random.default_rng(1).random(len(y)) < 0.1  # "poison" chosen at random
    m = detection_metrics(DETECTORS[name](f, y), marked)
    assert m["n_poison"] > 50
    assert abs(m["auroc"] - 0.5) < 0.12  # ~3 standard errors of the AUROC at these counts


def test_activation_clusters_flag_the_poison():
    f, y, poison = features_with_subclusters()
    ids, is_small = activation_clusters(f, y)
    assert ids.dtype == np.int64 and is_small.dtype == bool and ids.shape == y.shape
    assert np.array_equal(is_small[y == 0], poison[y == 0])  # the poisoned class: exact split
    assert np.array_equal(ids == 1, is_small)  # clean classes split unevenly, 1 = smaller
    scores = activation_clustering_scores(f, y)
    # the poison fills 20/220 of its class: 1 - 20/220 give or take half a sample's share
    assert np.allclose(scores[poison], 200 / 220, atol=0.5 / 220)
    assert scores[poison].min() > scores[~poison].max()


def test_scores_do_not_depend_on_the_order_of_samples():
    # every class has a clear split: an unstructured class's split is arbitrary, so its
    # activation-clustering scores may change with the order (KMeans's starts are drawn by index)
    f, y, _ = features_with_subclusters(sub=(20, 50, 80), shift=15.0)
    perm = np.random.default_rng(2).permutation(len(y))
    back = np.argsort(perm)
    for detector in DETECTORS.values():
        np.testing.assert_allclose(detector(f[perm], y[perm])[back], detector(f, y),
                                   rtol=1e-7, atol=1e-9)
    ids, small = activation_clusters(f, y)
    ids_p, small_p = activation_clusters(f[perm], y[perm])
    assert np.array_equal(ids_p[back], ids) and np.array_equal(small_p[back], small)


def test_torch_inputs_give_the_numpy_scores():
    f, y, _ = features_with_subclusters(sub=(20, 0))
    for detector in (spectral_signature_scores, activation_clustering_scores):
        np.testing.assert_allclose(detector(torch.from_numpy(f), torch.from_numpy(y)),
                                   detector(f, y))
    # bfloat16 (which numpy lacks) and float32 features are read as float64
    rounded = torch.from_numpy(f).bfloat16()
    np.testing.assert_allclose(spectral_signature_scores(rounded, torch.from_numpy(y)),
                               spectral_signature_scores(rounded.double().numpy(), y))


def test_spectral_score_is_the_squared_centred_projection():
    # class 0 spread along x (std 3), class 1 along y: v = e_x, resp. e_y, found exactly
    rng = np.random.default_rng(3)
    a = rng.normal(size=(50, 2)) * [3.0, 0.1] + [10.0, 0.0]
    b = rng.normal(size=(50, 2)) * [0.1, 3.0] + [0.0, 10.0]
    scores = spectral_signature_scores(np.concatenate([a, b]), np.repeat([0, 1], 50))
    v_a = np.linalg.svd(a - a.mean(0))[2][0]
    np.testing.assert_allclose(scores[:50], ((a - a.mean(0)) @ v_a) ** 2, rtol=1e-12)
    assert abs(v_a[0]) > 0.99


def test_a_class_of_one_sample_scores_zero():
    f, y, _ = features_with_subclusters(sub=(20, 0))
    f1, y1 = np.concatenate([f, f[:1] + 100.0]), np.concatenate([y, [9]])  # class 9: one row
    assert spectral_signature_scores(f1, y1)[-1] == 0.0
    assert activation_clustering_scores(f1, y1)[-1] == 0.0
    ids, small = activation_clusters(f1, y1)
    assert ids[-1] == 0 and not small[-1]


# --------------------------------------------------------------------------- metrics

def test_metrics_perfect_and_constant_scores():
    poison = np.array([0, 0, 0, 1, 1], dtype=bool)
    m = detection_metrics(np.array([0.1, 0.2, 0.3, 0.9, 0.8]), poison)
    assert m == {"auroc": 1.0, "recall_at_fpr": 1.0, "fpr": 0.05, "fpr_achieved": 0.0,
                 "threshold": 0.8, "n": 5, "n_poison": 2}
    m = detection_metrics(np.full(5, 0.7), poison)
    assert m["auroc"] == 0.5 and m["recall_at_fpr"] == 0.0 and m["threshold"] is None


def test_recall_at_fpr_on_a_hand_computed_case():
    # 20 clean scores 0..19: a 5% budget allows one clean sample flagged (19), so the lowest
    # threshold is 18.5, which flags two of three poisons; AUROC = (20 + 19 + 11) / 60
    clean = np.arange(20.0)
    scores = np.concatenate([clean, [18.5, 10.5, 25.0]])
    poison = np.arange(23) >= 20
    m = detection_metrics(scores, poison, fpr=0.05)
    assert m["recall_at_fpr"] == pytest.approx(2 / 3) and m["threshold"] == 18.5
    assert m["fpr_achieved"] == pytest.approx(0.05) and m["auroc"] == pytest.approx(50 / 60)
    # ties are flagged together: two clean samples tied with a poison at 3 exceed a 25% budget
    tied = detection_metrics(np.array([0.0, 1.0, 3.0, 3.0, 3.0, 5.0]),
                             np.array([0, 0, 0, 0, 1, 1]), fpr=0.25)
    assert tied["recall_at_fpr"] == 0.5 and tied["threshold"] == 5.0
    untied = detection_metrics(np.array([0.0, 1.0, 2.0, 3.0, 3.0, 5.0]),
                               np.array([0, 0, 0, 0, 1, 1]), fpr=0.25)
    assert untied["recall_at_fpr"] == 1.0 and untied["fpr_achieved"] == 0.25


# --------------------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("call", [
    lambda f, y: spectral_signature_scores(f[:, 0], y),  # 1-D features
    lambda f, y: spectral_signature_scores(f, y[:-1]),  # one label short
    lambda f, y: spectral_signature_scores(f, y.astype(float)),  # float labels
    lambda f, y: spectral_signature_scores(f.tolist(), y),  # not an array
    lambda f, y: spectral_signature_scores(with_nan(f), y),
    lambda f, y: activation_clusters(torch.from_numpy(with_nan(f)), torch.from_numpy(y)),
    lambda f, y: activation_clustering_scores(f[:0], y[:0]),  # no samples
    lambda f, y: activation_clustering_scores(f, y, n_components=0),
    lambda f, y: activation_clusters(f, y, seed=-1),
    lambda f, y: activation_clusters(f, y, n_components=True),
    lambda f, y: activation_clusters(f, y, reduce="ica"),
])
def test_bad_detector_inputs_raise(call):
    f, y, _ = features_with_subclusters(n_clean=20, sub=(2, 0))
    with pytest.raises(UsageError):
        call(f, y)


@pytest.mark.parametrize("scores, is_poison, fpr", [
    ([0.1, 0.2, 0.3], [0, 1], 0.05),  # lengths differ
    ([0.1, 0.2, 0.3], [0, 0, 0], 0.05),  # no poison
    ([0.1, 0.2, 0.3], [1, 1, 1], 0.05),  # no clean sample
    ([0.1, np.nan, 0.3], [0, 1, 0], 0.05),
    ([0.1, 0.2, 0.3], [0, 2, 0], 0.05),  # not 0/1
    ([0.1, 0.2, 0.3], [0, 1, 0], 1.5),
])
def test_bad_metric_inputs_raise(scores, is_poison, fpr):
    with pytest.raises(UsageError):
        detection_metrics(np.array(scores), np.array(is_poison), fpr=fpr)


# --------------------------------------------------------------------------- ART cross-checks

def test_spectral_scores_match_art():
    art = pytest.importorskip("art.defences.detector.poison.spectral_signature_defense")
    f, y, _ = features_with_subclusters(sub=(20, 40, 0, 0))
    ours = spectral_signature_scores(f, y)
    for c in range(4):
        rows = f[y == c]
        # ART projects uncentred rows and returns |R v|; given centred rows it is our sqrt
        theirs = art.SpectralSignatureDefense.spectral_signature_scores(rows - rows.mean(0))
        assert theirs.shape == (len(rows), 1)
        np.testing.assert_allclose(ours[y == c], theirs[:, 0] ** 2, rtol=1e-9, atol=1e-12)


def _art_clusters(art, per_class: list, *, reduce: str):
    state = np.random.get_state()  # ART seeds nothing: FastICA, PCA and KMeans draw from here
    np.random.seed(0)
    try:
        return art.cluster_activations(per_class, nb_clusters=2, nb_dims=10, reduce=reduce)
    finally:
        np.random.set_state(state)


def test_activation_clusters_match_art_with_pca():
    art = pytest.importorskip("art.defences.detector.poison.activation_defence")
    f, y, _ = features_with_subclusters(sub=(20, 40, 60, 80))
    clusters, _ = _art_clusters(art, [f[y == c] for c in range(4)], reduce="PCA")
    ids, _ = activation_clusters(f, y, n_components=10, reduce="pca")
    for c in range(4):
        ours, theirs = ids[y == c], clusters[c]
        assert np.array_equal(ours, theirs) or np.array_equal(ours, 1 - theirs)


@pytest.mark.filterwarnings("ignore:FastICA did not converge")  # ART's own call; see _reduce
def test_activation_clusters_match_art_with_fastica():
    # ART keeps one KMeans start, which after FastICA's whitening often ends in a split of the
    # noise (see activation_clusters), so the split is compared by KMeans's own objective:
    # both reductions give the same geometry, and our split is at least as good as ART's
    art = pytest.importorskip("art.defences.detector.poison.activation_defence")
    from dfl_lib.poisoning.detect import _reduce

    f, y, _ = features_with_subclusters(sub=(20, 40, 60, 80), shift=15.0)
    clusters, reduced = _art_clusters(art, [f[y == c] for c in range(4)], reduce="FastICA")
    ids, _ = activation_clusters(f, y, n_components=10)
    for c in range(4):
        rows = f[y == c]
        mine = _reduce(rows - rows.mean(0), n_components=10, reduce="fastica", seed=0)
        theirs = reduced[c] - reduced[c].mean(0)
        assert mine.shape == theirs.shape == (len(rows), 10)
        # whitened, with an orthogonal unmixing: the same Gram matrix (hence the same pairwise
        # distances, all KMeans sees), whatever FastICA's random start
        np.testing.assert_allclose(mine @ mine.T, theirs @ theirs.T, atol=1e-6)
        assert inertia(theirs, ids[y == c]) <= inertia(theirs, clusters[c]) + 1e-9


def inertia(z: np.ndarray, split: np.ndarray) -> float:
    """KMeans's objective: squared distances of z (n, k) to the means of the two groups."""
    return float(sum(((z[split == g] - z[split == g].mean(0)) ** 2).sum() for g in (0, 1)))
