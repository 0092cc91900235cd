"""The paper's claims as tests: per claim, which rows are compared in which cells, by what
statistic, against which claimed effect (points), read from `paper_claims.csv` (one row per
tested claim or part of one, with the paper's sentence).

Kinds of claim (the `kind` column):

    table   robust accuracy (%) in a table's cells: effect = min over the cells of (ours minus
            the best of the baselines), or, where the `statistic` column says "mean", the mean
            over the cells (a margin "of approximately 75%" averaged over a table's columns);
            cells are (setting, column) with setting "both" for both training settings
    depth   a quantity the paper's Figures 1, 3 and 5 plot, at the last epoch of the depth
            study's PGD-trained runs (rows "resnet18", "resnet50+dfl", ...), named in `columns`
            (`DEPTH_QUANTITIES`): training loss and error on the adversarial batches, validation
            loss, error and accuracy under the PGD-10 monitor; effect = ours minus the best
            baseline for an accuracy, the best (lowest) baseline minus ours for a loss or an
            error: positive where ours is better, in points (nats for a loss, log10 for a
            gradient norm)
    rise    Figure 6a, from each run's clean validation accuracy per epoch: with `columns`
            "first;last", (last minus first epoch) of ours minus that of the baseline; with
            "last" (the last epoch) or "worst_step" (the largest fall from one epoch to the
            next, as a change in points: the higher, the steadier), ours minus the best
            baseline
    none    not testable by its nature; `untestable` says why
    pending testable, measured (or measurable) by the study, but no verdict is computed for it
            yet; `untestable` says what is measured where and what a verdict still needs

    for c in claims(): c.effect({row: {cell: accuracy %}})   # the claim's effect, points
    paper_effect(c)                                         # the same from the paper's numbers
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from .numbers import _read, paper_table

__all__ = ["Claim", "claims", "claim", "paper_effect", "KINDS", "DEPTH_QUANTITIES",
           "FLOAT_UNITS"]

KINDS = ("table", "depth", "rise", "none", "pending")
# the depth claims' quantities (a run's history key at its last epoch): what it is, its unit,
# and whether lower is better. The paper's Figures 1, 3 and 5 plot losses, errors and accuracy
# under PGD training; the depth study's clean validation accuracy ("final") sits at a 96-98%
# ceiling where depth cannot show (issue 39)
DEPTH_QUANTITIES = {
    "train_loss": ("training loss on the adversarial batches", "nats", True),
    "train_error": ("training error on the adversarial batches", "points", True),
    "val_adv_loss": ("validation loss under the PGD-10 monitor", "nats", True),
    "val_adv_error": ("validation error under the PGD-10 monitor", "points", True),
    "val_adv_acc": ("validation accuracy under the PGD-10 monitor", "points", False),
    "final": ("clean validation accuracy", "points", False),
    # the end evaluation of each run (`Profile.depth_eval_n` test images, suite "depth")
    "autoattack": ("test accuracy under AutoAttack", "points", False),
    # the gradient reaching the first layer (`training.loop.gradient_norms`): log10 of each
    # epoch's mean over its batches, averaged over the epochs (vanishing is about the whole
    # of training, not its end); the stem is the same module at every depth
    "train_grad_stem": ("gradient norm at the stem on the adversarial batches, mean over "
                        "epochs", "log10", False),
}
# units of an effect measured without image noise, as floats (printed to 3 decimals)
FLOAT_UNITS = ("nats", "log10")
_SETTINGS = ("no defence", "adversarial training")


@dataclass(frozen=True)
class Claim:
    claim_id: str
    part: str            # "" or which part of a two-part sentence ("no defence", ...)
    where: str           # section (and figure or table) of the paper
    text: str            # the paper's sentence, verbatim
    kind: str            # one of KINDS
    dataset: str         # the paper's dataset as our key of its original ("mnist", "cifar10"), ""
    #                      where none; a profile's copy stands for it (`comparison.paper_dataset`)
    table: str           # "Table 1".."Table 6" for kind "table"
    setting: str         # "no defence", "adversarial training" or "both"
    ours: str            # the row standing for the paper's proposal
    baselines: tuple[str, ...]
    columns: tuple[str, ...]  # the paper's columns (table), "final" (depth), "first", "last"
    threshold: float     # the claimed effect, points, in the claim's direction (0: direction)
    inconsistency: str   # where the paper's own numbers contradict this sentence, "" if none
    untestable: str      # kind "none": why no measurement can test it; "pending": what a verdict needs
    note: str
    statistic: str = "min"  # "min" or "mean" over the cells (kind "table"); "relative" (kind
    #                         "depth"): the margin in % of the baseline's value ("by 12%")

    @property
    def label(self) -> str:
        """The claim's name in reports: its id, with the part in brackets where it has one."""
        return f"{self.claim_id} ({self.part})" if self.part else self.claim_id

    @property
    def rows(self) -> tuple[str, ...]:
        return (self.ours, *self.baselines)

    @property
    def settings(self) -> tuple[str, ...]:
        return _SETTINGS if self.setting == "both" else (self.setting,)

    @property
    def unit(self) -> str:
        """The effect's unit: "points" (accuracies and errors, %), "nats" (a depth claim on a
        loss), "log10" (on a gradient norm), "% of the baseline's" (a relative reading)."""
        if self.statistic == "relative":
            return "% of the baseline's"
        return DEPTH_QUANTITIES[self.columns[0]][1] if self.kind == "depth" else "points"

    @property
    def cells(self) -> tuple[str, ...]:
        """The cells an effect reads: "setting | column" for tables, the column otherwise."""
        if self.kind == "table":
            return tuple(f"{s} | {c}" for s in self.settings for c in self.columns)
        return self.columns

    def effect(self, acc: dict) -> float:
        """The claim's effect (points, positive in the claim's direction) from accuracies
        {row: {cell: %}} holding every row of the claim and every cell of `cells`."""
        if self.kind == "rise" and set(self.columns) == {"first", "last"}:
            def rise(row):
                return acc[row]["last"] - acc[row]["first"]
            return rise(self.ours) - max(rise(b) for b in self.baselines)
        if self.kind in ("none", "pending"):
            raise ValueError(f"{self.label} has no effect to measure: {self.untestable}")
        if self.statistic == "relative":  # the margin in % of the baseline's value
            lower = DEPTH_QUANTITIES[self.columns[0]][2] if self.kind == "depth" else False
            margins = []
            for c in self.cells:
                base = (min if lower else max)(acc[b][c] for b in self.baselines)
                if base == 0:
                    raise ValueError(f"{self.label}: the baseline's {c} is 0, so no relative "
                                     "margin exists")
                margins.append(100.0 * ((base - acc[self.ours][c]) if lower
                                        else (acc[self.ours][c] - base)) / base)
            return min(margins)
        if self.kind == "depth" and DEPTH_QUANTITIES[self.columns[0]][2]:  # lower is better
            margins = [min(acc[b][c] for b in self.baselines) - acc[self.ours][c]
                       for c in self.cells]
        else:
            margins = [acc[self.ours][c] - max(acc[b][c] for b in self.baselines)
                       for c in self.cells]
        return sum(margins) / len(margins) if self.statistic == "mean" else min(margins)


@functools.cache
def claims() -> tuple[Claim, ...]:
    """Every tested claim (or part of one), in paper_claims.csv's order."""
    out = []
    for r in _read("paper_claims.csv"):
        out.append(Claim(
            claim_id=r["claim_id"], part=r["part"], where=r["where"], text=r["text"],
            kind=r["kind"], dataset=r["dataset"], table=r["table"], setting=r["setting"],
            ours=r["ours"], baselines=tuple(b for b in r["baselines"].split(";") if b),
            columns=tuple(c for c in r["columns"].split(";") if c),
            threshold=float(r["threshold"]) if r["threshold"] else 0.0,
            inconsistency=r["inconsistency"], untestable=r["untestable"], note=r["note"],
            statistic=r.get("statistic") or "min"))
    return tuple(out)


def claim(label: str) -> Claim:
    """The claim called `label` (`Claim.label`); KeyError naming the known labels."""
    for c in claims():
        if c.label == label:
            return c
    raise KeyError(f"unknown claim {label!r}; known: {', '.join(c.label for c in claims())}")


def paper_effect(c: Claim) -> float | None:
    """The claim's effect (points) computed from the paper's printed numbers, rounded to the
    printed precision (0.01); None where the paper prints no numbers for it (its figures)."""
    if c.kind != "table":
        if c.claim_id == "fig5_resnet50_dfl_gain":  # the only figure claim with numbers
            return round(64.8 - 60.5, 2)
        return None
    acc: dict[str, dict] = {}
    for r in paper_table(c.table):
        if r["setting"] in c.settings and r["column"] in c.columns:
            acc.setdefault(r["row"], {})[f"{r['setting']} | {r['column']}"] = r["value"]
    return round(c.effect(acc), 2)
