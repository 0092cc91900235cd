"""The forensics figure (notebook 08): every evaluation, honest and flawed, on every model and
column, beside the paper's printed number, from `forensics.study` records (plain dicts).

    fig = forensics_heatmap(records, title="...")
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from ..errors import UsageError
from ..paper.comparison import ROW_LABELS

__all__ = ["forensics_heatmap"]

_ROWS = {row: ROW_LABELS[row] for row in ("resnet", "dfl", "dfl_pcl")}
_COLUMNS = ("FGSM", "PGD-10", "C&W")
_SETTINGS = ("no defence", "adversarial training")


def forensics_heatmap(records: Sequence[dict], *, title: str = ""):
    """One panel per setting (no defence, PGD training): rows are the evaluations (the paper's
    printed numbers first, then the honest one, then each flaw), columns the (model, attack)
    cells; colour and number: accuracy (%) on 0-100; a cell whose 95% interval holds the
    paper's number is outlined; blank where a flaw does not apply."""
    if not records:
        raise UsageError("no forensic records to plot")
    flaws = list(dict.fromkeys(r["flaw"] for r in records))
    cells = [(row, col) for row in _ROWS for col in _COLUMNS]
    fig, axes = plt.subplots(1, 2, figsize=(16, 0.36 * len(flaws) + 2.6), sharey=True)
    for ax, setting in zip(axes, _SETTINGS):
        grid = np.full((len(flaws) + 1, len(cells)), np.nan)
        inside = np.zeros_like(grid, dtype=bool)
        for r in records:
            if r["setting"] != setting:
                continue
            j = cells.index((r["row"], r["column"]))
            grid[0, j] = r["paper"]
            grid[flaws.index(r["flaw"]) + 1, j] = r["accuracy"]
            inside[flaws.index(r["flaw"]) + 1, j] = r["inside"]
        image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        for i, j in np.ndindex(grid.shape):
            if np.isnan(grid[i, j]):
                continue
            ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if grid[i, j] < 55 else "black",
                    fontweight="bold" if i == 0 else "normal")
            if inside[i, j]:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                           edgecolor="red", linewidth=1.6))
        ax.axhline(0.5, color="white", linewidth=2)
        ax.set_xticks(range(len(cells)),
                      [f"{_ROWS[row]}\n{col}" for row, col in cells], fontsize=7)
        ax.set_yticks(range(len(flaws) + 1), ["the paper (printed)"] + flaws, fontsize=7)
        n = next((r["n"] for r in records if r["setting"] == setting and r["flaw"] == "honest"),
                 None)
        ax.set_title(f"{setting}" + (f" (n = {n} test images)" if n else ""))
        ax.set_xlabel("model and the paper's column (robust accuracy, %)")
    fig.colorbar(image, ax=axes, fraction=0.02, pad=0.01, label="accuracy (%)")
    fig.suptitle((title + "\n" if title else "") + "red outline: the paper's number lies inside "
                 "the cell's 95% Wilson interval", fontsize=9)
    return fig
