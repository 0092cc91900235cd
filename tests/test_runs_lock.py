"""Two processes, one run folder: the second waits for the first, says who holds the folder,
then reuses the finished run instead of training it again."""
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from dfl_lib.runs.lock import LOCK_NAME, run_lock

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import sys, time, torch
    torch.set_num_threads(1)
    from pathlib import Path
    from dfl_lib.experiments.configs import make_config
    from dfl_lib.experiments.data import load_data
    from dfl_lib.training.trainer import build_components, train
    cfg = make_config("smoke", dataset="npz", data_path={npz!r}, epochs=3)
    data = load_data(cfg)
    model, loss = build_components(cfg, data)
    def slow(epoch, run_dir):
        Path({marker!r}).write_text(str(epoch))  # the first process is inside the lock
        deadline = time.time() + 120  # held until the test has seen the second one wait
        while not Path({release!r}).exists() and time.time() < deadline:
            time.sleep(0.05)
    history = train(model, loss, data, cfg, runs_root={runs!r}, progress=False, on_epoch_end=slow)
    print("HISTORY", len(history), history[-1]["train_loss"])
""")


def test_a_second_process_waits_then_reuses_the_run(synthetic_npz, tmp_path):
    release = tmp_path / "release"
    script = CHILD.format(npz=str(synthetic_npz), runs=str(tmp_path / "runs"),
                          marker=str(tmp_path / "marker"), release=str(release))
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    first = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (tmp_path / "marker").exists():  # wait until the first one trains
        assert time.time() < deadline and first.poll() is None, first.stderr.read()
        time.sleep(0.1)
    # the first holds the lock (whatever the machine's load) until the second says it waits
    second = subprocess.Popen([sys.executable, "-u", "-c", script], cwd=ROOT, env=env,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(second.stdout), daemon=True)
    reader.start()
    while not any("waiting" in line for line in said):
        assert time.time() < deadline and second.poll() is None, second.stderr.read()
        time.sleep(0.05)
    release.touch()
    out_first, err_first = first.communicate(timeout=300)
    err_second = second.stderr.read()
    second.wait(timeout=300)
    reader.join(timeout=60)
    out_second = "".join(said)
    assert first.returncode == 0, err_first
    assert second.returncode == 0, err_second
    assert f"held by process {first.pid}" in out_second and "waiting" in out_second
    assert "reusing finished run" in out_second
    assert "reusing" not in out_first
    # both report the one history the first process trained
    line = lambda out: next(l for l in out.splitlines() if l.startswith("HISTORY"))  # noqa: E731
    assert line(out_second) == line(out_first)
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert len(json.loads((run / "history.json").read_text())) == 3


def test_the_lock_is_released_when_the_block_ends_or_raises(tmp_path):
    said = []
    try:
        with run_lock(tmp_path, say=said.append):
            raise RuntimeError("training failed")
    except RuntimeError:
        pass
    with run_lock(tmp_path, say=said.append):  # not held any more: no waiting
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
    assert said == [] and set(holder) == {"pid", "host", "since"}
