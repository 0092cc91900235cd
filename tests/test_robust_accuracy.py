"""Tests of dfl_lib.evaluation.robust: Wilson intervals, robust accuracy on a small trained model, the
worst-case row, AutoAttack against PGD, the adaptive PCL attack and the transfer attack.

The model is a tiny CNN trained for about a second on a synthetic 4-class task (a bright 3x3
square, jittered in position and brightness, in one of four quadrants of a noisy 12x12 image), so
robustness varies from example to example and eps = 0.1 leaves PGD accuracy in between.
"""
import copy
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import quadrants, train_tiny
from dfl_lib.evaluation.robust import (ATTACK_NAMES, ThreatModel, as_frame, eval_subset,
                                       evaluate, robust_accuracy, wilson_interval,
                                       worst_case_name)

EPS = 0.1


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def task():
    x_train, y_train = quadrants(1024, seed=1)
    x, y = quadrants(96, seed=2)
    model = train_tiny(x_train, y_train, seed=0)
    with torch.no_grad():
        clean = model(x).argmax(1) == y
    assert clean.float().mean() > 0.9, "the tiny model did not learn the synthetic task"
    return SimpleNamespace(model=model, x=x, y=y, x_train=x_train, y_train=y_train, clean=clean)


# --------------------------------------------------------------------------- Wilson interval

def test_wilson_interval_matches_the_closed_form():
    # the closed form (2np + z^2 -+ z sqrt(z^2 + 4np(1-p))) / (2(n + z^2)), written out by hand
    k, n, z = 7, 20, 1.96
    p = k / n
    root = z * math.sqrt(z * z + 4 * n * p * (1 - p))
    expected = ((2 * n * p + z * z - root) / (2 * (n + z * z)),
                (2 * n * p + z * z + root) / (2 * (n + z * z)))
    assert wilson_interval(k, n) == pytest.approx(expected, rel=1e-12)
    assert wilson_interval(k, n) == pytest.approx((0.1812, 0.5671), abs=1e-4)  # published value


def test_wilson_interval_edges():
    z2 = 1.96 ** 2
    assert wilson_interval(0, 10) == pytest.approx((0.0, z2 / (10 + z2)))
    assert wilson_interval(10, 10) == pytest.approx((10 / (10 + z2), 1.0))
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(50, 100)
    lo2, hi2 = wilson_interval(500, 1000)
    assert lo < lo2 < 0.5 < hi2 < hi  # more examples, a narrower interval
    for k, n in ((-1, 10), (11, 10)):
        with pytest.raises(ValueError):
            wilson_interval(k, n)


# --------------------------------------------------------------------------- subsets

def test_eval_subset_is_balanced_seeded_and_float():
    gen = torch.Generator().manual_seed(0)
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)[torch.randperm(100, generator=gen)]
    data = SimpleNamespace(x_test=torch.randint(0, 256, (100, 1, 4, 4), dtype=torch.uint8,
                                                generator=gen), y_test=y)
    x, ys = eval_subset(data, n=30, seed=0)
    assert torch.bincount(ys).tolist() == [10, 10, 10]
    assert x.dtype == torch.float32 and x.shape == (30, 1, 4, 4)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    x_again, y_again = eval_subset(data, n=30, seed=0)
    assert torch.equal(x, x_again) and torch.equal(ys, y_again)
    x_other, _ = eval_subset(data, n=30, seed=1)
    assert not torch.equal(x, x_other)
    # every picked image is a test image, scaled to [0, 1]
    flat = data.x_test.flatten(1).float() / 255
    assert all(bool((flat == row).all(1).any()) for row in x.flatten(1))
    with pytest.raises(ValueError):
        eval_subset(data, n=101, seed=0)


def test_eval_subset_of_real_mnist(real_data_root):
    from dfl_lib.data.datasets import load_dataset

    data = load_dataset("mnist", root=real_data_root, n_train=100, n_test=300, seed=0)
    x, y = eval_subset(data, n=50, seed=0)
    assert x.shape == (50, 1, 28, 28) and torch.bincount(y, minlength=10).tolist() == [5] * 10
    assert torch.equal(eval_subset(data, n=50, seed=0)[0], x)


# --------------------------------------------------------------------------- robust_accuracy

def test_robust_accuracy_mask_bounds_and_untouched_model(task):
    model, x, y = task.model, task.x, task.y
    state = copy.deepcopy(model.state_dict())
    rng = torch.get_rng_state()
    r = robust_accuracy(model, x, y, attack="pgd", eps=EPS, batch_size=40)  # 3 batches
    mask = r["correct"]
    assert mask.dtype == torch.bool and mask.shape == (len(y),)
    assert r["n"] == len(y) and r["n_correct"] == int(mask.sum())
    assert r["accuracy"] == pytest.approx(float(mask.float().mean()))
    assert r["ci_low"] <= r["accuracy"] <= r["ci_high"]
    assert 0.0 < r["max_linf"] <= EPS + 1e-6
    assert r["nan_count"] == 0 and r["seconds"] > 0
    assert r["settings"]["eps"] == EPS and r["settings"]["steps"] == 10
    assert r["settings"]["seed"] == 0
    assert not bool((mask & ~task.clean).any())  # robust implies correct when clean
    assert r["accuracy"] < float(task.clean.float().mean())  # the attack did something
    # torchattacks' Square reseeds the global RNG and calls model.eval(): neither may leak
    robust_accuracy(model, x[:16], y[:16], attack="square", eps=EPS, n_queries=10)
    assert torch.equal(torch.get_rng_state(), rng)
    assert not any(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)


def test_robust_accuracy_is_reproducible(task):
    a = robust_accuracy(task.model, task.x, task.y, attack="pgd", eps=EPS, seed=3)
    b = robust_accuracy(task.model, task.x, task.y, attack="pgd", eps=EPS, seed=3)
    assert torch.equal(a["correct"], b["correct"])


def test_robust_accuracy_refuses_train_mode(task):
    task.model.train()
    try:
        with pytest.raises(ValueError, match="eval"):
            robust_accuracy(task.model, task.x, task.y, attack="clean")
    finally:
        task.model.eval()


def test_unknown_attack_lists_the_names(task):
    with pytest.raises(ValueError, match="pgd_adaptive"):
        robust_accuracy(task.model, task.x, task.y, attack="pgd_typo", eps=EPS)
    with pytest.raises(ValueError, match="autoattack"):
        evaluate(task.model, task.x, task.y, attacks={"pdg": {"eps": EPS}})
    assert {"clean", "pgd", "pgd_adaptive", "transfer", "autoattack", "apgd_ce", "apgd_t",
            "fab", "square", "fgsm", "bim", "mim", "cw", "cw_pgd"} <= set(ATTACK_NAMES)


# --------------------------------------------------------------------------- evaluate

def test_worst_case_row_is_the_and_of_all_masks(task, tmp_path):
    attacks = {"clean": {}, "fgsm": {"eps": EPS}, "pgd-5": {"attack": "pgd", "eps": EPS,
                                                           "steps": 5},
               "mim": {"eps": EPS}}
    table = evaluate(task.model, task.x, task.y, attacks=attacks, masks_dir=tmp_path)
    name = worst_case_name(ThreatModel("Linf", EPS))
    assert [r["name"] for r in table] == [*attacks, name]
    attacked = ["fgsm", "pgd-5", "mim"]
    worst = torch.stack([table.masks[k] for k in attacked]).all(0)
    assert torch.equal(table.masks[name], worst)
    assert table[-1]["accuracy"] == pytest.approx(float(worst.float().mean()))
    assert all(table[-1]["accuracy"] <= r["accuracy"] for r in table)
    assert table[-1]["settings"] == {"threat_model": "Linf", "eps": EPS, "of": attacked}
    assert table[2]["attack"] == "pgd" and table[2]["settings"]["steps"] == 5
    rows = json.loads(json.dumps(table))  # plain, JSON-safe rows
    assert rows[1]["settings"]["eps"] == EPS
    saved = np.load(tmp_path / "pgd-5.npy")
    assert saved.dtype == bool and np.array_equal(saved, table.masks["pgd-5"].numpy())
    assert (tmp_path / "worst_case_Linf_eps_0.1.npy").exists()
    frame = as_frame(table)
    assert len(frame) == len(attacks) + 1 and "accuracy" in frame.columns


def test_worst_case_never_mixes_threat_models(task):
    # an L2 C&W at a large budget fools what the L-inf attacks at a small eps cannot: it must
    # get its own worst case, and an unbounded (no budget) C&W row joins none
    attacks = {"fgsm": {"eps": EPS / 4},
               "cw-l2": {"attack": "cw", "steps": 30, "binary_search_steps": 3, "l2_budget": 5.0},
               "cw-unbounded": {"attack": "cw", "steps": 3}}
    table = evaluate(task.model, task.x, task.y, attacks=attacks)
    names = [r["name"] for r in table]
    linf, l2 = worst_case_name(ThreatModel("Linf", EPS / 4)), worst_case_name(ThreatModel("L2", 5.0))
    assert names == [*attacks, linf, l2]
    assert torch.equal(table.masks[linf], table.masks["fgsm"])
    assert torch.equal(table.masks[l2], table.masks["cw-l2"])
    rows = {r["name"]: r for r in table}
    assert rows["cw-l2"]["norm"] == "L2" and rows["fgsm"]["norm"] == "Linf"
    assert rows["cw-l2"]["threat_model"] == {"norm": "L2", "eps": 5.0}
    assert rows["cw-unbounded"]["threat_model"] is None  # a minimum-norm attack without budget
    assert rows["cw-l2"]["accuracy"] < rows["fgsm"]["accuracy"]  # mixing would hide this gap


def test_l2_budget_counts_farther_perturbations_as_failures(task):
    free = robust_accuracy(task.model, task.x, task.y, attack="cw", steps=50,
                           binary_search_steps=3)
    assert free["median_l2"] is not None and free["median_l2"] > 0
    tight = robust_accuracy(task.model, task.x, task.y, attack="cw", steps=50,
                            binary_search_steps=3, l2_budget=0.5 * free["median_l2"])
    loose = robust_accuracy(task.model, task.x, task.y, attack="cw", steps=50,
                            binary_search_steps=3, l2_budget=1e6)
    assert loose["accuracy"] == free["accuracy"] < tight["accuracy"]
    assert tight["max_l2"] <= 0.5 * free["median_l2"] + 1e-5
    assert tight["settings"]["l2_budget"] == pytest.approx(0.5 * free["median_l2"])
    with pytest.raises(ValueError, match="l2_budget is for L2"):
        robust_accuracy(task.model, task.x, task.y, attack="pgd", eps=EPS, l2_budget=1.0)


class _Built(Exception):
    """Raised by the spy once the AutoAttack object has been built and inspected."""


@pytest.mark.parametrize("budgets,want", [
    ({}, (100, 100, 100, 5000)),                      # the published "standard" budgets
    ({"steps": 7, "n_queries": 30}, (7, 7, 7, 30)),   # overrides reach every component
])
def test_autoattack_builds_the_standard_components(task, monkeypatch, budgets, want):
    import torchattacks

    built = []

    def spy(self, images, labels):
        built.extend(self._autoattack.attacks)
        raise _Built

    monkeypatch.setattr(torchattacks.AutoAttack, "forward", spy)
    with pytest.raises(_Built):
        robust_accuracy(task.model, task.x[:4], task.y[:4], attack="autoattack", eps=EPS,
                        **budgets)
    apgd, apgd_t, fab, square = built
    assert [type(a).__name__ for a in built] == ["APGD", "APGDT", "FAB", "Square"]
    assert (apgd.steps, apgd_t.steps, fab.steps, square.n_queries) == want
    assert apgd.loss == "ce" and fab.multi_targeted
    assert apgd_t.n_target_classes == fab.n_target_classes == 3  # every other class of 4
    assert all(a.eps == EPS and a.norm == "Linf" and a.n_restarts == 1 for a in built)


def test_autoattack_is_at_least_as_strong_as_pgd(task):
    model, x, y = task.model, task.x, task.y
    pgd = robust_accuracy(model, x, y, attack="pgd", eps=EPS)
    aa = robust_accuracy(model, x, y, attack="autoattack", eps=EPS, steps=20, n_queries=100)
    assert 0.1 < pgd["accuracy"] < 0.9, "eps should leave PGD accuracy in between"
    # examples PGD fools that AutoAttack does not: a stochastic handful at most
    missed = int((~pgd["correct"] & aa["correct"]).sum())
    assert missed <= max(2, 0.03 * len(y))
    assert aa["accuracy"] <= pgd["accuracy"]
    assert aa["max_linf"] <= EPS + 1e-6


def test_adaptive_pcl_attack_reduces_accuracy(task):
    model = task.model
    with torch.no_grad():
        _, feats = model(task.x_train, return_features=True)
    f = feats["penultimate"]  # (N, 32)
    from dfl_lib.losses import LegacyPolarisedContrastiveLoss

    loss = LegacyPolarisedContrastiveLoss(4, f.shape[1])  # raw distances to fitted centroids
    with torch.no_grad():
        loss.centroids.copy_(torch.stack([f[task.y_train == k].mean(0) for k in range(4)]))
    r = robust_accuracy(model, task.x, task.y, attack="pgd_adaptive", eps=EPS, defence_loss=loss)
    clean = float(task.clean.float().mean())
    assert r["accuracy"] < clean - 0.2
    assert r["max_linf"] <= EPS + 1e-6
    assert r["settings"]["loss_fn"] == "adaptive_objective"
    with pytest.raises(ValueError, match="defence_loss"):
        robust_accuracy(model, task.x, task.y, attack="pgd_adaptive", eps=EPS)


def test_adaptive_pcl_attack_takes_the_loss_module_on_a_dfl_model(task):
    from dfl_lib.losses import PolarisedContrastiveLoss
    from dfl_lib.models.resnet import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", num_classes=4, in_channels=1, width=4, dfl=True).eval()
    loss = PolarisedContrastiveLoss(4, model.feature_dim)
    r = robust_accuracy(model, task.x[:8], task.y[:8], attack="pgd_adaptive", eps=EPS, steps=2,
                        defence_loss=loss)
    assert r["n"] == 8 and 0.0 < r["max_linf"] <= EPS + 1e-6
    assert r["settings"]["defence_loss"].startswith("PolarisedContrastiveLoss")


def test_transfer_attack_from_an_independent_surrogate(task):
    surrogate = train_tiny(task.x_train, task.y_train, seed=1)
    r = robust_accuracy(task.model, task.x, task.y, attack="transfer", eps=2 * EPS,
                        surrogate=surrogate)
    assert r["accuracy"] < float(task.clean.float().mean())
    assert r["max_linf"] <= 2 * EPS + 1e-6
    assert r["settings"]["craft"] == "pgd" and r["settings"]["surrogate"].startswith("TinyCNN")
    with pytest.raises(ValueError, match="surrogate"):
        robust_accuracy(task.model, task.x, task.y, attack="transfer", eps=EPS)
    with pytest.raises(ValueError, match="different model"):
        robust_accuracy(task.model, task.x, task.y, attack="transfer", eps=EPS,
                        surrogate=task.model)


# --------------------------------------------------------------------------- the threat model

def test_the_threat_model_sets_every_l_inf_rows_budget_once(task):
    """The suite's threat model reaches each L-inf row that names no budget (PGD, FGSM, the
    transfer row's crafting norm); an L2 row and the clean row are left alone, and a row that
    names its own eps keeps it (issue 36: eps carried as a threat model, never re-injected)."""
    x, y = task.x[:32], task.y[:32]
    table = evaluate(task.model, x, y, threat=ThreatModel("Linf", EPS), attacks={
        "clean": {}, "fgsm": {}, "pgd": {"steps": 3}, "own": {"attack": "pgd", "eps": 0.05,
                                                             "steps": 3},
        "l2": {"attack": "cw", "c": 0.1, "steps": 3, "binary_search_steps": 0}})
    rows = {r["name"]: r for r in table}
    assert rows["fgsm"]["threat_model"] == rows["pgd"]["threat_model"] == {"norm": "Linf",
                                                                          "eps": EPS}
    assert rows["own"]["settings"]["eps"] == 0.05 and rows["clean"]["threat_model"] is None
    assert "eps" not in rows["l2"]["settings"]
    worst = rows[worst_case_name(ThreatModel("Linf", EPS))]
    assert worst["settings"]["of"] == ["fgsm", "pgd"]
    with pytest.raises(ValueError, match="attack .pgd. needs eps="):  # no threat, no budget
        evaluate(task.model, x, y, attacks={"pgd": {"steps": 3}})
