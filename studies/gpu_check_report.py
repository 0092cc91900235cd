"""The GPU check's words (studies/gpu_check.py): the regime gate on its CIFAR-10 cells, its MNIST
cells beside the CPU study's 3-seed means (reports/quick), and README.md from gpu-check.json.

    extra = regime_and_cross_check(report, root=repo_root)  # {"regime", "mnist_vs_cpu"}
    text = markdown({**report, **extra})
"""
from __future__ import annotations

import json
from pathlib import Path

from dfl_lib.paper.numbers import paper_value
from dfl_lib.paper.regime import REGIMES, regime_reason, untrained_reason

__all__ = ["regime_and_cross_check", "markdown", "PAPER_COLUMNS"]

# the paper's columns -> our table rows standing for them (dfl_lib.evaluation.suites), their
# names at a cell's attack steps k; the CPU study's place of each MNIST row in reports/quick's
# 03-robustness-tables metrics (a paper column, or a key of that cell's "strong" columns)
PAPER_COLUMNS = {"FGSM": "FGSM", "PGD-10": "PGD-{k}", "C&W": "CW-inf (PGD-{k})"}
_CPU_ROWS = {"clean": ("strong", "clean"), "FGSM": ("column", "FGSM"),
             "PGD-{k}": ("column", "PGD-10"), "CW-inf (PGD-{k})": ("column", "C&W"),
             "PGD-{k5}": ("strong", "PGD-50"), "AutoAttack": ("strong", "AutoAttack")}
_TABLE_OF_ROW = {"dfl_pcl": "Table 2", "dfl": "Table 4", "resnet": "Table 2"}


def _accuracy(cell: dict, name: str) -> float | None:
    """A row's accuracy in %, the row named with the cell's attack steps ("PGD-{k}")."""
    k = cell["config"]["attack_steps"]
    name = name.format(k=k, k5=5 * k)
    for row in cell.get("table") or []:
        if row["name"] == name:
            return 100 * row["accuracy"]
    return None


def _row_of(cell: dict) -> tuple[str, str]:
    """(row, setting) of a cell record, from its key "dataset | row | setting | s0[ | ...]"."""
    parts = [p.strip() for p in cell["key"].split("|")]
    return parts[1], parts[2]


def regime_and_cross_check(report: dict, *, root: Path) -> dict:
    """{"regime": the CIFAR-10 gate's reason ("" = in the regime) and its numbers,
    "mnist_vs_cpu": [{row, setting, name, gpu, cpu_mean, cpu_sd, cpu_seeds}]} from the report's
    cells; the CPU side read from root/reports/quick/03-robustness-tables/metrics.json where it
    exists (else an empty list)."""
    cells = [c for c in report["cells"] if "table" in c]
    anchor = next((c for c in cells if c["dataset"] == "cifar10_jpeg" and c["role"] == "headline"
                   and _row_of(c) == ("resnet", "adversarial training")), None)
    aa = _accuracy(anchor, "AutoAttack") if anchor else None
    clean = {f"{_row_of(c)[0]} ({_row_of(c)[1]})": _accuracy(c, "clean") for c in cells
             if c["dataset"] == "cifar10_jpeg" and c["role"] == "cell"}
    reason = regime_reason(dataset="cifar10_jpeg", baseline_autoattack=aa,
                           n=anchor["n_eval"] if anchor else 0)
    regime = {"reason": reason or untrained_reason(
                  dataset="cifar10_jpeg",
                  clean={k: v for k, v in clean.items() if "adversarial" in k and v is not None}),
              "resnet_pgd_trained_autoattack": aa,
              "floors": {"clean": REGIMES["cifar10_jpeg"].clean_floor,
                         "autoattack": REGIMES["cifar10_jpeg"].robust_floor}}
    return {"regime": regime, "mnist_vs_cpu": _mnist_vs_cpu(cells, root=root)}


def _mnist_vs_cpu(cells: list[dict], *, root: Path) -> list[dict]:
    path = root / "reports" / "quick" / "03-robustness-tables" / "metrics.json"
    if not path.exists():
        return []
    rows = [r for table in json.loads(path.read_text())["tables"].values() for r in table
            if r.get("dataset") == "mnist" and r.get("table") == "Table 1"]
    out = []
    for cell in cells:
        if cell["dataset"] != "mnist":
            continue
        row, setting = _row_of(cell)
        mine = [r for r in rows if (r["row"], r["setting"]) == (row, setting)]
        if not mine:
            continue
        for name, (where, key) in _CPU_ROWS.items():
            gpu = _accuracy(cell, name)
            if gpu is None:
                continue
            if where == "column":
                match = next((r for r in mine if r["column"] == key), None)
                mean, sd = (match["ours"], match["std"]) if match else (None, None)
            else:
                mean, sd = (mine[0].get("strong") or {}).get(key, (None, None))
            if mean is None:
                continue
            k = cell["config"]["attack_steps"]
            out.append({"row": row, "setting": setting, "suite": cell["suite"],
                        "name": name.format(k=k, k5=5 * k),
                        "gpu": gpu, "cpu_mean": mean, "cpu_sd": sd,
                        "cpu_seeds": mine[0]["seeds"]})
    return out


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def markdown(report: dict) -> str:
    """README.md of reports/gpu-check: the device and sizing, the CIFAR-10 cells beside the
    paper's Tables 2 and 4, the regime gate, the MNIST cross-check."""
    sizing = report["sizing"]
    lines = [
        "# GPU check: CIFAR-10 cells of Tables 2 and 4, and the MNIST headline on another device",
        "",
        f"Device: {report.get('gpu', report['device'])}, torch {report['torch']}; made by "
        "`python studies/gpu_check.py run` (one command, budget "
        f"{report['budget_s']:.0f} s, wall {_fmt(report.get('wall_s'))} s).",
        "",
        f"**Sizing, measured there**: a 1-epoch PGD-10 training of DFL + PCL ran at "
        f"{sizing['effective_tflops']} TFLOP/s effective (the plan's assumption: "
        f"{sizing['assumed_tflops']}); at that speed {sizing['epochs']} epochs on "
        f"{sizing['n_train']:,} CIFAR-10 training images fit every cell (predicted "
        f"{sizing['predicted_s']:.0f} s of {sizing['budget_left_s']:.0f} s left).",
        "",
        "## CIFAR-10 (JPEG copy), seed 0, ResNet-18 standing for ResNet-50",
        "",
        "Robust accuracy (%) at L-inf eps 0.03; ours beside the paper's printed number.",
        "",
        "| row | setting | clean | FGSM (paper) | PGD-10 (paper) | C&W: CW-inf (paper) | "
        "PGD-50 | AutoAttack | n | s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    cifar = [c for c in report["cells"] if c["dataset"] == "cifar10_jpeg" and "table" in c]
    for cell in (c for c in cifar if c["role"] == "cell"):
        row, setting = _row_of(cell)
        head = next((c for c in cifar if c["role"] == "headline" and _row_of(c) == (row, setting)),
                    None)
        paper = []
        for column, ours in PAPER_COLUMNS.items():
            try:
                printed = paper_value(table=_TABLE_OF_ROW[row], setting=setting, row=row,
                                      column=column)
            except KeyError:
                printed = None
            paper.append(f"{_fmt(_accuracy(cell, ours))} ({_fmt(printed)})")
        lines.append(f"| {row} | {setting} | {_fmt(_accuracy(cell, 'clean'))} | "
                     + " | ".join(paper)
                     + f" | {_fmt(_accuracy(cell, 'PGD-{k5}'))} | "
                     f"{_fmt(_accuracy(head, 'AutoAttack') if head else None)} | "
                     f"{cell['n_eval']} | {cell['seconds']:.0f} |")
    skipped = [c["key"] for c in report["cells"] if "not_run" in c]
    regime = report["regime"]
    lines += ["", "**Regime gate** (the PGD-trained ResNet >= "
              f"{regime['floors']['autoattack']:g}% under AutoAttack, >= "
              f"{regime['floors']['clean']:g}% clean): "
              + (f"not in the regime, so the CIFAR-10 claims are not testable here: "
                 f"{regime['reason']}" if regime["reason"] else "in the regime."), ""]
    if skipped:
        lines += [f"Not run within the budget: {', '.join(skipped)}.", ""]
    lines += ["## MNIST, seed 0 on the GPU beside the CPU study's mean over seeds", "",
              "| row | setting | row of the suite | GPU (seed 0) | CPU mean (sd, seeds) |",
              "|---|---|---|---|---|"]
    for r in report.get("mnist_vs_cpu", []):
        sd = "" if r["cpu_sd"] is None else f"sd {r['cpu_sd']:.1f}, "
        lines.append(f"| {r['row']} | {r['setting']} | {r['name']} ({r['suite']}) | "
                     f"{r['gpu']:.1f} | {r['cpu_mean']:.1f} ({sd}{r['cpu_seeds']} seeds) |")
    lines += ["", "The GPU runs train under bf16 autocast and the CPU study's in its own "
              "precision (reports/quick names it), so the two differ by seed, device and "
              "precision; agreement within the seed spread and the image noise (about 2 points "
              "at 88% on 250 images) is what a cross-check can ask.", ""]
    return "\n".join(lines)
