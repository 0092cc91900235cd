"""Bad input answered like a tool (issue 17): the command line's entry point (`dfl_lib.__main__`
.main, argparse included) from a scratch folder. Every user mistake gets one line on stderr
naming the problem and the value given, exit code 2 for usage errors and 1 for data or file
errors, and no traceback unless --debug.

Most cases call `main` in this process (a subprocess per case imported torch again: 4-5 s
each, two minutes of the suite); the real `python -m dfl_lib` runs in a subprocess where the
process itself is what is tested: argparse's own exit, --debug's traceback, Ctrl-C.
"""
from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _env(cwd: Path, data: Path | None) -> dict:
    env = {"OMP_NUM_THREADS": "1", "DFL_CACHE_DIR": str(cwd / "cache")}
    if data is not None:
        env["DFL_DATA_DIR"] = str(data)
    return env


def _subprocess_cli(*args, cwd: Path, data: Path | None = None) -> subprocess.CompletedProcess:
    """The real `python -m dfl_lib`, in its own process."""
    env = {**os.environ, **_env(cwd, data), "PYTHONPATH": str(ROOT)}
    if data is None:
        env.pop("DFL_DATA_DIR", None)
    return subprocess.run([sys.executable, "-m", "dfl_lib", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _cli(*args, cwd: Path, data: Path | None = None) -> subprocess.CompletedProcess:
    """`main(args)` in this process, from `cwd`, with the environment a subprocess would get;
    its exit code (argparse's SystemExit included) and stderr as a CompletedProcess."""
    from dfl_lib.__main__ import main

    saved_env, saved_cwd, saved_threads = dict(os.environ), os.getcwd(), torch.get_num_threads()
    os.environ.update(_env(cwd, data))
    if data is None:
        os.environ.pop("DFL_DATA_DIR", None)
    err, out = io.StringIO(), io.StringIO()
    try:
        os.chdir(cwd)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse's own usage errors
                code = exit_.code
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        torch.set_num_threads(saved_threads)
    return subprocess.CompletedProcess(["dfl_lib", *args], code, out.getvalue(), err.getvalue())


def _assert_one_line(result, code: int, *needles: str):
    err = result.stderr.strip()
    assert result.returncode == code, (result.returncode, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    last = err.splitlines()[-1]
    for needle in needles:
        assert needle in last, (needle, last)


USAGE = [  # (overrides, what the one line must name)
    (["--set", "eps=-0.1"], ["'eps'", "-0.1"]),
    (["--set", "eps=2"], ["'eps'", "[0, 1]", "got 2"]),
    (["--set", "model=resnet99"], ["resnet99", "resnet18"]),
    (["--set", "dataset=imagenet"], ["imagenet", "mnist"]),
    (["--set", "epoch=3"], ["'epoch'", "did you mean 'epochs'"]),
    (["--set", "epochs=three"], ["'epochs'", "integer", "'three'"]),
    (["--set", "batch_size=0"], ["'batch_size'", ">= 1", "got 0"]),
    (["--set", "lr=nan"], ["'lr'", "finite"]),
    (["--set", "momentum=1.5"], ["'momentum'", "1.5"]),
    (["--set", "adv_fraction=2"], ["adv_fraction", "[0, 1]"]),
    (["--set", "device=gpu"], ["'device'", "'gpu'"]),
    (["--set", "dataset=npz"], ["data_path"]),
    (["--set", "lr_warmup_epochs=9", "--set", "epochs=2"], ["lr_warmup_epochs", "epochs=2"]),
    (["--set", "eps"], ["key=value"]),
    (["--set", "seed=-1"], ["'seed'", "random seed", "got -1"]),
    (["--set", "poison_seed=4294967296"], ["'poison_seed'", "got 4294967296"]),
    (["--profile", "nope"], ["nope"]),  # argparse's own message
]


def test_the_real_command_answers_a_usage_error_in_one_line(tmp_path):
    """The process itself: `python -m dfl_lib` exits 2 with one line, no traceback."""
    result = _subprocess_cli("train", "--profile", "smoke", "--set", "eps=2", "--quiet",
                             cwd=tmp_path)
    _assert_one_line(result, 2, "'eps'", "[0, 1]", "got 2")


@pytest.mark.parametrize("overrides,needles", USAGE, ids=[" ".join(u[0]) for u in USAGE])
def test_usage_errors_exit_2_in_one_line(overrides, needles, tmp_path):
    result = _cli("train", "--profile", "smoke", *overrides, "--quiet", cwd=tmp_path)
    _assert_one_line(result, 2, *needles)


def test_debug_shows_the_traceback(tmp_path):
    result = _subprocess_cli("train", "--profile", "smoke", "--set", "eps=2", "--debug",
                             cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr
    assert "UsageError" in result.stderr


def test_missing_data_folder_exits_1_naming_it(tmp_path):
    missing = tmp_path / "no-such-data"
    result = _cli("train", "--profile", "smoke", "--set", "dataset=mnist", "--data-dir",
                  str(missing), "--quiet", cwd=tmp_path)
    _assert_one_line(result, 1, str(missing))


def _idx(path: Path, array_shape: tuple, dtype_code: int = 0x08, *, keep: int | None = None):
    """An IDX file (MNIST's format) of zeros; `keep` truncates it to that many bytes."""
    n = 1
    for d in array_shape:
        n *= d
    body = struct.pack(">HBB", 0, dtype_code, len(array_shape))
    body += b"".join(struct.pack(">I", d) for d in array_shape) + bytes(n)
    path.write_bytes(body if keep is None else body[:keep])


def _mnist_folder(tmp_path) -> Path:
    """A small, well-formed MNIST raw folder (60 train, 10 test images of zeros)."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 60), ("t10k", 10)):
        _idx(raw / f"{split}-images-idx3-ubyte", (n, 28, 28))
        _idx(raw / f"{split}-labels-idx1-ubyte", (n,))
    return raw


def test_truncated_mnist_exits_1_naming_the_file(tmp_path):
    raw = _mnist_folder(tmp_path)
    _idx(raw / "train-images-idx3-ubyte", (60, 28, 28), keep=5000)  # cut short
    result = _cli("train", "--profile", "smoke", "--set", "dataset=mnist", "--quiet",
                  cwd=tmp_path, data=tmp_path / "data")
    _assert_one_line(result, 1, "train-images-idx3-ubyte")


def test_truncated_gzipped_mnist_exits_1_naming_the_file(tmp_path):
    raw = _mnist_folder(tmp_path)
    plain = raw / "t10k-labels-idx1-ubyte"
    packed = gzip.compress(plain.read_bytes())
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(packed[: len(packed) // 2])
    plain.unlink()
    result = _cli("train", "--profile", "smoke", "--set", "dataset=mnist", "--quiet",
                  cwd=tmp_path, data=tmp_path / "data")
    _assert_one_line(result, 1, "t10k-labels-idx1-ubyte")


def test_an_image_folder_of_non_images_exits_1(tmp_path):
    folder = tmp_path / "pets"
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (folder / split / cls).mkdir(parents=True)
            for i in range(3):
                (folder / split / cls / f"{i}.png").write_text("not an image")
    result = _cli("train", "--profile", "smoke", "--set", "dataset=image_folder", "--set",
                  f"data_path={folder}", "--quiet", cwd=tmp_path)
    _assert_one_line(result, 1, str(folder))


def test_a_truncated_checkpoint_exits_1_saying_how_to_rebuild(synthetic_npz, tmp_path):
    common = ["train", "--profile", "smoke", "--set", "dataset=npz", "--set",
              f"data_path={synthetic_npz}", "--set", "epochs=1", "--set", "eps=0.1",
              "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    assert _cli(*common, cwd=tmp_path).returncode == 0
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    checkpoint = run / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:200])
    (run / "done.json").unlink()  # so the run must resume from its checkpoint
    result = _cli(*common, cwd=tmp_path)
    _assert_one_line(result, 1, str(checkpoint), "delete it")


# ----------------------------------------------------------------- the system's own errors (35)

def _npz_train(synthetic_npz, runs: Path, *extra: str) -> list[str]:
    return ["train", "--profile", "smoke", "--set", "dataset=npz", "--set",
            f"data_path={synthetic_npz}", "--set", "eps=0.1", "--runs-dir", str(runs),
            "--quiet", *extra]


def test_a_file_where_the_runs_folder_should_be_exits_1_naming_it(synthetic_npz, tmp_path):
    runs = tmp_path / "runs"
    runs.write_text("not a folder")
    result = _cli(*_npz_train(synthetic_npz, runs, "--set", "epochs=1"), cwd=tmp_path)
    _assert_one_line(result, 1, str(runs), "a file stands where a folder is expected")


def test_a_path_too_long_exits_1_saying_so(synthetic_npz, tmp_path):
    runs = tmp_path / ("r" * 300)  # one name over every common file system's 255 bytes
    result = _cli(*_npz_train(synthetic_npz, runs, "--set", "epochs=1"), cwd=tmp_path)
    _assert_one_line(result, 1, "path too long", "r" * 50)


def _unwritable_folder(tmp_path: Path) -> Path | None:
    """A folder this process cannot create files in: a read-only folder of ours, or, as root
    (who may write anywhere), sysfs; None where neither refuses."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    for folder in (locked, Path("/sys")):
        try:
            (folder / "probe").mkdir()
        except OSError as err:
            if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                return folder
        else:
            (folder / "probe").rmdir()
    return None


def test_a_runs_folder_one_cannot_write_exits_1_naming_it(synthetic_npz, tmp_path):
    folder = _unwritable_folder(tmp_path)
    if folder is None:
        pytest.skip("no folder refuses this process's writes here")
    runs = folder / "runs"
    result = _cli(*_npz_train(synthetic_npz, runs, "--set", "epochs=1"), cwd=tmp_path)
    _assert_one_line(result, 1, str(runs), "choose a folder you can write")


def test_a_full_disk_exits_1_naming_the_file_and_keeping_finished_work(synthetic_npz, tmp_path,
                                                                      monkeypatch, capsys):
    """The real entry point (`dfl_lib.__main__.main`), in this process: the disk fills up (every
    fsync fails with ENOSPC, as writing to a full file system does) while the run is written."""
    from dfl_lib.__main__ import main

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    runs = tmp_path / "runs"
    code = main(_npz_train(synthetic_npz, runs, "--set", "epochs=1"))
    err = capsys.readouterr().err.strip()
    assert code == 1 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "no space left on the device" in err and str(runs) in err, err


def test_ctrl_c_says_what_was_kept_and_how_to_resume(synthetic_npz, tmp_path):
    runs = tmp_path / "runs"
    args = _npz_train(synthetic_npz, runs, "--set", "epochs=40")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
           "DFL_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "dfl_lib", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(runs.glob("*/checkpoint.pt")):  # interrupted after a finished epoch
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint in 240 s"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
    _assert_one_line(result, 130, "interrupted", str(runs), "run the same command again",
                     "python -m dfl_lib train --profile smoke")
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    assert (run / "checkpoint.pt").exists() and not (run / "done.json").exists()


# ----------------------------------------------------------------- run records checked (35)

def test_a_hand_edited_run_config_is_refused_naming_the_file(synthetic_npz, tmp_path):
    runs = tmp_path / "runs"
    args = _npz_train(synthetic_npz, runs, "--set", "epochs=1")
    assert _cli(*args, cwd=tmp_path).returncode == 0
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    config = run / "config.json"
    config.write_text(config.read_text().replace('"eps": 0.1', '"eps": 0.3'))
    result = _cli("evaluate", *args[1:], "--suite", "paper", cwd=tmp_path)
    _assert_one_line(result, 1, str(config), "eps=0.3", "0.1")
    assert not list(run.glob("metrics-*.json")), "evaluated under a label it does not have"


@pytest.mark.parametrize("flag", ["--workers", "--threads"])
def test_a_worker_count_below_one_exits_2_naming_it(flag, tmp_path):
    result = _cli("study", "--profile", "smoke", flag, "0", "--plan-only", cwd=tmp_path)
    _assert_one_line(result, 2, flag, "at least 1", "got 0")


def test_a_command_imports_only_what_it_runs():
    """`train` (and a usage error) never imports the study's, the site's or papermill's modules:
    they cost 5-8 s of imports on a 2-core CPU, more than the answer itself took."""
    code = ("import sys; from dfl_lib.__main__ import main; "
            "code = main(['train', '--profile', 'smoke', '--set', 'eps=2', '--quiet']); "
            "heavy = [m for m in ('nbformat', 'papermill', 'jsonschema', 'dfl_lib.study.main', "
            "'dfl_lib.study.site') if m in sys.modules]; print(code, heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "2 []"
