"""The clean-accuracy claim judged from a part's committed record (studies/clean_accuracy.py):
its numbers are the record's clean accuracies, fewer than three seeds is not testable, a part
without a record is a one-line error, and the study report reads the page."""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "studies"))
import clean_accuracy as ca  # noqa: E402

from dfl_lib.study.report import gather_claims  # noqa: E402

QUICK = ROOT / "reports" / "quick"
needs_record = pytest.mark.skipif(not (QUICK / "record" / "index.json").is_file(),
                                  reason="the committed quick record is not in this checkout")


def _recorded_clean(setting: str) -> dict[str, float]:
    """Mean clean accuracy (%) per row from the record's metrics JSON (not the masks)."""
    index = json.loads((QUICK / "record" / "index.json").read_text())
    out = {}
    for cell in index["cells"]:
        if cell["setting"] == setting and cell["row"] in ("resnet", "dfl_pcl"):
            accs = [next(r["accuracy"] for r in json.loads((QUICK / "record" / p).read_text())
                         ["table"] if r["name"] == "clean") for p in cell["per_seed"]]
            out[cell["row"]] = 100.0 * float(np.mean(accs))
    return out


@needs_record
def test_the_verdicts_are_the_records_clean_accuracies():
    judged = {v["claim"]: v for v in ca.judge(QUICK)}
    assert set(judged) == {f"{ca.CLAIM} (dfl_pcl, no defence)",
                           f"{ca.CLAIM} (dfl_pcl, adversarial training)"}
    for setting in ("no defence", "adversarial training"):
        v = judged[f"{ca.CLAIM} (dfl_pcl, {setting})"]
        want = _recorded_clean(setting)
        assert v["rows"]["dfl_pcl"]["clean"] == pytest.approx(want["dfl_pcl"])
        assert v["rows"]["resnet"]["clean"] == pytest.approx(want["resnet"])
        assert v["estimate"] == pytest.approx(want["dfl_pcl"] - want["resnet"])
        assert v["low"] < v["estimate"] < v["high"] and v["seeds"] == 3 and v["n"] == 500
        assert v["verdict"] in ("inconclusive", "reproduced", "direction only", "not reproduced")


@needs_record
def test_too_few_seeds_are_not_testable(monkeypatch):
    cells = ca.recorded_cells(QUICK)
    for key in cells:
        cells[key] = {**cells[key], "per_seed": cells[key]["per_seed"][:2]}
    monkeypatch.setattr(ca, "recorded_cells", lambda part: cells)
    for v in ca.judge(QUICK):
        assert v["verdict"] == "not testable here" and "needs 3" in v["reason"]


@needs_record
def test_the_page_is_what_the_study_report_reads(tmp_path):
    shutil.copytree(QUICK, tmp_path / "quick")
    ca.write_page(tmp_path / "quick")
    assert (tmp_path / "quick" / ca.FOLDER / "README.md").read_text().startswith(ca.PAGE_TITLE)
    rows = {r["claim"]: r for r in gather_claims(tmp_path)}
    chosen = rows[f"{ca.CLAIM} (dfl_pcl, adversarial training)"]["chosen"]
    assert chosen["part"] == "quick" and chosen["notebook"] == ca.FOLDER


def test_a_part_without_a_record_is_one_line(tmp_path, capsys):
    (tmp_path / "quick").mkdir()
    assert ca.main(["--part", "quick", "--reports", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no committed record" in err and err.count("\n") == 1
