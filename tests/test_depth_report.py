"""A committed depth report's runs re-judged on the paper's quantities without the runs: the
curves in its metrics.json rebuild the records notebook 01 reads (studies/depth_quantities.py)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dfl_lib.errors import DataFileError
from dfl_lib.paper.claims import claims
from dfl_lib.study.evidence import depth_verdicts
from dfl_lib.study.records import depth_records_from_report

ROOT = Path(__file__).resolve().parents[1]
DEPTH = ROOT / "reports" / "quick-full-depth" / "01-depth" / "metrics.json"


def _metrics(losses: dict) -> dict:
    final, curves = [], {}
    for label, loss in losses.items():
        depth, variant = label.split(" ", 1)
        for seed in (0, 1, 2):
            key = f"{depth} {variant}, PGD-10 training, s{seed}"
            final.append({"depth": depth, "variant": variant, "setting": "PGD-10 training",
                          "seed": seed, "warmup": True, "run": key})
            curves[key] = [{"epoch": 1, "train_loss": loss + 0.01 * seed, "train_error": 0.1,
                            "val_loss": 0.1, "val_acc": 0.98, "val_adv_loss": 0.5,
                            "val_adv_acc": 0.85}]
    return {"profile": "quick-full-depth", "final": final, "curves": curves}


def test_the_records_come_back_from_the_curves_with_the_profiles_image_counts():
    m = _metrics({"ResNet-18 without DFL": 0.30, "ResNet-34 without DFL": 0.40,
                  "ResNet-50 without DFL": 0.50})
    records = depth_records_from_report(m, profile="quick-full-depth")
    assert len(records) == 9 and {r["model"] for r in records} == {"resnet18", "resnet34",
                                                                   "resnet50"}
    assert {(r["n_train"], r["n_val"], r["monitor_size"]) for r in records} == {(5000, 500, 100)}
    assert records[0]["history"][-1]["val_adv_error"] == pytest.approx(0.15)  # added, as live
    got = {v["claim"]: v for v in depth_verdicts("quick-full-depth", records=records, regime="")}
    assert got["fig1_deeper_less_convergence (training loss)"]["estimate"] == pytest.approx(0.10)
    del m["curves"]["ResNet-34 without DFL, PGD-10 training, s1"]
    with pytest.raises(DataFileError, match="no run 'ResNet-34 without DFL, PGD-10 training, s1'"):
        depth_records_from_report(m, profile="quick-full-depth")


@pytest.mark.skipif(not DEPTH.exists(), reason="no committed quick-full-depth report")
def test_the_committed_depth_report_is_re_judged_on_every_depth_claim(tmp_path):
    metrics = json.loads(DEPTH.read_text())
    report = tmp_path / "quick-full-depth"
    (report / "01-depth").mkdir(parents=True)
    (report / "01-depth" / "metrics.json").write_text(DEPTH.read_text())
    result = subprocess.run([sys.executable, str(ROOT / "studies" / "depth_quantities.py"),
                             "--report", str(report)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads((report / "depth-quantities" / "metrics.json").read_text())
    depth = [c.label for c in claims() if c.kind == "depth"]
    assert [v["claim"] for v in out["verdicts"]] == depth
    # the committed depth runs have no AutoAttack evaluation: nothing decided, numbers given
    for v in out["verdicts"]:
        assert v["verdict"] == "not testable here", v["claim"]
        if v["quantity"] == "autoattack":  # the report's runs had no end evaluation
            assert "no end evaluation" in v["reason"] and v["estimate"] is None
        elif v["quantity"] == "train_grad_stem":  # nor gradient norms in their histories
            assert "hold no train_grad_stem" in v["reason"] and v["estimate"] is None
        else:
            assert "no AutoAttack evaluation" in v["reason"] and v["estimate"] is not None
    assert out["provenance"]["source_commit"] == metrics["provenance"]["git_commit"]
    assert "not testable here" in (report / "depth-quantities" / "README.md").read_text()
