"""Figure 4 of the paper drawn from computed 2-D features (`dfl_lib.experiments.geometry`): one panel per
loss with its decision regions, its test features by class and its class means; and the same
panels under attack, for an epsilon widget (the widget redraws `plot_regions_under_attack`).

    panels = {"CE": {"features": f, "y": y, "regions": decision_regions(...),
                     "centroids": class_centroids(f, y), "ratio": separation_ratio(f, y)}, ...}
    fig = plot_feature_panels(panels, title="MNIST, 2-D features")
    panels["CE"]["attacked"] = attacked_features(model, x, y, eps=0.1)    # for the attack view
    fig = plot_regions_under_attack(panels, eps=0.1, dataset="MNIST", seed=0)

Plotting only: nothing here trains, attacks or evaluates a model.
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap, to_rgb
from matplotlib.lines import Line2D

from ..errors import UsageError
from .legends import class_handles

__all__ = ["plot_feature_panels", "plot_regions_under_attack", "CLASS_COLOURS"]

CLASS_COLOURS = [plt.get_cmap("tab10")(k) for k in range(10)]
REGION_TINT = 0.22  # share of the class colour in a region's background (rest: white)
PANEL_SIZE = 4.0  # inches per panel side
KEYS = ("features", "y", "regions", "centroids", "ratio")


def _np(t) -> np.ndarray:
    """A tensor (any device, with or without grad) or array as a numpy array."""
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def _check(panels: Mapping[str, Mapping], extra: tuple[str, ...] = ()) -> None:
    if not panels:
        raise UsageError("no panels to plot")
    for name, p in panels.items():
        missing = [k for k in KEYS + extra if k not in p]
        if missing:
            raise KeyError(f"panel {name!r} lacks {missing}; a panel needs {list(KEYS + extra)}")


def _region_cmap() -> ListedColormap:
    """tab10 mixed with white: light backgrounds that keep each class's hue."""
    white = np.ones(3)
    return ListedColormap([REGION_TINT * np.array(to_rgb(c)) + (1 - REGION_TINT) * white
                           for c in CLASS_COLOURS])


def _axes(n: int):
    fig, axes = plt.subplots(1, n, figsize=(PANEL_SIZE * n, PANEL_SIZE + 1.1), squeeze=False)
    return fig, list(axes[0])


def _draw_regions(ax, panel: Mapping) -> None:
    """Decision regions (R, R) as the background, axes limited to their extent."""
    labels, extent = panel["regions"]
    ax.imshow(_np(labels), origin="lower", extent=extent, cmap=_region_cmap(), vmin=-0.5,
              vmax=9.5, interpolation="nearest", aspect="equal")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("feature 1")
    ax.set_ylabel("feature 2")
    ax.tick_params(labelsize=8)


def _draw_centroids(ax, panel: Mapping) -> None:
    """Class means as black crosses on a white halo, readable over points of any colour."""
    c = _np(panel["centroids"])  # (10, 2)
    ax.scatter(c[:, 0], c[:, 1], marker="x", s=80, linewidths=4.5, color="white", zorder=5)
    ax.scatter(c[:, 0], c[:, 1], marker="x", s=70, linewidths=2.2, color="black", zorder=6)


def _point_colours(y) -> np.ndarray:
    return np.array(CLASS_COLOURS)[_np(y).astype(int)]  # (N, 4) RGBA


def _legend(fig, *, centroids: bool = True, extra: list | None = None) -> None:
    """One legend for the figure: digits 0-9 once, the class-mean cross, and any extra handles."""
    handles = class_handles(range(10), names=[str(k) for k in range(10)], markersize=7)
    if centroids:
        handles.append(Line2D([], [], marker="x", linestyle="", markersize=8, color="black",
                              markeredgewidth=2, label="class mean"))
    handles += extra or []
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False,
               fontsize=9, handletextpad=0.2, columnspacing=1.0)


def _panel_title(i: int, name: str, panel: Mapping) -> str:
    return f"({chr(ord('a') + i)}) {name}: intra/inter {float(panel['ratio']):.2f}"


def plot_feature_panels(panels: Mapping[str, Mapping], *, title: str):
    """One axis per loss, side by side, in the dict's order: decision regions as a light
    background, test features coloured by class (tab10), class means as black crosses.

    panels: {name: {"features": (N, 2), "y": (N,), "regions": (labels (R, R), extent),
    "centroids": (10, 2), "ratio": float}} (the outputs of `dfl_lib.experiments.geometry`). Each panel is
    titled "(a) <name>: intra/inter <ratio>". Returns the figure.
    """
    _check(panels)
    fig, axes = _axes(len(panels))
    for i, (ax, (name, p)) in enumerate(zip(axes, panels.items())):
        _draw_regions(ax, p)
        f = _np(p["features"])  # (N, 2)
        ax.scatter(f[:, 0], f[:, 1], s=5, c=_point_colours(p["y"]), alpha=0.7, linewidths=0,
                   rasterized=True)
        _draw_centroids(ax, p)
        ax.set_title(_panel_title(i, name, p), fontsize=11)
    _legend(fig)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0, 0.075, 1, 0.96))
    return fig


def plot_regions_under_attack(panels: Mapping[str, Mapping], *, eps: float, dataset: str,
                              seed: int, title: str | None = None,
                              max_lines: int | None = 300, line_seed: int = 0):
    """`plot_feature_panels`' layout with each panel's points under attack: clean features
    faint, attacked ones solid, a thin line from each clean point to its attacked position.

    Each panel also needs "attacked": (N, 2) features of the attacked images at this eps and
    "steps": the PGD steps that moved them (`experiments.geometry_runs.attack_panels` gives both),
    and may give "kept": the share of attacked points the classifier still assigns to their
    true class (`experiments.geometry.share_in_true_region`); without it the share is read off the regions
    grid (the cell under each point, points outside the extent taking the nearest edge cell).
    The subtitle gives that share. The default title names the attack, eps (pixel units),
    `dataset`, the nets' training `seed` and the number of test images; a given `title`
    replaces it. Lines are drawn for at most `max_lines` points per panel (a random subset
    drawn with `line_seed`; None = all): a thousand crossing lines hide the regions. Every
    point is drawn. Returns the figure.
    """
    _check(panels, extra=("attacked", "steps"))
    fig, axes = _axes(len(panels))
    for i, (ax, (name, p)) in enumerate(zip(axes, panels.items())):
        _draw_regions(ax, p)
        f, g = _np(p["features"]), _np(p["attacked"])  # (N, 2) clean, (N, 2) attacked
        colours = _point_colours(p["y"])  # (N, 4)
        ax.scatter(f[:, 0], f[:, 1], s=5, c=colours, alpha=0.15, linewidths=0, rasterized=True)
        some = _subset(len(f), max_lines, seed=line_seed)  # (M,) indices
        segments = np.stack([f[some], g[some]], axis=1)  # (M, 2 ends, 2 coords)
        ax.add_collection(LineCollection(segments, colors=colours[some], linewidths=0.6,
                                         alpha=0.45, rasterized=True))
        ax.scatter(g[:, 0], g[:, 1], s=7, c=colours, alpha=0.9, linewidths=0, rasterized=True)
        _draw_centroids(ax, p)
        kept = float(p["kept"]) if "kept" in p else _share_from_grid(g, p["y"], p["regions"])
        ax.set_title(f"{_panel_title(i, name, p)}\n{100 * kept:.0f}% still in their class's "
                     f"region", fontsize=10)
    clean = Line2D([], [], marker="o", linestyle="", markersize=7, color="grey", alpha=0.3,
                   label="clean")
    moved = Line2D([], [], marker="o", linestyle="", markersize=7, color="grey",
                   label="attacked")
    _legend(fig, extra=[clean, moved])
    # the figure leaves its notebook (the lab screenshots, the explorer): it names what it shows
    first = next(iter(panels.values()))
    steps = sorted({int(p["steps"]) for p in panels.values()})
    n = len(_np(first["features"]))
    fig.suptitle(title or f"{dataset} test features under L-inf PGD-{'/'.join(map(str, steps))}, "
                          f"eps = {eps:g} (pixel units): seed {seed}, {n} test images",
                 fontsize=12)
    fig.tight_layout(rect=(0, 0.075, 1, 0.96))
    return fig


def _subset(n: int, k: int | None, *, seed: int) -> np.ndarray:
    """Sorted indices of k of range(n) drawn with `seed` (all of them when k is None or >= n)."""
    if k is None or k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _share_from_grid(points: np.ndarray, y, regions) -> float:
    """Share of points (N, 2) whose region cell (see geometry.decision_regions) is their class."""
    labels, (xmin, xmax, ymin, ymax) = regions
    labels = _np(labels)
    r_y, r_x = labels.shape
    col = np.clip(((points[:, 0] - xmin) / (xmax - xmin) * r_x).astype(int), 0, r_x - 1)
    row = np.clip(((points[:, 1] - ymin) / (ymax - ymin) * r_y).astype(int), 0, r_y - 1)
    return float(np.mean(labels[row, col] == _np(y)))
