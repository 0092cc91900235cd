"""The L2 check of the headline models (studies/l2_check.py): the cascade's worst case is at most
each attack, the radius holds, the masks re-derive the summary, and the committed report
(reports/quick/l2-check.json) agrees with its own masks."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "studies"))
import l2_check  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
REPORT = ROOT / "reports" / "quick" / "l2-check.json"


@pytest.fixture(scope="module")
def tiny(tiny_task):
    return tiny_task


def test_the_worst_case_is_at_most_each_attack_and_the_radius_holds(tiny):
    model, x, y = tiny
    small = l2_check.check_model(model, x, y, eps=0.3, steps=5)
    large = l2_check.check_model(model, x, y, eps=3.0, steps=5)
    for r in (small, large):
        assert r["worst_case"]["n_correct"] <= r["apgd_ce"]["n_correct"] \
            <= r["clean"]["n_correct"]
        mask = l2_check.unhex(r["worst_mask"], n=len(y))
        assert mask.sum() == r["worst_case"]["n_correct"] and len(mask) == len(y)
        assert r["worst_case"]["threat_model"]["norm"] == "L2"
    assert small["apgd_ce"]["max_l2"] <= 0.3 + 1e-4 and large["apgd_ce"]["max_l2"] <= 3.0 + 1e-4
    # a ten times larger L2 ball takes more examples (the 12x12 quadrant task falls at 3.0)
    assert large["worst_case"]["n_correct"] < small["worst_case"]["n_correct"]
    # APGD-T ran on exactly the images APGD-CE left correct
    if large["apgd_t_on_survivors"] is not None:
        assert large["apgd_t_on_survivors"]["n"] == large["apgd_ce"]["n_correct"]


def test_the_summary_pairs_the_rows_by_seed_from_the_masks():
    def model(row, setting, seed, hits):
        mask = torch.tensor(hits, dtype=torch.bool)
        return {"row": row, "setting": setting, "seed": seed,
                "clean": {"accuracy": 100.0}, "apgd_ce": {"accuracy": 90.0},
                "worst_case": {"accuracy": 100.0 * mask.float().mean().item(), "n": len(hits)},
                "worst_mask": l2_check.headline.hex_mask(mask)}
    n = 200
    report = {"models": {}}
    for s in (0, 1, 2):
        rng = np.random.default_rng(s)
        base = rng.random(n) < 0.5
        better = base | (rng.random(n) < 0.3)  # the DFL + PCL row keeps more examples
        report["models"][f"r{s}"] = model("resnet", "adversarial training", s, base.tolist())
        report["models"][f"d{s}"] = model("dfl_pcl", "adversarial training", s, better.tolist())
    summary = l2_check.summarise(report)
    effect = summary["effect"]
    assert effect["seeds"] == [0, 1, 2] and effect["low"] < effect["effect"] < effect["high"]
    want = np.mean([report["models"][f"d{s}"]["worst_case"]["accuracy"]
                    - report["models"][f"r{s}"]["worst_case"]["accuracy"] for s in (0, 1, 2)])
    assert effect["effect"] == pytest.approx(want) and effect["low"] > 0
    del report["models"]["d2"]  # unpaired seeds: no effect
    assert l2_check.summarise(report)["effect"] is None


def test_the_models_are_every_pgd_seed_and_the_first_undefended_one():
    got = l2_check.models("quick")
    assert [m for m in got if m[1] == "adversarial training"] == [
        (row, "adversarial training", s) for row in l2_check.ROWS for s in (0, 1, 2)]
    assert [m for m in got if m[1] == "no defence"] == [
        (row, "no defence", 0) for row in l2_check.ROWS]
    with pytest.raises(Exception, match="rows must be among"):
        l2_check.models("quick", rows=("dfl",))


@pytest.mark.skipif(not REPORT.exists(), reason="no committed L2 check")
def test_the_committed_l2_check_re_derives_from_its_masks():
    report = json.loads(REPORT.read_text())
    assert report["eps_l2"] == 2.0 and report["n"] >= 500  # the study's subset size
    for key, m in report["models"].items():
        mask = l2_check.unhex(m["worst_mask"], n=m["worst_case"]["n"])
        assert 100.0 * mask.mean() == pytest.approx(m["worst_case"]["accuracy"]), key
        assert m["worst_case"]["accuracy"] <= m["apgd_ce"]["accuracy"] <= m["clean"]["accuracy"]
        assert m["apgd_ce"]["max_l2"] <= report["eps_l2"] + 1e-4, key
    again = l2_check.summarise(report)
    assert again["table"].keys() == report["summary"]["table"].keys()
    for key, row in again["table"].items():
        saved = report["summary"]["table"][key]
        assert row.pop("seeds") == saved["seeds"], key
        assert row == pytest.approx({k: v for k, v in saved.items() if k != "seeds"}), key
    for k in ("effect", "low", "high"):
        assert again["effect"][k] == pytest.approx(report["summary"]["effect"][k])
