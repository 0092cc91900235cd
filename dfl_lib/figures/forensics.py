"""The forensics figure (notebook 08): every evaluation, honest and flawed, on every model and
column, beside the paper's printed number, from `forensics.study` records (plain dicts).

    fig = forensics_heatmap(records, title="...")
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

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
    paper's number is outlined; blank where a flaw does not apply. Drawn with seaborn's
    annotated heatmap."""
    if not records:
        raise UsageError("no forensic records to plot")
    flaws = list(dict.fromkeys(r["flaw"] for r in records))
    # the models the records hold (quick evaluates no DFL-only model: no empty columns for it)
    cells = [(row, col) for row in _ROWS if any(r["row"] == row for r in records)
             for col in _COLUMNS]
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
        # seaborn's annotated heatmap: each cell's number in a colour readable on its shade
        sns.heatmap(grid, ax=ax, vmin=0, vmax=100, cmap="viridis", cbar=False,
                    mask=np.isnan(grid), annot=True, fmt=".0f", annot_kws={"fontsize": 7})
        for text in ax.texts:  # the paper's printed numbers (the first row) in bold
            if text.get_position()[1] < 1:
                text.set_fontweight("bold")
        for i, j in zip(*np.nonzero(inside)):
            ax.add_patch(plt.Rectangle((j, i), 1, 1, fill=False, edgecolor="red",
                                       linewidth=1.6))
        ax.axhline(1, color="white", linewidth=2)
        ax.set_xticks(np.arange(len(cells)) + 0.5,
                      [f"{_ROWS[row]}\n{col}" for row, col in cells], fontsize=7, rotation=0)
        ax.set_yticks(np.arange(len(flaws) + 1) + 0.5, ["the paper (printed)"] + flaws,
                      fontsize=7, rotation=0)
        ax.tick_params(labelleft=ax is axes[0])  # the rows are the same in both panels
        n = next((r["n"] for r in records if r["setting"] == setting and r["flaw"] == "honest"),
                 None)
        ax.set_title(f"{setting}" + (f" (n = {n} test images)" if n else ""))
        ax.set_xlabel("model and the paper's column (robust accuracy, %)")
    scale = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(vmin=0, vmax=100))
    fig.colorbar(scale, ax=axes, fraction=0.02, pad=0.01, label="accuracy (%)")
    fig.suptitle((title + "\n" if title else "") + "red outline: the paper's number lies inside "
                 "the cell's 95% Wilson interval", fontsize=9)
    return fig
