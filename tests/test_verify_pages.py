"""Every verdict page a study script wrote re-derives from the committed data it was judged from
(studies/verify_pages.py, run by `make verify`), and a page that says otherwise is named."""
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "studies"))
import verify_pages as vp  # noqa: E402

from dfl_lib.errors import DataFileError  # noqa: E402


def test_every_committed_verdict_page_re_derives():
    checked, problems = vp.verify_pages(ROOT / "reports")
    assert problems == []
    pages = [c for c in checked if not c.endswith(".json")]
    scripts = {json.loads((ROOT / c / "metrics.json").read_text())["provenance"]["script"]
               for c in pages}
    assert scripts == set(vp.JUDGES)  # every kind of page is committed and checked
    # and quick's independent re-check, held to its per-image masks
    assert "reports/quick/independent-check.json" in checked


def _copy_reports(tmp_path: Path, parts=("quick", "quick-full-poisoning")) -> Path:
    reports = tmp_path / "reports"
    for part in parts:
        shutil.copytree(ROOT / "reports" / part, reports / part,
                        ignore=shutil.ignore_patterns("weights", "*.ipynb", "*.png", "*.pdf"))
    return reports


def test_a_page_that_says_otherwise_is_named(tmp_path):
    reports = _copy_reports(tmp_path)
    page = reports / "quick" / "blackbox-seeds" / "metrics.json"
    metrics = json.loads(page.read_text())
    metrics["verdicts"][0]["estimate"] += 1.0
    metrics["verdicts"][1]["verdict"] = "reproduced"
    page.write_text(json.dumps(metrics))
    _, problems = vp.verify_pages(reports)
    assert len(problems) == 2 and all("blackbox-seeds" in p for p in problems)
    assert any("estimate" in p for p in problems) and any("reproduced" in p for p in problems)
    assert vp.main(["--reports", str(reports)]) == 1


def test_a_page_of_an_unknown_script_is_one_line(tmp_path, capsys):
    reports = tmp_path / "reports"
    (reports / "quick" / "mine").mkdir(parents=True)
    (reports / "quick" / "mine" / "metrics.json").write_text(json.dumps(
        {"verdicts": [], "provenance": {"script": "studies/mine.py"}}))
    with pytest.raises(DataFileError, match="studies/mine.py"):
        vp.verify_pages(reports)
    assert vp.main(["--reports", str(reports)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1
