"""One figure for the robustness tables: every printed cell, the paper's value against ours.

    fig = paper_vs_ours({"Table 1": rows, ...})   # rows: comparison.table_rows(...)
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

__all__ = ["paper_vs_ours", "PLOTTED_COLUMNS"]

# the paper's C&W column is C&W-L2 with a fixed c; ours beside it is CW-inf (the C&W margin
# inside L-inf PGD), another attack under another threat model: never plotted against it
PLOTTED_COLUMNS = {"FGSM": "o", "PGD-10": "s"}
# one panel per dataset of the paper; a copy standing for one (by a profile's choice) is drawn
# in its panel and named in its title
_PANELS = {"mnist": ("mnist",), "cifar10": ("cifar10", "cifar10_jpeg")}
_NAMES = {"mnist": "MNIST (eps 0.3)", "cifar10": "CIFAR-10 (eps 0.03)",
          "cifar10_jpeg": "CIFAR-10, JPEG copy (eps 0.03)"}


def _unique_cells(tables: Mapping[str, Sequence[Mapping]]) -> list[Mapping]:
    """Each (dataset, row, setting, column) once: Tables 3-6 repeat rows of Tables 1-2 (the
    first printing wins; the paper's one disagreement, Dynamic's MNIST FGSM 14.04 / 17.04, is
    in the tables' notes)."""
    seen, out = set(), []
    for rows in tables.values():
        for r in rows:
            row = "dfl_pcl" if r["row"] == "resnet_dfl_pcl" else r["row"]
            key = (r["dataset"], row, r["setting"], r["column"])
            if key not in seen:
                seen.add(key)
                out.append(r)
    return out


def _seed_counts(ours: Sequence[Mapping]) -> str:
    """", 8 cells at 3 seeds, 2 at seed 0": a panel's cells by their number of seeds (a cell
    trained once is seed 0: `study.plan.cell_seeds`)."""
    counts = Counter(r["seeds"] for r in ours)
    if len(counts) == 1:
        (n_seeds,) = counts
        return " at seed 0" if n_seeds == 1 else f", {n_seeds} seeds each"
    return ", " + ", ".join(f"{n} at {'seed 0' if s == 1 else f'{s} seeds'}"
                            for s, n in sorted(counts.items(), reverse=True))


def _below_floor(r: Mapping, floors: Mapping[str, float]) -> bool:
    """Whether a cell's clean accuracy (mean over seeds, %) is below its dataset's floor."""
    clean = (r.get("strong") or {}).get("clean")
    return r["dataset"] in floors and clean is not None and clean[0] < floors[r["dataset"]]


def paper_vs_ours(tables: Mapping[str, Sequence[Mapping]], *, title: str = "",
                  models: str = "", clean_floors: Mapping[str, float] | None = None):
    """One panel per dataset: x = the paper's robust accuracy, y = ours (mean over seeds, the
    std as an error bar), each printed cell once; colour = row (method), marker = attack
    (FGSM, PGD-10), filled = adversarial training, hollow = no defence; the diagonal is
    agreement. Each panel's title counts its cells by seeds; `models` (e.g. "ours: resnet18
    (width 16) for the paper's ResNet-50 (quick)") is the title's last line. The C&W column
    is left out (see PLOTTED_COLUMNS). A dataset without any of our cells says so in its
    panel. `clean_floors` ({dataset: %}, `paper.regime.clean_floor`): a cell whose clean
    accuracy is below its dataset's floor is crossed out in grey and counted in its panel's
    title (below regime: it enters no verdict)."""
    floors = clean_floors or {}
    cells = _unique_cells(tables)
    # the legend names the rows with a cell of ours (a profile runs some rows only)
    rows = list(dict.fromkeys(r["label"] for r in cells if r["ours"] is not None
                              and r["column"] in PLOTTED_COLUMNS))
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(_PANELS), figsize=(12, 5.4), sharex=True, sharey=True)
    for ax, keys in zip(axes, _PANELS.values()):
        ours = [r for r in cells if r["dataset"] in keys and r["ours"] is not None
                and r["column"] in PLOTTED_COLUMNS]
        shown = [k for k in keys if any(r["dataset"] == k for r in cells)] or [keys[0]]
        dataset, name = shown[0], " and ".join(_NAMES[k] for k in shown)
        for r in ours:
            colour = colours(rows.index(r["label"]) % 10)
            filled = r["setting"] == "adversarial training"
            ax.errorbar([r["paper"]], [r["ours"]], yerr=[r["std"] or 0.0],
                        fmt=PLOTTED_COLUMNS[r["column"]], ms=7, color=colour, capsize=2,
                        mfc=colour if filled else "white", mec=colour, alpha=0.9)
            if _below_floor(r, floors):
                ax.plot([r["paper"]], [r["ours"]], marker="x", ms=9, color="dimgrey", ls="")
        if not ours:
            ax.text(50, 50, "no cells of ours at this profile", ha="center", va="center",
                    fontsize=10, color="grey")
        ax.plot([0, 100], [0, 100], color="grey", lw=1, ls="--")
        ax.set_xlim(-3, 103)
        ax.set_ylim(-3, 103)
        low = sum(_below_floor(r, floors) for r in ours)
        ax.set_title(f"{name}: {len(ours)} cell{'' if len(ours) == 1 else 's'}"
                     + (_seed_counts(ours) if ours else "")
                     + (f"\n{low} below the clean floor ({floors[dataset]:g}% clean, crossed): "
                        "below regime" if low else ""))
        ax.set_xlabel("the paper's robust accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("our robust accuracy (%), mean ± std over seeds")
    handles = [Line2D([], [], color=colours(i % 10), marker="o", ls="", label=label)
               for i, label in enumerate(rows)]
    handles += [Line2D([], [], color="black", marker=m, ls="", label=c)
                for c, m in PLOTTED_COLUMNS.items()]
    handles += [Line2D([], [], color="black", marker="o", mfc="black", ls="",
                       label="adversarial training"),
                Line2D([], [], color="black", marker="o", mfc="white", ls="",
                       label="no defence")]
    if any(_below_floor(r, floors) for r in cells if r["ours"] is not None):
        handles.append(Line2D([], [], color="dimgrey", marker="x", ls="",
                              label="below the clean floor"))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
               frameon=False)
    title = title or ("Tables 1-6, each printed cell once: the paper's number (x) against ours "
                      "(y); dashed: agreement.\nC&W not plotted: the paper's is C&W-L2 with a "
                      "fixed c, ours CW-inf (another attack and threat model)")
    fig.suptitle(title + (f"\n{models}" if models else ""), fontsize=10)
    fig.tight_layout()
    return fig
