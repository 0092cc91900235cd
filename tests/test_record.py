"""A report's record (dfl_lib/study/record.py, issue 38): what `verify` says where there is none,
and its comparison naming each number that differs. The record written from a real study and
re-derived is tested on the smoke study (tests/test_notebooks.py) and on the committed quick
report (tests/test_reports.py)."""
import pytest

from dfl_lib.__main__ import main
from dfl_lib.errors import DataFileError
from dfl_lib.study.record import _compare, verify_record


def test_a_report_without_a_record_is_one_line_naming_the_file(tmp_path, capsys):
    with pytest.raises(DataFileError, match=r"record/index.json does not exist"):
        verify_record(tmp_path)
    assert main(["verify", "--report", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "index.json does not exist" in err[0]


def test_the_comparison_names_every_difference_and_forgives_float_noise():
    problems = []
    ours = {"tables": [{"ours": 10.0, "seeds": 3, "note": ""}, {"ours": float("nan")}],
            "verdicts": [{"verdict": "not reproduced"}]}
    theirs = {"tables": [{"ours": 10.0 + 1e-12, "seeds": 2, "note": ""}, {"ours": float("nan")}],
              "verdicts": [{"verdict": "reproduced"}], "extra": 1}
    _compare(ours, theirs, where="nb", problems=problems)
    assert problems == ["nb.extra: not re-derived", "nb.tables[0].seeds: re-derived 3, reported 2",
                        "nb.verdicts[0].verdict: re-derived 'not reproduced', reported "
                        "'reproduced'"]
    short = []
    _compare([1, 2], [1], where="x", problems=short)
    assert short == ["x: 2 re-derived items, 1 reported"]
