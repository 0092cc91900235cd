"""The configured device is obeyed: models, centroids and every batch go where cfg.device says.

On this CPU-only machine the check runs on PyTorch's "meta" device (tensors without data): the
engine is told to use it, and the first forward pass records the devices of its input and of
every parameter, then stops the run. Code that ignores cfg.device would send CPU tensors.
"""
import ast
from pathlib import Path

import pytest
import torch

from dfl_lib.experiments import run as experiment

from dfl_lib.experiments.data import load_data
from dfl_lib.training import trainer as train_mod
from dfl_lib.experiments.configs import make_config
from dfl_lib.device import resolve_device
from dfl_lib.runs.folder import run_path

META = torch.device("meta")


class _Seen(Exception):
    """Raised by the spy at the first forward pass."""


def _spy(model, seen: dict):
    def hook(module, args):
        seen["input"] = args[0].device
        seen["params"] = {p.device for p in module.parameters()}
        raise _Seen

    model.register_forward_pre_hook(hook)


@pytest.mark.parametrize("train_attack", ["none", "pgd"])
def test_training_puts_model_centroids_and_batches_on_the_configured_device(
        synthetic_npz, tmp_path, monkeypatch, train_attack):
    monkeypatch.setattr(train_mod, "resolve_device", lambda name: META)
    cfg = make_config("smoke", dataset="npz", data_path=str(synthetic_npz), dfl=True,
                      loss="pcl", train_attack=train_attack, device="cpu")
    data = load_data(cfg)
    model, loss = train_mod.build_components(cfg, data)
    seen = {}
    _spy(model, seen)
    with pytest.raises(_Seen):
        train_mod.train(model, loss, data, cfg, runs_root=tmp_path, progress=False)
    assert seen["input"] == META and seen["params"] == {META}
    assert {p.device for p in loss.parameters()} == {META}


def test_evaluation_moves_the_test_images_to_the_configured_device(synthetic_npz, tmp_path,
                                                                   monkeypatch):
    cfg = make_config("smoke", dataset="npz", data_path=str(synthetic_npz), device="cpu")
    data = load_data(cfg)
    model, loss = train_mod.build_components(cfg, data)
    model.to(META).eval()
    seen = {}
    _spy(model, seen)
    monkeypatch.setattr(experiment, "resolve_device", lambda name: META)
    run = {"model": model, "loss": loss, "data": data, "history": [], "run_dir": tmp_path}
    with pytest.raises(_Seen):  # a trained run, evaluated: nothing trains
        experiment.evaluate_run(run, cfg, suite="paper")
    assert seen["input"] == META and seen["params"] == {META}


def test_auto_resolves_to_what_is_present_and_cuda_without_one_is_an_error():
    expected = "cuda" if torch.cuda.is_available() else \
        "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")


def test_the_run_records_the_device_it_ran_on(synthetic_npz, tmp_path):
    import json

    cfg = make_config("smoke", dataset="npz", data_path=str(synthetic_npz), epochs=1)
    assert cfg.device == "auto"
    data = load_data(cfg)
    model, loss = train_mod.build_components(cfg, data)
    train_mod.train(model, loss, data, cfg, runs_root=tmp_path, progress=False)
    done = json.loads((run_path(cfg, data, runs_root=tmp_path) / "done.json").read_text())
    assert done["device"] == str(resolve_device("auto"))  # resolved, not the word "auto"


def test_no_hard_coded_device_in_the_library():
    # code only (docstrings may name the flaws of other code): no .cuda() call, and no
    # device="cuda..." argument
    package = Path(train_mod.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                assert not (isinstance(func, ast.Attribute) and func.attr == "cuda"), \
                    f"{path.name}:{node.lineno} calls .cuda()"
                for kw in node.keywords:
                    hard = isinstance(kw.value, ast.Constant) and str(kw.value.value).startswith("cuda")
                    assert not (kw.arg == "device" and hard), f"{path.name}:{node.lineno}: {kw.arg}"


@pytest.mark.parametrize("cuda,mps,expected", [(True, True, "cuda"), (False, True, "mps"),
                                               (False, False, "cpu")])
def test_auto_picks_cuda_then_mps_then_the_cpu(cuda, mps, expected, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert resolve_device("auto").type == expected
    if not mps:
        with pytest.raises(ValueError, match="no MPS device"):
            resolve_device("mps")


def test_an_op_mps_lacks_is_told_in_one_line(monkeypatch, capsys):
    """Apple's MPS backend raises NotImplementedError for an op it lacks: the command line
    says so in one line, with the two ways out, instead of a traceback."""
    import dfl_lib.__main__ as cli

    def missing(args):
        raise NotImplementedError("The operator 'aten::_cdist_backward' is not currently "
                                  "implemented for the MPS device.\nsecond line")

    monkeypatch.setattr(cli, "_run", missing)
    assert cli.main(["train", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "aten::_cdist_backward" in err
    assert "device=cpu" in err and "PYTORCH_ENABLE_MPS_FALLBACK=1" in err
