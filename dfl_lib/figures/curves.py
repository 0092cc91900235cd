"""Figures drawn from run histories: plain functions of data, returning the matplotlib figure.

    fig = curve_grid(records, rows="panel", hue="loss", style="remedy",
                     metrics={"train_ce": "train CE", "val_adv_acc": "val PGD-10 acc"})
    fig.savefig("curves.png", dpi=120)

A record is a dict with "history" (the per-epoch list a training run writes) and the labels
used to lay it out (row, colour, line style). Nothing here trains or evaluates.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt

from ..errors import UsageError

__all__ = ["curve_grid", "STYLES"]

STYLES = ("-", "--", ":", "-.")


def curve_grid(records: Sequence[Mapping], *, rows: str, hue: str, style: str,
               metrics: Mapping[str, str], title: str = "", percent: Sequence[str] = (),
               log: Sequence[str] = ()):
    """One row of panels per value of records[i][rows], one column per metric (a history key;
    its label is the y-axis), one line per record: colour by `hue`, line style by `style`.
    Metrics named in `percent` are drawn in % (values in [0, 1] times 100), those in `log` on
    a log scale (a diverging run's loss can be 1e7 where the others are near 1). A record whose
    history lacks a metric is skipped in that panel. Returns the figure."""
    if not records:
        raise UsageError("no records to plot")
    missing = [k for k in (rows, hue, style) if any(k not in r for r in records)]
    if missing or any("history" not in r for r in records):
        raise KeyError(f"every record needs 'history' and the keys {rows!r}, {hue!r}, {style!r}")
    row_values = list(dict.fromkeys(r[rows] for r in records))
    hues = list(dict.fromkeys(r[hue] for r in records))
    styles = list(dict.fromkeys(r[style] for r in records))
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(len(row_values), len(metrics), squeeze=False, sharex=True,
                             figsize=(3.6 * len(metrics), 2.7 * len(row_values)))
    for i, row_value in enumerate(row_values):
        for j, (key, label) in enumerate(metrics.items()):
            ax = axes[i][j]
            for r in records:
                if r[rows] != row_value:
                    continue
                points = [(h["epoch"], h[key]) for h in r["history"] if key in h]
                if not points:
                    continue
                x, y = zip(*points)
                if key in percent:
                    y = [100 * v for v in y]
                ax.plot(x, y, color=colours(hues.index(r[hue]) % 10),
                        linestyle=STYLES[styles.index(r[style]) % len(STYLES)], marker="o",
                        markersize=3, label=f"{r[hue]}, {r[style]}")
            ax.set_title(f"{row_value}: {label}", fontsize=9)
            if key in log:
                ax.set_yscale("log")
            ax.set_ylabel(label + (" (%)" if key in percent else ""), fontsize=8)
            if i == len(row_values) - 1:
                ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=8)
    handles, labels = [], []
    for ax in axes.flat:  # one legend for the figure, every line once
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8,
               frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.06 if len(labels) > 6 else 0.04, 1, 0.97 if title else 1))
    return fig
