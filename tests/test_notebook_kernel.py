"""The notebooks run on the project's own interpreter (issue 35): a kernel named `python3` (or
even `dfl-study`) installed by another environment, found first by Jupyter, never runs them."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
import smoke_study

from dfl_lib.errors import UsageError
from dfl_lib.study.index import run_notebooks
from dfl_lib.study.kernel import (KERNEL_NAME, PYTHON_ENV, check_kernel, project_kernel,
                                  require_project_interpreter)

ROOT = Path(__file__).resolve().parents[1]
FOREIGN = smoke_study.FOREIGN_PYTHON  # an interpreter that is not the project's
foreign_kernels = smoke_study.foreign_kernels


@pytest.fixture
def foreign_jupyter(tmp_path, monkeypatch):
    """Foreign kernels first on JUPYTER_PATH and in the user's data folder."""
    monkeypatch.setenv("JUPYTER_PATH", str(foreign_kernels(tmp_path / "path-kernels")))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(foreign_kernels(tmp_path / "user-kernels")))
    monkeypatch.delenv(PYTHON_ENV, raising=False)
    return tmp_path


def test_a_foreign_kernel_first_on_the_path_is_refused_naming_both(foreign_jupyter):
    with pytest.raises(UsageError) as err:
        check_kernel(KERNEL_NAME)
    assert FOREIGN in str(err.value) and sys.executable in str(err.value)


def test_the_project_kernel_resolves_to_this_interpreter(foreign_jupyter):
    from jupyter_client.kernelspec import KernelSpecManager

    with project_kernel() as name:
        assert KernelSpecManager().get_kernel_spec(name).argv[0] == sys.executable
    assert os.environ["JUPYTER_PATH"] == str(foreign_jupyter / "path-kernels")  # restored


def test_a_kernel_on_another_interpreter_refuses_naming_both(monkeypatch):
    monkeypatch.setenv(PYTHON_ENV, FOREIGN)
    with pytest.raises(UsageError) as err:
        require_project_interpreter()
    assert FOREIGN in str(err.value) and sys.executable in str(err.value)
    monkeypatch.setenv(PYTHON_ENV, sys.executable)
    require_project_interpreter()  # the right one passes


def _recording_notebook(folder: Path, name: str) -> None:
    """A notebook that writes the interpreter it runs on into OUT_DIR/<name>.txt."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('PROFILE = "smoke"\nDEVICE = "auto"\nDATA_DIR = ""\n'
                                       'RUNS_DIR = ""\nOUT_DIR = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import sys, pathlib\n"
        "from dfl_lib.study.kernel import require_project_interpreter\n"
        "require_project_interpreter()\n"
        f"pathlib.Path(OUT_DIR, '{name}.txt').write_text(sys.executable)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{name}.ipynb")


def test_the_study_runs_its_notebooks_on_this_interpreter(foreign_jupyter):
    notebooks, out = foreign_jupyter / "notebooks", foreign_jupyter / "out"
    _recording_notebook(notebooks, "01-depth")
    run_notebooks("smoke", out_dir=out, runs_dir=foreign_jupyter / "runs",
                  notebooks_dir=notebooks, only=("01-depth",))
    assert (out / "01-depth.txt").read_text() == sys.executable


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_committed_notebooks_name_the_project_kernel(path):
    """JupyterLab opens them on the project's kernel (`make lab` installs it)."""
    assert nbformat.read(path, as_version=4).metadata["kernelspec"]["name"] == KERNEL_NAME
