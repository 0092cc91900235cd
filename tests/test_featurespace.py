"""Feature space of clean vs perturbed samples: penultimate features, cluster metrics, UMAP and
its figure. Synthetic clusters with known answers; UMAP on 200 points (its numba code compiles
once per process, ~10 s, paid by the first UMAP test)."""
import math

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TinyCNN, quadrants
from torch import nn

from dfl_lib.errors import UsageError
from dfl_lib.evaluation.featurespace import clustering_metrics, penultimate_features, umap_embedding
from dfl_lib.figures.featurespace import plot_umap_panels

pytestmark = pytest.mark.usefixtures("one_thread")


def clusters(n: int = 200, *, k: int = 4, d: int = 16, spread: float = 0.1, gap: float = 10.0,
             seed: int = 0):
    """Features (n, d): class j (y = i % k) is a Gaussian of std `spread` around gap * e_j."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k  # (n,)
    means = gap * torch.eye(k, d)  # (k, d)
    return means[y] + spread * torch.randn(n, d, generator=gen), y, means


# --------------------------------------------------------------------------- metrics

def test_identical_features_hit_every_centroid_and_do_not_move():
    f, y, _ = clusters()
    m = clustering_metrics(f, f.clone(), y)
    assert m["centroid_hit_rate_perturbed"] == 100.0 and m["centroid_hit_rate_clean"] == 100.0
    assert m["displacement_ratio"] == 0.0
    assert m["silhouette_perturbed"] == pytest.approx(m["silhouette_clean"])
    assert set(m) == {"centroid_hit_rate_perturbed", "centroid_hit_rate_clean",
                      "displacement_ratio", "silhouette_clean", "silhouette_perturbed"}


def test_features_moved_to_another_class_miss_their_centroid():
    f, y, means = clusters()
    moved = f.clone()
    first = torch.arange(len(y)) < 100  # half the samples, every class
    moved[first] = means[(y[first] + 1) % 4]  # onto the next class's mean
    m = clustering_metrics(f, moved, y)
    assert m["centroid_hit_rate_perturbed"] == pytest.approx(50.0)
    assert m["centroid_hit_rate_clean"] == 100.0
    assert m["silhouette_perturbed"] < m["silhouette_clean"]


def test_displacement_ratio_of_a_known_shift():
    f, y, means = clusters(gap=10.0)
    shift = torch.zeros(f.shape[1])
    shift[-1] = 3.0  # a direction no class mean uses: every sample moves by exactly 3
    m = clustering_metrics(f, f + shift, y)
    clean_means = torch.stack([f[y == j].mean(0) for j in range(4)])  # (4, d)
    gap = torch.pdist(clean_means.double()).mean()  # ~ 10 * sqrt(2)
    assert m["displacement_ratio"] == pytest.approx(3.0 / float(gap), rel=1e-6)
    assert m["displacement_ratio"] == pytest.approx(3.0 / (10 * math.sqrt(2)), rel=0.02)
    assert m["centroid_hit_rate_perturbed"] == 100.0  # a shift shared by all: still nearest


def test_silhouette_is_higher_for_tight_clusters_than_for_mixed_ones():
    tight, y, _ = clusters(spread=0.1)
    loose, _, _ = clusters(spread=8.0, seed=1)  # clusters that overlap
    m = clustering_metrics(tight, loose, y)
    assert m["silhouette_clean"] > 0.9
    assert m["silhouette_perturbed"] < 0.2
    shuffled = y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]
    assert clustering_metrics(tight, tight, shuffled)["silhouette_clean"] < 0.1


def test_metrics_errors_are_clear():
    f, y, _ = clusters(n=20)
    with pytest.raises(ValueError, match="shape of clean"):
        clustering_metrics(f, f[:10], y)
    with pytest.raises(ValueError, match=r"y must have shape \(20,\)"):
        clustering_metrics(f, f, y[:10])
    with pytest.raises(ValueError, match="at least 2 classes"):
        clustering_metrics(f, f, torch.zeros(20, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(N, d\)"):
        clustering_metrics(f[:, 0], f[:, 0], y)
    with pytest.raises(TypeError, match="integer class labels"):
        clustering_metrics(f, f, y.float())


# --------------------------------------------------------------------------- UMAP

@pytest.fixture(scope="module")
def embedded():
    f, y, _ = clusters(n=200, d=32, spread=1.0)
    moved = f.clone()  # the second half stays where it was; the first half takes the features
    moved[:100] = f[torch.arange(100) + 1]  # of the next sample, of the next class
    return f, moved, y, umap_embedding(f, moved, seed=0, n_neighbors=10)


def test_umaps_numba_kernels_are_cached_on_disk(embedded):
    """umap-learn compiles its kernels again in every process (20-40 s on one AVX2 core) unless
    numba is asked to cache them: after one embedding, every compiled umap kernel that numba
    can cache has its index on disk, so the next process loads it (0.5 s instead of 24 s,
    measured)."""
    import sys

    from numba.core.caching import FunctionCache
    from numba.core.registry import CPUDispatcher

    kernels = {id(v): v for name, m in list(sys.modules.items())
               if name == "umap" or name.startswith("umap.")
               for v in vars(m).values() if isinstance(v, CPUDispatcher)}
    compiled = [k for k in kernels.values() if k.signatures]
    assert compiled and all(isinstance(k._cache, FunctionCache) for k in kernels.values())
    indexed = [k for k in compiled if Path(k._cache._cache_file._index_path).exists()]
    assert len(indexed) >= len(compiled) // 2, (len(indexed), len(compiled))


def test_umap_shapes_and_determinism(embedded):
    f, moved, _, (clean_2d, perturbed_2d) = embedded
    assert clean_2d.shape == (200, 2) and perturbed_2d.shape == (200, 2)
    assert np.isfinite(clean_2d).all() and np.isfinite(perturbed_2d).all()
    again = umap_embedding(f, moved, seed=0, n_neighbors=10)
    np.testing.assert_array_equal(again[0], clean_2d)
    np.testing.assert_array_equal(again[1], perturbed_2d)


def test_umap_places_a_point_independently_of_the_points_transformed_with_it(embedded):
    """Notebooks 05 and 07 transform perturbed and poisoned points in batches of their own
    choosing: a point's position must not depend on its batch (umap-learn 0.5.6 moved 20 of 20
    points, by up to 1.7 on a 25-wide map; the floor in pyproject.toml is the first release
    where this holds)."""
    f, moved, _, (clean_2d, perturbed_2d) = embedded
    for part in (slice(0, 20), slice(90, 110), slice(199, 200)):
        alone = umap_embedding(f, moved[part], seed=0, n_neighbors=10)
        np.testing.assert_array_equal(alone[0], clean_2d)  # the same fitted map
        np.testing.assert_allclose(alone[1], perturbed_2d[part], atol=1e-4)


def test_umap_places_unmoved_points_by_their_clean_twin_and_moved_ones_elsewhere(embedded):
    _, _, y, (clean_2d, perturbed_2d) = embedded
    scale = np.linalg.norm(clean_2d - clean_2d.mean(0), axis=1).mean()  # the map's radius
    dist = np.linalg.norm(perturbed_2d - clean_2d, axis=1)  # (200,)
    assert np.median(dist[100:]) < 0.1 * scale  # unchanged features: beside their clean twin
    assert np.median(dist[:100]) > 0.5 * scale  # features of another class: in its cluster
    # a moved point lands nearest to clean points of the class it was moved to
    nearest = np.linalg.norm(perturbed_2d[:100, None] - clean_2d[None], axis=2).argmin(1)
    assert (y.numpy()[nearest] == (y.numpy()[:100] + 1) % 4).mean() > 0.9


def test_umap_errors_are_clear():
    f, _, _ = clusters(n=20)
    with pytest.raises(ValueError, match="feature dimension"):
        umap_embedding(f, f[:, :8], seed=0)
    with pytest.raises(ValueError, match="n_neighbors"):
        umap_embedding(f, f, seed=0, n_neighbors=20)


# --------------------------------------------------------------------------- features

class BNNet(nn.Module):
    """TinyCNN with BatchNorm: train and eval mode give different features."""

    def __init__(self):
        super().__init__()
        self.tiny = TinyCNN()
        self.bn = nn.BatchNorm1d(32)

    def forward(self, x, return_features=False):
        _, feats = self.tiny(x, return_features=True)
        f = self.bn(feats["penultimate"])  # (N, 32)
        logits = self.tiny.head(f)
        return (logits, {"penultimate": f}) if return_features else logits


def test_penultimate_features_match_the_model_and_refuse_train_mode():
    torch.manual_seed(0)
    x, _ = quadrants(30, seed=0)
    model = BNNet()
    with torch.no_grad():  # non-trivial running statistics
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.5, 2)
    model.eval()
    model.bn.train()  # one BatchNorm left in train mode: refused (the attacks' guard), untouched
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UsageError, match="eval mode.*bn"):
        penultimate_features(model, x)
    assert model.bn.training and not model.training
    model.eval()
    feats = penultimate_features(model, x, batch_size=7)  # 5 batches, the last one short
    assert not any(m.training for m in model.modules())
    for k, v in model.state_dict().items():  # BatchNorm's running statistics untouched
        assert torch.equal(v, buffers[k]), k
    assert not feats.requires_grad and feats.shape == (30, 32)
    with torch.no_grad():
        expected = model(x, return_features=True)[1]["penultimate"]
    torch.testing.assert_close(feats, expected)


def test_the_feature_panel_refuses_a_model_in_train_mode_and_never_switches_it():
    """`clean_vs_perturbed` (notebook 05) used to switch the model to eval mode itself."""
    from dfl_lib.experiments.configs import make_config
    from dfl_lib.experiments.features import clean_vs_perturbed

    model = BNNet()
    model.eval()
    model.bn.train()
    with pytest.raises(UsageError, match="eval mode.*bn"):
        clean_vs_perturbed({"model": model, "data": None}, cfg=make_config("smoke"))
    assert model.bn.training and not model.training  # left as it was


def test_penultimate_features_errors_are_clear():
    x, _ = quadrants(4, seed=0)
    with pytest.raises(TypeError, match="return_features"):
        penultimate_features(nn.Sequential(nn.Flatten(), nn.Linear(144, 4)).eval(), x)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        penultimate_features(TinyCNN().eval(), x * 3)


# --------------------------------------------------------------------------- figure

def test_plot_has_one_panel_per_model_with_its_numbers(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(40) % 4
    panels = {}
    for name, hit, ratio in (("undefended", 12.5, 1.37), ("DFL + PCL, PGD training", 87.5, 0.21)):
        metrics = {"centroid_hit_rate_perturbed": hit, "centroid_hit_rate_clean": 100.0,
                   "displacement_ratio": ratio}
        panels[name] = {"clean_2d": rng.normal(size=(40, 2)),
                        "perturbed_2d": rng.normal(size=(40, 2)), "y": y, "metrics": metrics}
    fig = plot_umap_panels(panels, title="t", class_names=["a", "b", "c", "d"])
    assert len(fig.axes) == 2
    assert "undefended" in fig.axes[0].get_title() and "12.5%" in fig.axes[0].get_title()
    assert "1.37" in fig.axes[0].get_title()
    assert "87.5%" in fig.axes[1].get_title() and "0.21" in fig.axes[1].get_title()
    assert fig.axes[1].get_xlabel() == "UMAP 1" and fig.axes[1].get_ylabel() == "UMAP 2"
    assert [len(ax.collections) for ax in fig.axes] == [2, 2]  # clean dots, perturbed crosses
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["a", "b", "c", "d", "clean", "perturbed"]
    fig.savefig(tmp_path / "umap.png")
    assert (tmp_path / "umap.png").stat().st_size > 0
    with pytest.raises(KeyError, match="metrics"):
        plot_umap_panels({"m": {"clean_2d": y, "perturbed_2d": y, "y": y}}, title="t")
