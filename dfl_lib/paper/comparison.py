"""The robustness tables beside the paper's: every printed cell with our mean and spread over the
profile's seeds, the difference, the strong attacks the paper did not run, and masking flags.

It only reads finished results: `cells` maps (dataset, row, setting) to {"per_seed": [metrics of
the 'table' suite, one per seed], "headline": the headline suite's metrics or None}, as the study
gathers them (`dfl_lib.study.records.cell_results`, which computes what is missing). Rows are
picked by their threat model and registry attributes (`dfl_lib.evaluation.selection`).

    rows = table_rows(table="Table 1", cells=cell_results("quick", runs_root="runs/quick"))
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Mapping

from ..errors import UsageError
from ..evaluation.selection import of_kind, strongest, worst_case
from .numbers import TABLES, paper_table

__all__ = ["ROW_LABELS", "DATASETS", "STANDS_FOR", "paper_dataset", "table_dataset", "accuracy", "table_rows", "strong_columns", "cell_flags",
           "standard_error", "PAPER_TO_SUITE_COLUMN", "NOT_RUN", "paper_cells"]

ROW_LABELS = {"resnet": "ResNet (CE)", "mustafa": "Mustafa et al.", "dynamic": "Dynamic",
              "dfl": "DFL only", "pcl": "PCL only", "dfl_pcl": "DFL + PCL",
              "resnet_dfl_pcl": "ResNet (DFL + PCL)", "wrn": "WideResNet (DFL + PCL)"}
# the paper's printed column -> the key of suites.PAPER_COLUMNS
PAPER_TO_SUITE_COLUMN = {"FGSM": "FGSM", "PGD-10": "PGD", "C&W": "C&W"}
# the paper's datasets -> our key for their original data; our copies that stand for one of
# them, by choice and labelled as such wherever a result of theirs is shown
DATASETS = {"MNIST": "mnist", "CIFAR-10": "cifar10"}
STANDS_FOR = {"cifar10_jpeg": "cifar10"}
# Table 6's "ResNet" row is the proposed method on ResNet: our dfl_pcl cell
_OUR_ROW = {"resnet_dfl_pcl": "dfl_pcl"}
NOT_RUN = {("dynamic", "no defence"): "not run: Dynamic is adversarial training by "
                                      "construction; the paper does not say what its "
                                      "'no defence' row trained"}


def paper_dataset(dataset: str) -> str:
    """The paper's dataset (our key for its original data) that our dataset `dataset` stands
    for: "cifar10" for "cifar10_jpeg", else `dataset` itself."""
    return STANDS_FOR.get(dataset, dataset)


def table_dataset(table: str, *, among=None) -> str:
    """Our dataset key for `table`'s cells: of the keys `among` (e.g. a profile's datasets, or
    the datasets of finished cells) the one that stands for the table's dataset, else the key
    of its original data. UsageError for an unknown table or when `among` holds two candidates
    (the original and a copy: which one a table shows must be one)."""
    if table not in TABLES:
        raise UsageError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
    original = DATASETS[TABLES[table]["dataset"]]
    found = list(dict.fromkeys(d for d in (among or ()) if paper_dataset(d) == original))
    if len(found) > 1:
        raise UsageError(f"{table} would show {' and '.join(found)} together; one dataset stands "
                         f"for the paper's {TABLES[table]['dataset']}")
    return found[0] if found else original


def paper_cells(table: str, *, dataset: str | None = None) -> list[tuple[str, str, str]]:
    """The (dataset, our row, setting) cell groups `table` prints, in order, without repeats;
    `dataset`: our key standing for the table's dataset (`table_dataset`; default its
    original)."""
    dataset = dataset or table_dataset(table)
    if paper_dataset(dataset) != table_dataset(table):
        raise UsageError(f"dataset {dataset!r} does not stand for {table}'s "
                         f"{TABLES[table]['dataset']}")
    groups = [(dataset, _OUR_ROW.get(c["row"], c["row"]), c["setting"]) for c in paper_table(table)]
    return list(dict.fromkeys(groups))


def accuracy(metrics: dict, name: str) -> float | None:
    """Accuracy (%) of the row called `name` in a metrics table, None when absent."""
    for r in metrics["table"]:
        if r["name"] == name:
            return 100.0 * r["accuracy"]
    return None


def _worst_name(metrics: dict) -> str | None:
    row = worst_case(metrics["table"], norm="Linf")
    return row["name"] if row else None


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def strong_columns(per_seed: list[dict], headline: dict | None) -> dict:
    """The study's columns beyond the paper's: clean, PGD-50, adaptive (PCL runs), the
    per-example worst case of the 'table' suite (mean over seeds), and AutoAttack and the
    headline worst case where the cell is a headline cell."""
    out = {}
    first = per_seed[0]
    longer = strongest(first["table"], objective="ce", exclude=[first["paper_columns"]["PGD"]])
    adaptive = of_kind(first["table"], "adaptive")
    names = {"clean": "clean", "PGD-50": longer["name"] if longer else None,
             "adaptive (PCL)": adaptive[0]["name"] if adaptive else None,
             "worst case": _worst_name(first)}
    for column, name in names.items():
        if name is None:
            continue
        values = [accuracy(m, name) for m in per_seed]
        if None not in values:
            out[column] = _mean_std(values)
    if headline is not None:
        aa = accuracy(headline, "AutoAttack")
        if aa is not None:
            out["AutoAttack"] = (aa, None)
        worst = _worst_name(headline)
        if worst:
            out["worst case (headline)"] = (accuracy(headline, worst), None)
        out["headline n"] = (float(headline["n_eval"]), None)
    return out


def cell_flags(per_seed: list[dict], headline: dict | None, *, margin: float = 5.0) -> list[str]:
    """Signs that the paper's attacks overstate robustness (gradient masking or a weak attack):
    an iterative attack weaker than one step, a stronger attack far below PGD-10, failed
    masking checks of the headline evaluation."""
    flags = []
    m = per_seed[0]
    pgd = accuracy(m, m["paper_columns"]["PGD"])
    fgsm = accuracy(m, m["paper_columns"]["FGSM"])
    worst = accuracy(m, _worst_name(m)) if _worst_name(m) else None
    if pgd is not None and fgsm is not None and pgd > fgsm + margin:
        flags.append(f"PGD-10 above FGSM by {pgd - fgsm:.1f} points")
    if pgd is not None and worst is not None and worst < pgd - margin:
        flags.append(f"stronger attacks {pgd - worst:.1f} points below PGD-10")
    if headline is not None:
        aa = accuracy(headline, "AutoAttack")
        hp = accuracy(headline, headline["paper_columns"]["PGD"])
        if aa is not None and hp is not None and aa < hp - margin:
            flags.append(f"AutoAttack {hp - aa:.1f} points below PGD-10")
        flags += [f"masking check failed: {c['check']}" for c in headline.get("masking", [])
                  if not c["passed"]]
    return flags


def table_rows(*, table: str, cells: Mapping) -> list[dict]:
    """One dict per printed cell of `table`: paper value, our mean and std over seeds (%),
    difference, seeds, images, the strong columns and the flags of its cell group, read from
    `cells` (see the module docstring); a cell group `cells` lacks is "not run". The table's
    dataset is the one of `cells` that stands for the paper's (`table_dataset`)."""
    dataset = table_dataset(table, among=[key[0] for key in cells])
    out = []
    for cell in paper_table(table):
        row = _OUR_ROW.get(cell["row"], cell["row"])
        setting = cell["setting"]
        base = {"table": table, "dataset": dataset, "setting": setting, "row": cell["row"],
                "label": ROW_LABELS[cell["row"]], "column": cell["column"],
                "paper": cell["value"]}
        found = cells.get((dataset, row, setting))
        if (row, setting) in NOT_RUN or not found:
            out.append({**base, "ours": None, "std": None, "diff": None, "seeds": 0,
                        "n_eval": 0, "strong": {}, "flags": [],
                        "note": NOT_RUN.get((row, setting), "not run")})
            continue
        per_seed, head = found["per_seed"], found.get("headline")
        name = per_seed[0]["paper_columns"][PAPER_TO_SUITE_COLUMN[cell["column"]]]
        mean, std = _mean_std([accuracy(m, name) for m in per_seed])
        out.append({**base, "ours": mean, "std": std, "diff": mean - cell["value"],
                    "seeds": len(per_seed), "n_eval": per_seed[0]["n_eval"], "attack": name,
                    "strong": strong_columns(per_seed, head), "flags": cell_flags(per_seed, head),
                    "note": ""})
    return out


def standard_error(p_percent: float, n: int) -> float:
    """Binomial standard error (points) of an accuracy measured on n images."""
    p = min(max(p_percent / 100.0, 0.0), 1.0)
    return 100.0 * math.sqrt(max(p * (1 - p), 0.25 / n) / n) if n else float("inf")
