"""A verdict per claim of the paper: our effect with an interval that holds seed and image noise
(`intervals.effect_interval`), held against the effect the paper claims (`claims.Claim`), and the
outcome where the interval lies (`intervals.outcome`): "reproduced", "inconclusive", "direction
only", "not reproduced", or "not testable here" with the reason (`regime`: a run that did not
train, a profile below the field's regime, too few seeds, a run the profile does not make).

The evidence is plain data the study gathers (`dfl_lib.study.evidence`):

    samples = {row: {seed: {cell: bool mask (n,) | (k, n)}}}   # cells: claim.cells
    clean   = {row: clean accuracy %, mean over seeds}
    v = claim_verdict(claim("table1_margins (adversarial training)"), samples=samples,
                      clean=clean, regime="", min_seeds=3)
    v["verdict"], v["estimate"], v["low"], v["high"]

Checks of our own (a strong attack against PGD-10) are not claims of the paper: `strong_attack_check`
labels them as checks.
"""
from __future__ import annotations

from .claims import DEPTH_QUANTITIES, FLOAT_UNITS, Claim, paper_effect
from .comparison import NOT_RUN  # cells no profile runs (Dynamic without attacks)
from .intervals import INTERVAL_METHOD, OUTCOMES, effect_interval, outcome, sample_value
from .regime import REGIMES, untrained_reason

__all__ = ["claim_verdict", "strong_attack_check", "verdict_lines", "depth_statement",
           "OUTCOMES"]

NOT_TESTABLE = "not testable here"


def _base(c: Claim) -> dict:
    return {"claim": c.label, "claim_id": c.claim_id, "text": c.text, "where": c.where,
            "dataset": c.dataset, "claimed": c.threshold, "paper_effect": paper_effect(c),
            "estimate": None, "low": None, "high": None, "seeds": 0, "n": 0, "reason": "",
            "rows": {}, **({"quantity": c.columns[0]} if c.kind == "depth" else {})}


def _untestable(v: dict, reason: str) -> dict:
    return {**v, "verdict": NOT_TESTABLE, "reason": reason}


def _common_seeds(samples: dict, rows) -> list:
    sets = [set(samples[r]) for r in rows]
    return sorted(set.intersection(*sets)) if sets else []


def claim_verdict(c: Claim, *, samples: dict | None = None, clean: dict | None = None,
                  regime: str = "", min_seeds: int = 3, n_boot: int = 200,
                  unavailable: str = "") -> dict:
    """The verdict on claim `c` from our evidence.

    samples: {row: {seed: {cell: bool mask (n,) | (k, n)}}} for the rows our profile ran (a row
    of the claim that is absent was not run); clean: {row: clean accuracy %} for the regime's
    clean floor; regime: "" when the profile is in the field's regime for this claim, else why not
    (`regime.regime_reason`); min_seeds: seeds a row needs to enter the interval;
    unavailable: why the profile has no evidence at all (then "not testable here").

    A baseline that is absent, did not train or has too few seeds leaves the comparison; the
    effect against the remaining baselines can only fall when the others are added (ours minus
    the best of more baselines), so "not reproduced" stands a fortiori and any other outcome
    becomes "not testable here". Returns the `_base` fields plus verdict, estimate, low, high
    (points), seeds, n (images per seed), reason, numbers (one line) and rows (accuracies %)."""
    v = _base(c)
    if c.kind in ("none", "pending"):
        return _untestable(v, c.untestable)
    if unavailable:
        return _untestable(v, unavailable)
    samples, clean = samples or {}, clean or {}
    if c.ours not in samples:
        return _untestable(v, f"{c.ours} is not run at this profile")
    trained = untrained_reason(dataset=c.dataset, clean={c.ours: clean.get(c.ours, 0.0)})
    if trained:
        return _untestable(v, trained)
    # with too few seeds of ours the numbers are still computed (image noise only) and shown,
    # and the verdict is "not testable here"
    few = "" if len(samples[c.ours]) >= min_seeds else (
        f"{c.ours} has {len(samples[c.ours])} seed(s); a verdict needs {min_seeds} (the "
        f"interval holds image noise only)")
    if few:
        min_seeds = len(samples[c.ours])
    usable, left = [], []
    for b in c.baselines:
        if b not in samples:
            never = [NOT_RUN[(b, s)].removeprefix("not run: ") for s in c.settings
                     if (b, s) in NOT_RUN]
            left.append(f"{b} ({never[0] if never else 'not run at this profile'})")
        elif untrained_reason(dataset=c.dataset, clean={b: clean.get(b, 0.0)}):
            left.append(f"{b} ({clean.get(b, 0.0):.1f}% clean: "
                        f"{REGIMES[c.dataset].below_clean})")
        elif len(_common_seeds(samples, (c.ours, b))) < min_seeds:
            left.append(f"{b} ({len(samples[b])} seed(s))")
        else:
            usable.append(b)
    if not usable:
        return _untestable(v, "no usable baseline: " + "; ".join(left))
    seeds = _common_seeds(samples, (c.ours, *usable))
    part = {row: {s: {cell: samples[row][s][cell] for cell in c.cells} for s in seeds}
            for row in (c.ours, *usable)}
    kept = Claim(**{**c.__dict__, "baselines": tuple(usable)})
    est, low, high = effect_interval(part, effect=kept.effect, n_boot=n_boot)
    first = next(iter(part[c.ours][seeds[0]].values()))
    # images per seed (a float sample, e.g. a training loss, has none to count)
    n = 0 if isinstance(first, float) else first[1] if isinstance(first, tuple) else len(first)
    verdict = outcome(low=low, high=high, claimed=c.threshold)
    v = {**v, "estimate": est, "low": low, "high": high, "seeds": len(seeds), "n": n,
         "interval": INTERVAL_METHOD,
         **({"unit": c.unit} if c.unit != "points" else {}),
         "rows": {row: {cell: sum(sample_value(part[row][s][cell]) for s in seeds) / len(seeds)
                        for cell in c.cells} for row in part}}
    reason = ""
    if regime or few:
        verdict, reason = NOT_TESTABLE, "; ".join(r for r in (regime, few) if r)
    elif left and verdict != "not reproduced":
        verdict, reason = NOT_TESTABLE, ("only 'not reproduced' is decisive without "
                                         + "; ".join(left))
    elif left:
        reason = "a fortiori: adding " + "; ".join(left) + " can only lower the margin"
    return {**v, "verdict": verdict, "reason": reason, "numbers": _numbers(v, c)}


def _numbers(v: dict, c: Claim) -> str:
    versus = " and ".join(c.baselines) if len(c.baselines) < 3 else "the best baseline"
    digits = 3 if c.unit in FLOAT_UNITS else 1
    lower = c.kind == "depth" and DEPTH_QUANTITIES[c.columns[0]][2]
    what = (f"{DEPTH_QUANTITIES[c.columns[0]][0]}: {versus} minus {c.ours}" if lower else
            (f"{DEPTH_QUANTITIES[c.columns[0]][0]}: " if c.kind == "depth" else "")
            + f"{c.ours} minus {versus}")
    images = f" x {v['n']} images" if v["n"] else ""
    text = (f"{what}: {v['estimate']:+.{digits}f} {c.unit}, 95% interval "
            f"[{v['low']:+.{digits}f}, {v['high']:+.{digits}f}] ({v['seeds']} seeds{images}); "
            f"claimed {'>= ' + format(c.threshold, 'g') if c.threshold else '> 0'}")
    if v["paper_effect"] is not None:
        text += f"; the paper's own numbers give {v['paper_effect']:+.2f}"
    return text + equivalence(high=v["high"], claimed=c.threshold, unit=c.unit)


def equivalence(*, high: float, claimed: float, unit: str = "points") -> str:
    """The interval's upper end as an equivalence statement where it lies below the claimed
    effect (points, in the claim's direction): "; any effect above +0.5 points is excluded"
    (or "any positive effect" where the whole interval is at or below zero); "" otherwise."""
    if high >= claimed and claimed > 0 or (claimed == 0 and high > 0):
        return ""
    if high <= 0:
        return "; any positive effect is excluded"
    return f"; any effect above {high:+.{3 if unit in FLOAT_UNITS else 1}f} {unit} is excluded"


def strong_attack_check(*, pgd10: float, strongest: float, n: int, name: str,
                        dataset: str) -> dict:
    """Our own check, not a claim of the paper: does a cell's PGD-10 accuracy (%) hold under the
    strongest attack run on it (%, same n images)? It holds when the drop is within two
    binomial standard errors of the paired difference's upper bound (sqrt(drop examples) / n)."""
    drop = pgd10 - strongest
    # paired: the drop counts examples PGD-10 missed and the strongest found; its binomial
    # standard error is at most sqrt(k)/n for k such examples
    k = max(drop, 0.0) / 100.0 * n
    se = 100.0 * (max(k, 1.0) ** 0.5) / n
    return {"check": f"strong_attacks_{dataset}", "dataset": dataset,
            "text": f"{name}: PGD-10's robust accuracy holds under the strongest attacks run",
            "result": "holds" if drop <= 2 * se else "does not hold",
            "numbers": f"PGD-10 {pgd10:.1f}%, strongest {strongest:.1f}% ({drop:.1f} points "
                       f"lower, n={n} images, same images)"}


def verdict_lines(verdicts: list[dict], *, indent: str = "") -> str:
    """Verdicts (and checks) as a markdown list, one a line: "- **claim**: verdict: numbers
    (reason)" (the notebooks' and the index's one format; `indent` nests it)."""
    lines = []
    for v in verdicts:
        if "check" in v:
            lines.append(f"{indent}- check **{v['check']}** (ours, not the paper's): "
                         f"{v['result']} ({v['numbers']})")
            continue
        text = f"{indent}- **{v['claim']}**: {v['verdict']}"
        if v.get("numbers"):
            text += f" ({v['numbers']})"
        if v.get("reason"):
            text += f"; {v['reason']}"
        lines.append(text)
    return "\n".join(lines)


_DEPTH_WORDS = {
    "fig1_deeper_less_convergence (training loss)": "without the DFL, the deeper ResNets end "
        "with a higher training loss (the deeper ones minus ResNet-18)",
    "fig1_deeper_less_convergence (validation loss)": "without the DFL, the deeper ResNets end "
        "with a higher validation loss under PGD-10",
    "fig1_deeper_less_convergence (accuracy)": "without the DFL, the deeper ResNets end lower "
        "under the PGD-10 monitor (ResNet-18 minus the deeper ones)",
    "fig1_deeper_less_convergence (accuracy, AutoAttack)": "without the DFL, the deeper ResNets "
        "end lower under AutoAttack",
    "fig3_dfl_resnet50_lower_error (training error)": "with the DFL, ResNet-50 ends with the "
        "lowest training error (the shallower ones minus ResNet-50)",
    "fig3_dfl_resnet50_lower_error (validation error)": "with the DFL, ResNet-50 ends with the "
        "lowest validation error under PGD-10",
    "fig135_deeper_better_with_dfl (PGD-10 monitor)": "with the DFL, the deeper the better "
        "under the PGD-10 monitor (ResNet-50 minus ResNet-18)",
    "fig135_deeper_better_with_dfl (AutoAttack)": "with the DFL, the deeper the better under "
        "AutoAttack",
    "fig5_resnet50_dfl_gain (against the shallower DFL nets)": "with the DFL, ResNet-50 above "
        "ResNet-18 and ResNet-34 under the PGD-10 monitor (the paper: +4.3)",
    "fig5_resnet50_dfl_gain (against the shallower DFL nets, AutoAttack)": "the same under "
        "AutoAttack",
    "fig5_resnet50_dfl_gain (with against without the DFL)": "the DFL lifts ResNet-50 under the "
        "PGD-10 monitor (with minus without; the paper: +4.3)",
    "fig5_resnet50_dfl_gain (with against without the DFL, AutoAttack)": "the same under "
        "AutoAttack",
    "fig5_resnet34_above_resnet18_dfl (PGD-10 monitor)": "with the DFL, ResNet-34 above "
        "ResNet-18 under the PGD-10 monitor",
    "fig5_resnet34_above_resnet18_dfl (AutoAttack)": "the same under AutoAttack",
    "conclusion_dfl_error_accuracy (training error, relative)": "the DFL lowers ResNet-50's "
        "training error on the adversarial batches by 12% of it (the Conclusion: 'by 12%')",
    "gradient_vanishing_deep (stem gradient)": "without the DFL, a weaker gradient reaches the "
        "deeper ResNets' first layer (log10 of its norm, ResNet-18 minus the deeper ones)",
    "dfl_prevents_gradient_vanishing (stem gradient, ResNet-50)": "the DFL strengthens the "
        "gradient reaching ResNet-50's first layer (log10 of its norm, with minus without)",
}


def depth_statement(verdicts: list[dict], finals: list[dict], *, floor: float = 90.0) -> str:
    """The depth study's answer in plain words: each depth claim's verdict with our effect and
    interval (in its unit: points, or nats for a loss), then every run whose final clean
    validation accuracy (%) is below `floor` (the dataset's clean floor), naming seed and
    whether it had the lr warm-up. finals: [{"depth", "variant", "setting", "seed", "warmup",
    "val_acc" (fraction)}]."""
    parts = []
    for v in verdicts:
        words = _DEPTH_WORDS.get(v["claim"], v["claim"])
        unit = v.get("unit", "points")
        d = 3 if unit in FLOAT_UNITS else 1
        effect = (f" ({v['estimate']:+.{d}f} {unit}, 95% interval [{v['low']:+.{d}f}, "
                  f"{v['high']:+.{d}f}])" if v.get("estimate") is not None else "")
        reason = f"; {v['reason']}" if v.get("reason") else ""
        parts.append(f"{words}: {v['verdict']}{effect}{reason}")
    text = "Depth under PGD training, " + "; ".join(parts) + "."
    failed = [f"{f['depth']} {f['variant']} ({f['setting']}, seed {f.get('seed', 0)}"
              f"{'' if f.get('warmup', True) else ', no lr warm-up'}: "
              f"{100 * f['val_acc']:.1f}% clean validation accuracy)"
              for f in finals if f.get("val_acc") is not None and 100 * f["val_acc"] < floor]
    if failed:
        text += " Runs below the clean floor of " + f"{floor:g}%: " + "; ".join(failed) + "."
    return text
