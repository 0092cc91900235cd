"""Figures of the poisoning study (notebook 07), drawn from `study.poison_records` records.

    fig = poison_bars(records, fraction=0.1)     # clean accuracy and attack success per poison
    fig = rate_sweep(records)                    # the backdoor against its poison rate
    fig = detection_bars(records)                # the detectors' AUROC per poison and defence
    fig = adaptive_bars(records, fraction=0.1)   # poisons crafted against the victim itself

Every figure but `adaptive_bars` draws the runs whose poison was crafted against the plain ResNet
or against no network (record "surrogate" "resnet"); `adaptive_bars` sets those beside the runs
whose poison was crafted against the defended victim itself.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter

from ..errors import UsageError
from ..paper.comparison import ROW_LABELS
from .curves import figure_legend
from .legends import class_handles, marker_handle

__all__ = ["poison_bars", "rate_sweep", "detection_bars", "poisoned_umap", "adaptive_bars"]

_ROWS = ("resnet", "dfl", "pcl", "dfl_pcl")
_LABELS = ROW_LABELS  # one row-label table: the paper comparison's


def _stats(values: list[float]) -> tuple[float, float, float]:
    return float(np.mean(values)), float(np.min(values)), float(np.max(values))


def _select(records, *, surrogate: str = "resnet", **match):
    """The records matching every field of `match` (floats to 1e-9) whose poison was crafted
    against `surrogate` ("resnet": the plain ResNet or no network; "victim": the row itself)."""
    return [r for r in records if r.get("surrogate", "resnet") == surrogate and all(
        abs(r[k] - v) < 1e-9 if isinstance(v, float) else r[k] == v for k, v in match.items())]


_SETTINGS = ("no defence", "PGD training")


def poison_bars(records: Sequence[dict], *, fraction: float, title: str = ""):
    """Rows of panels: clean test accuracy (%), and the attack success rate (%) of the
    backdoors; one column per training setting the records hold (no defence, PGD training).
    Bars: each defence row the records hold, per poison (mean over seeds; the whisker spans the
    lowest to the highest seed; n seeds in the legend). A setting the records lack is named
    in the title as not run, never drawn as an empty panel; a poison without a backdoor (e.g.
    "none") is labelled "no backdoor" in the success panels.

    Raises `UsageError` when `records` is empty."""
    if not records:
        raise UsageError("no poisoning records to plot")
    poisons = list(dict.fromkeys(r["poison"] for r in records))
    settings = [s for s in _SETTINGS if any(r["setting"] == s for r in records)]
    missing = [s for s in _SETTINGS if s not in settings]
    # only the rows that ran get a slot: absent rows left gaps between the bars
    rows = [row for row in _ROWS if any(r["row"] == row for r in records)]
    fig, axes = plt.subplots(2, len(settings), figsize=(6.5 * len(settings) + 1, 7.5),
                             sharey="row", squeeze=False)
    width = 0.8 / len(rows)
    colours = plt.get_cmap("tab10")
    # {row: seed counts of its bars, over every panel}: one legend entry per row
    row_seeds: dict[str, set[int]] = {}
    for j, setting in enumerate(settings):
        for i, (key, label) in enumerate((("clean_accuracy", "clean test accuracy (%)"),
                                          ("attack_success_rate", "attack success rate (%)"))):
            ax = axes[i][j]
            for k, row in enumerate(rows):
                xs, means, lows, highs, seeds = [], [], [], [], set()
                for p, poison in enumerate(poisons):
                    frac = 0.0 if poison == "none" else fraction
                    chosen = [r for r in _select(records, poison=poison, row=row,
                                                 setting=setting, fraction=frac) if key in r]
                    if not chosen:
                        continue
                    m, lo, hi = _stats([r[key] for r in chosen])
                    xs.append(p + (k - (len(rows) - 1) / 2) * width)
                    means.append(m)
                    lows.append(m - lo)
                    highs.append(hi - m)
                    seeds.add(len(chosen))
                if xs:
                    ax.bar(xs, means, width=width, color=colours(_ROWS.index(row)),
                           yerr=[lows, highs], capsize=2)
                    row_seeds.setdefault(row, set()).update(seeds)
            # a poison not run in this setting, or (success panels) with no backdoor: say
            # which, not a gap
            for p, poison in enumerate(poisons):
                ran = _select(records, poison=poison, setting=setting)
                if not ran or (i == 1 and not any(key in r for r in ran)):
                    ax.text(p, 50, "not run" if not ran else "no backdoor", ha="center",
                            va="center", fontsize=8, color="grey")
            ax.set_xticks(range(len(poisons)))
            ax.set_xticklabels(poisons, fontsize=8)
            ax.set_xlim(-0.5, len(poisons) - 0.5)  # every panel's poisons at the same places
            ax.set_ylim(0, 100)
            ax.set_ylabel(label)
            ax.tick_params(labelleft=True)  # sharey hides the right panels' scale otherwise
            what = label.split(" (")[0] + (" (backdoors only)" if i == 1 else "")
            ax.set_title(f"{setting}: {what}", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
    # below the panels (bars near 100% leave no room inside), one entry per row: the seeds
    # behind its bars (a poison's headline cells have 3, the rest 1)
    handles = [Patch(color=colours(_ROWS.index(row)), label=f"{_LABELS[row]} "
                     f"({' or '.join(map(str, sorted(row_seeds[row])))} seed"
                     f"{'s' if max(row_seeds[row]) > 1 else ''} per bar)")
               for row in rows if row in row_seeds]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    heading = title or (f"Poisoned training sets ({fraction:.0%} poisoned): clean accuracy "
                        "and backdoor success per defence")
    if missing:
        heading += f"\n({', '.join(missing)}: not run at this profile)"
    fig.suptitle(heading, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return fig


def rate_sweep(records: Sequence[dict], *, poison: str = "badnets", title: str = ""):
    """The backdoor's attack success rate and clean accuracy (%) against the share poisoned (of
    the training set, or of the target class for the clean-label backdoor: the records'
    "share", as the poison registry says it), clean training, one line per defence row (seed 0)."""
    chosen = [r for r in _select(records, poison=poison, setting="no defence", seed=0)
              if "attack_success_rate" in r]
    if not chosen:
        raise UsageError(f"no {poison} records with clean training to plot")
    share = chosen[0].get("share", "of the training set")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    colours = plt.get_cmap("tab10")
    for k, row in enumerate(_ROWS):
        pts = sorted((r["fraction"], r["attack_success_rate"], r["clean_accuracy"])
                     for r in chosen if r["row"] == row)
        if len(pts) < 2:
            continue
        f, asr, acc = zip(*pts)
        axes[0].plot([100 * v for v in f], asr, "o-", color=colours(k), label=_LABELS[row])
        axes[1].plot([100 * v for v in f], acc, "o-", color=colours(k), label=_LABELS[row])
    shares = sorted({100 * r["fraction"] for r in chosen})
    for ax, label in zip(axes, ("attack success rate (%)", "clean test accuracy (%)")):
        ax.set_xscale("log")
        # the shares tried, as plain numbers: a log axis spanning less than a decade labels
        # its minor ticks in powers ("5x10^0")
        ax.set_xticks(shares, [f"{v:g}" for v in shares])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"share poisoned ({share}, %)")
        ax.set_ylabel(label)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    n = chosen[0].get("n_triggered", 0)
    fig.suptitle(title or f"{poison}: success against poison rate (clean training, seed 0, "
                          f"{n} triggered test images)", fontsize=10)
    fig.tight_layout()
    return fig


def detection_bars(records: Sequence[dict], *, title: str = ""):
    """AUROC of activation clustering and spectral signatures on each run's training features
    (poisoned vs clean samples), per poison and defence row, clean training, seed 0; 0.5 is
    chance."""
    chosen = [r for r in _select(records, seed=0, setting="no defence") if "detection" in r]
    if not chosen:
        raise UsageError("no detection results to plot")
    detectors = list(chosen[0]["detection"])
    keys = list(dict.fromkeys((r["poison"], r["fraction"]) for r in chosen))
    fig, axes = plt.subplots(1, len(detectors), figsize=(6 * len(detectors), 4), sharey=True,
                             squeeze=False)
    colours = plt.get_cmap("tab10")
    width = 0.8 / len(_ROWS)
    for ax, det in zip(axes[0], detectors):
        for k, row in enumerate(_ROWS):
            xs, ys = [], []
            for p, (poison, frac) in enumerate(keys):
                hit = [r for r in chosen if r["row"] == row and r["poison"] == poison
                       and abs(r["fraction"] - frac) < 1e-9]
                if hit:
                    xs.append(p + (k - 1.5) * width)
                    ys.append(hit[0]["detection"][det]["auroc"])
            if xs:
                ax.bar(xs, ys, width=width, color=colours(k), label=_LABELS[row])
        ax.axhline(0.5, color="grey", ls="--", lw=1)
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([f"{p}\n{f:.0%}" for p, f in keys], fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("AUROC (poisoned vs clean training samples)")
        ax.set_title(det, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(labelleft=True)  # sharey hides the right panel's scale otherwise
    figure_legend(fig, axes)  # below the panels: AUROCs near 1 leave no room inside
    fig.suptitle(title or "Do the poisoned training samples stand out in feature space? "
                          "(penultimate features, clean training, seed 0; dashed: chance)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def poisoned_umap(panels: dict, *, title: str = ""):
    """One panel per defence row (`study.poison_records.poisoned_feature_panels`): clean training
    samples as dots coloured by class, poisoned ones as black-edged crosses coloured by their
    original class, in a UMAP fitted on the clean samples (distances in the plane are not
    feature distances: the detectors' AUROC is the number). One legend below the panels names
    the classes and the two markers."""
    if not panels:
        raise UsageError("no feature panels to plot")
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.6), squeeze=False,
                             layout="constrained")
    for ax, (name, p) in zip(axes[0], panels.items()):
        ax.scatter(p["clean_2d"][:, 0], p["clean_2d"][:, 1], s=6, alpha=0.4, linewidths=0,
                   c=[colours(int(k) % 10) for k in p["clean_y"]], rasterized=True)
        ax.scatter(p["poison_2d"][:, 0], p["poison_2d"][:, 1], s=22, marker="X",
                   c=[colours(int(k) % 10) for k in p["poison_y"]], edgecolors="black",
                   linewidths=0.4, rasterized=True)
        ax.set_title(f"{name}: {len(p['clean_y'])} clean, {len(p['poison_y'])} poisoned "
                     f"(target {p['target']})", fontsize=9)
        ax.set_xlabel("UMAP 1", fontsize=8)
        ax.set_ylabel("UMAP 2", fontsize=8)
        ax.tick_params(labelsize=7)
    classes = sorted({int(k) for p in panels.values() for k in [*p["clean_y"], *p["poison_y"]]})
    handles = class_handles(classes) + [
        marker_handle("o", "clean training sample", markersize=4),
        marker_handle("X", "poisoned training sample (colour: original class)",
                      markersize=7, markeredgecolor="black", markeredgewidth=0.4)]
    fig.legend(handles=handles, loc="outside lower center", fontsize=8, frameon=False,
               ncol=min(len(handles), 6 * len(panels)), handletextpad=0.2, columnspacing=1.0)
    fig.suptitle(title or "Clean (dots, by class) and poisoned (X, by original class) training "
                          "samples in feature space", fontsize=10)
    return fig


def adaptive_bars(records: Sequence[dict], *, fraction: float, title: str = ""):
    """The poisons crafted against a network, each in its own column of panels: clean test
    accuracy (%) and, for a backdoor, its attack success rate (%) of each defended row when the
    poison was crafted against the plain ResNet (light bars: it must transfer) and against the
    defended victim itself (dark bars: an attacker who knows the defence); clean training, at
    `fraction`; mean over seeds, the whisker from the lowest to the highest seed, the seeds per
    bar under it. The dashed line: the plain ResNet poisoned by a poison crafted against itself
    (mean over seeds). Raises `UsageError` when no record was crafted against the victim."""
    adaptive = _select(records, surrogate="victim", setting="no defence", fraction=fraction)
    if not adaptive:
        raise UsageError("no poisoning records crafted against the victim to plot (the "
                         "profile's poisoning grid has no 'adaptive' poisons)")
    poisons = list(dict.fromkeys(r["poison"] for r in adaptive))
    backdoor = any("attack_success_rate" in r for r in adaptive)
    measures = [("clean_accuracy", "clean test accuracy (%)")] + (
        [("attack_success_rate", "attack success rate (%)")] if backdoor else [])
    fig, axes = plt.subplots(len(measures), len(poisons), figsize=(
        max(4.2 * len(poisons) + 1, 9.0), 3.4 * len(measures) + 1.4), squeeze=False,
        sharey="row")
    shades = {"resnet": 0.35, "victim": 1.0}
    for j, poison in enumerate(poisons):
        rows = [row for row in _ROWS[1:] if _select(records, surrogate="victim",
                                                   poison=poison, row=row,
                                                   setting="no defence", fraction=fraction)]
        for i, (key, label) in enumerate(measures):
            ax = axes[i][j]
            base = [r[key] for r in _select(records, poison=poison, row="resnet",
                                            setting="no defence", fraction=fraction) if key in r]
            if base:
                ax.axhline(np.mean(base), color="grey", ls="--", lw=1)
            for k, row in enumerate(rows):
                for m, surrogate in enumerate(("resnet", "victim")):
                    chosen = [r[key] for r in _select(records, surrogate=surrogate,
                                                      poison=poison, row=row,
                                                      setting="no defence", fraction=fraction)
                              if key in r]
                    if not chosen:
                        continue
                    mean, lo, hi = _stats(chosen)
                    x = k + (m - 0.5) * 0.38
                    ax.bar(x, mean, width=0.36, yerr=[[mean - lo], [hi - mean]], capsize=2,
                           color=plt.get_cmap("tab10")(_ROWS.index(row)),
                           alpha=shades[surrogate])
                    ax.text(x, 2, f"n={len(chosen)}", ha="center", fontsize=7)
            if not any(key in r for r in _select(records, surrogate="victim", poison=poison)):
                ax.text(0.5, 0.5, "no backdoor", ha="center", va="center",
                        transform=ax.transAxes, fontsize=8, color="grey")
            ax.set_xticks(range(len(rows)))
            ax.set_xticklabels([_LABELS[row] for row in rows], fontsize=8)
            ax.set_ylim(0, 100)
            ax.set_ylabel(label)
            ax.tick_params(labelleft=True)
            ax.set_title(f"{poison}: {label.split(' (')[0]}", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
    handles = [Patch(color="grey", alpha=shades["resnet"],
                     label="poison crafted against the plain ResNet (transfer)"),
               Patch(color="grey", alpha=shades["victim"],
                     label="poison crafted against the victim itself (adaptive)"),
               plt.Line2D([], [], color="grey", ls="--",
                          label="plain ResNet (its poison crafted against itself)")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(title or (f"Does the defence survive an attacker who knows it?\nPoisons "
                           f"crafted against the plain ResNet vs against the victim itself\n"
                           f"(clean training, {fraction:.0%} poisoned; n = seeds per bar)"),
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 0.92))
    return fig
