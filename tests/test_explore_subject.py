"""The explorer (notebook 06) opened by hand starts on a trained model, the committed weights of
the quick study's PGD-trained DFL + PCL, without training anything; the study's own run of the
notebook explores its profile's run (`WEIGHTS=""`, index.EXTRA_PARAMETERS)."""
import ast
import json
from pathlib import Path

import pytest

from dfl_lib.errors import DataFileError
from dfl_lib.study.explore_subject import explore_subject
from dfl_lib.study.index import EXTRA_PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "06-explore.ipynb"


def _default_weights() -> str:
    cell = json.loads(NOTEBOOK.read_text())["cells"][1]
    tree = ast.parse("".join(cell["source"]))
    return next(n.value.value for n in tree.body if isinstance(n, ast.Assign)
                and n.targets[0].id == "WEIGHTS")


def test_the_notebooks_default_is_a_committed_trained_model(tmp_path, real_data_root):
    weights = (NOTEBOOK.parent / _default_weights()).resolve()  # JupyterLab runs in notebooks/
    assert weights.is_file(), weights
    subject = explore_subject(weights=str(weights), runs_root=tmp_path / "runs",
                              data_root=real_data_root)
    assert not (tmp_path / "runs").exists()  # nothing trained
    assert subject["model"].training is False
    for part in ("+ DFL", "PCL loss", "adversarial training", "seed 0", weights.stem):
        assert part in subject["label"], subject["label"]
    assert len(subject["data"].y_test) > 0


def test_the_study_explores_its_own_runs():
    assert EXTRA_PARAMETERS["06-explore"]["WEIGHTS"] == ""


def test_a_missing_weights_file_is_named(tmp_path):
    with pytest.raises(DataFileError, match="nothing-here.pt"):
        explore_subject(weights=str(tmp_path / "nothing-here.pt"))
