"""Figures drawn from run histories: plain functions of data, returning the matplotlib figure.

    fig = curve_grid(records, rows="panel", hue="loss", style="remedy",
                     metrics={"train_ce": "train CE", "val_adv_acc": "val PGD-10 acc"})
    fig.savefig("curves.png", dpi=120)

A record is a dict with "history" (the per-epoch list a training run writes) and the labels
used to lay it out (row, colour, line style). Nothing here trains or evaluates.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter

from ..errors import UsageError

__all__ = ["curve_grid", "warmup_figure", "figure_legend", "legend_columns", "STYLES"]

STYLES = ("-", "--", ":", "-.")


def legend_columns(fig, labels: Sequence[str], *, most: int = 4) -> int:
    """How many legend columns fit the figure's width: a column is its longest label at about
    0.065 in per character (8 pt) plus 0.6 in for the line sample and the gap. Wider legends
    than the figure stretched a two-panel figure to twice its width (the warm-up control)."""
    if not labels:
        return 1
    column_inches = 0.065 * max(len(lab) for lab in labels) + 0.6
    fits = int(fig.get_size_inches()[0] // column_inches)
    return max(1, min(most, len(labels), fits))


def figure_legend(fig, axes, *, ncol: int = 4) -> list[str]:
    """One legend below the panels with every labelled line or bar of `axes` once (the first
    handle of each label), in at most `ncol` columns and no more than fit the figure's width;
    returns the labels, for the layout's bottom margin."""
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", fontsize=8, frameon=False,
               ncol=legend_columns(fig, labels, most=ncol))
    return labels


def _groups(records, *, rows, hue, style) -> dict:
    """Records grouped by their (row, hue, style) labels, in first-seen order: the seeds of one
    configuration become one line."""
    out: dict = {}
    for r in records:
        out.setdefault((r[rows], r[hue], r[style]), []).append(r)
    return out


def _seed_note(members: Sequence[Mapping]) -> str:
    """' (3 seeds)' for a mean over seeds, ' (seed 0)' for one run."""
    if len(members) > 1:
        return f" ({len(members)} seeds)"
    return f" (seed {members[0]['seed']})"


def _mean_band(histories: list[list[dict]], key: str):
    """(epochs, mean, low, high) of `key` over histories, on the epochs they all have."""
    per_epoch: dict[int, list[float]] = {}
    for h in histories:
        for e in h:
            if e.get(key) is not None:
                per_epoch.setdefault(e["epoch"], []).append(float(e[key]))
    epochs = [ep for ep, v in sorted(per_epoch.items()) if len(v) == len(histories)]
    values = [per_epoch[ep] for ep in epochs]
    return (epochs, [sum(v) / len(v) for v in values], [min(v) for v in values],
            [max(v) for v in values])


def curve_grid(records: Sequence[Mapping], *, rows: str, hue: str, style: str,
               metrics: Mapping[str, str], title: str = "", percent: Sequence[str] = (),
               log: Sequence[str] = (), untrained_below: float | None = None):
    """One row of panels per value of records[i][rows], one column per metric (a history key;
    its label is the y-axis), one line per configuration: colour by `hue`, line style by
    `style`. Every record names its "seed": records sharing (row, hue, style) are seeds of one
    configuration, drawn as their mean with a band from the lowest to the highest seed; the
    seeds are named in the legend and the title.
    Metrics named in `percent` are drawn in % (values in [0, 1] times 100) on the full 0-100
    axis, those in `log` on a log scale (a diverging run's loss can be 1e7 where the others are
    near 1). untrained_below: a configuration whose final "val_acc" (mean over seeds, in
    [0, 1]) is below it is marked "did not train" in the legend, with crosses. A record whose
    history lacks a metric is skipped in that panel. Returns the figure."""
    if not records:
        raise UsageError("no records to plot")
    # a curve without its seed cannot be told from a mean over seeds (Figure 6 (b) was drawn
    # from records without one and named no seed): the seed is required, like the layout keys
    missing = [k for k in ("history", "seed", rows, hue, style)
               if any(k not in r for r in records)]
    if missing:
        raise KeyError(f"every record needs 'history', 'seed' and the keys {rows!r}, {hue!r}, "
                       f"{style!r}; some lack {missing}")
    row_values = list(dict.fromkeys(r[rows] for r in records))
    hues = list(dict.fromkeys(r[hue] for r in records))
    styles = list(dict.fromkeys(r[style] for r in records))
    groups = _groups(records, rows=rows, hue=hue, style=style)
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(len(row_values), len(metrics), squeeze=False, sharex=True,
                             figsize=(3.6 * len(metrics), 2.7 * len(row_values)))
    for i, row_value in enumerate(row_values):
        for j, (key, label) in enumerate(metrics.items()):
            ax = axes[i][j]
            for (row, h, st), members in groups.items():
                if row != row_value:
                    continue
                epochs, mean, low, high = _mean_band([m["history"] for m in members], key)
                if not epochs:
                    continue
                scale = 100.0 if key in percent else 1.0
                final = _mean_band([m["history"] for m in members], "val_acc")[1]
                failed = untrained_below is not None and final and final[-1] < untrained_below
                colour = colours(hues.index(h) % 10)
                # every entry names its seeds: a panel row of one seed beside rows of three
                # otherwise gave the same configuration two legend entries, one unexplained
                name = f"{h}, {st}" + _seed_note(members) + (" - did not train" if failed else "")
                ax.plot(epochs, [scale * v for v in mean], color=colour,
                        linestyle=STYLES[styles.index(st) % len(STYLES)],
                        marker="x" if failed else "o", markersize=4 if failed else 3, label=name)
                if len(members) > 1:
                    ax.fill_between(epochs, [scale * v for v in low], [scale * v for v in high],
                                    color=colour, alpha=0.15, linewidth=0)
            ax.set_title(f"{row_value}: {label}", fontsize=9)
            if key in log:
                ax.set_yscale("log")
                # a range of about one decade gets every minor tick labelled in full size
                # ("4 x 10^0 3 x 10^0 ..." on top of each other): where a decade lies inside the
                # range its label is enough; otherwise the minor labels stay, smaller
                low, high = ax.get_ylim()
                if low > 0 and math.floor(math.log10(high)) > math.floor(math.log10(low)):
                    ax.yaxis.set_minor_formatter(NullFormatter())
                ax.tick_params(axis="y", which="both", labelsize=7)
            if key in percent:
                ax.set_ylim(0, 100)
            # the panel's title has the whole label; the axis keeps it without a trailing
            # "(...)", which wrapped a long label over the title and the legend (Figure 3)
            short = re.sub(r"\s*\([^)]*\)$", "", label) or label
            ax.set_ylabel(short + (" (%)" if key in percent else ""), fontsize=8)
            if i == len(row_values) - 1:
                ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=8)
    labels = figure_legend(fig, axes)  # one legend for the figure, every line once
    seeds = sorted({r["seed"] for r in records})
    several = any(len(m) > 1 for m in groups.values())
    title = ((title + "\n" if title else "")
             + f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
             + ("; lines: mean over seeds, bands: lowest to highest seed" if several else ""))
    fig.suptitle(title, fontsize=10)
    n_legend_rows = -(-len(labels) // legend_columns(fig, labels))
    # the legend and the title get their own room in inches (a row of 8-pt text is about
    # 0.19 in) added to the panels' height: fixed fractions of the height clipped the legend
    # of a one-row figure over its panels
    legend_in = 0.15 + 0.19 * n_legend_rows
    title_in = 0.1 + 0.2 * (title.count("\n") + 1)
    width, panels_in = fig.get_size_inches()
    height = panels_in + legend_in + title_in
    fig.set_size_inches(width, height)
    fig.tight_layout(rect=(0, legend_in / height, 1, 1 - title_in / height))
    return fig


def warmup_figure(records: Sequence[Mapping], *, title: str = "",
                  untrained_below: float | None = None):
    """Figure 1 as it appears at a profile: ResNet-50 (seed 0) with and without the lr warm-up
    under PGD-10 training, and the clean-training control without warm-up (records of
    `depth_records` with "warmup", "dfl", "setting", "model"). Panels: training loss (log) and
    clean validation accuracy (%, full axis) per epoch; runs whose final accuracy is below
    `untrained_below` (fraction) are marked. UsageError when no ResNet-50 run is among the
    records."""
    chosen = []
    for r in records:
        if r["model"] != "resnet50":
            continue
        chosen.append({**r, "panel": "ResNet-50",
                       "remedy": "lr warm-up" if r["warmup"] else "no warm-up",
                       "run_kind": f"{r['variant']}, {r['setting']}"})
    if not chosen:
        raise UsageError("warmup_figure needs ResNet-50 records of the depth study")
    return curve_grid(chosen, rows="panel", hue="run_kind", style="remedy", log=("train_loss",),
                      percent=("val_acc",), untrained_below=untrained_below,
                      metrics={"train_loss": "training loss", "val_acc":
                               "validation accuracy (clean)"}, title=title)
