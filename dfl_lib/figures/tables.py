"""Plain-text tables of evaluation rows: one formatter for the CLI, the demo and reports.

    print(format_accuracy_table({"(a) no defence": table_a, "(b) DFL + PCL": table_b}))

Rows are the dicts `evaluate` returns; each column is one run's table. A row only some runs
have gets a dash in the others; the worst-case rows come last, since they combine those above.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..evaluation.robust import WORST_CASE

__all__ = ["format_cell", "format_accuracy_table", "comparison_markdown", "records_markdown"]


def format_cell(row: Mapping | None) -> str:
    """"99.0 [97.7, 99.6]": accuracy (%) with its 95% Wilson interval; "-" for a missing row."""
    if row is None:
        return "-"
    return (f"{100 * row['accuracy']:5.1f} [{100 * row['ci_low']:4.1f}, "
            f"{100 * row['ci_high']:5.1f}]")


def format_accuracy_table(columns: Mapping[str, Sequence[Mapping]], *, width: int = 38) -> str:
    """Rows = attacks (every column's, in order, worst cases last), one column per run."""
    names = list(dict.fromkeys(row["name"] for rows in columns.values() for row in rows))
    names.sort(key=lambda name: name.startswith(WORST_CASE))
    lines = [f"{'attack':<{width}}" + "".join(f"{label[:width - 2]:>{width}}"
                                               for label in columns)]
    for name in names:
        cells = [format_cell(next((r for r in rows if r["name"] == name), None))
                 for rows in columns.values()]
        lines.append(f"{name:<{width}}" + "".join(f"{c:>{width}}" for c in cells))
    return "\n".join(lines)


def _num(value, std=None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" + (f" ± {std:.1f}" if std is not None else "")


def comparison_markdown(rows: Sequence[Mapping], *, title: str = "") -> str:
    """A markdown table of `paper.comparison.table_rows`: per setting and row, each paper column as
    "paper | ours (mean ± std) | difference", then the strong columns and the flags."""
    columns = list(dict.fromkeys(r["column"] for r in rows))
    strong = list(dict.fromkeys(k for r in rows for k in r["strong"] if k != "headline n"))
    head = ["setting", "defence", "seeds"]
    for c in columns:
        head += [f"{c} paper", f"{c} ours", f"{c} Δ"]
    head += strong + ["flags"]
    lines = ([f"**{title}**", ""] if title else []) + [
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    groups = list(dict.fromkeys((r["setting"], r["row"]) for r in rows))
    for setting, row in groups:
        cells = {r["column"]: r for r in rows if (r["setting"], r["row"]) == (setting, row)}
        first = next(iter(cells.values()))
        out = [setting, first["label"], str(first["seeds"]) if first["ours"] is not None else "-"]
        for c in columns:
            r = cells.get(c)
            if r is None:
                out += ["", "", ""]
                continue
            out += [_num(r["paper"]), _num(r["ours"], r["std"]) if r["ours"] is not None
                    else (r["note"] or "-"), "-" if r["diff"] is None else f"{r['diff']:+.1f}"]
        for k in strong:
            v = first["strong"].get(k)
            out.append("-" if v is None else _num(*v))
        out.append("; ".join(first["flags"]) or "-")
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines)


def records_markdown(records: Mapping[str, Mapping], *, key: str = "model") -> str:
    """{label: {column: value}} -> a markdown table, one row per label (floats to 3 digits)."""
    columns = list(dict.fromkeys(c for r in records.values() for c in r))
    lines = ["| " + " | ".join([key, *columns]) + " |", "|" + "---|" * (len(columns) + 1)]
    for label, r in records.items():
        cells = [f"{r[c]:.3g}" if isinstance(r.get(c), float) else str(r.get(c, "-"))
                 for c in columns]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)
