"""A report's record (dfl_lib/study/record.py, issue 38): what `verify` says where there is none,
and its comparison naming each number that differs. The record written from a real study and
re-derived is tested on the smoke study (tests/test_notebooks.py) and on the committed quick
report (tests/test_reports.py)."""
import json

import pytest
import torch

from dfl_lib.__main__ import main
from dfl_lib.errors import DataFileError
from dfl_lib.runs import io as runio
from dfl_lib.study.record import add_weights, compare, verify_record


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
    compare(ours, theirs, where="nb", problems=problems)
    assert problems == ["nb.extra: not re-derived", "nb.tables[0].seeds: re-derived 3, reported 2",
                        "nb.verdicts[0].verdict: re-derived 'not reproduced', reported "
                        "'reproduced'"]
    short = []
    compare([1, 2], [1], where="x", problems=short)
    assert short == ["x: 2 re-derived items, 1 reported"]


def _run(folder, *, history, weight):
    """A finished run folder: its history, its checkpoint (weights, config, optimiser state)."""
    folder.mkdir(parents=True)
    (folder / "history.json").write_text(json.dumps(history))
    torch.save({"model": {"w": torch.full((2,), weight)}, "config": {"seed": 1},
                "optimizer": {"state": {}}}, folder / runio.CHECKPOINT_NAME)
    (folder / runio.DONE_NAME).write_text("{}")


def test_weights_are_added_only_for_headline_cells_and_only_from_the_same_training(tmp_path):
    record, runs = tmp_path / "report" / "record", tmp_path / "runs"
    history = [{"epoch": 1, "train_loss": 0.5, "val_adv_acc": float("nan"), "train_seconds": 3.0}]
    index = {"profile": "quick", "weights": {"A": "weights/A.pt"}, "cells": [
        {"dataset": "mnist", "row": "resnet", "setting": "adversarial training",
         "per_seed": ["runs/A/metrics-table.json", "runs/B/metrics-table.json",
                      "runs/M/metrics-table.json"], "headline": "runs/A/metrics-headline.json"},
        {"dataset": "mnist", "row": "resnet", "setting": "no defence",  # a headline row's
         "per_seed": ["runs/D/metrics-table.json"], "headline": None},  # other setting
        {"dataset": "mnist", "row": "dfl_pcl", "setting": "no defence",
         "per_seed": ["runs/C/metrics-table.json"], "headline": None}]}
    for name in "ABCDM":
        (record / "runs" / name).mkdir(parents=True)
        (record / "runs" / name / "history.json").write_text(json.dumps(history))
    runio.write_json(record / "index.json", index)
    _run(runs / "B", history=[{**history[0], "train_seconds": 9.0}], weight=2.0)  # times aside
    _run(runs / "C", history=history, weight=3.0)  # a row without a headline: no weights kept
    _run(runs / "D", history=history, weight=5.0)
    # M (missing from runs) is left out; A is in the record already
    assert add_weights(tmp_path / "report", runs_dir=runs) == ["B", "D"]
    saved = json.loads((record / "index.json").read_text())["weights"]
    assert saved == {"A": "weights/A.pt", "B": "weights/B.pt", "D": "weights/D.pt"}
    kept = torch.load(record / saved["B"], weights_only=True)
    assert set(kept) == {"model", "config"} and kept["model"]["w"].tolist() == [2.0, 2.0]
    assert add_weights(tmp_path / "report", runs_dir=runs) == []  # nothing twice
    # a run of the same name trained differently (another history) is refused, naming it
    _run(runs / "M", history=[{**history[0], "train_loss": 0.49}], weight=4.0)
    with pytest.raises(DataFileError, match=r"runs/M: its training history differs"):
        add_weights(tmp_path / "report", runs_dir=runs)
    assert not (record / "weights" / "M.pt").exists()
