"""The two ways to install (pip's pyproject.toml, conda's environment.yml) name the same
packages, and the installed environment resolves cleanly with JupyterLab 4."""
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    # "jupyterlab>=4.0,<5" -> "jupyterlab"; names compare case- and separator-insensitively
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _spec(requirement: str) -> str:
    # "jupyterlab>=4.0,<5  # why" -> ">=4.0,<5": the range, whitespace and comments left out
    text = requirement.split("#")[0].replace(" ", "")
    return text[len(re.split(r"[<>=!~\[;]", text, maxsplit=1)[0]):]


def _pyproject_specs() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values()
                                      for r in extra]
    return {_name(r): _spec(r) for r in reqs}


def _environment_specs() -> dict[str, str]:
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    specs = {}
    for dep in deps:
        for r in (dep["pip"] if isinstance(dep, dict) else [dep]):
            if not r.startswith("-e"):
                specs[_name(r)] = _spec(r)
    return {k: v for k, v in specs.items() if k not in ("python", "pip")}


def test_environment_yml_and_pyproject_name_the_same_packages():
    assert set(_environment_specs()) == set(_pyproject_specs())


def test_environment_yml_and_pyproject_declare_the_same_ranges():
    """A range is a promise that the suite passes under it: both files make the same one."""
    env, pyproject = _environment_specs(), _pyproject_specs()
    assert {k: env[k] for k in env} == {k: pyproject[k] for k in env}


def test_peer_attack_library_is_pinned_exactly_in_both():
    text = (ROOT / "pyproject.toml").read_text() + (ROOT / "environment.yml").read_text()
    assert text.count("torchattacks==3.3.0") == 2
    assert text.count("adversarial-robustness-toolbox==1.20.1") == 2
    assert version("torchattacks") == "3.3.0"


def test_installed_environment_is_consistent():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_jupyterlab_is_4x():
    assert version("jupyterlab").split(".")[0] == "4"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("table", ["PUBLIC", "NOTEBOOK_NAMES"])
def test_public_and_notebook_names_resolve_and_are_in_their_modules_all(table):
    import importlib

    import dfl_lib
    from dfl_lib import notebook_api

    owner = dfl_lib if table == "PUBLIC" else notebook_api
    for name, (module, line) in getattr(owner, table).items():
        assert line and len(line) < 100, name
        obj = getattr(owner, name)
        assert obj is getattr(importlib.import_module(f"dfl_lib.{module}"), name)
        assert name in importlib.import_module(f"dfl_lib.{module}").__all__, name
    assert set(owner.__all__) - {"__version__", table} == set(getattr(owner, table))
    with pytest.raises(AttributeError, match="no attribute 'private_thing'"):
        owner.private_thing  # noqa: B018


def test_the_users_surface_is_small_and_apart_from_the_notebooks_names():
    """The users' names (load a trained model, evaluate any model, the DFL and the PCL in one's
    own loop) are not lost among the notebooks' bookkeeping (issue 38: 56 of 78 public names
    served the notebooks)."""
    import dfl_lib
    from dfl_lib import notebook_api

    assert not set(dfl_lib.PUBLIC) & set(notebook_api.NOTEBOOK_NAMES)
    assert len(dfl_lib.PUBLIC) <= 30
    assert {"load_model", "evaluate_model", "build_model", "build_loss", "load_dataset",
            "robust_accuracy", "make_config", "train_and_evaluate"} <= set(dfl_lib.PUBLIC)
    # what only a notebook's bookkeeping needs is not public
    assert {"Notebook", "cell_results", "load_run", "poison_records"} <= \
        set(notebook_api.NOTEBOOK_NAMES)


def test_an_open_source_license_and_a_citation_with_the_papers_reference():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"file": "LICENSE"}
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT"
    assert cff["version"] == project["version"]
    (paper,) = [r for r in cff["references"] if r["type"] == "article"]
    papers = sorted((ROOT.parent / "shared" / "paper").glob("*.txt"))
    if papers:  # the paper's own title line, where its text is beside the project
        assert papers[0].read_text().splitlines()[0] == f"# {paper['title']}"
    assert paper["authors"][0]["family-names"] == "Hassanin"
