"""A report's committed record (issue 38): the finished evaluations its tables read, copied from
the runs folder into reports/<profile>/record/, so that every table number, verdict and check can
be re-derived without runs/ (`verify_record`); and the headline models' weights.

    write_record("quick", runs_dir="runs/quick", out_dir="reports/quick")   # record/ written
    cells = recorded_cells("reports/quick")      # what `records.cell_results` returned, from it
    problems = verify_record("reports/quick")    # [] when every number matches the report

Layout of record/ (plain JSON and NumPy, readable without this package):
    index.json                  {"profile", "cells": [{"dataset", "row", "setting",
                                 "per_seed": [metrics paths], "headline": metrics path or null}],
                                 "weights": {run name: weights path}}
    runs/<run>/                 config.json, history.json, done.json (provenance), the
                                metrics-<suite>.json each cell read (every attack row's accuracy,
                                interval and settings; the masking checks' numbers) and
                                masks-<suite>/<row>.npy (per example: True where it survived)
    weights/<run>.pt            the headline models' weights ({"model": state_dict, "config"}),
                                every seed and setting of each row with a headline
                                evaluation, loadable with `torch.load(..., weights_only=True)`

A record made before its runs' other seeds were kept gets their weights from a runs folder that
holds the same trainings (their histories equal the record's, bit for bit):

    add_weights("reports/quick", runs_dir="runs/quick")   # names of the weights added
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from ..errors import DataFileError, MissingDataError
from ..paper.comparison import table_rows
from ..paper.numbers import TABLES
from ..runs import io as runio
from .evidence import adaptive_checks, strong_attack_checks, table_verdicts
from .records import MissingRuns, cell_results

__all__ = ["RECORD", "write_record", "add_weights", "recorded_cells", "verify_record",
           "RecordIncomplete", "compare"]

RECORD = "record"


class RecordIncomplete(DataFileError):
    """`write_record(finished_only=True)` cannot copy every evaluation: the record is kept."""


_RUN_FILES = ("config.json", "history.json", "done.json")
# the notebook whose metrics the record re-derives, and the keys it compares
_TABLES_NOTEBOOK = "03-robustness-tables"


def write_record(profile: str, *, runs_dir, out_dir, data_root=None, device: str = "auto",
                 finished_only: bool = False) -> Path:
    """Copy every finished evaluation the paper tables of `profile` read (`records.cell_results`
    on `runs_dir`, the runs' data read from `data_root`: None for $DFL_DATA_DIR, ./data) into
    out_dir/record/, replacing an older record whole; the model weights of every seed and
    setting of each row with a headline evaluation into record/weights/ (the models the
    headline checks, e.g. studies/autoattack_check.py, evaluate). Returns the record's folder.
    `finished_only`: train and evaluate nothing; RecordIncomplete (the record left as it was)
    when runs_dir lacks a finished evaluation the record copies, or the data is not there."""
    try:
        cells = cell_results(profile, runs_root=runs_dir, data_root=data_root, device=device,
                             finished_only=finished_only)
    except (MissingRuns, MissingDataError) as err:
        if not finished_only:
            raise
        raise RecordIncomplete(str(err)) from err
    record = Path(out_dir) / RECORD
    part = record.with_name(RECORD + ".part")
    shutil.rmtree(part, ignore_errors=True)
    index = {"profile": profile, "cells": [], "weights": {}}
    for (dataset, row, setting), found in cells.items():
        head = found["headline"]
        index["cells"].append({
            "dataset": dataset, "row": row, "setting": setting,
            "per_seed": [_copy_evaluation(m, record=part) for m in found["per_seed"]],
            "headline": _copy_evaluation(head, record=part) if head else None})
    headline_rows = _headline_rows(index["cells"])
    for (dataset, row, setting), found in cells.items():
        if (dataset, row) in headline_rows:  # every seed of every setting of a headline row
            runs = [found["headline"]] if found["headline"] else []
            for run in dict.fromkeys(Path(m["path"]).parent for m in runs + found["per_seed"]):
                index["weights"][run.name] = _copy_weights(run, record=part)
    runio.write_json(part / "index.json", index)
    old = record.with_name(RECORD + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if record.exists():
        record.rename(old)
    part.rename(record)
    shutil.rmtree(old, ignore_errors=True)
    return record


def _copy_evaluation(metrics: dict, *, record: Path) -> str:
    """Copy one evaluation (its metrics file, masks and its run's records); its metrics path
    relative to the record."""
    source = Path(metrics["path"])
    run = source.parent
    target = record / "runs" / run.name
    target.mkdir(parents=True, exist_ok=True)
    for name in _RUN_FILES:
        if (run / name).exists():
            shutil.copyfile(run / name, target / name)
    shutil.copyfile(source, target / source.name)
    masks = run / f"masks-{metrics['suite']}"
    if masks.is_dir():
        shutil.copytree(masks, target / masks.name, dirs_exist_ok=True)
    return str((target / source.name).relative_to(record))


def _copy_weights(run: Path, *, record: Path) -> str:
    """The model weights of a finished run's checkpoint, without its optimiser state."""
    import torch

    state = runio.load_checkpoint(runio.latest_checkpoint(run))
    path = record / "weights" / f"{run.name}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")  # a reader never meets half a file
    torch.save({"model": state["model"], "config": state["config"]}, part)
    part.replace(path)
    return str(path.relative_to(record))


def add_weights(out_dir, *, runs_dir) -> list[str]:
    """Copy into out_dir/record/weights/ the weights of each headline row's runs (every seed
    and setting of a row with a headline evaluation) the record lacks and runs_dir holds
    finished, and name them in record/index.json (written atomically).
    A run counts only when its history.json holds the recorded one's numbers, wall-clock times
    aside (the same training, bit for bit: a run key names the config, not the arithmetic that
    produced the weights); otherwise DataFileError naming the run. Returns the run names added,
    in the record's order; runs absent from runs_dir are left out."""
    record = Path(out_dir) / RECORD
    index = _read(record / "index.json")
    added = []
    headline_rows = _headline_rows(index["cells"])
    for cell in index["cells"]:
        if (cell["dataset"], cell["row"]) not in headline_rows:
            continue
        for rel in cell["per_seed"]:
            name = Path(rel).parent.name
            run = Path(runs_dir) / name
            if name in index["weights"] or not runio.is_finished(run):
                continue
            if not _same_training(runio.read_json(run / "history.json"),
                                  _read(record / "runs" / name / "history.json")):
                raise DataFileError(f"{run}: its training history differs from the record's "
                                    f"({record / 'runs' / name / 'history.json'}), so its "
                                    "weights are not the recorded model's; train it again on "
                                    "the machine kind that made the record")
            index["weights"][name] = _copy_weights(run, record=record)
            added.append(name)
    runio.write_json(record / "index.json", index)
    return added


def _headline_rows(cells: list[dict]) -> set[tuple[str, str]]:
    """(dataset, row) of every row with a headline evaluation in some setting: the rows the
    headline checks (e.g. studies/autoattack_check.py) evaluate at every seed and setting."""
    return {(c["dataset"], c["row"]) for c in cells if c["headline"]}


def _same_training(a: list[dict], b: list[dict]) -> bool:
    """Two training histories with the same numbers, epoch by epoch, but for the wall-clock
    times ("*_seconds"); NaN equal to NaN (an epoch without a monitor)."""
    def numbers(history):
        return json.dumps([{k: v for k, v in e.items() if not k.endswith("_seconds")}
                           for e in history], sort_keys=True)
    return numbers(a) == numbers(b)


def recorded_cells(out_dir) -> dict[tuple[str, str, str], dict]:
    """{(dataset, row, setting): {"per_seed": [metrics], "headline": metrics or None}} read from
    out_dir/record/ (each metrics dict with its "path" in the record, so its masks are found
    beside it): what `records.cell_results` returned when the report was made. DataFileError
    when the record or a file it names is missing."""
    record = Path(out_dir) / RECORD
    index = _read(record / "index.json")

    def metrics(rel: str) -> dict:
        return {**_read(record / rel), "path": str(record / rel)}

    return {(c["dataset"], c["row"], c["setting"]): {
                "per_seed": [metrics(p) for p in c["per_seed"]],
                "headline": metrics(c["headline"]) if c["headline"] else None}
            for c in index["cells"]}


def _read(path: Path):
    if not path.is_file():
        raise DataFileError(f"{path} does not exist: the report's record is incomplete (write "
                            "it again with `python -m dfl_lib study --profile <profile> "
                            "--index-only`)")
    return runio.read_json(path)


def verify_record(out_dir) -> list[str]:
    """Re-derive the report's tables (every printed cell beside ours), table verdicts and our
    checks from out_dir/record/ alone, and compare them with what its notebook wrote
    (out_dir/03-robustness-tables/metrics.json). Returns one line per mismatch ([] when every
    number matches, floats to 1e-9). DataFileError when the record or the metrics are missing."""
    out_dir = Path(out_dir)
    profile = _read(out_dir / RECORD / "index.json")["profile"]
    cells = recorded_cells(out_dir)
    derived = {"tables": {t: table_rows(table=t, cells=cells) for t in TABLES},
               "verdicts": table_verdicts(profile, cells=cells),
               "checks": strong_attack_checks(cells) + adaptive_checks(cells)}
    reported = _read(out_dir / _TABLES_NOTEBOOK / "metrics.json")
    problems: list[str] = []
    for key, value in derived.items():
        compare(json.loads(json.dumps(value, default=runio.json_default)),
                reported.get(key), where=f"{_TABLES_NOTEBOOK} {key}", problems=problems)
    return problems


def compare(ours, theirs, *, where: str, problems: list[str]) -> None:
    """Append to `problems` one line per place where `ours` (re-derived) and `theirs`
    (reported) differ: a key on one side only, a list's length, a float beyond 1e-9 (NaN
    equal to NaN), any other value."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for k in sorted(set(ours) | set(theirs), key=str):
            if k not in ours or k not in theirs:
                problems.append(f"{where}.{k}: {'not re-derived' if k not in ours else 'not reported'}")
            else:
                compare(ours[k], theirs[k], where=f"{where}.{k}", problems=problems)
    elif isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            problems.append(f"{where}: {len(ours)} re-derived items, {len(theirs)} reported")
        for i, (a, b) in enumerate(zip(ours, theirs)):
            compare(a, b, where=f"{where}[{i}]", problems=problems)
    elif isinstance(ours, float) or isinstance(theirs, float):
        same = (isinstance(ours, (int, float)) and isinstance(theirs, (int, float))
                and (ours == theirs or (math.isnan(ours) and math.isnan(theirs))
                     or math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9)))
        if not same:
            problems.append(f"{where}: re-derived {ours!r}, reported {theirs!r}")
    elif ours != theirs:
        problems.append(f"{where}: re-derived {ours!r}, reported {theirs!r}")
