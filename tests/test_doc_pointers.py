"""Every dotted name a docstring puts in backticks (`runs.lock.run_lock`, `Defence.validate`)
resolves to a module or an object of the package (issue 36): a pointer to a module that was
moved or renamed fails here, not in a newcomer's search. A pointer is resolved from the package
root, from the module's own package or from the module itself, as a reader would look."""
from __future__ import annotations

import ast
import importlib
import re
from functools import lru_cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dfl_lib"
TOKEN = re.compile(r"`([A-Za-z_]\w*(?:\.(?:\w+|\*))+)`")
# names of other libraries, and of values rather than code (`cfg.lr`, `self.x`)
NOT_OURS = {"torch", "np", "numpy", "nn", "F", "plt", "torchattacks", "umap", "sklearn", "os",
            "sys", "json", "papermill", "ipywidgets", "widgets", "art", "tqdm", "math", "time",
            "datetime", "torchvision", "matplotlib", "jupyter_client", "ipykernel", "scipy",
            "seaborn", "pathlib", "subprocess", "dataclasses", "typing", "functools", "platform",
            "importlib", "self", "cfg", "args", "config", "batches", "activation_defence", "draw"}
FILE_SUFFIXES = (".py", ".json", ".csv", ".png", ".pt", ".npz", ".md", ".jsonl", ".ipynb",
                 ".npy", ".pdf", ".toml", ".yml", ".txt")


@lru_cache(maxsize=1)
def _classes() -> dict[str, list[type]]:
    """{class name: the package's classes of that name}, every module imported."""
    out: dict[str, list[type]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        name = ".".join(["dfl_lib"] + list(rel.parts[:-1] if rel.name == "__init__" else rel.parts))
        for obj in vars(importlib.import_module(name)).values():
            if isinstance(obj, type) and obj.__module__.startswith("dfl_lib"):
                out.setdefault(obj.__name__, []).append(obj)
    return out


def _has(cls: type, name: str) -> bool:
    """An attribute, a dataclass field or an annotated field of `cls` or its bases."""
    return hasattr(cls, name) or any(name in getattr(k, "__annotations__", {})
                                     for k in cls.__mro__)


def _resolves(dotted: str, module: str) -> bool:
    parts = [p for p in dotted.split(".") if p != "*"]
    if len(parts) == 2 and any(_has(c, parts[1]) for c in _classes().get(parts[0], ())):
        return True  # Class.member, as docstrings name a method or a field
    if parts[0] == "dfl_lib":
        parts = parts[1:]
    chain = module.split(".")
    bases = ["dfl_lib"] + [".".join(["dfl_lib"] + chain[:i]) for i in range(len(chain), 0, -1)]
    for base in bases:
        for cut in range(len(parts), -1, -1):
            try:
                obj = importlib.import_module(".".join([base] + parts[:cut]))
            except ImportError:
                continue
            for attr in parts[cut:]:
                if isinstance(obj, type) and not hasattr(obj, attr) and _has(obj, attr):
                    return True  # a dataclass field without a default
                if not hasattr(obj, attr):
                    break
                obj = getattr(obj, attr)
            else:
                return True
            break
    return False


def _pointers():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                for token in TOKEN.findall(ast.get_docstring(node) or ""):
                    if token.split(".")[0] not in NOT_OURS and not token.endswith(FILE_SUFFIXES):
                        yield f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 1)}", \
                            token, module


def test_every_docstring_pointer_resolves():
    broken = [f"{where}: `{token}`" for where, token, module in _pointers()
              if not _resolves(token, module)]
    assert not broken, "docstring pointers that lead nowhere:\n" + "\n".join(broken)


def test_the_resolver_refuses_a_stale_pointer():
    assert _resolves("runs.lock.run_lock", "training.trainer")
    assert _resolves("featurespace.umap_embedding", "evaluation.robust")
    assert not _resolves("methods.training_attack", "training.trainer")  # its old home
    assert not _resolves("loops.train_epoch", "training.trainer")
