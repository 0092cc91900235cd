"""The committed reports say what made them: the JupyterLab screenshots (reports/lab) name the run
they explored, and it is the run the quick study's explore notebook recorded; every committed
metrics file of the quick study was made from a clean tree (git_dirty false)."""
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
