"""The index's compute table renders: plan keys hold "|" ("mnist | resnet18 | no defence"), which
split every row into extra cells, so no seconds showed (issue 19's review, found by the
before-stop check)."""
from dfl_lib.study.index import write_index


def _rows_fit_their_header(text: str) -> list[str]:
    bad, lines = [], text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("|") and set(lines[i + 1].replace("|", "").strip()) <= set("-: "):
            cells = line.count("|")
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                if row.replace("\\|", "").count("|") != cells:
                    bad.append(row)
    return bad


def test_plan_items_with_pipes_stay_in_one_cell(tmp_path):
    index = write_index("smoke", out_dir=tmp_path, command="pytest",
                        plan_seconds={"mnist | resnet18 | no defence": 15.0,
                                      "mnist | dfl_pcl | adversarial training | s0": 47.0},
                        notebook_seconds={"01-depth": 3.0})
    text = index.read_text()
    assert "| mnist \\| resnet18 \\| no defence | 15 |" in text
    assert not _rows_fit_their_header(text)


def test_each_check_names_the_cell_it_checked(tmp_path):
    """Two headline cells share the check strong_attacks_mnist: the index line must say which
    cell failed (the quick report printed two identical names, one "does not hold")."""
    import json

    from dfl_lib.paper.verdicts import strong_attack_check
    from dfl_lib.study.index import findings

    checks = [strong_attack_check(pgd10=90.8, strongest=87.6, n=250, dataset="mnist",
                                  name="ResNet (CE), PGD training, mnist"),
              strong_attack_check(pgd10=91.6, strongest=91.2, n=250, dataset="mnist",
                                  name="DFL + PCL, PGD training, mnist")]
    (tmp_path / "03-robustness-tables").mkdir()
    (tmp_path / "03-robustness-tables" / "metrics.json").write_text(
        json.dumps({"checks": checks}))
    lines = [line for line in findings(tmp_path) if line.startswith("- strong_attacks_mnist")]
    assert len(lines) == 2
    assert "ResNet (CE), PGD training" in lines[0] and "does not hold" in lines[0]
    assert "DFL + PCL, PGD training" in lines[1] and "**holds**" in lines[1]


def test_the_time_section_holds_each_budget_part_against_its_allowance():
    """quick's budgets (issue 37): the base (cells, headline, notebooks 02-06), the poisoning
    headline (its runs, notebook 07) and notebook 08, each measured beside its allowance, and a
    part over it says so."""
    from dfl_lib.study.index import budget_lines, budget_parts
    from dfl_lib.study.plan import study_plan

    items = study_plan("quick")
    cell = next(i.key for i in items if i.role == "cell")
    head = next(i.key for i in items if i.role == "headline")
    poison = next(i.key for i in items if i.role == "poison")
    plan = {cell: 60 * 80, head: 60 * 10, poison: 60 * 14}
    books = {"03-robustness-tables": 60 * 5, "07-data-poisoning": 60 * 2, "08-forensics": 60 * 7}
    parts = budget_parts("quick", plan_seconds=plan, notebook_seconds=books)
    assert parts == {"base": 95.0, "poisoning": 16.0, "notebook 08": 7.0}
    text = "\n".join(budget_lines("quick", plan_seconds=plan, notebook_seconds=books))
    assert "| base | 95.0 | 95 | yes |" in text
    assert "| poisoning | 16.0 | 15 | **no** |" in text
    assert "| notebook 08 | 7.0 | 10 | yes |" in text and "| total | 118.0 | 120 | yes |" in text
    assert budget_lines("smoke", plan_seconds=plan, notebook_seconds=books) == []


def test_items_run_side_by_side_share_the_invocations_wall_time():
    from dfl_lib.study.index import budget_lines
    from dfl_lib.study.plan import study_plan

    items = study_plan("quick")
    cell = next(i.key for i in items if i.role == "cell")
    poison = next(i.key for i in items if i.role == "poison")
    # two workers: 180 + 20 min of items' time in 100 min of plan wall time, 20 of notebooks
    plan = {cell: 60 * 180, poison: 60 * 20}
    books = {"03-robustness-tables": 60 * 12, "08-forensics": 60 * 8}
    text = "\n".join(budget_lines("quick", plan_seconds=plan, notebook_seconds=books,
                                  wall_seconds=60 * 120))
    assert "| base | 102.0 | 95 | **no** |" in text  # 12 + 180 x 100 / 200
    assert "| poisoning | 10.0 | 15 | yes |" in text and "| total | 120.0 | 120 | yes |" in text


def test_a_verdict_made_before_the_t_interval_says_so_in_its_row(tmp_path):
    """Verdicts written before the t interval carry no "interval" key: the index must not call
    their intervals t intervals (it did, for parts not re-run since)."""
    import json

    from dfl_lib.paper.claims import claims
    from dfl_lib.study.index import findings
    from dfl_lib.study.report import OLD_INTERVAL

    first, second = (c.label for c in claims()[:2])
    verdict = {"verdict": "inconclusive", "estimate": 1.0, "low": -1.0, "high": 3.0, "seeds": 3}
    (tmp_path / "01-depth").mkdir()
    (tmp_path / "01-depth" / "metrics.json").write_text(json.dumps({"verdicts": [
        {**verdict, "claim": first},
        {**verdict, "claim": second, "interval": "t interval on per-seed effects"}]}))
    lines = findings(tmp_path)
    rows = {label: next(li for li in lines if li.startswith(f"| {label} "))
            for label in (first, second)}
    assert OLD_INTERVAL in rows[first] and OLD_INTERVAL not in rows[second]
    assert "earlier two-level percentile bootstrap" in lines[2]
    (tmp_path / "01-depth" / "metrics.json").write_text(json.dumps({"verdicts": [
        {**verdict, "claim": second, "interval": "t interval on per-seed effects"}]}))
    assert "bootstrap" not in findings(tmp_path)[2]


def test_a_parts_index_reads_the_verdict_pages_its_study_scripts_wrote(tmp_path):
    """The quick index printed "not judged yet" for claims its own blackbox-seeds page judged,
    while the study report showed the verdicts: the index reads those pages too, first."""
    import json

    from dfl_lib.paper.claims import claims
    from dfl_lib.study.index import findings

    first, second = (c.label for c in claims()[:2])
    verdict = {"verdict": "inconclusive", "estimate": 1.0, "low": -1.0, "high": 3.0, "seeds": 3,
               "interval": "t interval on per-seed effects"}
    (tmp_path / "01-depth").mkdir()
    (tmp_path / "01-depth" / "metrics.json").write_text(json.dumps({"verdicts": [
        {**verdict, "claim": first}, {**verdict, "claim": second}]}))
    (tmp_path / "my-check").mkdir()
    (tmp_path / "my-check" / "metrics.json").write_text(json.dumps({
        "verdicts": [{**verdict, "claim": second, "verdict": "not reproduced", "estimate": -2.0}],
        "provenance": {"script": "studies/my_check.py"}}))
    (tmp_path / "no-script").mkdir()  # a folder whose metrics no study script wrote
    (tmp_path / "no-script" / "metrics.json").write_text(json.dumps({"verdicts": [
        {**verdict, "claim": first, "verdict": "reproduced"}]}))
    lines = findings(tmp_path)
    row = {label: next(li for li in lines if li.startswith(f"| {label} "))
           for label in (first, second)}
    assert "**inconclusive**" in row[first] and "my-check" not in row[first]
    assert "**not reproduced**" in row[second] and "-2.0" in row[second]
    assert "[my-check](my-check/README.md)" in row[second]
    # a pending claim judged by a page shows the effect it was judged against
    pending = next(c for c in claims() if c.kind == "pending")
    (tmp_path / "my-check" / "metrics.json").write_text(json.dumps({
        "verdicts": [{**verdict, "claim": pending.label, "claimed": 0.0, "seeds": 1}],
        "provenance": {"script": "studies/my_check.py"}}))
    line = next(li for li in findings(tmp_path) if li.startswith(f"| {pending.label} "))
    assert "| > 0 |" in line and "(1 seed)" in line
