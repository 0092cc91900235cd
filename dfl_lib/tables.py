"""Plain-text tables of evaluation rows: one formatter for the CLI, the demo and reports.

    print(format_accuracy_table({"(a) no defence": table_a, "(b) DFL + PCL": table_b}))

Rows are the dicts `evaluate` returns; each column is one run's table. A row only some runs
have gets a dash in the others; the worst-case rows come last, since they combine those above.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from .evaluate import WORST_CASE

__all__ = ["format_cell", "format_accuracy_table"]


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
