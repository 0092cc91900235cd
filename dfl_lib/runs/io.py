"""Run I/O: run keys, provenance, and files written atomically (JSON, checkpoints, RNG state).

A run lives in `<runs root>/<readable name>-<key>`, where the key hashes the config, the data
fingerprint and the declared version of the computations it runs (`runs.versions`), so changing
any of them starts a new run instead of silently reusing an old one, while moving code keeps it:

    key = run_key(config=cfg.to_dict(), data_fingerprint=data.fingerprint,
                  versions=computation_version("train"))
    rdir = keyed_folder(root=default_runs_root(), name="mnist-resnet18-dfl-pcl-pgd-s0", key=key)
    save_checkpoint(rdir / "checkpoint.pt", state={..., "rng": rng_state(gens)})

Every file is written atomically (temporary file in the same folder, fsync, `os.replace`), so a
crash or Ctrl-C mid-write leaves the previous version intact. Checkpoints hold only tensors and
plain Python values and load with `torch.load(weights_only=True)`: no pickled custom objects.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import random
import re
import secrets
import subprocess
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..errors import DataFileError, MissingDataError, UsageError
from .versions import VERSIONS

__all__ = [
    "canonical_json", "short_hash", "run_key", "default_runs_root", "keyed_folder", "git_state",
    "committed_text",
    "provenance", "write_json", "read_json", "save_checkpoint", "load_checkpoint", "rng_state",
    "set_rng_state", "check_compatible", "latest_checkpoint", "is_finished", "json_default",
    "CHECKPOINT_NAME", "DONE_NAME",
]

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # dfl_lib/, holding every sub-package
REPO_ROOT = PACKAGE_DIR.parent        # the checkout holding dfl_lib/, runs/ and notebooks/
RUNS_ENV = "DFL_RUNS_DIR"
CHECKPOINT_NAME = "checkpoint.pt"     # overwritten atomically every epoch by the training engine
DONE_NAME = "done.json"               # written last, when a run has finished
UNKNOWN = "unknown"
_VERSIONED_PACKAGES = ("torchvision", "numpy", "torchattacks")


# --------------------------------------------------------------------------- keys and folders

def canonical_json(obj) -> str:
    """One JSON text per value: sorted keys, no whitespace, floats as `repr`, ASCII only.

    Tuples are written as lists. Raises TypeError, naming the key path (e.g. `config.lr`), on
    anything that is not a JSON value: non-string dict keys, NaN/inf, numpy ints, tensors, paths.
    """
    _check_json(obj, path="")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def _check_json(obj, *, path: str) -> None:
    where = path or "(top level)"
    if obj is None or isinstance(obj, (str, bool, int)):
        return
    if isinstance(obj, float):  # json writes float.__repr__, also for numpy float64 (a float)
        if not math.isfinite(obj):
            raise TypeError(f"canonical_json: non-finite float {obj!r} at {where} is not JSON")
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"canonical_json: dict key {key!r} ({type(key).__name__}) at "
                                f"{where} is not a string")
            _check_json(value, path=f"{path}.{key}" if path else key)
        return
    if isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _check_json(value, path=f"{path}[{i}]")
        return
    raise TypeError(f"canonical_json: value at {where} has type {type(obj).__name__}, "
                    f"which is not a JSON value")


def short_hash(spec) -> str:
    """First 12 hex digits of the sha256 of `spec`'s canonical JSON: the one key maker of runs,
    evaluations, poisoned sets, poisoned-run measurements and Figure 4's nets."""
    return hashlib.sha256(canonical_json(spec).encode("ascii")).hexdigest()[:12]


def run_key(*, config: dict, data_fingerprint: str, versions: str) -> str:
    """First 12 hex digits of the sha256 of the canonical JSON of config, data and the versions
    of the computations the run executes (`versions.computation_version`)."""
    if not isinstance(config, dict):
        raise TypeError(f"run_key: config must be a dict, got {type(config).__name__}")
    for name, value in (("data_fingerprint", data_fingerprint), ("versions", versions)):
        if not isinstance(value, str):
            raise TypeError(f"run_key: {name} must be a str, got {type(value).__name__}")
    return short_hash({"config": config, "data": data_fingerprint, "code": versions})


def default_runs_root() -> Path:
    """`$DFL_RUNS_DIR` when set, else `<repo>/runs` (the repo is the folder holding dfl_lib/)."""
    env = os.environ.get(RUNS_ENV, "").strip()
    return Path(env).expanduser() if env else REPO_ROOT / "runs"


def keyed_folder(*, root: str | os.PathLike | None, name: str, key: str) -> Path:
    """`<root>/<name>-<key>`, with `name` reduced to [A-Za-z0-9._-]; the folder is not created.

    `root=None` means `default_runs_root()`.
    """
    if not re.fullmatch(r"[A-Za-z0-9]+", key or ""):
        raise UsageError(f"keyed_folder: key must be alphanumeric (a run_key), got {key!r}")
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:120] or "run"
    base = Path(root).expanduser() if root is not None else default_runs_root()
    return base / f"{readable}-{key}"


# --------------------------------------------------------------------------- provenance

OUTPUT_FOLDERS = ("reports", "runs")  # what runs write: not part of a tree's dirtiness
# what exploring changes: a notebook edited or autosaved in JupyterLab (the study runs the
# committed notebooks: `committed_text`), not part of a tree's dirtiness either
EXPLORED_FOLDERS = ("notebooks",)
PACKAGE_FOLDER = "dfl_lib"  # an untracked file in it is code a run would import


def git_state(repo: str | os.PathLike | None = None) -> dict:
    """`{"commit": sha or "unknown", "dirty": bool or "unknown"}` for `repo` (default: this
    checkout); dirty: uncommitted changes to tracked files outside `OUTPUT_FOLDERS` (reports/,
    runs/) and `EXPLORED_FOLDERS` (notebooks/), or an untracked file inside the package (a
    build/ folder or a scratch file beside it does not count). Never raises: no git, no repo,
    no commit yet or a refused repo give "unknown".

    Only `repo` itself is asked (it must hold `.git`), so an installed copy of the package does
    not report the commit of some unrelated repository above it.
    """
    repo = Path(repo) if repo is not None else REPO_ROOT
    unknown = {"commit": UNKNOWN, "dirty": UNKNOWN}
    if not (repo / ".git").exists():
        return unknown
    commit = _git(repo, "rev-parse", "HEAD")
    if commit is None or not re.fullmatch(r"[0-9a-f]{40,64}", commit):
        return unknown
    # "dirty" means the code and configuration: not the reports a study run is writing while it
    # runs (it would otherwise find its own tree dirty after its first report), nor a notebook
    # being explored (the study runs the committed ones)
    tracked = _git(repo, "status", "--porcelain", "--untracked-files=no", "--", ".",
                   *(f":(exclude){folder}" for folder in OUTPUT_FOLDERS + EXPLORED_FOLDERS))
    package = _git(repo, "status", "--porcelain", "--", PACKAGE_FOLDER)
    if tracked is None or package is None:
        return {"commit": commit, "dirty": UNKNOWN}
    return {"commit": commit, "dirty": bool(tracked or package)}


def committed_text(path: str | os.PathLike, *, repo: str | os.PathLike | None = None) -> str | None:
    """The text of `path` (a file inside `repo`, default this checkout) as committed at HEAD, or
    None where there is no git, no repo or the file is not committed."""
    repo = Path(repo) if repo is not None else REPO_ROOT
    if not (repo / ".git").exists():
        return None
    try:
        rel = Path(path).resolve().relative_to(repo.resolve())
    except ValueError:  # a file outside the repository
        return None
    return _git(repo, "show", f"HEAD:{rel.as_posix()}")


def _git(repo: Path, *args: str) -> str | None:
    """stdout of `git -C repo *args`, stripped, or None on any failure."""
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE",
                                                             "GIT_INDEX_FILE")}
    env["LC_ALL"] = "C"
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              timeout=10, env=env, check=False)
    except (OSError, subprocess.SubprocessError):  # git missing, not executable, or hung
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _package_versions() -> dict:
    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "cuda": torch.version.cuda or "none", "dfl_lib": __version__}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance(*, config: dict, seed: int, device: str,
               wall_seconds: float | None = None) -> dict:
    """What made a result: config, seed, git commit (+ dirty), computation versions (`runs.versions`), package versions,
    device, platform, UTC timestamp and wall time in seconds.

    Holds no hostname, user name or absolute path. Never raises on a missing git or repo.
    """
    prov = {
        "config": config,
        "seed": seed,
        "device": str(device),
        "git_commit": None, "git_dirty": None,  # filled below; keys kept in reading order
        "computations": dict(VERSIONS),  # the declared version of every computation
        "versions": _package_versions(),
        "platform": platform.platform(),
        "timestamp_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": None if wall_seconds is None else float(wall_seconds),
    }
    git = git_state()
    prov["git_commit"], prov["git_dirty"] = git["commit"], git["dirty"]
    if str(device).startswith("cuda") and torch.cuda.is_available():
        prov["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return prov


# --------------------------------------------------------------------------- atomic files

def _atomic_write(path: str | os.PathLike, write: Callable,
                  check: Callable[[Path], None] | None = None) -> Path:
    """Call `write(file)` on a temporary file beside `path`, fsync it, `check(tmp_path)` it if
    given, then `os.replace` it onto `path`. On any failure (Ctrl-C included) the temporary file
    is removed and `path` is left as it was. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        # os.open with mode 0o666 lets the umask decide permissions, as a plain open() would
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None:  # a full disk names no file:
            err.filename, err.filename2 = str(path), None      # name the one being written
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; not possible on every OS (Windows), so best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def json_default(obj):
    """Numbers that json does not know but that are plainly numbers: numpy scalars, 0-d tensors;
    paths as strings. Anything else (arrays, models) is an error, not a silent repr."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, torch.Tensor) and obj.numel() == 1 and obj.dim() == 0:
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"write_json: {type(obj).__name__} is not JSON serialisable")


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write `obj` as indented JSON, atomically. NaN/inf are kept (Python's json reads them)."""
    text = json.dumps(obj, indent=2, default=json_default) + "\n"
    return _atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def read_json(path: str | os.PathLike):
    """Read a JSON file; a missing file raises MissingDataError (a FileNotFoundError), bad JSON
    a DataFileError (an OSError), both naming the path."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"no JSON file at {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFileError(f"{path} is not valid JSON ({err}); it was written by an interrupted "
                            "or older run: delete it and run the command again to rebuild it") from err


# --------------------------------------------------------------------------- checkpoints

def save_checkpoint(path: str | os.PathLike, *, state: dict, verify: bool = True) -> Path:
    """`torch.save(state)` atomically; the previous checkpoint survives any failure.

    `state` must hold only tensors and plain values (the state_dicts of model, loss, optimiser
    and scheduler, `epoch`, `history`, `config`, `rng_state(...)`). With `verify`, the written
    file is read back with `weights_only=True` (memory-mapped, so cheap) before it replaces the
    old one, so a state that could not be resumed from fails now, not at resume time.
    """
    if not isinstance(state, dict):
        raise TypeError(f"save_checkpoint: state must be a dict, got {type(state).__name__}")
    path = Path(path)

    def check(tmp: Path) -> None:
        try:
            torch.load(tmp, weights_only=True, map_location="cpu", mmap=True)
        except Exception as err:  # re-raised with the cause chained, nothing swallowed
            raise TypeError(f"save_checkpoint: state for {path} would not load with "
                            f"weights_only=True (custom objects?): {err}") from err

    return _atomic_write(path, lambda f: torch.save(state, f), check if verify else None)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """`torch.load(path, weights_only=True, map_location="cpu")`, with errors that name the
    path: MissingDataError (a FileNotFoundError) when missing, DataFileError (an OSError) when
    corrupt, truncated or not weights_only-safe; both say how to rebuild it."""
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"no checkpoint at {path}; train the run (python -m dfl_lib train "
                               "with the same settings) to write it")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        first_line = (str(err).strip().splitlines() or [""])[0]
        raise DataFileError(f"could not load checkpoint {path}: corrupt, truncated, or not "
                            f"loadable with weights_only=True ({type(err).__name__}: "
                            f"{first_line}); delete it and run the same command again to "
                            "retrain the run") from err
    if not isinstance(state, dict):
        raise DataFileError(f"checkpoint {path} holds a {type(state).__name__}, not a dict; "
                            "delete it and run the same command again to retrain the run")
    return state


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The run's checkpoint file, or None when it has none yet."""
    path = Path(run_dir) / CHECKPOINT_NAME
    return path if path.is_file() else None


def is_finished(run_dir: str | os.PathLike) -> bool:
    """True when the run wrote `done.json` (its provenance, written after the last epoch).

    A `done.json` that is not valid JSON raises ValueError rather than silently retraining.
    """
    path = Path(run_dir) / DONE_NAME
    return path.is_file() and isinstance(read_json(path), dict)


def check_compatible(state_dict_saved: dict, model: nn.Module, *, show: int = 5) -> None:
    """Raise a short ValueError when a saved state_dict does not fit `model`'s parameter and
    buffer names and shapes, naming the first `show` mismatches of each kind, instead of
    `load_state_dict`'s page-long error."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict_saved]
    unexpected = [k for k in state_dict_saved if k not in expected]
    shapes = [f"{k} saved {tuple(state_dict_saved[k].shape)} vs model {tuple(v.shape)}"
              for k, v in expected.items()
              if k in state_dict_saved and hasattr(v, "shape")
              and tuple(getattr(state_dict_saved[k], "shape", ())) != tuple(v.shape)]
    problems = []
    for label, items in (("missing from checkpoint", missing),
                         ("not in model", unexpected), ("shape mismatch", shapes)):
        if items:
            more = f" (+{len(items) - show} more)" if len(items) > show else ""
            problems.append(f"{label}: {', '.join(items[:show])}{more}")
    if problems:
        raise UsageError("checkpoint from another architecture: " + "; ".join(problems))


# --------------------------------------------------------------------------- random states

def rng_state(generators: dict[str, torch.Generator] | None = None) -> dict:
    """Every random source a run draws from, as weights_only-safe tensors and plain values.

    torch's global CPU generator; CUDA's (one state per device) when CUDA has been initialised
    (before that nothing has been drawn from it, and asking would start a CUDA context);
    Python's `random`; numpy's global generator; and each named `torch.Generator`.
    """
    version, internal, gauss_next = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    cuda_used = torch.cuda.is_available() and torch.cuda.is_initialized()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if cuda_used else [],
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "generators": {k: g.get_state() for k, g in (generators or {}).items()},
    }


def set_rng_state(state: dict, generators: dict[str, torch.Generator] | None = None) -> None:
    """Restore what `rng_state` captured, so the next draws equal those of an unbroken run.

    The named generators must match those saved (a missing one would silently diverge).
    """
    generators = generators or {}
    saved = state["generators"]
    if set(saved) != set(generators):
        raise UsageError(f"set_rng_state: saved generators {sorted(saved)} do not match the "
                         f"given ones {sorted(generators)}")
    torch.set_rng_state(state["torch"])
    _set_cuda_states(state["cuda"])
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()),
                     py["gauss_next"]))
    npy = state["numpy"]
    np.random.set_state((npy["name"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    for name, gen in generators.items():
        gen.set_state(saved[name])


def _set_cuda_states(states: list) -> None:
    if not states:
        return
    if not torch.cuda.is_available():
        log.warning("checkpoint holds CUDA random states but CUDA is unavailable: not restored")
        return
    count = torch.cuda.device_count()
    if count != len(states):
        log.warning("checkpoint holds %d CUDA random states, this machine has %d devices",
                    len(states), count)
    for i, s in enumerate(states[:count]):
        torch.cuda.set_rng_state(s, device=i)
