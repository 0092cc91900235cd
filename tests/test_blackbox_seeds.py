"""The black-box claim at every seed (studies/blackbox_seeds.py): the transfer surrogate is never
the model itself, both attacks stay in the ball and lower accuracy, the verdict pairs seeds and
reads DFL + PCL minus the plain ResNet with image noise, too few seeds or a profile below the
regime is not testable, a rerun attacks nothing twice, and the page is what the study report
reads."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import quadrants, train_tiny

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "studies"))
import blackbox_seeds as bb  # noqa: E402
import headline  # noqa: E402

from dfl_lib.paper.claims import claims  # noqa: E402
from dfl_lib.study.report import gather_claims  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_surrogate_is_the_next_seeds_model_never_the_models_own():
    assert [bb.surrogate_seed(s, seeds=[0, 1, 2]) for s in (0, 1, 2)] == [1, 2, 0]
    assert bb.surrogate_seed(7, seeds=[7, 3]) == 3
    for seed, seeds in ((0, [0]), (5, [0, 1])):
        with pytest.raises(bb.UsageError, match="another seed"):
            bb.surrogate_seed(seed, seeds=seeds)


def test_both_attacks_stay_in_the_ball_and_lower_accuracy(tiny_task):
    model, x, y = tiny_task
    x_train, y_train = quadrants(512, seed=3)
    surrogate = train_tiny(x_train, y_train, seed=5)  # trained apart from the target
    clean = bb._clean(model, x, y)["accuracy"]
    for attack, extra in (("transfer", {"steps": 10}), ("square", {"n_queries": 60})):
        r = bb.measure(model, x, y, attack=attack, seed=0, surrogate=surrogate, eps=0.4,
                       **extra)
        assert r["accuracy"] < clean and r["max_linf"] <= 0.4 + 1e-6 and r["n"] == len(y)
        assert headline.unhex(r["mask"], n=len(y)).mean() * 100 == pytest.approx(r["accuracy"])
    with pytest.raises(bb.UsageError, match="different model"):
        bb.measure(model, x, y, attack="transfer", seed=0, surrogate=model)


def _report(accuracy: dict, *, n: int = 400) -> dict:
    """{(row, setting): [accuracy % per seed]} as a report whose models ran both attacks with
    masks of that accuracy."""
    rng = np.random.default_rng(0)
    models = {}
    for (row, setting), values in accuracy.items():
        for s, a in enumerate(values):
            mask = torch.from_numpy(rng.permutation(n) < round(a * n / 100))
            done = {"mask": headline.hex_mask(mask), "accuracy": a, "n": n}
            models[f"{row} | {setting} | s{s}"] = {
                "row": row, "setting": setting, "seed": s, "clean": done,
                "attacks": {"transfer": done, "square": done}}
    return {"profile": "quick", "eps": 0.3, "n": n, "models": models}


def _judged(report, **kw):
    return {v["claim"]: v for v in bb.verdicts(report, **kw)}


def test_the_verdict_pairs_seeds_and_reads_dfl_pcl_minus_the_plain_resnet():
    report = _report({("resnet", headline.PGD): [90.0, 91.0, 89.0],
                      ("dfl_pcl", headline.PGD): [95.0, 96.0, 95.5],
                      ("resnet", headline.UNDEFENDED): [60.0, 62.0, 58.0],
                      ("dfl_pcl", headline.UNDEFENDED): [40.0, 41.0, 39.0]})
    judged = _judged(report)
    assert sorted(judged) == sorted(c.label for c in claims() if c.claim_id == bb.CLAIM)
    pgd = judged[f"{bb.CLAIM} (transfer, {headline.PGD})"]
    assert pgd["verdict"] == "reproduced" and pgd["estimate"] == pytest.approx(5.5, abs=0.01)
    assert pgd["n"] == 400 and pgd["seeds"] == 3 and pgd["interval"].startswith("t interval")
    none = judged[f"{bb.CLAIM} (square, {headline.UNDEFENDED})"]
    assert none["verdict"] == "not reproduced" and "any positive effect is excluded" in (
        none["numbers"])
    # two seeds paired: not testable, the numbers still given; a profile below the regime
    del report["models"][f"dfl_pcl | {headline.PGD} | s2"]
    two = _judged(report)[f"{bb.CLAIM} (transfer, {headline.PGD})"]
    assert two["verdict"] == "not testable here" and "2 of 3 seeds" in two["reason"]
    assert two["estimate"] is not None and "excluded" not in two["numbers"]
    below = _judged(report, regime="below regime: ...")[f"{bb.CLAIM} (square, "
                                                        f"{headline.UNDEFENDED})"]
    assert below["verdict"] == "not testable here" and below["reason"].startswith("below")


def test_an_attack_not_run_is_not_judged():
    report = _report({("resnet", headline.PGD): [90.0] * 3, ("dfl_pcl", headline.PGD): [90.0] * 3})
    for m in report["models"].values():
        del m["attacks"]["square"]
    judged = _judged(report)
    assert judged[f"{bb.CLAIM} (square, {headline.PGD})"]["reason"].startswith("not run yet")
    assert judged[f"{bb.CLAIM} (transfer, {headline.UNDEFENDED})"]["reason"].startswith(
        "not run yet")
    assert judged[f"{bb.CLAIM} (transfer, {headline.PGD})"]["verdict"] == "inconclusive"


def test_a_rerun_attacks_nothing_twice_and_the_study_report_reads_the_page(tiny_task, tmp_path,
                                                                          monkeypatch):
    model, x, y = tiny_task
    data = SimpleNamespace(x_test=(x * 255).to(torch.uint8), y_test=y)
    monkeypatch.setattr(bb, "cell_config", lambda profile, **kw: SimpleNamespace(**kw))
    monkeypatch.setattr(bb, "cell_seeds", lambda profile, **kw: [0, 1, 2])
    monkeypatch.setattr(bb.headline, "models", lambda profile, undefended: [
        (r, setting, s) for r in headline.ROWS for setting in (headline.PGD, headline.UNDEFENDED)
        for s in (0, 1, 2)])
    monkeypatch.setattr(bb.headline, "model_source", lambda cfg, **kw: ("run", tmp_path, data))
    monkeypatch.setattr(bb.headline, "load", lambda cfg, **kw: (
        model, data, f"run-{cfg.row}-{cfg.setting}-s{cfg.seed}"))
    attacked = []

    def measure(model, x, y, *, attack, seed, surrogate):
        attacked.append((attack, seed))
        return {"mask": headline.hex_mask(torch.ones(len(y), dtype=torch.bool)),
                "accuracy": 100.0, "n": len(y), "max_linf": 0.3, "seconds": 0.0}
    monkeypatch.setattr(bb, "measure", measure)
    out = tmp_path / "reports" / "quick" / "blackbox-seeds" / "blackbox.json"
    bb.run("quick", runs_root=tmp_path, out=out, attacks=["transfer"], n=20,
           progress=lambda s: 0)
    bb.run("quick", runs_root=tmp_path, out=out, attacks=["square"], n=20,
           settings=(headline.UNDEFENDED,), progress=lambda s: 0)
    assert sorted(a for a in attacked if a[0] == "square") == [("square", s) for s in (0, 1, 2)
                                                                for _ in range(2)]
    report = bb.run("quick", runs_root=tmp_path, out=out, attacks=["transfer", "square"],
                    n=20, progress=lambda s: 0)
    assert sorted(attacked) == sorted([("transfer", s) for s in (0, 1, 2)] * 4
                                      + [("square", s) for s in (0, 1, 2)] * 4)
    assert report["models"][f"resnet | {headline.PGD} | s2"]["surrogate"] == (
        f"run-resnet-{headline.UNDEFENDED}-s0")
    with pytest.raises(bb.UsageError, match="other settings"):
        bb.run("quick", runs_root=tmp_path, out=out, attacks=["square"], n=30)
    with pytest.raises(bb.UsageError, match="--attacks must be among"):
        bb.run("quick", runs_root=tmp_path, out=out, attacks=["boundary"], n=20)
    judged = bb.write_page(report, folder=out.parent)
    # the same model in both rows, every image kept: [0, 0] excludes any advantage
    assert all(v["verdict"] == "not reproduced" and v["high"] == 0 for v in judged)
    saved = json.loads((out.parent / "metrics.json").read_text())
    assert [v["claim"] for v in saved["verdicts"]] == [v["claim"] for v in judged]
    row = {r["claim"]: r for r in gather_claims(tmp_path / "reports")}[judged[0]["claim"]]
    assert row["chosen"]["verdict"] == "not reproduced" and row["chosen"]["part"] == "quick"
    page = (out.parent / "README.md").read_text()
    assert page.count("\n| resnet |") + page.count("\n| dfl_pcl |") == 12
    assert bb.main(["--runs-dir", str(tmp_path), "--rows", "resnet", "--out", str(out)]) == 2
    (out.parent / "README.md").write_text("# another page\n")
    with pytest.raises(bb.UsageError, match="not this study's page"):
        bb.write_page(report, folder=out.parent)


def _independent(accuracy: dict, *, n: int = 200, queries: int = 5000) -> dict:
    """An independent check's JSON: {row: [Square accuracy % per seed]} as cells with masks."""
    rng = np.random.default_rng(1)
    cells = {}
    for row, values in accuracy.items():
        for s, a in enumerate(values):
            mask = torch.from_numpy(rng.permutation(n) < round(a * n / 100))
            cells[f"{row} s{s}"] = {
                "row": row, "model_seed": s, "run": f"run-{row}-{s}", "eps": 0.3,
                "masks": {"Square-5000": headline.hex_mask(mask)},
                "results": {"attacks": {"Square-5000": {"accuracy": a / 100, "n": n,
                                                        "max_linf": 0.3, "seconds": 1.0}}}}
    return {"profile": "quick", "setting": headline.PGD, "n": n, "index_seed": 12345,
            "budgets": {"n_queries": queries}, "cells": cells,
            "provenance": {"git_commit": "abc"}}


def test_square_on_the_pgd_trained_models_can_come_from_the_independent_check():
    """The check's Square masks become each PGD-trained model's "square", judged paired by
    seed on the check's images; a model's own Square is kept; another budget is refused."""
    report = _report({("resnet", headline.PGD): [90.0] * 3, ("dfl_pcl", headline.PGD): [90.0] * 3})
    for m in report["models"].values():
        del m["attacks"]["square"]
    independent = _independent({"resnet": [85.0, 86.0, 84.0], "dfl_pcl": [88.0, 89.0, 88.5]})
    bb.import_square(report, independent=independent, source="reports/x/independent-check.json")
    square = _judged(report)[f"{bb.CLAIM} (square, {headline.PGD})"]
    assert square["seeds"] == 3 and square["n"] == 200
    assert square["estimate"] == pytest.approx(3.5, abs=0.01) and square["reason"] == ""
    assert square["low"] < 3.5 < square["high"]  # judged, with the image noise of 200 images
    page = bb.markdown(report, judged=list(_judged(report).values()))
    assert "85.0 *" in page and "from `reports/x/independent-check.json`" in page
    own = report["models"][f"resnet | {headline.PGD} | s0"]["attacks"]
    own["square"] = {**own["square"], "accuracy": 1.0}
    del own["square"]["from"]
    bb.import_square(report, independent=independent, source="reports/x/independent-check.json")
    assert own["square"]["accuracy"] == 1.0  # the model's own Square is not overwritten
    with pytest.raises(bb.UsageError, match="Square's queries 1000"):
        bb.import_square(report, independent=_independent({"resnet": [1.0]}, queries=1000),
                         source="x.json")
