"""The package's layers, enforced (issue 18): each sub-package imports only from the layers its
docstring allows. Read from the syntax trees of every module (imports inside functions count:
they run when the function does), so a lazy import cannot hide a dependency.

    core (errors, validation, numerics, device, config, profiles)
      <- data, models, losses, attacks            (know nothing of training, evaluation, study)
      <- poisoning                                (training-set attacks and their detectors)
      <- defences                                 (a defence: its attack, loss and schedule hooks)
      <- runs                                     (run folders, keys, locks, checkpoints)
      <- training    <- evaluation (never training) <- paper (reads finished results)
      <- figures                                  (draws what the others computed)
      <- study, cli                               (the runner: everything)
      <- forensics          (flawed evaluations on purpose: nothing imports it, test_forensics.py)
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dfl_lib"
CORE = {"errors", "validation", "numerics", "device", "config", "profiles"}
ALLOWED = {  # sub-package -> what it may import besides core and itself
    "data": set(),
    "models": set(),
    "losses": set(),
    "attacks": set(),
    "poisoning": {"data", "attacks"},
    "defences": {"data", "models", "losses", "attacks"},
    "runs": set(),
    "training": {"data", "models", "losses", "attacks", "defences", "runs", "poisoning"},
    "evaluation": {"data", "models", "losses", "attacks", "runs"},
    "paper": {"evaluation"},
    "figures": {"data", "models", "attacks", "evaluation", "paper"},
}
# core modules may import one another only (config asks the defences for a method's defaults
# lazily, inside a function: the one upward call, checked below)
CORE_MAY_IMPORT = {"config": {"defences"}}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    """Top-level names of dfl_lib that the module at `path` imports (its first component)."""
    name = _module_name(path)
    here = name.split(".") if name else []
    if path.name != "__init__.py":
        here = here[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
                if not target:  # from .. import x: x is a top-level name
                    out.update(a.name for a in node.names)
                else:
                    out.add(target[0])
            elif node.module and node.module.split(".")[0] == "dfl_lib":
                parts = node.module.split(".")[1:]
                out.update([parts[0]] if parts else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "dfl_lib" and len(parts) > 1:
                    out.add(parts[1])
    return out


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_imports_only_its_layers(path):
    name = _module_name(path) or "__init__"
    top = name.split(".")[0]
    imported = _imported(path) - {top, "__version__"}
    if top in ALLOWED:
        allowed = CORE | ALLOWED[top]
    elif top in CORE:
        allowed = CORE | CORE_MAY_IMPORT.get(top, set())
    else:  # study, forensics, cli, __main__, the package's __init__: the top of the stack
        return
    assert imported <= allowed, f"{name} imports {sorted(imported - allowed)}"


def test_the_layers_cover_every_sub_package():
    subs = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert subs == set(ALLOWED) | {"study", "forensics"}, subs


def test_every_sub_package_says_what_it_holds_and_may_import():
    for sub in sorted(set(ALLOWED) | {"study", "forensics"}):
        doc = ast.get_docstring(ast.parse((PACKAGE / sub / "__init__.py").read_text())) or ""
        assert len(doc) > 150 and "import" in doc, f"dfl_lib/{sub}/__init__.py: {doc[:80]!r}"


def test_notebooks_use_only_the_public_surface():
    """Notebooks import names from `dfl_lib` itself (its PUBLIC table), never a module inside."""
    import json
    import re

    import dfl_lib

    for path in sorted((PACKAGE.parent / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            src = "".join(cell["source"])
            assert not re.search(r"\bdfl_lib\.\w", src), f"{path.name}: {src[:120]!r}"
            for group in re.findall(r"from dfl_lib import \(?([^)\n]*(?:\n[^)\n]*)*)\)?", src):
                names = {n.strip() for n in group.replace("\n", " ").split(",") if n.strip()}
                assert names <= set(dfl_lib.PUBLIC), f"{path.name}: {names - set(dfl_lib.PUBLIC)}"
