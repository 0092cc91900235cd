"""studies/independent_check.py: its unseen test images are disjoint from every evaluation subset
the quick profile draws, its per-example worst case is what it claims, and its cells (row x model
seed) come from runs or committed weights, keep their masks and merge into one report."""
import importlib.util
from pathlib import Path
from types import SimpleNamespace

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
headline = ic.headline  # studies/headline.py, as the check imports it

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
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "never train" in err
    assert not any(runs.iterdir()) and not (tmp_path / "out.json").exists()


class _Cfg(SimpleNamespace):
    def to_dict(self):
        return dict(vars(self))


@pytest.fixture
def fake_cells(tiny, tmp_path, monkeypatch):
    """Every headline model comes from committed weights under tmp_path/report (no run is
    finished): the plain ResNet is `tiny`, DFL + PCL is `tiny` with its head's bias moved, so the
    two rows differ; the test set is 64 quadrant images, 16 of them unseen."""
    import copy

    import dfl_lib.experiments.data as data_mod
    import dfl_lib.experiments.trained as trained
    import dfl_lib.runs.folder as folder
    x, y = quadrants(64, seed=3)
    other = copy.deepcopy(tiny)
    with torch.no_grad():
        other.head.bias.add_(torch.linspace(-2, 2, other.head.bias.numel()))
    monkeypatch.setattr(ic, "cell_config", lambda profile, **kw: _Cfg(eps=0.08, **kw))
    monkeypatch.setattr(ic, "study_n_evals", lambda profile, dataset="mnist": (8,))
    monkeypatch.setattr(ic, "_study_numbers", lambda rdirs, cfg, profile: {})
    data = SimpleNamespace(x_test=(x * 255).to(torch.uint8), y_test=y)
    monkeypatch.setattr(data_mod, "load_data", lambda cfg, root=None: data)
    monkeypatch.setattr(folder, "run_path",
                        lambda cfg, data, runs_root: tmp_path / f"run-{cfg.row}-s{cfg.seed}")
    weights = tmp_path / "report" / "record" / "weights"
    weights.mkdir(parents=True)
    for row in ("resnet", "dfl_pcl"):
        for s in (0, 1):
            (weights / f"run-{row}-s{s}.pt").write_bytes(b"")
    monkeypatch.setattr(trained, "load_model", lambda path: copy.deepcopy(
        other if "dfl_pcl" in path.name else tiny))
    return {"runs_root": tmp_path / "runs", "record": tmp_path / "report", "n": 16,
            "budgets": FAST, "device": "cpu"}


def test_cells_per_row_and_model_seed_keep_masks_and_a_paired_effect(fake_cells):
    report = ic.check_cells("quick", **fake_cells, model_seeds=(1, 0))
    assert list(report["cells"]) == ["resnet s0", "resnet s1", "dfl_pcl s0", "dfl_pcl s1"]
    worst = {}
    for key, cell in report["cells"].items():
        assert key == ic.cell_key(cell["row"], cell["model_seed"])
        assert cell["source"] == "weights" and cell["run"] == f"run-{cell['row']}-s" \
            f"{cell['model_seed']}"
        res = cell["results"]
        # the committed masks re-derive every row's count
        for name in ["clean", *res["attacks"], "worst_case"]:
            mask = headline.unhex(cell["masks"][name], n=cell["n_indices"])
            row = res["clean"] if name == "clean" else res["worst_case"] \
                if name == "worst_case" else res["attacks"][name]
            assert int(mask.sum()) == row["n_correct"] and len(mask) == row["n"] == 16
        worst[(cell["row"], cell["model_seed"])] = res["worst_case"]["accuracy"]
    effect = report["effect"]
    assert effect["seeds"] == [0, 1]
    expected = 100 * sum(worst[("dfl_pcl", s)] - worst[("resnet", s)] for s in (0, 1)) / 2
    assert effect["effect"] == pytest.approx(expected)
    assert effect["effect"] != 0  # the two rows' models differ, so the pairing is tested
    assert effect["low"] <= effect["effect"] <= effect["high"]
    assert set(report["provenance"]["config"]["cells"]) == set(report["cells"])


def test_a_model_with_neither_run_nor_weights_is_refused_before_any_attack(fake_cells, capsys):
    with pytest.raises(UsageError, match=r"no finished run at .*run-resnet-s2 and no weights"):
        ic.check_cells("quick", **fake_cells, model_seeds=(0, 2))
    with pytest.raises(UsageError, match="model seeds must be non-negative ints"):
        ic.check_cells("quick", **fake_cells, model_seeds=(-1,))
    rc = ic.main(["--runs-dir", "runs", "--out", "x.json", "--model-seeds", "0,one"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--model-seeds" in err


def test_reports_of_one_cell_each_merge_into_the_report_of_all(fake_cells):
    whole = ic.check_cells("quick", **fake_cells, model_seeds=(0, 1))
    parts = [ic.check_cells("quick", **fake_cells, rows=(row,), model_seeds=(s,))
             for s in (1, 0) for row in ("dfl_pcl", "resnet")]
    assert all(p["effect"] is None for p in parts)  # one row each: nothing to pair
    for p, wall in zip(parts, (10.0, 12.0, 3.0, 4.0)):
        p["provenance"]["wall_seconds"] = wall
    merged = ic.merge_reports(parts)
    assert list(merged["cells"]) == list(whole["cells"])  # row, then seed order
    for key, cell in whole["cells"].items():  # the same models, images and masks
        assert {k: v for k, v in merged["cells"][key].items() if k != "results"} == \
            {k: v for k, v in cell.items() if k != "results"}
    assert merged["effect"] == whole["effect"]
    assert merged["provenance"]["wall_seconds"] == 12.0
    assert set(merged["provenance"]["config"]["cells"]) == set(whole["cells"])
    other = {**parts[0], "indices": [3]}
    with pytest.raises(UsageError, match="differ beyond their cells"):
        ic.merge_reports([parts[1], other])
    with pytest.raises(UsageError, match="'dfl_pcl s1' is in two"):
        ic.merge_reports([parts[0], parts[0]])
    with pytest.raises(UsageError, match="rows must be among"):
        ic.check_cells("quick", runs_root=fake_cells["runs_root"], rows=("wrn",))


def test_verify_pages_holds_the_committed_check_to_its_masks(fake_cells, tmp_path):
    import json

    from dfl_lib.runs import io as runio
    verify = importlib.util.module_from_spec(importlib.util.spec_from_file_location(
        "verify_pages", STUDY.parent / "verify_pages.py"))
    verify.__spec__.loader.exec_module(verify)
    report = ic.check_cells("quick", **fake_cells, model_seeds=(0, 1))
    part = tmp_path / "reports" / "quick"
    part.mkdir(parents=True)
    runio.write_json(part / "independent-check.json", report)
    checked, problems = verify.verify_pages(tmp_path / "reports")
    assert checked == ["reports/quick/independent-check.json"] and problems == []
    # a row's count or the effect written by other code than the masks say is named
    tampered = json.loads(json.dumps(report, default=runio.json_default))
    tampered["cells"]["dfl_pcl s1"]["results"]["worst_case"]["n_correct"] += 1
    tampered["effect"]["effect"] += 0.5
    runio.write_json(part / "independent-check.json", tampered)
    _, problems = verify.verify_pages(tmp_path / "reports")
    assert len(problems) == 2
    assert any("dfl_pcl s1.worst_case" in line for line in problems)
    assert any("effect.effect" in line for line in problems)
    # a file written before masks were kept has nothing to re-derive from: skipped, not failed
    for cell in tampered["cells"].values():
        cell.pop("masks")
    runio.write_json(part / "independent-check.json", tampered)
    assert verify.verify_pages(tmp_path / "reports") == ([], [])
