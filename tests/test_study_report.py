"""The study report (reports/README.md, issue 38 item 2): every claim's verdict gathered from
whichever part of the study ran its cells, with the part and commit; the committed page says
what the committed parts say."""
import ast
import json
import re
import shutil
from pathlib import Path

import pytest

from dfl_lib.errors import UsageError
from dfl_lib.paper.claims import claims
from dfl_lib.study.report import (NOT_TESTABLE, gather_claims, study_report_lines,
                                  verify_study_report, write_study_report)

ROOT = Path(__file__).resolve().parents[1]
PARTS = (("alpha", "the first part"), ("beta", "the second part"))


def _verdict(claim, verdict, *, estimate=None, reason="", rows=1, seeds=3):
    return {"claim": claim, "verdict": verdict, "estimate": estimate,
            "low": None if estimate is None else estimate - 1,
            "high": None if estimate is None else estimate + 1, "seeds": seeds, "n": 500,
            "reason": reason, "rows": {f"r{i}": {} for i in range(rows)},
            "numbers": f"{estimate} points" if estimate is not None else ""}


def _part(root: Path, part: str, notebook: str, verdicts: list[dict], commit: str):
    folder = root / part / notebook
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(
        {"verdicts": verdicts, "provenance": {"git_commit": commit}}))
    (root / part / f"{notebook}.ipynb").write_text("{}")


def test_a_tested_verdict_is_chosen_over_a_part_that_did_not_run_the_cells(tmp_path):
    label = "table1_margins (no defence)"
    _part(tmp_path, "alpha", "03-robustness-tables", [_verdict(
        label, NOT_TESTABLE, reason="the dfl cells are not trained at alpha")], "a" * 40)
    _part(tmp_path, "beta", "03-robustness-tables", [_verdict(
        label, "not reproduced", estimate=-3.6)], "b" * 40)
    (row,) = [r for r in gather_claims(tmp_path, parts=PARTS) if r["claim"] == label]
    assert row["chosen"]["part"] == "beta" and row["chosen"]["commit"] == "bbbbbbb"
    assert row["chosen"]["verdict"] == "not reproduced" and row["others"] == []
    line = next(li for li in study_report_lines(tmp_path, parts=PARTS)
                if li.startswith(f"| {label}"))
    assert "**not reproduced**" in line and "-3.6 [-4.6, -2.6]" in line
    assert "[beta](beta/03-robustness-tables.ipynb) at bbbbbbb" in line


def test_a_second_tested_verdict_is_shown_beside_the_chosen_one(tmp_path):
    label = "table1_margins (adversarial training)"
    _part(tmp_path, "alpha", "03-robustness-tables",
          [_verdict(label, "not reproduced", estimate=-0.1, rows=2)], "a" * 40)
    _part(tmp_path, "beta", "03-robustness-tables",
          [_verdict(label, "not reproduced", estimate=-0.6, rows=3)], "b" * 40)
    (row,) = [r for r in gather_claims(tmp_path, parts=PARTS) if r["claim"] == label]
    assert row["chosen"]["part"] == "beta"  # it compared more rows
    line = next(li for li in study_report_lines(tmp_path, parts=PARTS)
                if li.startswith(f"| {label}"))
    assert "also alpha: not reproduced -0.1 [-1.1, +0.9]" in line


def test_below_regime_is_the_reason_given_over_not_run(tmp_path):
    label = "table2_no_defence_margin"
    _part(tmp_path, "alpha", "03-robustness-tables", [_verdict(
        label, NOT_TESTABLE, reason="this profile's plan has no CIFAR-10 cells")], "a" * 40)
    _part(tmp_path, "beta", "03-robustness-tables", [_verdict(
        label, NOT_TESTABLE, reason="below regime: dfl_pcl 37.3% clean (floor 70%)")],
        "b" * 40)
    (row,) = [r for r in gather_claims(tmp_path, parts=PARTS) if r["claim"] == label]
    assert row["chosen"]["reason"].startswith("below regime")


def test_every_claim_has_a_row_with_a_verdict_or_a_reason(tmp_path):
    _part(tmp_path, "alpha", "03-robustness-tables", [], "a" * 40)
    lines = study_report_lines(tmp_path, parts=PARTS)
    table = [li for li in lines if li.startswith("| ") and not li.startswith("| claim")]
    assert len(table) == len(claims())
    for line in table:
        cells = [c.strip() for c in line.split(" | ")]
        assert cells[1].startswith("**") and (cells[1] != f"**{NOT_TESTABLE}**" or cells[5])


def test_a_pending_claim_judged_by_a_study_prints_what_it_was_judged_against(tmp_path):
    label = "dfl_features_together (displacement, adversarial training)"
    _part(tmp_path, "alpha", "feature-space-seeds",
          [{**_verdict(label, "inconclusive", estimate=1.5), "claimed": 0.0}], "a" * 40)
    line = next(li for li in study_report_lines(tmp_path, parts=PARTS)
                if li.startswith(f"| {label}"))
    assert "| **inconclusive** | +1.5 [+0.5, +2.5] (3 seeds x 500 images) | > 0 |" in line
    untouched = next(li for li in study_report_lines(tmp_path, parts=PARTS)
                     if li.startswith("| table2_fgsm_mustafa_better"))
    assert "| **not testable here** | - | - |" in untouched  # pending, no verdict: no claim


def test_no_part_at_all_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no part of the study found"):
        gather_claims(tmp_path, parts=PARTS)


def test_the_committed_study_report_says_what_its_parts_say():
    assert verify_study_report(ROOT / "reports") == []


def test_a_changed_verdict_in_a_part_is_a_mismatch(tmp_path):
    copy = tmp_path / "reports"
    shutil.copytree(ROOT / "reports", copy, ignore=shutil.ignore_patterns(
        "record", "*.pdf", "*.png", "runs", "*.ipynb"))
    write_study_report(copy)
    assert verify_study_report(copy) == []
    path = copy / "quick-full-pgd" / "03-robustness-tables" / "metrics.json"
    metrics = json.loads(path.read_text())
    for v in metrics["verdicts"]:
        if v["claim"] == "table1_margins (adversarial training)":
            v["verdict"] = "reproduced"
    path.write_text(json.dumps(metrics))
    problems = verify_study_report(copy)
    assert problems and any("reproduced" in p for p in problems)


ISSUE = re.compile(r"\bissues? \d+", re.IGNORECASE)


def _user_strings(path: Path) -> list[str]:
    """The string literals of a module that are not docstrings: the text it writes for readers."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
            and isinstance(n.value, str) and id(n) not in docs]


def test_what_a_reader_sees_names_commits_not_the_projects_issues():
    pages = [ROOT / p for p in ("README.md", "notebooks/README.md", "benchmarks/README.md",
                                "reports/README.md", "dfl_lib/paper/paper_claims.csv")]
    # every committed report page (the parts' indexes, the studies' pages)
    pages += sorted((ROOT / "reports").glob("**/README.md"))
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in pages
             for m in ISSUE.finditer(p.read_text())]
    # the text the study writes into every part's index and the study report
    for module in ("study/index.py", "study/report.py", "paper/verdicts.py"):
        found += [f"dfl_lib/{module}: {m.group(0)}"
                  for text in _user_strings(ROOT / "dfl_lib" / module)
                  for m in ISSUE.finditer(text)]
    assert not found, found


def test_the_readmes_first_screen_gives_the_answer_its_figure_and_the_report():
    """A reader sees what the study found, with numbers, the figure and the link to the one
    report, before any command (it took 66 lines of bullets to reach the figure)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    first = "\n".join(lines[:40])
    assert "](reports/README.md)" in first
    assert re.search(r"!\[[^\]]+\]\(reports/[^)]+\.png\)", first)
    assert "**not reproduced**" in first and "**not testable here** yet" in first
    assert re.search(r"\[[+-]\d+\.\d, [+-]\d+\.\d\]", first)  # an interval, not only words
    figure = next(i for i, li in enumerate(lines) if li.startswith("!["))
    command = next(i for i, li in enumerate(lines) if li.startswith("make "))
    assert figure < command


def test_a_baseline_not_run_in_one_part_is_named_where_another_ran_it():
    """The 55% row said "mustafa (not run at this profile)" though quick-full-pgd ran Mustafa
    et al. (19.3% clean): the report says where a baseline was run and how it trained."""
    from dfl_lib.paper.claims import claim
    from dfl_lib.study.report import _elsewhere_note

    c = claim("conclusion_margins_75_55 (adversarial training)")
    ran = {("mnist", "adversarial training", "mustafa"): [("quick-full-pgd", 19.3)],
           ("mnist", "no defence", "mustafa"): [("quick-full-clean", 98.0)]}
    note = _elsewhere_note("no usable baseline: mustafa (not run at this profile)", claim=c,
                           ran=ran)
    assert note == ("mustafa is run in quick-full-pgd (adversarial training: 19.3% clean: did "
                    "not train)")
    assert _elsewhere_note("below regime", claim=c, ran=ran) == ""
    line = next(li for li in (ROOT / "reports" / "README.md").read_text().splitlines()
                if li.startswith("| conclusion_margins_75_55 (adversarial training)"))
    assert "not run at this profile" not in line or "is run in" in line


def test_each_part_says_which_commands_and_machine_made_its_runs(tmp_path):
    """The parts list carries each part's own sentence on its invocations (commits, machine),
    so a report made on two machine kinds says which part ran where; a part without one says
    nothing rather than guessing."""
    _part(tmp_path, "alpha", "03-robustness-tables", [], "a" * 40)
    _part(tmp_path, "beta", "01-depth", [], "b" * 40)
    (tmp_path / "alpha" / "run-times.json").write_text(json.dumps(
        {"invocations": "These runs were made by 1 invocation of the study command, at commit "
                        "abc1234, on 2 CPU cores, AVX2, precision fp32."}))
    lines = study_report_lines(tmp_path, parts=PARTS)
    alpha = next(li for li in lines if li.startswith("- [`alpha/`]"))
    beta = next(li for li in lines if li.startswith("- [`beta/`]"))
    assert alpha.endswith("on 2 CPU cores, AVX2, precision fp32.")
    assert "CPU" not in beta and "invocation" not in beta
    assert any("the better of A and B" in li for li in lines)  # the effects' legend
