"""The Jupyter kernel the study's notebooks run in: the project's own interpreter, always.

Jupyter finds a kernel by name on its search path, user folders before the environment's, so a
kernel named `python3` installed by another environment (a user-level install, a conda kernel)
would run the notebooks on an interpreter without this project, or with another torch, and die
with "Kernel died before replying to kernel_info". The study therefore asks for a kernel of its
own name, `dfl-study`, written by ipykernel for `sys.executable` into a folder placed first on
`JUPYTER_PATH`, checks that Jupyter resolves that name to this interpreter before the first
notebook, and tells the kernel which interpreter it must be (`DFL_STUDY_PYTHON`), so a notebook
started on any other refuses in its first call (`study.notebook.Notebook`).

    with project_kernel() as name:       # "dfl-study", resolving to sys.executable
        papermill.execute_notebook(..., kernel_name=name)

`make lab` installs the same kernel into the virtual environment and starts JupyterLab with that
folder first on the path; the committed notebooks name it in their metadata.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from ..errors import UsageError

__all__ = ["KERNEL_NAME", "PYTHON_ENV", "install_kernel", "kernel_env", "check_kernel",
           "project_kernel", "require_project_interpreter"]

KERNEL_NAME = "dfl-study"
DISPLAY_NAME = "Python 3 (dfl-study)"
PYTHON_ENV = "DFL_STUDY_PYTHON"  # the interpreter a study kernel must be, set by the runner


def install_kernel(prefix: str | os.PathLike) -> Path:
    """Write the `dfl-study` kernelspec for this interpreter under `prefix`; returns the Jupyter
    data folder to put first on JUPYTER_PATH (`<prefix>/share/jupyter`). UsageError when this
    interpreter has no ipykernel (it could not run a notebook)."""
    if importlib.util.find_spec("ipykernel") is None:
        raise UsageError(f"the project's interpreter {sys.executable} has no ipykernel, so it "
                         "cannot run the notebooks: install the project (make install, or pip "
                         "install -e .) into it")
    from ipykernel.kernelspec import install

    install(kernel_name=KERNEL_NAME, display_name=DISPLAY_NAME, prefix=str(prefix))
    return Path(prefix) / "share" / "jupyter"


def kernel_env(data_dir: str | os.PathLike, *, environ: dict | None = None) -> dict:
    """The environment variables that make Jupyter find `data_dir`'s kernels first and tell the
    kernel which interpreter it must be: {"JUPYTER_PATH": ..., "DFL_STUDY_PYTHON": ...}."""
    environ = os.environ if environ is None else environ
    rest = environ.get("JUPYTER_PATH", "")
    return {"JUPYTER_PATH": os.pathsep.join([str(data_dir)] + ([rest] if rest else [])),
            PYTHON_ENV: sys.executable}


def check_kernel(name: str = KERNEL_NAME) -> None:
    """UsageError, naming both interpreters, unless Jupyter (as the current environment
    configures it) resolves kernel `name` to this interpreter."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec(name).argv
    except NoSuchKernel:
        raise UsageError(f"Jupyter finds no kernel named {name!r}; the notebooks must run on "
                         f"the project's interpreter {sys.executable}") from None
    found = argv[0] if argv else "(no command)"
    if not _same_interpreter(found, sys.executable):
        raise UsageError(f"Jupyter's kernel {name!r} would run {found}, not the project's "
                         f"interpreter {sys.executable}: remove or rename that kernelspec "
                         f"(jupyter kernelspec list)")


@contextlib.contextmanager
def project_kernel():
    """Within: the `dfl-study` kernel, written for this interpreter into a temporary folder
    first on JUPYTER_PATH, and checked (`check_kernel`); yields its name. The environment is
    restored on exit."""
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", PYTHON_ENV)}
    with tempfile.TemporaryDirectory(prefix="dfl-kernel-") as prefix:
        os.environ.update(kernel_env(install_kernel(prefix)))
        try:
            check_kernel(KERNEL_NAME)
            yield KERNEL_NAME
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def require_project_interpreter() -> None:
    """In a kernel the study started: UsageError naming both interpreters when this is not the
    one the study runs on (`DFL_STUDY_PYTHON`); nothing when the variable is unset (a user's
    own session)."""
    expected = os.environ.get(PYTHON_ENV, "")
    if expected and not _same_interpreter(sys.executable, expected):
        raise UsageError(f"this notebook runs on {sys.executable}, but the study runs on "
                         f"{expected}: its kernel must be the project's ('{KERNEL_NAME}')")


def _same_interpreter(a: str, b: str) -> bool:
    """The same interpreter path, absolute. Not resolved through symlinks: a virtual
    environment's python links to its base interpreter, which other environments share."""
    return os.path.abspath(a) == os.path.abspath(b)
