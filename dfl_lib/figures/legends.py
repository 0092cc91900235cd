"""Legend entries shared by the figures that colour points by class (Figure 4, the UMAP
panels of notebooks 05 and 07): one coloured dot per class and one grey sample per marker, so
that a figure's colours and markers are explained on the figure itself, not only in its title.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

__all__ = ["class_handles", "marker_handle"]


def class_handles(classes: Sequence[int], *, names: Sequence[str] | None = None,
                  markersize: float = 6) -> list[Line2D]:
    """One dot per class in its tab10 colour (classes beyond 10 reuse colours, as the points
    do), labelled `names[k]` when given, else "class k"."""
    colours = plt.get_cmap("tab10")
    return [Line2D([], [], marker="o", linestyle="", color=colours(int(k) % 10),
                   markersize=markersize, label=names[k] if names is not None else f"class {k}")
            for k in classes]


def marker_handle(marker: str, label: str, **style) -> Line2D:
    """A grey sample of `marker` (the points' own colour is their class) labelled `label`;
    `style`: Line2D keywords (markersize, markeredgecolor, ...)."""
    return Line2D([], [], marker=marker, linestyle="", color="0.35", label=label,
                  **{"markersize": 6, **style})
