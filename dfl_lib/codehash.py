"""A hash of the code that can change a result: the syntax trees of a module and of every module
of this package it imports, transitively, with docstrings removed.

Comments and formatting never reach the syntax tree, and docstrings are dropped from it, so
editing prose keeps the hash; changing any statement, name or constant changes it.

    code_hash(entry="train")     # what a training run executes
    code_hash(entry="experiment")  # training plus evaluation and the masking checks
"""
from __future__ import annotations

import ast
import hashlib
import os
from pathlib import Path

from .errors import UsageError

__all__ = ["code_hash", "module_closure", "normalised_tree"]

PACKAGE_DIR = Path(__file__).resolve().parent


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


def _imports(tree: ast.AST, package: str) -> set[str]:
    """Names of this package's modules that a module imports (relative or absolute)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or (node.level == 0 and (node.module or "").startswith(package)):
                base = node.module if node.level == 1 else node.module[len(package):].lstrip(".")
                if base:
                    out.add(base.split(".")[0])
                else:  # from . import runio
                    out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(package + "."):
                    out.add(alias.name[len(package) + 1:].split(".")[0])
    return out


def module_closure(entry: str, *, package_dir: str | os.PathLike | None = None) -> list[str]:
    """`entry` and every package module it imports, transitively, sorted (imports inside
    functions count: they run when the function does)."""
    root = Path(package_dir) if package_dir is not None else PACKAGE_DIR
    package = root.name
    if not (root / f"{entry}.py").exists():
        raise UsageError(f"no module {entry!r} in {root}")
    seen, todo = set(), [entry]
    while todo:
        name = todo.pop()
        path = root / f"{name}.py"
        if name in seen or not path.exists():
            continue
        seen.add(name)
        todo.extend(_imports(ast.parse(path.read_text()), package) - seen)
    return sorted(seen)


def code_hash(*, entry: str, package_dir: str | os.PathLike | None = None) -> str:
    """12 hex digits of the sha256 over (module name, normalised tree) of `module_closure`."""
    root = Path(package_dir) if package_dir is not None else PACKAGE_DIR
    digest = hashlib.sha256()
    for name in module_closure(entry, package_dir=root):
        digest.update(name.encode() + b"\0")
        digest.update(normalised_tree((root / f"{name}.py").read_text()).encode() + b"\0")
    return digest.hexdigest()[:12]
