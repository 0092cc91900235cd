"""The committed reports say what made them: the JupyterLab screenshots (reports/lab) name the run
they explored, and it is the run the quick study's explore notebook recorded; every committed
metrics file of the quick study was made from a clean tree (git_dirty false); the independent
re-check of the headline (reports/quick/independent-check.json, studies/independent_check.py)
attacked the models whose AutoAttack numbers the quick report prints."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "reports" / "lab" / "README.md"
QUICK = ROOT / "reports" / "quick"


def test_lab_screenshots_show_the_quick_studys_run():
    if not LAB.exists() or not (QUICK / "06-explore" / "metrics.json").exists():
        pytest.skip("no committed lab screenshots or quick report")
    found = re.search(r"run explored: `([^`]+)`", LAB.read_text())
    assert found, "reports/lab/README.md does not name the run its screenshots explored"
    run = json.loads((QUICK / "06-explore" / "metrics.json").read_text())["run"]
    assert run.startswith(found.group(1)), (found.group(1), run)


def test_committed_quick_metrics_come_from_a_clean_tree():
    paths = sorted(QUICK.glob("*/metrics.json"))
    if not paths:
        pytest.skip("no committed quick report")
    dirty = [str(p.relative_to(ROOT)) for p in paths
             if json.loads(p.read_text())["provenance"].get("git_dirty")]
    assert not dirty, f"made from a tree with uncommitted changes: {dirty}"


def test_independent_check_attacked_the_quick_reports_headline_models():
    check_path = QUICK / "independent-check.json"
    tables_path = QUICK / "03-robustness-tables" / "metrics.json"
    if not check_path.exists() or not tables_path.exists():
        pytest.skip("no committed independent check or quick report")
    check = json.loads(check_path.read_text())
    tables = json.loads(tables_path.read_text())["tables"]
    # the report's AutoAttack on each headline cell (percent), in every table that shows it
    reported = {(r["row"], r["setting"]): r["strong"]["AutoAttack"][0]
                for rows in tables.values() for r in rows
                if r["dataset"] == check["dataset"] and r.get("strong", {}).get("AutoAttack")}
    assert check["cells"], "the independent check holds no cells"
    # the report prints AutoAttack for the first seed's models (the study's headline suite);
    # a file from before cells were keyed by model seed names its row alone, at seed 0
    first = [(key, cell) for key, cell in check["cells"].items() if cell.get("model_seed", 0) == 0]
    assert first, "the independent check holds no cell of the report's first seed"
    for key, cell in first:
        row = cell.get("row", key)
        ours = reported.get((row, check["setting"]))
        assert ours is not None, f"the quick report has no AutoAttack for {row}, {check['setting']}"
        theirs = 100 * cell["study"]["headline"]["rows"]["AutoAttack"]["accuracy"]
        assert abs(theirs - ours) < 1e-6, (
            f"{row}: the independent check read AutoAttack {theirs:.1f}% from run {cell['run']}, "
            f"the quick report prints {ours:.1f}%: re-run studies/independent_check.py on the "
            "report's runs")


def test_the_quick_reports_numbers_re_derive_from_its_committed_record():
    from dfl_lib.study.record import RECORD, verify_record

    if not (QUICK / RECORD / "index.json").exists():
        pytest.skip("no committed record of the quick report")
    assert verify_record(QUICK) == []
