"""Sanity curves of the headline evaluations (notebook 03), the checks Carlini et al. (2019, "On
evaluating adversarial robustness", Section 5) ask every robustness claim to show, drawn from
the numbers the headline suite and its gradient-masking checks already measured (no attack runs
here):

    fig = sanity_curves(cells)      # cells: `study.records.cell_results`
    rows = masking_numbers(cells)   # the masking checks' numbers beside their flags

Panels: (a) accuracy against eps: clean at 0, the strongest white-box attack at the threat's eps,
the eps sweep of the masking checks up to eps 1, where every model must reach 0; (b) accuracy
against attack strength at the threat's eps (FGSM, PGD-10, PGD-50 with restarts, AutoAttack):
it must not rise; (c) white-box against black-box (Square, transfer): black-box must not be
stronger.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from ..errors import UsageError
from ..paper.comparison import ROW_LABELS

__all__ = ["sanity_curves", "masking_numbers", "sweep_curves"]

_STRENGTH = ("FGSM", "PGD-10", "PGD-50 x3 restarts", "AutoAttack")


def _headlines(cells: dict) -> list[tuple[str, dict]]:
    """(label, headline metrics) of every cell with a headline evaluation and masking checks."""
    out = []
    for (dataset, row, setting), found in cells.items():
        head = found.get("headline")
        if head and head.get("masking"):
            seed = head.get("provenance", {}).get("seed", 0)
            out.append((f"{ROW_LABELS.get(row, row)}, {setting} ({dataset}, seed {seed})", head))
    return out


def _by_name(head: dict) -> dict[str, float]:
    return {r["name"]: 100.0 * r["accuracy"] for r in head["table"]}


def _check(head: dict, name: str) -> dict:
    return next((c for c in head["masking"] if c["check"] == name), {})


def sanity_curves(cells: dict, *, title: str = ""):
    """The three sanity panels (see the module's docstring), one line or bar group per headline
    cell; accuracy in % on the headline images (n in the title). UsageError when no cell has a
    headline evaluation with masking checks."""
    heads = _headlines(cells)
    if not heads:
        raise UsageError("no headline evaluation with masking checks to draw")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    colours = plt.get_cmap("tab10")
    width = 0.8 / len(heads)
    places: list[str] = []  # the black-box panel's attacks, in order of first appearance
    for k, (label, head) in enumerate(heads):
        acc = _by_name(head)
        eps = head["table"][-1].get("eps") or head.get("eps")
        sweep = _check(head, "eps_sweep").get("values", {})
        worst = next((100.0 * r["accuracy"] for r in head["table"]
                      if r["name"].startswith("worst case")), None)
        threat_eps = eps if eps is not None else (sweep.get("eps") or [None])[0]
        xs, ys = [0.0], [acc.get("clean")]
        if worst is not None and threat_eps is not None:
            xs.append(threat_eps)
            ys.append(worst)
        for e, a in zip(sweep.get("eps", []), sweep.get("accuracy", [])):
            if threat_eps is None or e > threat_eps + 1e-9:
                xs.append(e)
                ys.append(100.0 * a)
        axes[0].plot(xs, ys, "o-", color=colours(k), label=label)
        strength = [(n, acc[n]) for n in _STRENGTH if n in acc]
        axes[1].plot([n for n, _ in strength], [a for _, a in strength], "o-", color=colours(k),
                     label=label)
        box = _check(head, "black_box").get("values", {})
        bars = [("white-box (worst)", 100.0 * box["accuracy_white_box"])] if \
            "accuracy_white_box" in box else []
        bars += [(name.split(" (")[0], 100.0 * v["accuracy"]) for name, v in box.items()
                 if isinstance(v, dict) and "accuracy" in v]
        for name, _ in bars:  # one place per attack, whichever cells ran it
            if name not in places:
                places.append(name)
        axes[2].bar([places.index(n) + (k - (len(heads) - 1) / 2) * width for n, _ in bars],
                    [a for _, a in bars], width=width, color=colours(k), label=label)
    axes[2].set_xticks(range(len(places)), places, fontsize=8)
    n = heads[0][1].get("n_eval")
    axes[0].set_xlabel("eps (L-inf, pixel units)")
    axes[0].set_title("(a) accuracy against eps: must reach 0 at eps 1", fontsize=9)
    axes[1].set_xlabel("attack at the threat's eps (weaker to stronger)")
    axes[1].set_title("(b) accuracy against attack strength: must not rise", fontsize=9)
    axes[2].set_xlabel("attack at the threat's eps")
    axes[2].set_title("(c) white-box against black-box: black-box must not be lower", fontsize=9)
    for ax in axes:
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 2), fontsize=8,
               frameon=False)
    fig.suptitle((title + "\n" if title else "") + f"Sanity curves of the headline evaluations "
                 f"(n = {n} test images each; from the suite's and the masking checks' own "
                 "numbers)", fontsize=10)
    return fig


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def masking_numbers(cells: dict) -> dict[str, dict]:
    """{"<cell label> / <check>": {"passed", "numbers"}}: every gradient-masking check of every
    headline evaluation with the numbers behind its flag (accuracies as fractions of the
    headline images), for `records_markdown`."""
    out = {}
    for label, head in _headlines(cells):
        for c in head["masking"]:
            parts = []
            for key, value in c.get("values", {}).items():
                if isinstance(value, dict):  # one level down: the accuracies and counts
                    value = {k: v for k, v in value.items() if not isinstance(v, (dict, list))}
                    parts.append(f"{key}: " + ", ".join(f"{k} {_fmt(v)}"
                                                        for k, v in value.items()))
                else:
                    parts.append(f"{key} {_fmt(value)}")
            out[f"{label} / {c['check']}"] = {"passed": c["passed"],
                                              "numbers": "; ".join(parts)}
    return out


_SWEEP_PANELS = (("eps", "(a) accuracy against eps: must fall and reach 0",
                  "eps (L-inf, pixel units)"),
                 ("steps", "(b) against PGD's iterations at the threat's eps: must not rise",
                  "PGD iterations (log scale)"),
                 ("restarts", "(c) against random restarts: a large gain signals masking",
                  "random restarts (robust only if every one fails)"))


_SEED_STYLES = ("-", "--", ":", "-.")


def sweep_curves(report: dict):
    """The sanity sweeps of `studies/sanity_sweep.py` (its JSON report: {"profile", "n",
    "eps", "models": {key: {"row", "setting", "seed", "sweeps": {sweep: {"points": {x:
    {"accuracy" (%), "n"}}}}}}}) as three panels, one line per model: accuracy against eps,
    against PGD's iterations (log x), against restarts; an eps curve's tail re-attacked with
    AutoAttack ("eps_autoattack") as black crosses. UsageError when no model has a sweep."""
    # by seed, then model: the legend's columns fill one seed each
    models = sorted((m for m in report["models"].values() if m.get("sweeps")),
                    key=lambda m: (m["seed"], m["row"], m["setting"]))
    if not models:
        raise UsageError("the sweep report holds no model's sweep to draw")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    seeds = sorted({m["seed"] for m in models})
    fig.suptitle(f"{report['profile']}: sanity sweeps of the headline models ({report['dataset']},"
                 f" n = {report['n']} test images per model, seed{'s' * (len(seeds) > 1)} "
                 f"{', '.join(map(str, seeds))}; the study's PGD, best iterate kept)")
    handles = {}
    # one colour per model (row and setting), one line style per seed: a model's seeds read
    # together, and twelve lines never run out of colours
    configs = list(dict.fromkeys((m["row"], m["setting"]) for m in models))
    for ax, (sweep, title, xlabel) in zip(axes, _SWEEP_PANELS):
        for m in models:
            points = m["sweeps"].get(sweep, {}).get("points", {})
            if not points:
                continue
            xs, ys = zip(*sorted((float(k), p["accuracy"]) for k, p in points.items()))
            label = f"{ROW_LABELS.get(m['row'], m['row'])}, {m['setting']} (seed {m['seed']})"
            (line,) = ax.plot(xs, ys, marker="o", markersize=4,
                              color=f"C{configs.index((m['row'], m['setting'])) % 10}",
                              linestyle=_SEED_STYLES[seeds.index(m["seed"]) % len(_SEED_STYLES)],
                              label=label)
            handles[label] = line
        if sweep == "eps":  # a tail re-attacked with AutoAttack (the sweep's escalation)
            for m in models:
                strong = m["sweeps"].get("eps_autoattack", {}).get("points", {})
                if strong:
                    xs, ys = zip(*sorted((float(k), p["accuracy"]) for k, p in strong.items()))
                    (mark,) = ax.plot(xs, ys, "kx", markersize=7, zorder=5)
                    handles["tail re-attacked: AutoAttack on PGD-20's survivors"] = mark
            ax.axvline(report["eps"], color="grey", ls=":", lw=1)
            ax.text(report["eps"], 50, f" threat eps {report['eps']:g}", color="grey",
                    fontsize=8)
        if sweep == "steps":
            ax.set_xscale("log")
        if sweep == "restarts":
            ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if sweep == "eps":
            ax.set_ylabel("accuracy (%)")
            ax.set_ylim(0, 100)
        else:  # a point or two is what these curves are about: the axis zoomed onto the data
            ys = [y for line in ax.get_lines() for y in line.get_ydata()]
            if ys:
                ax.set_ylim(max(0.0, min(ys) - 3), min(100.0, max(ys) + 2))
            ax.set_ylabel("accuracy (%), axis zoomed")
    ncol = min(len(handles), len(seeds) if len(seeds) > 1 else 2)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=ncol,
               fontsize=8, frameon=False)
    rows = -(-len(handles) // ncol)  # the legend's rows get their room below the panels
    fig.tight_layout(rect=(0, min(0.05 + 0.045 * rows, 0.4), 1, 0.95))
    return fig
