"""The paper's poisoning claim judged on notebook 07's effects: one verdict per reading.

The paper (Section 1): "we integrate a DFL and PCL in a compact model for defending against
data poisoning attacks". It reports no poisoning experiment, so the claim is read here as the
study measures it: DFL + PCL, trained without adversarial training on a poisoned training set,
against the plain ResNet trained on the same poison (`poison_records.poison_effects`: the row
minus the plain ResNet, a t interval over seeds holding image noise). Each poison the study runs
is its own reading (`READINGS`, one row of `paper_claims.csv` each), on the measure a defence
against it must move: the attack success rate of a backdoor (lower is better), the clean
accuracy after an availability poison (higher is better). Positive effects are in the claim's
direction; claimed > 0.

    effects = poison_effects(records, fraction=fraction)
    verdicts = poison_verdicts(effects, records=records, fraction=fraction)  # notebook 07
"""
from __future__ import annotations

import numpy as np

from ..paper.claims import claims
from ..paper.intervals import INTERVAL_METHOD, outcome
from ..paper.verdicts import NOT_TESTABLE, equivalence
from ..poisoning import get_poison
from .poison_records import ADAPTIVE, MIN_EFFECT_SEEDS, TRANSFER

__all__ = ["CLAIM", "READINGS", "ROW", "SETTING", "poison_verdicts"]

CLAIM = "poisoning_defence"
# the part of each row of `paper_claims.csv` -> (poison, measure of `poison_effects`, attacker)
READINGS = {
    "BadNets, attack success rate": ("badnets", "attack success rate", TRANSFER),
    "clean-label backdoor, attack success rate": ("clean_label", "attack success rate",
                                                  TRANSFER),
    "adversarial poison, clean accuracy": ("adversarial", "clean accuracy", TRANSFER),
    "adversarial poison crafted against DFL + PCL, clean accuracy": (
        "adversarial", "clean accuracy", ADAPTIVE),
    "error-minimising noise, clean accuracy": ("error_min", "clean accuracy", TRANSFER),
    "label flipping, clean accuracy": ("label_flip", "clean accuracy", TRANSFER),
}
ROW, SETTING = "dfl_pcl", "no defence"  # the paper's compact model, trained as the claim says
_RECORD_FIELD = {"clean accuracy": "clean_accuracy", "attack success rate": "attack_success_rate"}
_CRAFTED = {TRANSFER: "crafted against the plain ResNet",
            ADAPTIVE: "crafted against DFL + PCL itself"}


def _budget(poison: str, fraction: float) -> str:
    """How the poison's budget reads: "10% of the training set", "10% of its target class"."""
    entry = get_poison(poison)
    return f"{fraction:.0%} {entry.share}" if entry.subset else entry.share


def _means(records: list[dict], *, poison: str, measure: str, attacker: str,
           fraction: float) -> dict[str, float]:
    """{row: mean of the measure (%) over its seeds} for the plain ResNet and DFL + PCL."""
    field, out = _RECORD_FIELD[measure], {}
    for row in ("resnet", ROW):
        surrogate = "victim" if attacker == ADAPTIVE and row != "resnet" else "resnet"
        values = [r[field] for r in records if r["poison"] == poison and r["row"] == row
                  and r["setting"] == SETTING and r.get("surrogate", "resnet") == surrogate
                  and abs(r["fraction"] - fraction) < 1e-9 and field in r]
        if values:
            out[row] = float(np.mean(values))
    return out


def poison_verdicts(effects: list[dict], *, records: list[dict], fraction: float) -> list[dict]:
    """One verdict per row of `paper_claims.csv` of claim `CLAIM` (`READINGS`).

    effects: `poison_effects(records, fraction=fraction)`; records: `poison_records(...)` (their
    n_eval and per-seed measures at `fraction`, the poisoned share of a poison that changes a
    subset, give the images per seed and the rows' means; a rate sweep's other shares are
    left out, as `poison_effects` leaves them). The effect is
    DFL + PCL minus the plain ResNet (clean accuracy) or the plain ResNet minus DFL + PCL
    (attack success rate), points, at the effects' poisoned share, with their interval;
    `paper.intervals.outcome` against claimed > 0. "not testable here" with the effect's own
    reason (fewer than 3 seeds, a backdoor that did not take hold, reference runs that did not
    train), or "... is not run at this profile" where no effect of that poison exists. Dicts as
    `paper.verdicts.claim_verdict` returns (the study report reads them)."""
    out = []
    for c in (c for c in claims() if c.claim_id == CLAIM):
        if c.part not in READINGS:
            raise KeyError(f"{CLAIM} ({c.part}) in paper_claims.csv has no reading here; "
                           f"expected one of {', '.join(READINGS)}")
        poison, measure, attacker = READINGS[c.part]
        v = {"claim": c.label, "claim_id": c.claim_id, "text": c.text, "where": c.where,
             "dataset": c.dataset, "claimed": 0.0, "paper_effect": None, "estimate": None,
             "low": None, "high": None, "seeds": 0, "n": 0, "rows": {}, "unit": "points",
             "quantity": measure}
        found = [e for e in effects if e["poison"] == poison and e["row"] == ROW
                 and e["setting"] == SETTING and e["measure"] == measure
                 and e.get("attacker", TRANSFER) == attacker]
        if not found:
            # worded as `study.report` ranks a part that did not run the cells below one that did
            out.append({**v, "verdict": NOT_TESTABLE, "reason": (
                f"{poison} against DFL + PCL and the plain ResNet ({SETTING}"
                f"{', ' + _CRAFTED[attacker] if get_poison(poison).needs != 'nothing' else ''}"
                ") is not run at this profile")})
            continue
        (e,) = found
        # the claim's direction: a higher clean accuracy, a lower attack success rate
        sign = 1.0 if measure == "clean accuracy" else -1.0
        est = sign * e["effect"]
        low, high = sorted((sign * e["low"], sign * e["high"]))
        means = _means(records, poison=poison, measure=measure, attacker=attacker,
                       fraction=fraction)
        n = next((int(r["n_eval"]) for r in records if r["poison"] == poison
                  and r["row"] == ROW and "n_eval" in r), 0)
        first, second = ("DFL + PCL", "the plain ResNet") if sign > 0 else (
            "the plain ResNet", "DFL + PCL")
        crafted = [r["crafted_against"] for r in records if r["poison"] == poison
                   and r["row"] == ROW and r.get("crafted_against")]
        untestable = e["answer"].startswith(NOT_TESTABLE)
        seeds = f"{e['seeds']} seed{'s' * (e['seeds'] != 1)}"
        numbers = (f"{poison} ({_budget(poison, fraction)}"
                   f"{', ' + _CRAFTED[attacker] if crafted else ''}, {SETTING}): {measure} "
                   + ", ".join(f"{'DFL + PCL' if r == ROW else 'plain ResNet'} {m:.1f}%"
                               for r, m in means.items())
                   + f" (mean over {seeds}, {n} test images each); {first} minus {second}: "
                     f"{est:+.1f} points, 95% interval [{low:+.1f}, {high:+.1f}]"
                   + (" (image noise only)" if e["seeds"] < MIN_EFFECT_SEEDS else "")
                   + "; claimed > 0"
                   + ("" if untestable else equivalence(high=high, claimed=0.0)))
        v.update(estimate=est, low=low, high=high, seeds=e["seeds"], n=n,
                 interval=INTERVAL_METHOD, numbers=numbers,
                 rows={r: {measure: m} for r, m in means.items()})
        if untestable:  # the effect's own reason: "(1 seed: an effect needs 3)", ...
            reason = e["answer"][len(NOT_TESTABLE):].strip().removeprefix("(").removesuffix(")")
            out.append({**v, "verdict": NOT_TESTABLE, "reason": reason})
        else:
            out.append({**v, "verdict": outcome(low=low, high=high, claimed=0.0),
                        "reason": ""})
    return out
