"""A verdict per claim of the paper: "reproduced", "not reproduced", "direction only" (the sign
holds, the size does not) or "not testable here", each with the numbers it rests on.

A difference counts only when it exceeds twice its binomial standard error on the images it was
measured on (`comparison.standard_error`); smaller ones read "within noise". Depth claims read
the runs' histories (final epoch); table claims read `comparison.table_rows`.
"""
from __future__ import annotations

import math

from .comparison import standard_error
from .numbers import claim_tests

__all__ = ["claim_id", "depth_statement", "verdict_depth", "verdict_table_margin",
           "table_margin_verdicts", "verdict_lines", "verdict_table5", "verdict_wrn",
           "verdict_strong_attacks", "verdict_fig6", "VERDICTS"]

VERDICTS = ("reproduced", "direction only", "not reproduced", "within noise", "not testable here")


def claim_id(verdict: dict) -> str:
    """The paper_claims.csv id a verdict is about ("table1_margins (adversarial)" -> its id)."""
    return verdict["claim"].split(" (")[0]


def _final(history: list[dict], key: str) -> float:
    return 100.0 * history[-1][key] if "acc" in key else history[-1][key]


def _differs(a: float, b: float, *, n: int) -> bool:
    """a and b (accuracies in %, each on n images) differ by more than 2 standard errors."""
    return abs(a - b) > 2 * math.hypot(standard_error(a, n), standard_error(b, n))


def verdict_depth(histories: dict[str, list[dict]], *, n_val: int) -> list[dict]:
    """Figures 1, 3, 5 under PGD training. histories: {"resnet18", "resnet34", "resnet50",
    "resnet18+dfl", ...: history}. Claims: deeper nets converge less and lose accuracy (no DFL);
    with the DFL the deeper the better; the DFL helps ResNet-50."""
    acc = {k: _final(h, "val_acc") for k, h in histories.items()}
    loss = {k: _final(h, "train_loss") for k, h in histories.items()}
    out = []
    plain = [acc[f"resnet{d}"] for d in (18, 34, 50)]
    drop = plain[0] - plain[2]
    holds = plain[0] >= plain[1] >= plain[2] and loss["resnet18"] <= loss["resnet50"]
    out.append({"claim": "fig1_deeper_less_convergence",
                "text": "without the DFL, deeper ResNets train worse under PGD training",
                "verdict": ("reproduced" if holds and _differs(plain[0], plain[2], n=n_val)
                            else "direction only" if drop > 0 and _differs(plain[0], plain[2], n=n_val)
                            else "within noise" if not _differs(plain[0], plain[2], n=n_val)
                            else "not reproduced"),
                "numbers": f"final val accuracy R18 / R34 / R50: "
                           f"{plain[0]:.1f} / {plain[1]:.1f} / {plain[2]:.1f}%; final train loss "
                           f"{loss['resnet18']:.3f} / {loss['resnet34']:.3f} / "
                           f"{loss['resnet50']:.3f}"})
    dfl = [acc[f"resnet{d}+dfl"] for d in (18, 34, 50)]
    rises = dfl[2] > dfl[0] and _differs(dfl[2], dfl[0], n=n_val)
    out.append({"claim": "fig135_deeper_better_with_dfl",
                "text": "with the DFL, the deeper the model the better",
                "verdict": ("reproduced" if rises and dfl[1] >= dfl[0] else
                            "direction only" if rises else
                            "within noise" if not _differs(dfl[2], dfl[0], n=n_val)
                            else "not reproduced"),
                "numbers": f"final val accuracy with DFL R18 / R34 / R50: "
                           f"{dfl[0]:.1f} / {dfl[1]:.1f} / {dfl[2]:.1f}%"})
    err = {k: _final(h, "train_error") * 100 for k, h in histories.items()
           if "train_error" in h[-1]}
    val_err = {k: 100.0 - v for k, v in acc.items()}
    lowest = all(val_err["resnet50+dfl"] <= val_err[f"resnet{d}+dfl"] for d in (18, 34)) and \
        all(err.get("resnet50+dfl", 0) <= err.get(f"resnet{d}+dfl", 0) for d in (18, 34))
    out.append({"claim": "fig3_dfl_resnet50_lower_error",
                "text": "with the DFL, ResNet-50's training and validation errors fall lowest",
                "verdict": ("reproduced" if lowest and _differs(acc["resnet50+dfl"],
                                                                acc["resnet18+dfl"], n=n_val)
                            else "within noise" if not _differs(acc["resnet50+dfl"],
                                                                acc["resnet18+dfl"], n=n_val)
                            else "not reproduced"),
                "numbers": "final train / val error with DFL R18, R34, R50: " + ", ".join(
                    f"{err.get(f'resnet{d}+dfl', float('nan')):.1f} / "
                    f"{val_err[f'resnet{d}+dfl']:.1f}%" for d in (18, 34, 50))})
    gain = acc["resnet50+dfl"] - acc["resnet50"]
    out.append({"claim": "fig5_resnet50_dfl_gain",
                "text": "the DFL improves ResNet-50 under PGD training (paper: 60.5 -> 64.8%)",
                "verdict": ("within noise" if not _differs(acc["resnet50+dfl"], acc["resnet50"],
                                                           n=n_val)
                            else "reproduced" if gain > 0 else "not reproduced"),
                "numbers": f"ResNet-50 {acc['resnet50']:.1f}% -> with DFL "
                           f"{acc['resnet50+dfl']:.1f}% ({gain:+.1f} points)"})
    return out


def _by(rows: list[dict], *, setting: str, column: str) -> dict[str, dict]:
    return {r["row"]: r for r in rows if r["setting"] == setting and r["column"] == column
            and r["ours"] is not None}


def table_margin_verdicts(tables: dict[str, list[dict]]) -> list[dict]:
    """The verdict of every margin claim, each tested as paper_claim_tests.csv says (its table,
    our row, setting and claimed threshold), in that file's order. `tables`: {table name:
    `comparison.table_rows` of it}."""
    return [verdict_table_margin(tables[t["table"]], claim=t["label"], ours=t["ours"],
                                 setting=t["setting"], claimed=t["threshold"])
            for t in claim_tests()]


def verdict_lines(verdicts: list[dict], *, indent: str = "") -> str:
    """The verdicts as a markdown list: "- **claim** (dataset): verdict (numbers)", one a line
    (the notebooks' and the index's one format; `indent` nests it under another item)."""
    return "\n".join(f"{indent}- **{v['claim']}**{' (' + v['dataset'] + ')' if 'dataset' in v else ''}: "
                     f"{v['verdict']} ({v['numbers']})" for v in verdicts)


def verdict_table_margin(rows: list[dict], *, claim: str, ours: str, setting: str,
                         claimed: float | None) -> dict:
    """The proposed row beats every baseline run (in every paper column) in `setting`, by at
    least `claimed` points when the paper states a margin."""
    margins, noise = [], []
    for column in ("FGSM", "PGD-10", "C&W"):
        cells = _by(rows, setting=setting, column=column)
        if ours not in cells:
            continue
        others = [r for k, r in cells.items() if k in ("resnet", "mustafa", "dynamic")]
        if not others:
            continue
        best = max(others, key=lambda r: r["ours"])
        m = cells[ours]["ours"] - best["ours"]
        margins.append((column, m, best["label"]))
        noise.append(not _differs(cells[ours]["ours"], best["ours"], n=cells[ours]["n_eval"]))
    if not margins:
        return {"claim": claim, "verdict": "not testable here", "numbers": "no runs"}
    text = "; ".join(f"{c}: {m:+.1f} vs {b}" for c, m, b in margins)
    if all(m > 0 for _, m, _ in margins) and not any(noise):
        verdict = "reproduced" if claimed is None or all(m >= claimed for _, m, _ in margins) \
            else "direction only"
    elif all(noise):
        verdict = "within noise"
    else:
        verdict = "not reproduced"
    return {"claim": claim, "verdict": verdict,
            "numbers": f"{setting}, ours minus the best baseline (points): {text}"
                       + (f"; the paper claims >= {claimed:g}" if claimed is not None else "")}


def verdict_table5(rows: list[dict]) -> list[dict]:
    """Table 5: DFL beats PCL with no defence; PCL beats DFL with adversarial training; both
    together are the best in every column."""
    out = []
    for claim, setting, better, worse in (("table5_dfl_no_defence", "no defence", "dfl", "pcl"),
                                          ("table5_pcl_adversarial", "adversarial training",
                                           "pcl", "dfl")):
        diffs, noisy = [], []
        for column in ("FGSM", "PGD-10", "C&W"):
            cells = _by(rows, setting=setting, column=column)
            if better in cells and worse in cells:
                a, b = cells[better]["ours"], cells[worse]["ours"]
                diffs.append((column, a - b))
                noisy.append(not _differs(a, b, n=cells[better]["n_eval"]))
        out.append({"claim": claim, "verdict": ("not testable here" if not diffs else
                                                "within noise" if all(noisy) else
                                                "reproduced" if all(d > 0 for _, d in diffs)
                                                else "not reproduced"),
                    "numbers": f"{setting}, {better} minus {worse}: " +
                               ", ".join(f"{c} {d:+.1f}" for c, d in diffs)})
    wins = []
    for setting in ("no defence", "adversarial training"):
        for column in ("FGSM", "PGD-10", "C&W"):
            cells = _by(rows, setting=setting, column=column)
            if {"dfl", "pcl", "dfl_pcl"} <= set(cells):
                wins.append(cells["dfl_pcl"]["ours"] >= max(cells["dfl"]["ours"],
                                                            cells["pcl"]["ours"]))
    out.append({"claim": "table5_both_best",
                "verdict": "not testable here" if not wins else
                "reproduced" if all(wins) else "not reproduced",
                "numbers": f"DFL + PCL best in {sum(wins)} of {len(wins)} cells"})
    return out


def verdict_wrn(rows: list[dict]) -> dict:
    """Table 6: WideResNet beats ResNet (both with DFL + PCL, adversarial training)."""
    diffs, noisy = [], []
    for column in ("FGSM", "PGD-10", "C&W"):
        cells = _by(rows, setting="adversarial training", column=column)
        if {"wrn", "resnet_dfl_pcl"} <= set(cells):
            a, b = cells["wrn"]["ours"], cells["resnet_dfl_pcl"]["ours"]
            diffs.append((column, a - b))
            noisy.append(not _differs(a, b, n=cells["wrn"]["n_eval"]))
    return {"claim": "table6_wrn_margin",
            "verdict": ("not testable here" if not diffs else "within noise" if all(noisy) else
                        "reproduced" if all(d > 0 for _, d in diffs) else "not reproduced"),
            "numbers": "WideResNet minus ResNet: " + ", ".join(f"{c} {d:+.1f}" for c, d in diffs)}


def verdict_strong_attacks(rows: list[dict], *, dataset: str) -> dict:
    """The study's own question: does DFL + PCL's PGD-10 accuracy (adversarial training) hold
    under the strongest attacks run on it (worst case per example, AutoAttack)?"""
    cells = _by(rows, setting="adversarial training", column="PGD-10")
    if "dfl_pcl" not in cells:
        return {"claim": f"strong_attacks_{dataset}", "verdict": "not testable here",
                "numbers": "no run"}
    cell = cells["dfl_pcl"]
    strong = cell["strong"]
    worst = min(v[0] for k, v in strong.items() if k in ("worst case", "AutoAttack",
                                                          "worst case (headline)"))
    drop = cell["ours"] - worst
    return {"claim": f"strong_attacks_{dataset}",
            "text": "DFL + PCL's PGD-10 robustness holds under stronger attacks",
            "verdict": "reproduced" if drop <= 2 * standard_error(cell["ours"], cell["n_eval"])
            else "not reproduced",
            "numbers": f"PGD-10 {cell['ours']:.1f}%, strongest {worst:.1f}% "
                       f"({drop:.1f} points lower); flags: {', '.join(cell['flags']) or 'none'}"}


def verdict_fig6(histories: dict[str, list[dict]], *, n_val: int) -> dict:
    """Figure 6a: PCL's validation accuracy rises over training while DFL's is almost steady."""
    def rise(h):
        return 100.0 * (h[-1]["val_acc"] - h[0]["val_acc"])
    pcl, dfl = rise(histories["pcl"]), rise(histories["dfl"])
    holds = pcl > dfl and _differs(100 * histories["pcl"][-1]["val_acc"],
                                   100 * histories["pcl"][0]["val_acc"], n=n_val)
    return {"claim": "fig6_pcl_rises_dfl_steady",
            "verdict": "reproduced" if holds else "not reproduced",
            "numbers": f"val accuracy rise from the first to the last epoch: PCL {pcl:+.1f}, "
                       f"DFL {dfl:+.1f} points"}


def depth_statement(verdicts: list[dict], finals: list[dict], *, floor: float = 0.5) -> str:
    """One plain sentence on the paper's central claim from the depth verdicts, naming every
    run that did not train (final clean validation accuracy below `floor`)."""
    got = {v["claim"]: v["verdict"] for v in verdicts}
    shown = got.get("fig1_deeper_less_convergence") == "reproduced" and \
        got.get("fig135_deeper_better_with_dfl") == "reproduced"
    failed = [f"{f['depth']} {f['variant']} ({f['setting']}, validation accuracy "
              f"{100 * f['val_acc']:.1f}%)" for f in finals
              if f.get("val_acc") is not None and f["val_acc"] < floor]
    text = ("Our curves show the paper's central claim (deeper ResNets train worse under PGD "
            "training, and with the DFL the deeper one is the better)." if shown else
            "Our curves do not show the paper's central claim (deeper ResNets train worse under "
            "PGD training, and with the DFL the deeper one is the better): " +
            "; ".join(f"{k}: {v}" for k, v in got.items()) + ".")
    if failed:
        text += " Runs that did not train at this profile: " + "; ".join(failed) + "."
    return text
