"""Run keys follow what a run computes (issue 36): a key is the config, the data's fingerprint
and the declared version of each computation (`dfl_lib.runs.versions`), never the code's files.

Both halves are held here: the golden results of every method, loss, training attack, precision,
poison, evaluation attack and check (`golden.py`) must not move while their computation's
version stands still (an arithmetic change in a loss is caught), and a pure refactor (a module
moved and renamed, prose edited) keeps every key.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import golden
import pytest

import dfl_lib
from dfl_lib.losses.pcl import PolarisedContrastiveLoss

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(golden.GOLDEN.read_text())


@pytest.fixture(scope="module")
def computed() -> dict:
    return golden.compute()


def test_every_computation_has_golden_cases(recorded):
    from dfl_lib.runs.versions import VERSIONS

    covered = {c for case in recorded["cases"].values() for c in case["computations"]}
    assert covered == set(VERSIONS)


@pytest.mark.parametrize("case", sorted(golden.cases()))
def test_results_hold_at_their_versions(case, recorded, computed):
    problems = golden.differences(recorded, case, computed[case])
    assert not problems, "\n".join(problems)


def test_an_arithmetic_change_in_a_loss_is_caught(recorded, monkeypatch):
    """The PCL's intra-class pull 1% stronger, nothing else: the training goldens of the PCL
    runs move, so the test above fails until the 'train' version is bumped."""
    plain = PolarisedContrastiveLoss.regulariser

    def stronger(self, f, y):
        parts = plain(self, f, y)
        return {**parts, "intra": parts["intra"] * 1.01}

    monkeypatch.setattr(PolarisedContrastiveLoss, "regulariser", stronger)
    now = golden.compute(["train/dfl-pcl-pgd"])["train/dfl-pcl-pgd"]
    problems = golden.differences(recorded, "train/dfl-pcl-pgd", now)
    assert problems and "bump it in dfl_lib/runs/versions.py" in problems[-1], problems


def test_a_version_bump_asks_for_the_goldens_to_be_re_recorded(recorded, computed, monkeypatch):
    from dfl_lib.runs import versions

    monkeypatch.setitem(versions.VERSIONS, "train", versions.VERSIONS["train"] + 1)
    problems = golden.differences(recorded, "train/dfl-pcl-pgd", computed["train/dfl-pcl-pgd"])
    assert problems and "re-record" in problems[0]


KEYS_SCRIPT = """
import json, sys
from dfl_lib.experiments.configs import make_config
from dfl_lib.data.datasets import load_dataset
from dfl_lib.runs.folder import run_path
from dfl_lib.experiments.run import eval_key
npz = sys.argv[1]
data = load_dataset("npz", path=npz, n_train=64, n_val=16, seed=0)
out = {}
for over in ({}, {"dfl": True, "loss": "pcl", "train_attack": "pgd"},
             {"method": "dynamic", "train_attack": "pgd"}, {"precision": "bf16"}):
    cfg = make_config("smoke", dataset="npz", data_path=npz, eps=0.1, **over)
    out[repr(over)] = [run_path(cfg, data, runs_root="r").name,
                       eval_key(cfg, suite="full", transfer=True)]
print(json.dumps(out))
"""


def _keys(package_parent: Path, npz: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(package_parent), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", KEYS_SCRIPT, str(npz)], env=env, cwd=package_parent,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_pure_refactor_keeps_every_run_and_evaluation_key(synthetic_npz, tmp_path):
    """A copy of the package with the PCL's module moved and renamed, its importers changed to
    match, and a docstring rewritten gives the same keys as the package itself."""
    copy = tmp_path / "dfl_lib"
    shutil.copytree(Path(dfl_lib.__file__).parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "losses" / "pcl.py").rename(copy / "losses" / "polarised.py")
    for path in copy.rglob("*.py"):
        text = path.read_text()
        moved = text.replace("from .pcl import", "from .polarised import").replace(
            "losses.pcl import", "losses.polarised import")
        if moved != text:
            path.write_text(moved)
    trainer = copy / "training" / "trainer.py"
    trainer.write_text(trainer.read_text().replace('"""', '"""Reworded. ', 1))
    assert _keys(tmp_path, synthetic_npz) == _keys(ROOT, synthetic_npz)
