"""A run folder whose records disagree with its key, its checkpoint or each other is refused
with an error naming the file, never used under a label it does not have (issue 35)."""
from __future__ import annotations

import json

import pytest
import torch

from dfl_lib.experiments.configs import make_config
from dfl_lib.errors import DataFileError
from dfl_lib.experiments.run import train_and_evaluate, train_run


@pytest.fixture
def trained(synthetic_npz, tmp_path):
    cfg = make_config("smoke", dataset="npz", data_path=str(synthetic_npz), epochs=1, eps=0.1)
    run = train_run(cfg, runs_root=tmp_path, progress=False)
    return cfg, run["run_dir"], tmp_path


def _edit_json(path, edit):
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))


@pytest.mark.parametrize("name,edit", [
    ("config.json", lambda r: r.update(eps=0.05)),
    ("config.json", lambda r: r.update(pcl_w_intra=9.0)),
    ("config.json", lambda r: r.pop("seed")),
    ("done.json", lambda r: r["config"].update(lr=0.5)),
], ids=["config-eps", "config-loss-weight", "config-missing-field", "done-lr"])
def test_an_edited_record_is_refused_naming_it(trained, name, edit):
    cfg, rdir, root = trained
    _edit_json(rdir / name, edit)
    with pytest.raises(DataFileError, match=str(rdir / name)):
        train_run(cfg, runs_root=root, progress=False)


def test_a_checkpoint_of_another_config_is_refused(trained):
    cfg, rdir, root = trained
    path = rdir / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    state["config"]["eps"] = 0.2
    torch.save(state, path)
    with pytest.raises(DataFileError, match="checkpoint.pt.*eps=0.2"):
        train_run(cfg, runs_root=root, progress=False)


def test_a_history_that_disagrees_with_the_checkpoint_is_refused(trained):
    cfg, rdir, root = trained
    _edit_json(rdir / "history.json", lambda r: r[0].update(val_acc=1.0))
    with pytest.raises(DataFileError, match="history.json"):
        train_run(cfg, runs_root=root, progress=False)


def test_untouched_records_are_reused(trained):
    cfg, rdir, root = trained
    assert train_run(cfg, runs_root=root, progress=False)["run_dir"] == rdir


def test_metrics_edited_under_their_key_are_refused(trained):
    cfg, rdir, root = trained
    train_and_evaluate(cfg, suite="paper", runs_root=root, progress=False, transfer=False)
    path = rdir / "metrics-paper.json"
    _edit_json(path, lambda r: r["provenance"]["config"].update(eps=0.3))
    with pytest.raises(DataFileError, match=str(path)):
        train_and_evaluate(cfg, suite="paper", runs_root=root, progress=False, transfer=False)
