"""The 2-D feature study (paper Fig. 4): Net2D, its training with each loss, the plane's read-outs
(class means, intra/inter ratio, decision regions, attacked features) and the two figures.

Everything runs on a synthetic 10-class 1x28x28 task (class k lights one of ten 5x5 squares) in
a few seconds on one thread."""
import math

import matplotlib
import pytest
import torch
import torch.nn.functional as F

from dfl_lib.experiments.geometry import (GEOMETRY_LOSSES, Net2D, attacked_features, class_centroids,
                              decision_regions, feature_extent, features_2d,
                              separation_ratio, share_in_true_region, train_2d)
from dfl_lib.figures.geometry import plot_feature_panels, plot_regions_under_attack
from dfl_lib.models.blocks import CosineClassifier
from matplotlib.collections import LineCollection

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("one_thread")


def squares(n: int, *, seed: int):
    """x float (n, 1, 28, 28) in [0, 1], y (n,) in 0..9: class k lights a 5x5 square at grid
    cell k (2 rows x 5 columns), jittered by up to 2 pixels, over noise in [0, 0.3]."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = torch.rand(n, 1, 28, 28, generator=gen) * 0.3
    jitter = torch.randint(0, 3, (n, 2), generator=gen)
    for i in range(n):
        k = int(y[i])
        r, c = (k // 5) * 14 + 3 + int(jitter[i, 0]), (k % 5) * 5 + 1 + int(jitter[i, 1])
        x[i, :, r:r + 5, c:c + 4] = 1.0
    return x, y


@pytest.fixture(scope="module")
def task():
    return squares(400, seed=0), squares(200, seed=1)


@pytest.fixture(scope="module")
def ce_model(task):
    (x, y), _ = task
    model, _ = train_2d(loss="ce", x=x, y=y, epochs=2, batch_size=32, lr=0.05, seed=0)
    return model


def test_net2d_gives_logits_and_a_2d_penultimate_layer():
    model = Net2D().eval()
    x = torch.rand(5, 1, 28, 28)
    logits, feats = model(x, return_features=True)
    assert logits.shape == (5, 10) and feats["penultimate"].shape == (5, 2)
    assert torch.equal(model(x), logits)
    assert torch.allclose(features_2d(model, x, batch_size=2), feats["penultimate"], atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        model(torch.rand(2, 1, 32, 32))


def test_training_ce_lowers_the_loss_and_beats_chance(task, ce_model):
    (x, y), (x_test, y_test) = task
    untrained, _ = train_2d(loss="ce", x=x, y=y, epochs=0, lr=0.05, seed=0)
    with torch.no_grad():
        before = F.cross_entropy(untrained(x), y)
        after = F.cross_entropy(ce_model(x), y)
    assert after < 0.5 * before
    acc = share_in_true_region(ce_model, features_2d(ce_model, x_test), y_test)
    assert acc > 0.5  # chance is 0.1
    assert not ce_model.training


def test_training_is_deterministic_for_a_seed(task):
    (x, y), _ = task
    kw = dict(loss="center", x=x[:100], y=y[:100], epochs=1, batch_size=50, lr=0.05)
    (a, la), (b, lb) = train_2d(seed=3, **kw), train_2d(seed=3, **kw)
    c, _ = train_2d(seed=4, **kw)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert torch.equal(la.centroids, lb.centroids)
    assert not torch.equal(a.to_2d.weight, c.to_2d.weight)


@pytest.mark.parametrize("loss", ["center", "am_softmax", "pcl"])
def test_every_figure_loss_trains_with_its_own_pieces(task, loss):
    (x, y), _ = task
    model, criterion = train_2d(loss=loss, x=x[:100], y=y[:100], epochs=1, batch_size=50,
                                lr=0.05, seed=0)
    f = features_2d(model, x[:20])
    assert f.shape == (20, 2) and torch.isfinite(f).all()
    if loss == "am_softmax":  # a cosine head whose scale matches the loss's
        assert isinstance(model.head, CosineClassifier) and model.head.scale == criterion.scale
    else:
        assert criterion.centroids.shape == (10, 2)


def test_bad_inputs_fail_with_clear_errors(task):
    (x, y), _ = task
    with pytest.raises(ValueError, match="unknown loss 'softmax'.*known: ce, center"):
        train_2d(loss="softmax", x=x, y=y, epochs=1, lr=0.1, seed=0)
    with pytest.raises(ValueError, match="two feature layers"):
        train_2d(loss="prototype_conformity", x=x, y=y, epochs=1, lr=0.1, seed=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train_2d(loss="ce", x=x * 255, y=y, epochs=1, lr=0.1, seed=0)
    with pytest.raises(ValueError, match="28x28"):
        train_2d(loss="ce", x=x[:, :, :20, :20], y=y, epochs=1, lr=0.1, seed=0)
    with pytest.raises(ValueError, match="shape"):
        train_2d(loss="ce", x=x, y=y[:-1], epochs=1, lr=0.1, seed=0)
    with pytest.raises(ValueError, match="0..9"):
        train_2d(loss="ce", x=x, y=y + 1, epochs=1, lr=0.1, seed=0)
    with pytest.raises(ValueError, match="eval mode"):
        features_2d(Net2D(), x[:2])
    assert set(GEOMETRY_LOSSES) >= {"ce", "center", "am_softmax", "pcl"}


def test_class_centroids_and_separation_ratio_by_hand():
    f = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 2.0]])
    y = torch.tensor([0, 0, 1, 1])
    assert torch.allclose(class_centroids(f, y, num_classes=2), torch.tensor([[1.0, 0.0],
                                                                             [10.0, 1.0]]))
    # every point 1 from its class mean; the means sqrt(81 + 1) apart
    assert separation_ratio(f, y) == pytest.approx(1 / math.sqrt(82))
    assert separation_ratio(7 * f, y) == pytest.approx(1 / math.sqrt(82))  # scale-free


def test_separation_ratio_is_lower_for_tight_separated_clusters():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(500) % 10
    angle = 2 * math.pi * y / 10
    means = 10 * torch.stack([angle.cos(), angle.sin()], dim=1)  # (500, 2)
    noise = torch.randn(500, 2, generator=gen)
    tight, loose = means + 0.5 * noise, means + 8.0 * noise
    # 10 means on a circle of radius 10: mean gap ~12.8; mean |noise| = sigma * sqrt(pi / 2)
    assert separation_ratio(tight, y) < 0.1 < 0.5 < separation_ratio(loose, y)
    assert separation_ratio(tight, y, directions=True) < separation_ratio(loose, y,
                                                                          directions=True)


def test_decision_regions_are_the_head_on_cell_centres(ce_model):
    extent = (-3.0, 5.0, -2.0, 2.0)
    labels, ext = decision_regions(ce_model, extent=extent, resolution=8)
    assert labels.shape == (8, 8) and labels.dtype == torch.int64 and ext == extent
    for i, j in [(0, 0), (7, 7), (2, 5), (6, 1)]:  # row i: feature 2, column j: feature 1
        point = torch.tensor([[-3.0 + (j + 0.5) * 1.0, -2.0 + (i + 0.5) * 0.5]])
        with torch.no_grad():
            assert labels[i, j] == ce_model.head(point).argmax(1)[0]


def test_decision_regions_orientation_with_a_hand_made_head():
    model = Net2D().eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.weight[3] = torch.tensor([0.0, 1.0])   # class 3 above the x-axis
        model.head.weight[7] = torch.tensor([0.0, -1.0])  # class 7 below it
    labels, _ = decision_regions(model, extent=(0.0, 1.0, -1.0, 1.0), resolution=4)
    assert (labels[:2] == 7).all() and (labels[2:] == 3).all()  # row 0 = ymin


def test_attacked_features_are_clean_at_eps_zero_and_move_otherwise(task, ce_model):
    _, (x, y) = task
    x, y = x[:60], y[:60]
    clean = features_2d(ce_model, x)
    assert torch.equal(attacked_features(ce_model, x, y, eps=0.0), clean)
    moved = attacked_features(ce_model, x, y, eps=0.3, steps=5, seed=0, batch_size=25)
    assert moved.shape == (60, 2)
    assert (moved - clean).norm(dim=1).max() > 1e-2
    assert share_in_true_region(ce_model, moved, y) <= share_in_true_region(ce_model, clean, y)
    again = attacked_features(ce_model, x, y, eps=0.3, steps=5, seed=0, batch_size=25)
    assert torch.equal(moved, again)


def test_feature_extent_is_a_square_holding_every_point():
    f, g = torch.tensor([[0.0, 0.0], [4.0, 1.0]]), torch.tensor([[-2.0, 3.0]])
    xmin, xmax, ymin, ymax = feature_extent(f, g, pad=0.1)
    assert xmax - xmin == pytest.approx(ymax - ymin) == pytest.approx(6.0 * 1.2)
    assert xmin < -2 and xmax > 4 and ymin < 0 and ymax > 3


def _panels(ce_model, task):
    _, (x, y) = task
    f = features_2d(ce_model, x)
    regions = decision_regions(ce_model, extent=feature_extent(f), resolution=40)
    panel = {"features": f, "y": y, "regions": regions, "centroids": class_centroids(f, y),
             "ratio": separation_ratio(f, y)}
    return {"CE": panel, "PCL": {**panel, "ratio": 0.21}}, x, y


def test_plot_feature_panels_has_one_titled_axis_per_loss(ce_model, task, tmp_path):
    panels, _, _ = _panels(ce_model, task)
    fig = plot_feature_panels(panels, title="Figure 4")
    assert len(fig.axes) == 2
    ratio = panels["CE"]["ratio"]
    assert fig.axes[0].get_title() == f"(a) CE: intra/inter {ratio:.2f}"
    assert fig.axes[1].get_title() == "(b) PCL: intra/inter 0.21"
    assert fig.axes[0].get_xlabel() == "feature 1" and fig.axes[0].get_ylabel() == "feature 2"
    assert [t.get_text() for t in fig.legends[0].get_texts()][:10] == [str(k) for k in range(10)]
    fig.savefig(tmp_path / "fig4.png")
    assert (tmp_path / "fig4.png").stat().st_size > 0
    with pytest.raises(KeyError, match="ratio"):
        plot_feature_panels({"CE": {k: v for k, v in panels["CE"].items() if k != "ratio"}},
                            title="t")


def test_plot_regions_under_attack_reports_the_share_kept(ce_model, task, tmp_path):
    panels, x, y = _panels(ce_model, task)
    moved = attacked_features(ce_model, x, y, eps=0.2, steps=3)
    kept = share_in_true_region(ce_model, moved, y)
    panels = {"CE": {**panels["CE"], "attacked": moved, "kept": kept, "steps": 3},
              "PCL": {**panels["PCL"], "attacked": moved, "steps": 3}}  # no "kept": the grid's
    fig = plot_regions_under_attack(panels, eps=0.2, dataset="MNIST", seed=4, max_lines=50)
    assert len(fig.axes) == 2
    assert f"{100 * kept:.0f}% still in their class's region" in fig.axes[0].get_title()
    assert "intra/inter 0.21" in fig.axes[1].get_title()
    assert "%" in fig.axes[1].get_title()
    # the figure leaves its notebook (lab screenshots): its title names what it shows
    assert fig._suptitle.get_text() == (f"MNIST test features under L-inf PGD-3, eps = 0.2 "
                                        f"(pixel units): seed 4, {len(y)} test images")
    lines = [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]
    assert len(lines) == 1 and len(lines[0].get_segments()) == 50  # lines for a subset
    fig.savefig(tmp_path / "attack.png")
    with pytest.raises(KeyError, match="attacked"):
        plot_regions_under_attack({"CE": {k: v for k, v in panels["CE"].items()
                                          if k != "attacked"}}, eps=0.2, dataset="MNIST", seed=0)
    with pytest.raises(KeyError, match="steps"):
        plot_regions_under_attack({"CE": {k: v for k, v in panels["CE"].items()
                                          if k != "steps"}}, eps=0.2, dataset="MNIST", seed=0)


def test_the_explorers_regions_figure_names_dataset_seed_steps_and_images(ce_model, task):
    """The explorer's figures become the lab screenshots: each title says which nets (dataset,
    training seed) and which attack (PGD steps, eps) it shows, on how many images."""
    from dfl_lib.experiments.geometry_runs import regions_drawer

    _, (x, y) = task
    draw = regions_drawer({"ce": (ce_model, None)}, x[:40], y[:40], dataset="MNIST", seed=2,
                          steps=2)
    fig, text = draw(0.1)
    assert fig._suptitle.get_text() == ("MNIST test features under L-inf PGD-2, eps = 0.1 "
                                        "(pixel units): seed 2, 40 test images")
    assert text.startswith("eps 0.100: CE keeps ")
