"""One figure for the robustness tables: every printed cell, the paper's value against ours.

    fig = paper_vs_ours({"Table 1": rows, ...})   # rows: comparison.table_rows(...)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt

__all__ = ["paper_vs_ours"]

_MARKERS = {"FGSM": "o", "PGD-10": "s", "C&W": "^"}


def paper_vs_ours(tables: Mapping[str, Sequence[Mapping]], *, title: str = ""):
    """Two panels (no defence, adversarial training): x = the paper's accuracy, y = ours (mean
    over seeds, with the std as an error bar), colour = table, marker = attack column; the
    diagonal is agreement."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
    colours = plt.get_cmap("tab10")
    for ax, setting in zip(axes, ("no defence", "adversarial training")):
        for i, (table, rows) in enumerate(tables.items()):
            for column, marker in _MARKERS.items():
                pts = [r for r in rows if r["setting"] == setting and r["column"] == column
                       and r["ours"] is not None]
                if not pts:
                    continue
                ax.errorbar([r["paper"] for r in pts], [r["ours"] for r in pts],
                            yerr=[r["std"] or 0.0 for r in pts], fmt=marker, ms=6,
                            color=colours(i), alpha=0.8, capsize=2,
                            label=f"{table}, {column}")
        ax.plot([0, 100], [0, 100], color="grey", lw=1, ls="--")
        ax.set_xlim(-3, 103)
        ax.set_ylim(-3, 103)
        ax.set_title(setting)
        ax.set_xlabel("paper's robust accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("our robust accuracy (%), mean ± std over seeds")
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
               frameon=False)
    fig.suptitle(title or "Tables 1-6: the paper's numbers (x) against ours (y); the dashed "
                          "line is agreement", fontsize=11)
    fig.tight_layout()
    return fig
