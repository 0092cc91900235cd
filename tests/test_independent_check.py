"""studies/independent_check.py (issue 19): its unseen test images are disjoint from every
evaluation subset the quick profile draws, and its per-example worst case is what it claims."""
import importlib.util
from pathlib import Path

import pytest
import torch
from conftest import quadrants

from dfl_lib import build_model
from dfl_lib.errors import UsageError
from dfl_lib.evaluation.robust import eval_subset_indices
from dfl_lib.profiles import get_profile
from dfl_lib.study.plan import cell_config

STUDY = Path(__file__).resolve().parents[1] / "studies" / "independent_check.py"
_spec = importlib.util.spec_from_file_location("independent_check", STUDY)
ic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ic)

# small budgets: the test checks the bookkeeping, not the attacks' strength at their budgets
FAST = {"steps": 5, "pgd_steps": 3, "pgd_restarts": 2, "n_queries": 30}


def mnist_like_labels(n=10_000, seed=0):
    """Test labels (n,) of 10 classes with MNIST-like unequal counts."""
    gen = torch.Generator().manual_seed(seed)
    weights = torch.tensor([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009.0])
    return torch.multinomial(weights, n, replacement=True, generator=gen)


def test_unseen_indices_avoid_every_evaluation_subset():
    y = mnist_like_labels()
    # the quick profile's sizes, read here from the config and the profile, not from the study
    sizes = {cell_config("quick", dataset="mnist", row="resnet",
                         setting="adversarial training").n_eval,
             get_profile("quick").headline_n_eval}
    assert sizes == {500, 250}
    used = set()
    for seed in (0, 1, 2):
        for size in sizes:
            used |= set(eval_subset_indices(y, n=size, seed=seed).tolist())
    idx = ic.unseen_indices(y, n=200, profile="quick", seeds=(0, 1, 2))
    assert idx.dtype == torch.long and len(idx) == 200 == len(set(idx.tolist()))
    assert not set(idx.tolist()) & used
    assert torch.equal(idx, ic.unseen_indices(y, n=200, profile="quick", seeds=(0, 1, 2)))
    assert torch.bincount(y[idx], minlength=10).tolist() == [20] * 10  # class-balanced
    # asking for more than the unseen images left is an error, not a silent overlap
    with pytest.raises(UsageError):
        ic.unseen_indices(y, n=len(y) - len(used) + 1, profile="quick")


@pytest.fixture(scope="module")
def tiny():
    """A width-4 ResNet-18 after a few SGD steps on 4-class quadrant images (10 outputs), eval."""
    torch.manual_seed(0)
    model = build_model("resnet18", num_classes=10, in_channels=1, width=4, dfl=False)
    x, y = quadrants(96, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        for i in torch.arange(len(y)).split(32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[i]), y[i]).backward()
            opt.step()
    return model.eval()


def test_worst_case_is_below_every_attack_and_clean(tiny):
    x, y = quadrants(32, seed=1)
    rng = torch.get_rng_state()
    params = [p.detach().clone() for p in tiny.parameters()]
    # eps 0.08: the attacks fool some examples, not all, and not the same ones
    out = ic.independent_check(tiny, x, y, eps=0.08, seed=0, **FAST)
    assert len(out["attacks"]) == 3 and out["n"] == len(y)
    worst, clean = out["worst_case"], out["clean"]
    assert clean["accuracy"] > 0.25  # something left to attack: the bounds below say something
    for row in out["attacks"].values():
        assert row["n"] == len(y) and row["max_linf"] <= 0.08 + 1e-6 and row["nan_count"] == 0
        assert row["accuracy"] <= clean["accuracy"]
        assert worst["accuracy"] <= row["accuracy"]
        assert row["ci_low"] <= row["accuracy"] <= row["ci_high"]
    assert worst["accuracy"] <= clean["accuracy"] and worst["n"] == len(y)
    # the worst case is the per-example AND of clean and every attack, and the attacks do move
    # this barely trained model without fooling it everywhere (so the bounds above say something)
    masks = out["masks"]
    assert torch.equal(masks["worst_case"], torch.stack([masks["clean"]] + [
        masks[name] for name in out["attacks"]]).all(0))
    assert worst["n_correct"] == int(masks["worst_case"].sum())
    assert 0 < worst["accuracy"] < clean["accuracy"]
    # the model and the global RNG are left as they were
    assert not any(m.training for m in tiny.modules())
    assert all(torch.equal(p, q) for p, q in zip(params, tiny.parameters()))
    assert torch.equal(rng, torch.get_rng_state())
    assert "masks" not in ic.without_masks(out)


def test_pgd_restarts_take_the_per_example_worst_case(tiny):
    # restart r runs with torch seed seed * restarts + r, so seed 0 with 3 restarts runs the
    # single-restart attacks of seeds 0, 1 and 2; 2 steps at eps 0.08: their starts matter here
    x, y = quadrants(32, seed=1)
    budgets = {**FAST, "pgd_steps": 2}
    three = ic.independent_check(tiny, x, y, eps=0.08, seed=0, **{**budgets, "pgd_restarts": 3})
    singles = [ic.independent_check(tiny, x, y, eps=0.08, seed=s,
                                    **{**budgets, "pgd_restarts": 1})["masks"]["PGD-2 x1 restarts"]
               for s in (0, 1, 2)]
    # the restarts fool different examples, so the AND matters
    assert any(not torch.equal(m, singles[0]) for m in singles[1:])
    assert torch.equal(three["masks"]["PGD-2 x3 restarts"], torch.stack(singles).all(0))
    for name in three["attacks"]:  # robust to an attack => correct clean
        assert not (three["masks"][name] & ~three["masks"]["clean"]).any()


@pytest.mark.parametrize("switch", ["model", "one submodule"])
def test_train_mode_is_refused(tiny, switch):
    x, y = quadrants(4, seed=2)
    (tiny if switch == "model" else tiny.stem).train()
    try:
        with pytest.raises(UsageError, match="eval mode"):
            ic.independent_check(tiny, x, y, eps=0.3, **FAST)
        assert tiny.stem.training  # refused, not switched
    finally:
        tiny.eval()


def test_a_missing_run_is_refused_in_one_line_not_trained(real_data_root, tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    rc = ic.main(["--profile", "quick", "--runs-dir", str(runs), "--data-dir", str(real_data_root),
                  "--n", "20", "--out", str(tmp_path / "out.json"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "never trains" in err
    assert not any(runs.iterdir()) and not (tmp_path / "out.json").exists()


def test_reports_of_one_row_each_merge_into_the_report_of_both(tmp_path):
    def report(row, wall):
        return {"check": "c", "profile": "quick", "n": 200, "indices": [1, 2],
                "cells": {row: {"run": f"run-{row}"}},
                "provenance": {"config": {"profile": "quick", "cells": {row: {"seed": 0}}},
                               "wall_seconds": wall, "seed": 0}}

    merged = ic.merge_reports([report("dfl_pcl", 10.0), report("resnet", 12.0)])
    assert list(merged["cells"]) == ["resnet", "dfl_pcl"]  # the check's own order
    assert merged["provenance"]["wall_seconds"] == 12.0
    assert set(merged["provenance"]["config"]["cells"]) == {"resnet", "dfl_pcl"}
    other = {**report("dfl_pcl", 1.0), "indices": [3]}
    with pytest.raises(UsageError, match="differ beyond their cells"):
        ic.merge_reports([report("resnet", 1.0), other])
    with pytest.raises(UsageError, match="'resnet' is in two"):
        ic.merge_reports([report("resnet", 1.0), report("resnet", 2.0)])
    with pytest.raises(UsageError, match="rows must be among"):
        ic.check_cells("quick", runs_root=tmp_path, rows=("wrn",))
