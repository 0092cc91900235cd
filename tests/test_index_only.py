"""`python -m dfl_lib study --index-only` re-writes a report's index from what is committed: it
trains and evaluates nothing, and where the runs are not there (a fresh clone) it keeps the
index's Time section and the report's record as they were. It once trained the whole plan to
re-make the record, and wrote a Time section of 0 items whose budget lines read "within"."""
import json

import pytest

from conftest import REAL_DATA
from dfl_lib.errors import DataFileError, UsageError
from dfl_lib.study import index
from dfl_lib.study.main import StudyOptions, run_study
from dfl_lib.study.plan import study_plan
from dfl_lib.study.record import RECORD, RecordIncomplete, write_record

ITEM = study_plan("smoke")[0].key


def _committed_index(out, *, seconds=123.0):
    """An index as the study writes it, with the run times it keeps beside it and the notebooks'
    seconds `run_notebooks` keeps."""
    out.mkdir(parents=True, exist_ok=True)
    (out / index.TIMINGS_NAME).write_text(json.dumps({"01-depth": 4.0}))
    return index.write_index("smoke", out_dir=out, plan_seconds={ITEM: seconds},
                             notebook_seconds={"01-depth": 4.0}, command="pytest",
                             invocations="These runs were made by one invocation.",
                             wall_seconds=600.0)


def _time_section(text: str) -> str:
    return text[text.index("## Time"):]


def _index_only(out, runs, capsys=None):
    code = run_study(StudyOptions(profile="smoke", out_dir=str(out), runs_dir=str(runs),
                                  data_dir=str(REAL_DATA), index_only=True, allow_dirty=True))
    return code, (capsys.readouterr().out if capsys else "")


def test_without_runs_the_committed_time_section_is_kept(tmp_path, capsys):
    out, runs = tmp_path / "report", tmp_path / "runs"
    runs.mkdir()
    before = _time_section(_committed_index(out).read_text())
    code, printed = _index_only(out, runs, capsys)
    assert code == 0
    after = _time_section((out / "README.md").read_text())
    assert after == before
    assert f"| {ITEM.replace('|', chr(92) + '|')} | 123 |" in after
    assert "These runs were made by one invocation." in after
    assert "kept" in printed and index.RUN_TIMES_NAME in printed
    assert list(runs.iterdir()) == []  # nothing trained


def test_the_index_keeps_what_its_time_section_read(tmp_path):
    out = tmp_path / "report"
    _committed_index(out, seconds=7.5)
    assert index.committed_run_times(out) == {
        "plan_seconds": {ITEM: 7.5}, "invocations": "These runs were made by one invocation.",
        "wall_seconds": 600.0}


def test_without_runs_or_run_times_it_refuses_in_one_line(tmp_path):
    out, runs = tmp_path / "report", tmp_path / "runs"
    out.mkdir()
    runs.mkdir()
    with pytest.raises(UsageError) as err:
        _index_only(out, runs)
    assert index.RUN_TIMES_NAME in str(err.value) and "\n" not in str(err.value)
    assert not (out / "README.md").exists() and list(runs.iterdir()) == []


@pytest.mark.parametrize("content", ['{"plan_seconds": {}}', "[1, 2]",
                                     '{"plan_seconds": [], "invocations": "", '
                                     '"wall_seconds": null}'])
def test_a_damaged_run_times_file_is_named(tmp_path, content):
    (tmp_path / index.RUN_TIMES_NAME).write_text(content)
    with pytest.raises(DataFileError, match=index.RUN_TIMES_NAME):
        index.committed_run_times(tmp_path)


def test_the_record_is_never_made_by_training(tmp_path, real_data_root):
    """With finished_only, runs that are not there leave the committed record as it was."""
    out, runs = tmp_path / "report", tmp_path / "runs"
    (out / RECORD).mkdir(parents=True)
    (out / RECORD / "index.json").write_text(json.dumps({"profile": "smoke", "cells": []}))
    runs.mkdir()
    with pytest.raises(RecordIncomplete, match="lacks"):
        write_record("smoke", runs_dir=runs, out_dir=out, data_root=real_data_root,
                     finished_only=True)
    assert list(runs.iterdir()) == []
    assert json.loads((out / RECORD / "index.json").read_text())["cells"] == []


def test_index_only_keeps_the_record_and_says_so(tmp_path, capsys, real_data_root):
    out, runs = tmp_path / "report", tmp_path / "runs"
    _committed_index(out)
    (out / "03-robustness-tables").mkdir()
    (out / "03-robustness-tables" / "metrics.json").write_text("{}")
    (out / RECORD).mkdir()
    (out / RECORD / "index.json").write_text('{"kept": true}')
    runs.mkdir()
    code, printed = _index_only(out, runs, capsys)
    assert code == 0
    assert "kept as it is" in printed
    assert (out / RECORD / "index.json").read_text() == '{"kept": true}'
    assert list(runs.iterdir()) == []


def test_a_study_that_ran_its_plan_writes_its_own_times_not_the_committed(tmp_path):
    """Only --index-only reads the committed run times: a full run's index is its runs'."""
    from dfl_lib.study import main

    out, runs = tmp_path / "report", tmp_path / "runs"
    runs.mkdir()
    _committed_index(out)
    args = StudyOptions(profile="smoke", out_dir=str(out), runs_dir=str(runs))
    main._index(args, runs, out)
    assert index.committed_run_times(out)["plan_seconds"] == {}
