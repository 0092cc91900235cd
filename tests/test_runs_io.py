"""Run folders, provenance and atomic checkpoints (dfl_lib.runs.io). CPU only, a few seconds."""
import json
import random
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dfl_lib.runs import io as runio
from dfl_lib.errors import DataFileError

CONFIG = {"dataset": "mnist", "lr": 0.1, "epochs": 6, "dfl": True, "loss": "pcl"}


# --------------------------------------------------------------------------- keys and folders

def test_run_key_same_inputs_same_key_and_order_free():
    key = runio.run_key(config=CONFIG, data_fingerprint="abc", versions="train=1")
    reordered = dict(reversed(list(CONFIG.items())))
    assert list(reordered) != list(CONFIG)
    assert runio.run_key(config=reordered, data_fingerprint="abc", versions="train=1") == key
    assert len(key) == 12 and all(c in "0123456789abcdef" for c in key)


@pytest.mark.parametrize("change", [
    {"config": {**CONFIG, "lr": 0.01}},
    {"config": {**CONFIG, "epochs": 7}},
    {"config": {**CONFIG, "dfl": False}},
    {"config": {**CONFIG, "extra": 0}},
    {"data_fingerprint": "abd"},
    {"versions": "train=2"},
])
def test_run_key_changes_with_any_input(change):
    base = {"config": CONFIG, "data_fingerprint": "abc", "versions": "train=1"}
    assert runio.run_key(**{**base, **change}) != runio.run_key(**base)


def test_canonical_json_is_compact_sorted_and_keeps_float_repr():
    assert runio.canonical_json({"b": 0.1, "a": [1, (2, 3)], "c": None}) == \
        '{"a":[1,[2,3]],"b":0.1,"c":null}'
    assert runio.canonical_json({"x": 1e-4}) != runio.canonical_json({"x": 1e-4 + 1e-19})


@pytest.mark.parametrize("bad, where", [
    ({"cfg": {"data": Path("/tmp")}}, "cfg.data"),
    ({"cfg": {"lrs": [0.1, np.int64(3)]}}, "cfg.lrs[1]"),
    ({"cfg": {"lr": float("nan")}}, "cfg.lr"),
    ({"cfg": {1: "int key"}}, "cfg"),
    ({"t": torch.tensor(1.0)}, "t"),
])
def test_canonical_json_rejects_non_json_values_naming_the_path(bad, where):
    with pytest.raises(TypeError, match="at " + re.escape(where)):
        runio.canonical_json(bad)


def test_keyed_folder_sanitises_the_name_and_defaults_the_root(tmp_path, monkeypatch):
    path = runio.keyed_folder(root=tmp_path, name="mnist/resnet 18:dfl", key="0123456789ab")
    assert path == tmp_path / "mnist_resnet_18_dfl-0123456789ab"
    with pytest.raises(ValueError, match="key"):
        runio.keyed_folder(root=tmp_path, name="x", key="../evil")
    monkeypatch.setenv("DFL_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert runio.default_runs_root() == tmp_path / "elsewhere"
    monkeypatch.delenv("DFL_RUNS_DIR")
    assert runio.default_runs_root() == runio.REPO_ROOT / "runs"


# --------------------------------------------------------------------------- provenance

PROVENANCE_KEYS = {"config", "seed", "device", "git_commit", "git_dirty", "computations",
                   "versions", "platform", "timestamp_utc", "wall_seconds"}


def test_provenance_outside_a_git_repo_says_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(runio, "REPO_ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    prov = runio.provenance(config=CONFIG, seed=3, device="cpu", wall_seconds=1.5)
    assert PROVENANCE_KEYS <= set(prov)
    assert prov["git_commit"] == "unknown" and prov["git_dirty"] == "unknown"
    assert prov["seed"] == 3 and prov["wall_seconds"] == 1.5 and prov["config"] == CONFIG
    assert {"python", "torch", "torchvision", "numpy", "torchattacks", "dfl_lib"} <= \
        set(prov["versions"])
    assert prov["timestamp_utc"].endswith("+00:00")
    json.dumps(prov, allow_nan=False)  # plain JSON


def test_provenance_without_git_binary_says_unknown(tmp_path, monkeypatch):
    (tmp_path / ".git").mkdir()
    monkeypatch.setattr(runio, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    prov = runio.provenance(config={}, seed=0, device="cpu")
    assert prov["git_commit"] == "unknown"


def test_git_state_reads_a_real_repo(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    try:
        git("init", "-q")
        (tmp_path / "f.txt").write_text("a")
        git("add", "f.txt")
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "m")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git not usable here")
    state = runio.git_state(tmp_path)
    assert len(state["commit"]) == 40 and state["dirty"] is False
    # what a study run writes (its reports) does not make the tree dirty; code does
    (tmp_path / "reports" / "quick").mkdir(parents=True)
    (tmp_path / "reports" / "quick" / "metrics.json").write_text("{}")
    assert runio.git_state(tmp_path)["dirty"] is False
    # nor does exploring: an edited notebook (the study runs the committed one), a build/
    # folder or a scratch file beside the package
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "n.ipynb").write_text("{}")
    git("add", "notebooks/n.ipynb")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "n")
    (tmp_path / "notebooks" / "n.ipynb").write_text('{"edited": 1}')
    (tmp_path / "build" / "lib").mkdir(parents=True)
    (tmp_path / "build" / "lib" / "x.py").write_text("")
    assert runio.git_state(tmp_path)["dirty"] is False
    assert runio.committed_text(tmp_path / "notebooks" / "n.ipynb", repo=tmp_path) == "{}"
    assert runio.committed_text(tmp_path / "build" / "lib" / "x.py", repo=tmp_path) is None
    # code does: a tracked file changed, or a new file inside the package
    (tmp_path / runio.PACKAGE_FOLDER).mkdir()
    (tmp_path / runio.PACKAGE_FOLDER / "new.py").write_text("")
    assert runio.git_state(tmp_path)["dirty"] is True
    (tmp_path / runio.PACKAGE_FOLDER / "new.py").unlink()
    assert runio.git_state(tmp_path)["dirty"] is False
    (tmp_path / "f.txt").write_text("b")
    assert runio.git_state(tmp_path)["dirty"] is True
    # an installed copy inside some other repository must not report that repository's commit
    (tmp_path / "site-packages").mkdir()
    assert runio.git_state(tmp_path / "site-packages")["commit"] == "unknown"


def test_provenance_has_no_hostname(tmp_path, monkeypatch):
    import socket

    monkeypatch.setattr(runio, "REPO_ROOT", tmp_path)
    host = socket.gethostname()
    text = json.dumps(runio.provenance(config={}, seed=0, device="cpu"))
    assert len(host) < 4 or host not in text


# --------------------------------------------------------------------------- json files

def test_json_round_trip_and_errors(tmp_path):
    path = runio.write_json(tmp_path / "sub" / "h.json", [{"epoch": 1, "acc": np.float32(0.5)}])
    assert runio.read_json(path) == [{"epoch": 1, "acc": 0.5}]
    with pytest.raises(TypeError):
        runio.write_json(tmp_path / "bad.json", {"x": np.zeros(3)})
    assert not (tmp_path / "bad.json").exists() and _temp_files(tmp_path) == []
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DataFileError, match="broken.json"):
        runio.read_json(tmp_path / "broken.json")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        runio.read_json(tmp_path / "missing.json")


def test_is_finished_and_latest_checkpoint(tmp_path):
    assert runio.latest_checkpoint(tmp_path) is None and not runio.is_finished(tmp_path)
    runio.save_checkpoint(tmp_path / "checkpoint.pt", state={"epoch": 0})
    assert runio.latest_checkpoint(tmp_path) == tmp_path / "checkpoint.pt"
    runio.write_json(tmp_path / "done.json", {"seed": 0})
    assert runio.is_finished(tmp_path)


# --------------------------------------------------------------------------- checkpoints

def _small_training_state(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x, y = torch.randn(8, 1, 6, 6), torch.arange(8) % 3
    for _ in range(2):  # momentum buffers, BN running stats and a scheduler step all non-trivial
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()
    return model, opt, sched


def _state(model, opt, sched, gens):
    return {"model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "epoch": 1,
            "history": [{"epoch": 1, "train_loss": 1.25, "collapse": False}],
            "config": {"lr": 0.1, "loss": "pcl"}, "rng": runio.rng_state(gens)}


def _assert_equal(a, b, where="state"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _assert_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            _assert_equal(u, v, f"{where}[{i}]")
    else:
        assert a == b, where


def _temp_files(folder):
    return [p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp")]


def test_checkpoint_round_trip_loads_weights_only_and_resumes(tmp_path):
    model, opt, sched = _small_training_state()
    gens = {"data": torch.Generator().manual_seed(5)}
    state = _state(model, opt, sched, gens)
    path = runio.save_checkpoint(tmp_path / "run" / "checkpoint.pt", state=state)
    torch.load(path, weights_only=True)  # the engine's promise, checked directly
    loaded = runio.load_checkpoint(path)
    _assert_equal(state, loaded)
    assert loaded["optimizer"]["state"][0]["momentum_buffer"].abs().sum() > 0

    model2, opt2, sched2 = _small_training_state(seed=1)  # different weights, same architecture
    runio.check_compatible(loaded["model"], model2)
    model2.load_state_dict(loaded["model"])
    opt2.load_state_dict(loaded["optimizer"])
    sched2.load_state_dict(loaded["scheduler"])
    _assert_equal(model.state_dict(), model2.state_dict())
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == 0.025
    assert _temp_files(tmp_path / "run") == []


def test_failed_save_keeps_the_previous_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path = runio.save_checkpoint(tmp_path / "checkpoint.pt", state={"epoch": 3,
                                                                    "w": torch.ones(4)})
    good = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        runio.save_checkpoint(path, state={"epoch": 4, "w": torch.zeros(4)})
    monkeypatch.undo()
    assert path.read_bytes() == good and runio.load_checkpoint(path)["epoch"] == 3
    assert _temp_files(tmp_path) == []


class Custom:  # a picklable custom object: torch.save takes it, weights_only loading refuses it
    pass


def test_save_refuses_state_that_weights_only_cannot_load(tmp_path):
    path = runio.save_checkpoint(tmp_path / "checkpoint.pt", state={"epoch": 1})
    with pytest.raises(TypeError, match="weights_only"):
        runio.save_checkpoint(path, state={"epoch": 2, "thing": Custom()})
    assert runio.load_checkpoint(path)["epoch"] == 1 and _temp_files(tmp_path) == []


def test_load_checkpoint_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        runio.load_checkpoint(tmp_path / "nothing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00\x01 definitely not a checkpoint" * 10)
    with pytest.raises(DataFileError, match="garbage.pt"):
        runio.load_checkpoint(garbage)
    good = runio.save_checkpoint(tmp_path / "good.pt", state={"w": torch.ones(1000)})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:-300])
    with pytest.raises(DataFileError, match="truncated.pt"):
        runio.load_checkpoint(truncated)


def test_check_compatible_names_the_mismatch():
    model, _, _ = _small_training_state()
    saved = model.state_dict()
    runio.check_compatible(saved, model)
    wider = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 4 * 4, 3))
    with pytest.raises(ValueError, match=r"another architecture.*0\.weight saved \(4, 1, 3, 3\)"):
        runio.check_compatible(saved, wider)
    deeper = nn.Sequential(*model, nn.Linear(3, 3))
    with pytest.raises(ValueError, match=r"missing from checkpoint: 5\.weight"):
        runio.check_compatible(saved, deeper)
    with pytest.raises(ValueError, match=r"not in model: 4\.weight"):
        runio.check_compatible(saved, nn.Sequential(*list(model)[:4]))


# --------------------------------------------------------------------------- random states

def _draw(gens):
    return (torch.rand(3).tolist(), random.random(), random.gauss(0, 1), np.random.rand(3).tolist(),
            np.random.randn(), torch.rand(3, generator=gens["attack"]).tolist())


def test_rng_round_trip_through_a_checkpoint_for_every_source(tmp_path):
    gens = {"attack": torch.Generator().manual_seed(7)}
    torch.manual_seed(1), random.seed(2), np.random.seed(3)
    random.gauss(0, 1), np.random.randn()  # leave a cached gaussian in both
    path = runio.save_checkpoint(tmp_path / "rng.pt", state={"rng": runio.rng_state(gens)})
    expected = _draw(gens)
    _draw(gens)  # move every source on, as later epochs would
    fresh = {"attack": torch.Generator().manual_seed(99)}
    runio.set_rng_state(runio.load_checkpoint(path)["rng"], fresh)
    got = _draw(fresh)
    for source, (a, b) in enumerate(zip(expected, got)):
        assert a == b, f"random source {source} not restored"


def test_rng_generator_names_must_match():
    state = runio.rng_state({"data": torch.Generator()})
    with pytest.raises(ValueError, match="attack"):
        runio.set_rng_state(state, {"attack": torch.Generator()})
