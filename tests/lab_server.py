"""A JupyterLab server for the browser test: started on a free loopback port with a token, its
state (runtime files, settings, workspaces) in a temporary folder, and stopped whatever happens,
kernels included.

    with LabServer(root_dir=folder, state_dir=tmp, threads=1) as lab:
        page.goto(lab.url("lab/tree/06-explore.ipynb"))
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

JUPYTER = Path(sys.executable).with_name("jupyter")


def free_port() -> int:
    """A port the OS says is free on 127.0.0.1 now (the server is told not to retry others)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_env(*, state_dir: Path, threads: int) -> dict:
    """The server's environment, inherited by its kernels: torch/BLAS limited to `threads` so the
    kernel does not starve the test process on a small CPU, Jupyter's state kept out of $HOME,
    no news or update checks (the machine may have no network)."""
    from dfl_lib.study.kernel import install_kernel, kernel_env

    env = dict(os.environ)
    # the notebooks' kernel, "dfl-study", for this interpreter, first on the path (`make lab`)
    env.update(kernel_env(install_kernel(state_dir / "kernel"), environ=env))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env.update(JUPYTER_RUNTIME_DIR=str(state_dir / "runtime"),
               JUPYTER_CONFIG_DIR=str(state_dir / "config"),
               JUPYTERLAB_SETTINGS_DIR=str(state_dir / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(state_dir / "workspaces"))
    # the news prompt ("receive official Jupyter news?") would cover the notebook in screenshots
    settings = state_dir / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return env


class LabServer:
    """`jupyter lab` from this Python's environment, serving `root_dir`; a context manager."""

    def __init__(self, *, root_dir: Path, state_dir: Path, threads: int = 1,
                 start_timeout: float = 90.0):
        self.root_dir, self.state_dir = Path(root_dir), Path(state_dir)
        self.threads, self.start_timeout = threads, start_timeout
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.proc: subprocess.Popen | None = None
        self.log_path = self.state_dir / "lab.log"

    def url(self, path: str = "lab") -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def __enter__(self) -> "LabServer":
        self.state_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(JUPYTER), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root_dir}",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly"]  # no PyPI queries from the test
        if os.geteuid() == 0:  # containers and CI run as root; Jupyter refuses without this
            cmd.append("--allow-root")
        log = self.log_path.open("w")
        # own process group: the whole server is signalled at once when stopped
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     env=lab_env(state_dir=self.state_dir, threads=self.threads),
                                     cwd=self.root_dir, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}; its log "
                                   f"({self.log_path}):\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer on port {self.port} within "
                           f"{self.start_timeout:.0f} s; log: {self.log_path}")

    def kernel_pids(self) -> list[int]:
        """Processes whose command line names this server's runtime folder: its kernels (they
        run in their own process groups, so signalling the server's group misses them)."""
        marker = str(self.state_dir / "runtime")
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline and int(entry.name) != os.getpid():
                pids.append(int(entry.name))
        return pids

    def stop(self) -> None:
        """Ask the server to shut down (it stops its kernels), then kill what is left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                req = urllib.request.Request(self.url("api/shutdown"), method="POST")
                urllib.request.urlopen(req, timeout=5).close()
                self.proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        for pid in self.kernel_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
