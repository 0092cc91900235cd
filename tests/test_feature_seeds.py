"""The feature-space claim at every seed (studies/feature_seeds.py): a larger ball moves the
features further, the verdict pairs the seeds both rows have and reads the claim's direction,
too few seeds or a profile below the regime is not testable, and a rerun measures nothing twice."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "studies"))
import feature_seeds as fs  # noqa: E402
import headline  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tiny_task):
    return tiny_task


def test_a_larger_ball_moves_the_features_further(tiny):
    model, x, y = tiny
    small = fs.measure(model, x, y, eps=0.02, steps=5)
    large = fs.measure(model, x, y, eps=0.5, steps=5)
    assert 0 < small["displacement"] < large["displacement"]
    assert large["centroid_hit_adversarial"] <= small["centroid_hit_adversarial"]
    assert large["accuracy_adversarial"] < small["accuracy_adversarial"] <= small["accuracy_clean"]
    assert small["max_linf"] <= 0.02 + 1e-6 and small["n"] == len(y)


def _report(displacements: dict, silhouettes: dict | None = None) -> dict:
    """{(row, setting): [displacement per seed]} (and silhouettes alike, else 0.5) as a
    report's models."""
    models = {}
    for (row, setting), values in displacements.items():
        for s, d in enumerate(values):
            models[f"{row} | {setting} | s{s}"] = {
                "row": row, "setting": setting, "seed": s, "displacement": d, "n": 500,
                "centroid_hit_adversarial": 90.0,
                "silhouette_clean": (silhouettes or {}).get((row, setting), [0.5] * 3)[s]}
    return {"eps": 0.3, "models": models}


def _by_setting(judged, claim=fs.CLAIM):
    return {v["claim"].split(", ")[-1].rstrip(")"): v for v in judged if v["claim_id"] == claim}


def test_the_verdict_reads_the_claims_direction_per_setting_and_needs_three_seeds():
    report = _report({("resnet", headline.PGD): [20.0, 22.0, 19.0],
                      ("dfl_pcl", headline.PGD): [10.0, 11.0, 9.5],     # moves less: the claim
                      ("resnet", headline.UNDEFENDED): [150.0, 160.0, 155.0],
                      ("dfl_pcl", headline.UNDEFENDED): [170.0, 175.0, 168.0]})  # moves more
    judged = _by_setting(fs.verdicts(report))
    assert set(judged) == {headline.PGD, headline.UNDEFENDED}
    pgd = judged[headline.PGD]
    assert pgd["verdict"] == "reproduced" and pgd["estimate"] == pytest.approx((61.0 - 30.5) / 3)
    assert pgd["low"] > 0 and pgd["seeds"] == 3 and pgd["quantity"] == "displacement"
    none = judged[headline.UNDEFENDED]
    assert none["verdict"] == "not reproduced" and none["high"] < 0
    assert "any positive effect is excluded" in none["numbers"]
    # two seeds paired (a third only for one row): not testable, the numbers still given
    del report["models"]["dfl_pcl | adversarial training | s2"]
    two = _by_setting(fs.verdicts(report))[headline.PGD]
    assert two["verdict"] == "not testable here" and two["seeds"] == 2
    assert "2 of 3 seeds" in two["reason"] and two["estimate"] is not None
    below = _by_setting(fs.verdicts(report, regime="below regime: ..."))[headline.UNDEFENDED]
    assert below["verdict"] == "not testable here" and below["reason"].startswith("below regime")


def test_a_rerun_measures_nothing_twice_and_the_page_names_every_model(tiny, tmp_path,
                                                                      monkeypatch):
    model, x, y = tiny
    data = SimpleNamespace(x_test=(x * 255).to(torch.uint8), y_test=y)
    monkeypatch.setattr(fs, "cell_config", lambda profile, **kw: SimpleNamespace(**kw))
    monkeypatch.setattr(fs.headline, "models", lambda profile, undefended: [
        (r, setting, s) for r in headline.ROWS for setting in (headline.PGD, headline.UNDEFENDED)
        for s in (0, 1, 2)])
    monkeypatch.setattr(fs.headline, "model_source", lambda cfg, **kw: ("run", tmp_path, data))
    loads = []

    def load(cfg, *, source, runs_root, data_root):
        loads.append((cfg.row, cfg.setting, cfg.seed))
        return model, data, f"run-{cfg.row}-s{cfg.seed}"
    monkeypatch.setattr(fs.headline, "load", load)
    monkeypatch.setattr(fs, "measure", lambda model, x, y, seed: {
        "displacement": 10.0 + seed, "centroid_hit_clean": 99.0, "centroid_hit_adversarial": 90.0,
        "silhouette_clean": 0.5, "silhouette_adversarial": 0.3, "accuracy_clean": 99.0,
        "accuracy_adversarial": 90.0, "n": len(y), "max_linf": 0.3, "seconds": 1.0})
    out = tmp_path / "fs" / "features.json"
    report = fs.run("quick", runs_root=tmp_path, out=out, n=20, progress=lambda s: 0)
    assert len(loads) == 12 and len(report["models"]) == 12
    report = fs.run("quick", runs_root=tmp_path, out=out, n=20, progress=lambda s: 0)
    assert len(loads) == 12  # nothing measured again
    with pytest.raises(fs.UsageError, match="other settings"):
        fs.run("quick", runs_root=tmp_path, out=out, n=30, progress=lambda s: 0)
    judged = fs.write_page(report, folder=out.parent)
    page = (out.parent / "README.md").read_text()
    assert page.count("\n| resnet |") + page.count("\n| dfl_pcl |") == 12
    metrics = json.loads((out.parent / "metrics.json").read_text())
    assert [v["claim"] for v in metrics["verdicts"]] == [v["claim"] for v in judged]
    assert all(v["estimate"] == pytest.approx(0.0) for v in judged)  # the same model twice
    assert all(v["interval"].startswith("t interval") and "seed noise only" in v["interval"]
               for v in judged)  # the float samples carry no image noise
    assert fs.main(["--runs-dir", str(tmp_path), "--rows", "resnet", "--out", str(out)]) == 2
    (out.parent / "README.md").write_text("# another page\n")
    with pytest.raises(fs.UsageError, match="not this study's page"):
        fs.write_page(report, folder=out.parent)


def test_the_silhouette_reading_is_dfl_pcl_minus_the_plain_resnet_in_hundredths():
    same = [20.0, 20.0, 20.0]
    report = _report({(r, st): same for r in headline.ROWS
                      for st in (headline.PGD, headline.UNDEFENDED)},
                     {("resnet", headline.PGD): [0.60, 0.62, 0.61],
                      ("dfl_pcl", headline.PGD): [0.75, 0.74, 0.76],   # apart: the claim
                      ("resnet", headline.UNDEFENDED): [0.65, 0.64, 0.61],
                      ("dfl_pcl", headline.UNDEFENDED): [0.55, 0.60, 0.75]})  # seeds disagree
    judged = fs.verdicts(report)
    assert {v["claim_id"] for v in judged} == {fs.CLAIM, "pcl_separates_classes"}
    sil = _by_setting(judged, claim="pcl_separates_classes")
    pgd = sil[headline.PGD]
    assert pgd["estimate"] == pytest.approx(100 * (2.25 - 1.83) / 3)
    assert pgd["verdict"] == "reproduced" and pgd["quantity"] == "silhouette"
    assert pgd["numbers"].startswith("the silhouette") and "DFL + PCL minus the plain" in (
        pgd["numbers"])
    assert sil[headline.UNDEFENDED]["verdict"] == "inconclusive"
    # the displacement readings see no difference between equal rows
    assert all(v["estimate"] == pytest.approx(0.0) for v in _by_setting(judged).values())
