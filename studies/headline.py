"""What the headline checks (`l2_check.py`, `autoattack_check.py`, `feature_seeds.py`,
`blackbox_seeds.py`) share: which models they evaluate, how a row and a per-example mask are
written, the DFL + PCL effect paired by seed, and the page of verdicts the study report reads.

The headline models are the MNIST rows "resnet" and "dfl_pcl" of Tables 1 and 3 (the paper's
"ResNet" and "ResNet + DFL + PCL"), with PGD training at each of the profile's seeds and without
defence. A mask is a bool tensor (N,), True where the example stayed correctly classified; it is
kept in the report as the hex of its packed bits so an effect re-derives from the file alone.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from dfl_lib.errors import DataFileError, UsageError
from dfl_lib.evaluation.robust import wilson_interval
from dfl_lib.paper.intervals import effect_interval
from dfl_lib.runs import io as runio
from dfl_lib.study.plan import cell_seeds

__all__ = ["ROWS", "DATASET", "PGD", "UNDEFENDED", "models", "model_source", "load", "row",
           "hex_mask", "unhex", "paired_effect", "merge", "parser", "runs_dir",
           "one_process_only", "write_verdict_page", "USER_ERRORS"]

# what a user's mistake raises (a bad option, a missing or damaged file): one line, exit 2
USER_ERRORS = (UsageError, DataFileError)

ROWS = ("resnet", "dfl_pcl")
DATASET = "mnist"
PGD, UNDEFENDED = "adversarial training", "no defence"


def models(profile: str, *, rows: Sequence[str] = ROWS,
           undefended: str = "first seed") -> list[tuple[str, str, int]]:
    """(row, setting, seed) of every headline model at `profile`, row by row: PGD training at each
    of the row's seeds, then no defence at its first seed (`undefended="first seed"`) or at each
    (`"every seed"`). UsageError for a row outside ROWS."""
    if undefended not in ("first seed", "every seed"):
        raise UsageError(f"undefended must be 'first seed' or 'every seed', got {undefended!r}")
    out = []
    for r in rows:
        if r not in ROWS:
            raise UsageError(f"rows must be among {', '.join(ROWS)}, got {r!r}")
        out += [(r, PGD, s) for s in cell_seeds(profile, row=r, setting=PGD)]
        seeds = cell_seeds(profile, row=r, setting=UNDEFENDED)
        out += [(r, UNDEFENDED, s) for s in (seeds if undefended == "every seed" else seeds[:1])]
    return out


def model_source(cfg, *, runs_root, record=None, data_root=None,
                 profile: str = "quick") -> tuple[str, Path, object]:
    """Where the model of plan config `cfg` is: ("run", its finished run folder in `runs_root`,
    its data) or else ("weights", record/record/weights/<run>.pt, its data) where `record` (a
    report folder, e.g. reports/quick) holds its weights. UsageError when neither does."""
    from dfl_lib.experiments.data import load_data
    from dfl_lib.runs.folder import run_path

    data = load_data(cfg, root=data_root)
    rdir = run_path(cfg, data, runs_root=runs_root)
    if runio.is_finished(rdir):
        return "run", Path(rdir), data
    weights = Path(record) / "record" / "weights" / f"{Path(rdir).name}.pt" if record else None
    if weights is not None and weights.is_file():
        return "weights", weights, data
    raise UsageError(f"no finished run at {rdir}" +
                     (f" and no weights at {weights}" if weights is not None else "") +
                     f"; the checks never train: run the study first (python -m dfl_lib study "
                     f"--profile {profile})")


def load(cfg, *, source: tuple[str, Path, object], runs_root, data_root=None):
    """(model in eval mode on the CPU in fp32, its data, its run name) from `model_source`'s
    answer for `cfg`."""
    from dfl_lib.experiments.trained import load_model
    from dfl_lib.study.records import load_run

    kind, where, data = source
    if kind == "run":
        model = load_run(cfg, runs_root=runs_root, data_root=data_root)["model"]
    else:
        model = load_model(where)
    return model.cpu().float().eval(), data, where.stem if kind == "weights" else where.name


def row(mask: torch.Tensor, **fields) -> dict:
    """Accuracy (%) of a bool mask (N,) with its 95% Wilson interval, n and n_correct, and
    `fields` added."""
    n, k = len(mask), int(mask.sum())
    low, high = wilson_interval(k, n)
    return {"accuracy": 100.0 * k / n, "ci_low": 100.0 * low, "ci_high": 100.0 * high, "n": n,
            "n_correct": k, **fields}


def hex_mask(mask: torch.Tensor) -> str:
    """The hex of a bool mask's (N,) packed bits (`unhex` reads it back)."""
    return np.packbits(np.asarray(mask, dtype=np.uint8)).tobytes().hex()


def unhex(text: str, *, n: int) -> np.ndarray:
    """The bool mask (n,) that `hex_mask` wrote."""
    return np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))[:n].astype(bool)


def paired_effect(masks: dict[str, dict[int, np.ndarray]], *, what: str) -> dict | None:
    """DFL + PCL minus the plain ResNet (points), paired by seed, with the claims' t interval
    (`paper.intervals.effect_interval`), from per-row, per-seed bool masks {row: {seed: (N,)}};
    None unless both rows have the same seeds."""
    if not masks.get("resnet") or set(masks["resnet"]) != set(masks.get("dfl_pcl", {})):
        return None
    samples = {r: {s: {"worst": m} for s, m in by_seed.items()} for r, by_seed in masks.items()}
    est, low, high = effect_interval(
        samples, effect=lambda acc: acc["dfl_pcl"]["worst"] - acc["resnet"]["worst"])
    return {"effect": est, "low": low, "high": high, "seeds": sorted(masks["resnet"]),
            "what": what}


def merge(paths: Sequence[str], *, keys: Sequence[str], summarise: Callable[[dict], dict],
          out=None) -> dict:
    """One report from reports of one check (one per row or seed, written by separate processes):
    their models joined, `summarise(report)` as its "summary". A model in two reports is kept
    from the one further on when the other's chunks are a beginning of its chunks (a process
    resumed from an older report); "parts_provenance" lists the commits the parts were made
    at. UsageError when their `keys` differ, a model's two entries disagree (other chunks or
    another weights digest), or writing `out` (an existing report) would lose a model or
    chunks it holds that no part has."""
    parts = [runio.read_json(f) for f in paths]
    if any(any(q.get(k) != parts[0].get(k) for k in keys) for q in parts[1:]):
        raise UsageError("the reports to merge were made with different settings")
    models: dict = {}
    for q in parts:
        for k, v in q["models"].items():
            models[k] = v if k not in models else _newer(models[k], v, key=k)
    # where each part's chunks were made (a part resumed from an older report carries its own)
    made = [m for q in parts for m in q.get("parts_provenance", [])] + [
        {k: q["provenance"].get(k) for k in ("git_commit", "git_dirty")}
        for q in parts if isinstance(q.get("provenance"), dict)]
    report = {**parts[0], "models": models,
              "parts_provenance": [dict(t) for t in dict.fromkeys(
                  tuple(m.items()) for m in made)]}
    if out is not None and Path(out).is_file():  # never lose finished work by writing `out`
        kept = runio.read_json(out).get("models", {})
        lost = [k for k, v in kept.items() if k not in models or
                len(models[k].get("chunks", [1])) < len(v.get("chunks", [1]))]
        if lost:
            raise UsageError(f"writing {out} would lose its work on {', '.join(lost)}: add "
                             f"{out} to the reports to merge")
    report["summary"] = summarise(report)
    return report


def _newer(a: dict, b: dict, *, key: str) -> dict:
    """Of one model's two entries, the one further on (see `merge`); UsageError if they differ
    otherwise."""
    ca, cb = a.get("chunks"), b.get("chunks")
    if a == b:
        return a
    digests = {e["weights_sha256"] for e in (a, b) if "weights_sha256" in e}
    if ca is not None and ca == cb and len(digests) <= 1:  # the same work: keep what either adds
        return {**a, **b}
    if ca is not None and cb is not None and len(digests) <= 1:
        short, long = (a, b) if len(ca) <= len(cb) else (b, a)
        if long["chunks"][:len(short["chunks"])] == short["chunks"]:
            return {**{k: v for k, v in short.items() if k == "weights_sha256"}, **long}
    raise UsageError(f"the reports to merge disagree on {key}: made from different models or "
                     "settings")


def parser(description: str, *, record: bool = False) -> argparse.ArgumentParser:
    """The headline checks' common options: --profile, --runs-dir, --data-dir, --n, --seed,
    --rows, --out, --merge, and with `record` --record (the report folder whose committed
    weights give the models missing from --runs-dir: `model_source`); a check adds its own.
    `description` (the check's docstring) is shown whole by --help."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="quick")
    p.add_argument("--runs-dir", help="the profile's runs root, e.g. runs/quick")
    p.add_argument("--data-dir", default=None, help="data root (default: $DFL_DATA_DIR, ./data)")
    p.add_argument("--n", type=int, default=1000, help="test images per model")
    p.add_argument("--seed", type=int, default=0, help="the attacks' seed")
    p.add_argument("--rows", default=",".join(ROWS))
    p.add_argument("--out", required=True, help="the JSON report to write")
    p.add_argument("--merge", nargs="+", metavar="JSON",
                   help="join reports of the same check (one per row) and add the summary")
    if record:
        p.add_argument("--record", metavar="DIR", default=None,
                       help="a report folder whose record/weights/ give the models missing from "
                            "--runs-dir (default: reports/<profile>)")
    return p


def one_process_only(args: argparse.Namespace) -> None:
    """UsageError where a study that runs in one process on both headline rows, each model's
    attack seeded with its own seed, is given --merge, --rows or --seed."""
    if args.merge:
        raise UsageError("this study runs in one process: --merge is not needed")
    if args.rows != ",".join(ROWS) or args.seed != 0:
        raise UsageError("--rows and --seed do not apply: the study measures both headline "
                         "rows, each model's attack seeded with its own seed")


def runs_dir(args: argparse.Namespace) -> str:
    """--runs-dir, which every check but --merge needs; UsageError when it is not given."""
    if not args.runs_dir:
        raise UsageError("--runs-dir is needed (the profile's runs root, e.g. runs/quick)")
    return args.runs_dir


def write_verdict_page(folder: Path, *, title: str, text: str, judged: list[dict], profile: str,
                       script: str, source_commit: str | None, example: str) -> None:
    """`folder`/README.md (`text`, which starts with `title`) and `folder`/metrics.json (the
    verdicts `judged`, with provenance: this commit, `script`, and `source_commit`, the commit
    the measurements were made at), which the study report (`study.report`) reads. UsageError
    before writing anything where `folder` holds another page (`example`: an --out that
    does not)."""
    page = folder / "README.md"
    if page.exists() and not page.read_text().startswith(title):
        raise UsageError(f"{page} is not this study's page; give --out a folder of its own, "
                         f"e.g. {example}")
    git = runio.git_state()
    runio.write_json(folder / "metrics.json", {
        "notebook": folder.name, "profile": profile, "verdicts": judged,
        "provenance": {"git_commit": git["commit"], "git_dirty": git["dirty"], "script": script,
                       "source_commit": source_commit}})
    page.write_text(text)
