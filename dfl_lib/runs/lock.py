"""An OS file lock on a run folder, held while a process trains into it.

A user may run a notebook in JupyterLab while papermill runs the same configuration: the second
process waits for the first (saying who holds the folder) and then finds the run finished and
reuses it, instead of training the same run twice into the same files. The lock is an advisory
`flock` on `<run folder>/lock`: the operating system releases it when its process exits or is
killed, so a crashed run never leaves the folder locked.

    with run_lock(run_dir):
        ...   # find, reuse, resume, train, checkpoint, finish
"""
from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

__all__ = ["run_lock", "LOCK_NAME"]

LOCK_NAME = "lock"


@contextmanager
def run_lock(run_dir: str | os.PathLike, *, say: Callable[[str], None] = print):
    """Hold the run folder's lock for the `with` block, waiting for another holder first.

    The lock file records the holder (pid, host, since when) so a waiting process can say who
    it waits for. Without `fcntl` (Windows) there is no lock: a warning is printed once per call.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on the project's machines
        say("warning: no fcntl here; the run folder is not locked against a second process")
        yield
        return
    path = Path(run_dir) / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"run folder {Path(run_dir).name} is held by {_holder(path)}; waiting for it "
                "to finish (then its run is reused)")
            start = time.perf_counter()
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the holder releases or dies
            say(f"run folder {Path(run_dir).name} released after {time.perf_counter() - start:.0f} s")
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _holder(path: Path) -> str:
    try:
        who = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    if not who:
        return "another process"
    return f"process {who.get('pid')} on {who.get('host')} (since {who.get('since')})"
