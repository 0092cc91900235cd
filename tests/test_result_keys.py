"""Stored results are keyed over the device as it resolves here: "cpu" and "auto" on a CPU-only
machine are one device, so an evaluation, a poisoned set or poison metrics asked for with either
is found with the other (a study re-run with --device cpu once re-evaluated every headline
model: 27 minutes for one, found by the record step recomputing an AutoAttack)."""
import json
from pathlib import Path

import pytest
import torch

from dfl_lib import device as devices
from dfl_lib.experiments import keys
from dfl_lib.experiments import run as experiment
from dfl_lib.experiments.configs import make_config
from dfl_lib.experiments.poison_metrics import _metrics_key
from dfl_lib.experiments.poisoned import poison_key


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def this_cpu_only():
    """Training under a patched torch.cuda breaks torch's compiler: these tests train for real,
    where "auto" is the CPU."""
    if devices.resolve_device("auto").type != "cpu":
        pytest.skip("trains on this machine's CPU, and 'auto' is not the CPU here")


@pytest.fixture
def with_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def _cfg(**kw):
    return make_config("smoke", dataset="mnist", n_eval=16, epochs=1, **kw)


class _Data:
    fingerprint = "f" * 12


def test_cpu_and_auto_are_one_key_on_a_cpu_only_machine(cpu_only):
    assert devices.key_device("cpu") == devices.key_device("auto") == "auto"
    assert set(keys.device_aliases("cpu")) == set(keys.device_aliases("auto")) == {"cpu", "auto"}
    a, c = _cfg(device="auto"), _cfg(device="cpu")
    assert experiment.eval_key(a, suite="paper", transfer=True) == \
        experiment.eval_key(c, suite="paper", transfer=True)
    assert _metrics_key(a) == _metrics_key(c)
    poisoned = dict(poison="badnets", poison_fraction=0.1)
    assert poison_key(_cfg(device="auto", **poisoned), _Data()) == \
        poison_key(_cfg(device="cpu", **poisoned), _Data())


def test_where_auto_is_a_gpu_the_cpu_is_another_key(with_cuda):
    assert devices.key_device("cpu") == "cpu" and devices.key_device("cuda") == "auto"
    assert "auto" not in keys.device_aliases("cpu")
    assert experiment.eval_key(_cfg(device="auto"), suite="paper", transfer=True) != \
        experiment.eval_key(_cfg(device="cpu"), suite="paper", transfer=True)
    assert _metrics_key(_cfg(device="auto")) != _metrics_key(_cfg(device="cpu"))


@pytest.mark.parametrize("made_with,asked_with", [("cpu", "auto"), ("auto", "cpu")])
@pytest.mark.parametrize("older_key", [False, True])
def test_an_evaluation_made_with_one_name_of_the_device_is_reused_with_the_other(
        synthetic_npz, tmp_path, monkeypatch, capsys, this_cpu_only, made_with, asked_with,
        older_key):
    cfg = make_config("smoke", dataset="npz", data_path=str(synthetic_npz), eps=0.1, n_eval=16,
                      epochs=1, device=made_with)
    first = experiment.train_and_evaluate(cfg, suite="paper", runs_root=tmp_path, progress=False)
    path = Path(first["path"])
    if older_key:  # metrics written before the key named the device by `key_device`
        saved = json.loads(path.read_text())
        saved["eval_key"] = experiment.eval_key(cfg, suite="paper", transfer=True,
                                                literal_device=True)
        path.write_text(json.dumps(saved))

    def no_evaluation(*args, **kwargs):
        raise AssertionError("evaluated again")

    monkeypatch.setattr(experiment, "evaluate_suite", no_evaluation)
    again = experiment.train_and_evaluate(cfg.replace(device=asked_with), suite="paper",
                                          runs_root=tmp_path, progress=False)
    assert again["table"] == first["table"] and "reusing metrics" in capsys.readouterr().out
    # any other change of the config is still another evaluation
    with pytest.raises(AssertionError, match="evaluated again"):
        experiment.train_and_evaluate(cfg.replace(device=asked_with, n_eval=24), suite="paper",
                                      runs_root=tmp_path, progress=False)


def test_metrics_whose_config_was_edited_are_refused_whatever_the_device(synthetic_npz, tmp_path,
                                                                         this_cpu_only):
    from dfl_lib.errors import DataFileError

    cfg = make_config("smoke", dataset="npz", data_path=str(synthetic_npz), eps=0.1, n_eval=16,
                      epochs=1, device="cpu")
    first = experiment.train_and_evaluate(cfg, suite="paper", runs_root=tmp_path, progress=False)
    path = Path(first["path"])
    saved = json.loads(path.read_text())
    saved["provenance"]["config"]["eps"] = 0.2
    path.write_text(json.dumps(saved))
    with pytest.raises(DataFileError, match="another config"):
        experiment.saved_metrics(cfg.replace(device="auto"), run_dir=path.parent, suite="paper",
                                 transfer=True)
