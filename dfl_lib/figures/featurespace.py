"""The feature-space figure: UMAP of clean vs perturbed features, one panel per model.

    panels = {"undefended": {"clean_2d": c, "perturbed_2d": p, "y": y, "metrics": m}, ...}
    fig = plot_umap_panels(panels, title="CIFAR-10 test, PGD-10 eps 8/255")
    fig.savefig("featurespace.png", dpi=150)

clean_2d, perturbed_2d (N, 2) come from `evaluation.featurespace.umap_embedding`, metrics from
`evaluation.featurespace.clustering_metrics`; row i of both is the same sample, y (N,) its true class.
Nothing here computes features or metrics.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

import matplotlib.pyplot as plt

from ..errors import UsageError
from .legends import class_handles, marker_handle

__all__ = ["plot_umap_panels"]

KEYS = ("clean_2d", "perturbed_2d", "y", "metrics")


def _panel_arrays(name: str, panel: Mapping) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    missing = [k for k in KEYS if k not in panel]
    if missing:
        raise KeyError(f"panel {name!r} lacks {missing}; each panel needs {list(KEYS)}")
    clean = np.asarray(panel["clean_2d"], dtype=float)  # (N, 2)
    perturbed = np.asarray(panel["perturbed_2d"], dtype=float)  # (N, 2)
    y = np.asarray(panel["y"]).astype(int).ravel()  # (N,)
    if clean.ndim != 2 or clean.shape[1] != 2 or perturbed.shape != clean.shape:
        raise UsageError(f"panel {name!r}: clean_2d and perturbed_2d must both have shape "
                         f"(N, 2), got {clean.shape} and {perturbed.shape}")
    if y.shape != (clean.shape[0],):
        raise UsageError(f"panel {name!r}: y must have shape ({clean.shape[0]},), got {y.shape}")
    return clean, perturbed, y


def plot_umap_panels(panels: Mapping[str, Mapping], *, title: str,
                     class_names: Sequence[str] | None = None):
    """One panel per model (the keys of `panels`, in order): clean features as small dots,
    perturbed ones as 'x', coloured by true class (tab10; classes beyond 10 reuse colours);
    each panel's title gives the perturbed centroid hit rate and the displacement ratio.
    One legend below the panels names the classes (`class_names[k]`, else "class k") and the
    two markers. Returns the figure."""
    if not panels:
        raise UsageError("no panels to plot")
    arrays = {name: _panel_arrays(name, panel) for name, panel in panels.items()}
    classes = sorted(set().union(*(set(y.tolist()) for _, _, y in arrays.values())))
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(panels), squeeze=False, figsize=(4.3 * len(panels), 4.6),
                             layout="constrained")
    for ax, (name, (clean, perturbed, y)) in zip(axes[0], arrays.items()):
        # a fixed shuffle, so that data sorted by class does not draw its last class on top
        order = np.random.default_rng(0).permutation(len(y))
        clean, perturbed, y = clean[order], perturbed[order], y[order]
        colour = [colours(k % 10) for k in y]  # one RGBA per sample
        # clean first, perturbed on top: the question is where the perturbed points land
        ax.scatter(clean[:, 0], clean[:, 1], c=colour, s=9, alpha=0.5, linewidths=0,
                   rasterized=True)
        ax.scatter(perturbed[:, 0], perturbed[:, 1], c=colour, s=14, marker="x", alpha=0.75,
                   linewidths=0.7, rasterized=True)
        m = panels[name]["metrics"]
        reference = (f" (clean {m['centroid_hit_rate_clean']:.1f}%)"
                     if "centroid_hit_rate_clean" in m else "")
        ax.set_title(f"{name}\nperturbed centroid hit {m['centroid_hit_rate_perturbed']:.1f}%"
                     f"{reference}\ndisplacement ratio {m['displacement_ratio']:.2f}", fontsize=9)
        ax.set_xlabel("UMAP 1", fontsize=8)
        ax.set_ylabel("UMAP 2", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_aspect("equal", adjustable="datalim")
    handles = class_handles(classes, names=class_names)
    handles += [marker_handle("o", "clean", markersize=4),
                marker_handle("x", "perturbed", markeredgewidth=1.2)]
    fig.legend(handles=handles, loc="outside lower center", fontsize=8, frameon=False,
               ncol=min(len(handles), max(6, 4 * len(panels))), handletextpad=0.2,
               columnspacing=1.0)
    fig.suptitle(title, fontsize=11)
    return fig
