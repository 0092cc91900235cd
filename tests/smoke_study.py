"""The smoke study the notebook tests read, shared by two processes so it takes half the time.

The test process runs the smoke plan forward (`run_plan`, as the study command does) while a
helper process started from here runs it backward (`run_item`): each reuses what the other
finished, and waits on the run lock for a run the other is training. Then each runs the
notebooks nobody has claimed yet (the test process from the first, the helper from the last),
claiming one with a file created exclusively. Every notebook leaves `<name>.json` (its seconds)
or `<name>.failed` (why) in the claims folder.

    python tests/smoke_study.py <root> <data dir>    # the helper's share (the test starts it)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILE = "smoke"
FOREIGN_PYTHON = "/opt/other-env/bin/python"  # a user's other interpreter (not on this machine)
WAIT_SECONDS = 1800  # the helper's share takes about 4 minutes on this project's CPU


def folders(root: Path) -> tuple[Path, Path, Path]:
    """(runs, reports, claims) under the study's root."""
    return root / "runs", root / "reports", root / "claims"


def run_notebook_share(root: Path, *, data_dir: str, names: list[str]) -> None:
    """Run each notebook of `names` that nobody has claimed, in that order."""
    from dfl_lib.runs import io as runio
    from dfl_lib.study.index import run_notebooks

    runs, out, claims = folders(root)
    claims.mkdir(parents=True, exist_ok=True)
    for name in names:
        try:
            os.close(os.open(claims / f"{name}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue  # the other process runs it
        try:
            seconds = run_notebooks(PROFILE, out_dir=out, runs_dir=runs, data_dir=data_dir,
                                    only=(name,))
        except Exception as err:  # NotebookFailed, or anything the runner raised
            (claims / f"{name}.failed").write_text(f"{type(err).__name__}: {err}")
            raise
        runio.write_json(claims / f"{name}.json", seconds[name])  # atomically: the other polls


def foreign_kernels(folder: Path) -> Path:
    """A Jupyter data folder whose kernels `python3` and `dfl-study` run another interpreter
    (one that does not exist): a notebook started on either fails. Returns the folder."""
    for name in ("python3", "dfl-study"):
        spec = folder / "kernels" / name
        spec.mkdir(parents=True, exist_ok=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [FOREIGN_PYTHON, "-m", "ipykernel_launcher", "-f",
                     "{connection_file}"], "display_name": f"foreign {name}",
            "language": "python"}))
    return folder


def start_helper(root: Path, *, data_dir: str) -> subprocess.Popen:
    """The helper process (one torch thread), its output in <root>/helper.log."""
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    log = open(root / "helper.log", "wb")
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(root), data_dir],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def notebook_seconds(root: Path, *, names: list[str], helper: subprocess.Popen) -> dict:
    """{notebook: seconds} once every notebook is done and the helper has exited; AssertionError
    naming a notebook that failed, or the helper's exit code and log when it failed."""
    _, _, claims = folders(root)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        failed = [n for n in names if (claims / f"{n}.failed").exists()]
        assert not failed, (f"notebook {failed[0]} failed: "
                            f"{(claims / f'{failed[0]}.failed').read_text()}")
        missing = [n for n in names if not (claims / f"{n}.json").exists()]
        code = helper.poll()
        if code is not None and code != 0:  # a failure in its share of the plan counts too
            log = (root / "helper.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"the smoke study's helper exited {code}:\n{log}")
        if not missing and code == 0:
            return {n: json.loads((claims / f"{n}.json").read_text()) for n in names}
        assert time.monotonic() < deadline, \
            f"{', '.join(missing) or 'the helper'} not done in {WAIT_SECONDS} s"
        time.sleep(0.5)


def _warm_umap() -> None:
    """Compile UMAP's numba kernels into their disk cache once, before notebooks 05 and 07 and
    tests/test_featurespace.py ask for them (each compiled them again: 20-40 s of a core)."""
    import torch

    from dfl_lib.evaluation.featurespace import umap_embedding

    gen = torch.Generator().manual_seed(0)
    umap_embedding(torch.randn(230, 16, generator=gen), torch.randn(25, 16, generator=gen), seed=0)


def _helper_share(root: Path, data_dir: str) -> None:
    """The plan backward, then the notebooks from the last."""
    from dfl_lib.device import set_threads
    from dfl_lib.study.index import NOTEBOOKS
    from dfl_lib.study.plan import study_plan
    from dfl_lib.study.runner import run_item

    set_threads(1)
    _warm_umap()
    runs, _, _ = folders(root)
    for item in reversed(study_plan(PROFILE)):
        run_item(item, data_root=data_dir, runs_root=runs)
    run_notebook_share(root, data_dir=data_dir, names=list(reversed(NOTEBOOKS)))


if __name__ == "__main__":
    _helper_share(Path(sys.argv[1]), sys.argv[2])
