"""The package's layers, enforced (issue 18): each sub-package imports only from the layers its
docstring allows. Read from the syntax trees of every module (imports inside functions count:
they run when the function does), so a lazy import cannot hide a dependency.

    core (errors, validation, numerics, device, config, profiles: nothing above the core)
      <- data, models, losses, attacks            (know nothing of training, evaluation, study)
      <- poisoning                                (training-set attacks and their detectors)
      <- defences                                 (a defence: its attack, loss and schedule hooks)
      <- runs                                     (run folders, keys, locks, checkpoints)
      <- training    <- evaluation (never training) <- paper (reads finished results)
      <- figures                                  (draws what the others computed)
      <- experiments  (composition: a run's config, data, training, evaluation, features)
      <- study, cli, demo                         (the runner: everything)
      <- forensics          (flawed evaluations on purpose: nothing imports it, test_forensics.py)

No module imports another that (directly or not) imports it back; the package's own modules
are imported at the top of a module, never inside a function or through importlib (the one
exception: the package's lazy public surface, `dfl_lib.__getattr__`, PEP 562).
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
    "training": {"data", "models", "losses", "attacks", "defences", "runs"},
    "evaluation": {"data", "models", "losses", "attacks", "runs"},
    "paper": {"evaluation"},
    "figures": {"data", "models", "attacks", "evaluation", "paper"},
    "experiments": {"data", "models", "losses", "attacks", "poisoning", "defences", "runs",
                    "training", "evaluation", "paper", "figures"},
}


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
        allowed = CORE
    else:  # study, forensics, cli, demo, __main__, the package's __init__: the top of the stack
        return
    assert imported <= allowed, f"{name} imports {sorted(imported - allowed)}"


def test_the_layers_cover_every_sub_package():
    subs = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert subs == set(ALLOWED) | {"study", "forensics"}, subs


def test_every_sub_package_says_what_it_holds_and_may_import():
    for sub in sorted(set(ALLOWED) | {"study", "forensics"}):
        doc = ast.get_docstring(ast.parse((PACKAGE / sub / "__init__.py").read_text())) or ""
        assert len(doc) > 150 and "import" in doc, f"dfl_lib/{sub}/__init__.py: {doc[:80]!r}"


def test_notebooks_use_only_the_public_surface_and_the_notebook_names():
    """Notebooks import names from `dfl_lib` itself (its PUBLIC table, the users' surface) and
    from `dfl_lib.notebook_api` (their own names), never a module inside."""
    import json
    import re

    import dfl_lib
    from dfl_lib import notebook_api

    tables = {"dfl_lib": set(dfl_lib.PUBLIC), "dfl_lib.notebook_api": set(notebook_api.NOTEBOOK_NAMES)}
    for path in sorted((PACKAGE.parent / "notebooks").glob("*.ipynb")):
        imported = set()
        for cell in json.loads(path.read_text())["cells"]:
            src = "".join(cell["source"])
            outside = re.sub(r"from dfl_lib\.notebook_api import", "", src)
            assert not re.search(r"\bdfl_lib\.\w", outside), f"{path.name}: {src[:120]!r}"
            for module, inside, line in re.findall(
                    r"from (dfl_lib(?:\.notebook_api)?) import (?:\(([^)]*)\)|([^\n(]+))", src):
                names = {n.strip() for n in (inside or line).replace("\n", " ").split(",")
                         if n.strip()}
                assert names <= tables[module], f"{path.name}: {names - tables[module]}"
                imported |= names
        assert imported, f"{path.name} imports nothing from dfl_lib"


# ----------------------------------------------------------------- circles and hidden imports

def _targets(path: Path) -> set[str]:
    """The package's modules that the module at `path` imports (dotted names under dfl_lib),
    `from .x import y` counting y where y is a module of x."""
    name = _module_name(path)
    here = name.split(".") if name else []
    if path.name != "__init__.py":
        here = here[:-1]
    known = {_module_name(p) for p in MODULES}
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                target = ".".join(base + (node.module.split(".") if node.module else []))
            elif node.module and node.module.split(".")[0] == "dfl_lib":
                target = ".".join(node.module.split(".")[1:])
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                out.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            out.update(".".join(a.name.split(".")[1:]) for a in node.names
                       if a.name.startswith("dfl_lib."))
    return {t for t in out if t in known} - {name}


def test_no_import_circle():
    graph = {_module_name(p): _targets(p) for p in MODULES}
    graph.pop("", None)  # the package's __init__: its lazy surface imports on demand
    circles, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                circles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_packages_modules_are_imported_at_the_top(path):
    """No import of the package's own modules inside a function (where a reader and the layer
    test would not see it first) and no importlib of them, but for the lazy public surface."""
    if path in (PACKAGE / "__init__.py", PACKAGE / "notebook_api.py"):  # the lazy surfaces
        return
    tree = ast.parse(path.read_text())
    hidden = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            hidden += [f"line {n.lineno}" for n in ast.walk(fn) if isinstance(n, ast.ImportFrom)
                       and (n.level or (n.module or "").startswith("dfl_lib"))]
    assert not hidden, f"imports of dfl_lib inside functions at {', '.join(hidden)}"
    assert "importlib.import_module" not in path.read_text()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_crosses_a_sub_package(path):
    """A name with a leading underscore is its sub-package's own: another sub-package that
    needs it gets a public name (a reader then knows it is relied upon)."""
    me = _module_name(path).split(".")[0]
    crossing = [f"{node.module}.{a.name}" for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.ImportFrom) and node.level >= 2
                and not (path.name == "__init__.py" and node.level == 2)
                for a in node.names if a.name.startswith("_") and a.name != "__version__"]
    assert not crossing, f"{me} imports private names of other sub-packages: {crossing}"


# Functions that may take more than MAX_PARAMETERS, and why. An attack function's keyword
# settings are what the registry records with every result (read from its signature, as
# torchattacks' and AutoAttack's constructors take them), so they stay flat keywords; the loop
# they share takes theirs.
MAX_PARAMETERS = 9  # "about 8": the bound; past it, a parameter object
WIDE_ON_PURPOSE = {
    "attacks/pgd.py:pgd": "an attack's recorded settings",
    "attacks/cw_pgd.py:cw_pgd": "an attack's recorded settings",
    "attacks/cw.py:cw": "an attack's recorded settings",
    "defences/dynamic.py:dynamic_pgd": "a training attack's settings (Wang et al.'s names)",
    "attacks/base.py:iterate_linf": "the L-inf loop the attacks share: their settings",
    "data/datasets.py:from_arrays": "the six arrays of a train / validation / test split",
    "forensics/attack.py:flawed_accuracy": "the forensics' published-evaluation knobs",
}


def _parameter_counts():
    for path in MODULES:
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = fn.args
                names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
                if names[:1] in (["self"], ["cls"]):
                    names = names[1:]
                yield f"{path.relative_to(PACKAGE)}:{fn.name}", len(names)


def test_parameter_objects_past_about_eight_parameters():
    """A function of more than MAX_PARAMETERS parameters takes a parameter object instead
    (`PoisonBudget`, `CheckBudget`, `AttackSpec`, `Backbone` / `Head`), unless it is named above
    with its reason; a name listed there that no longer needs it is taken off."""
    counts = dict(_parameter_counts())
    wide = sorted(f"{name} ({n})" for name, n in counts.items()
                  if n > MAX_PARAMETERS and name not in WIDE_ON_PURPOSE)
    assert not wide, f"functions of more than {MAX_PARAMETERS} parameters: {', '.join(wide)}"
    stale = sorted(name for name in WIDE_ON_PURPOSE if counts.get(name, 0) <= MAX_PARAMETERS)
    assert not stale, f"listed as wide but no longer are (take them off): {stale}"
