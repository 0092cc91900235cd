"""A hash of the code that can change a result: the syntax trees of a module and of every module
of this package it imports, transitively, with docstrings removed.

Comments and formatting never reach the syntax tree, and docstrings are dropped from it, so
editing prose keeps the hash; changing any statement, name or constant changes it.

    code_hash(entry="training.trainer")    # what a training run executes
    code_hash(entry="study.experiment")    # training plus evaluation and the masking checks

Modules are named by their dotted path under the package; a sub-package's __init__.py counts
wherever one of its modules is imported, since Python runs it first.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import os
from pathlib import Path

from ..errors import UsageError

__all__ = ["code_hash", "module_closure", "normalised_tree"]

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # dfl_lib/, holding every sub-package


# Parsing and dumping are pure functions of a module's text, so they are memoised on the text:
# every run and evaluation hashes its code again (5 hashes of 45-230 modules per smoke run cost
# 5 of its 19 s), while an edited file is a new text and is parsed afresh.
@functools.lru_cache(maxsize=2048)
def normalised_tree(source: str) -> str:
    """ast.dump of `source` without docstrings (module, class and function ones) or positions."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=True, include_attributes=False)


def _module_path(root: Path, name: str) -> Path | None:
    """The file of dotted module `name` under `root` ("training.trainer" -> training/trainer.py,
    a package -> its __init__.py), or None when it is not a module of the package."""
    base = root.joinpath(*name.split(".")) if name else root
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


@functools.lru_cache(maxsize=2048)
def _import_statements(source: str) -> tuple[tuple, ...]:
    """Every import of `source`, anywhere in it: ("from", level, module or "", names) or
    ("import", None, None, names)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            out.append(("from", node.level, node.module or "", tuple(a.name for a in node.names)))
        elif isinstance(node, ast.Import):
            out.append(("import", None, None, tuple(a.name for a in node.names)))
    return tuple(out)


def _imports(source: str, *, module: str, is_package: bool, package: str,
             root: Path) -> set[str]:
    """Dotted names of this package's modules that `module` (its text: `source`) imports
    (relative or absolute), and the packages above each (importing a.b runs a/__init__.py
    first)."""
    here = module.split(".") if module else []
    if not is_package:
        here = here[:-1]  # the package a plain module lives in
    targets = set()
    for kind, level, from_module, names in _import_statements(source):
        if kind == "from":
            if level:
                base = here[:len(here) - (level - 1)] if level > 1 else here
                name = ".".join(base + (from_module.split(".") if from_module else []))
            elif from_module == package or from_module.startswith(package + "."):
                name = from_module[len(package):].lstrip(".")
            else:
                continue
            targets.add(name)
            for alias in names:  # `from . import io`: io may be a module itself
                sub = f"{name}.{alias}" if name else alias
                if _module_path(root, sub) is not None:
                    targets.add(sub)
        else:
            for alias in names:
                if alias.startswith(package + "."):
                    targets.add(alias[len(package) + 1:])
    out = set()
    for name in targets:
        parts = name.split(".") if name else []
        for i in range(1, len(parts) + 1):  # the module and every package above it
            if _module_path(root, ".".join(parts[:i])) is not None:
                out.add(".".join(parts[:i]))
    return out


def module_closure(entry: str, *, package_dir: str | os.PathLike | None = None) -> list[str]:
    """`entry` (a dotted module name under the package, e.g. "training.trainer") and every
    package module it imports, transitively, with the packages' __init__ modules they run,
    sorted (imports inside functions count: they run when the function does)."""
    root = Path(package_dir) if package_dir is not None else PACKAGE_DIR
    package = root.name
    if _module_path(root, entry) is None:
        raise UsageError(f"no module {entry!r} in {root}")
    seen, todo = set(), [entry]
    parts = entry.split(".")
    todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # its packages run first
    while todo:
        name = todo.pop()
        path = _module_path(root, name)
        if name in seen or path is None:
            continue
        seen.add(name)
        todo.extend(_imports(path.read_text(), module=name,
                             is_package=path.name == "__init__.py", package=package,
                             root=root) - seen)
    return sorted(seen)


def code_hash(*, entry: str, package_dir: str | os.PathLike | None = None) -> str:
    """12 hex digits of the sha256 over (module name, normalised tree) of `module_closure`."""
    root = Path(package_dir) if package_dir is not None else PACKAGE_DIR
    digest = hashlib.sha256()
    for name in module_closure(entry, package_dir=root):
        digest.update(name.encode() + b"\0")
        digest.update(normalised_tree(_module_path(root, name).read_text()).encode() + b"\0")
    return digest.hexdigest()[:12]
