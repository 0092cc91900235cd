r"""The paper's clean-accuracy claim judged on a part's committed record.

The paper (Section 1, contributions): the PCL is "a new regularization function [that]
efficiently maps the feature space to the output space to enable better classification
accuracy". The study measures every table cell's clean accuracy on the cell's test images at
every seed, and a report's record (`reports/<part>/record/`, `study.record`) keeps each one's
per-image mask. This script reads them (no runs, no training, no attack) and judges the claim
for the paper's proposal against the plain ResNet in each training setting: DFL + PCL's clean
accuracy minus the plain ResNet's, paired by seed, with the claims' t interval (image noise
inside each seed; `paper.intervals.effect_interval`). The PCL alone is not in the quick part's
tables, so its own share is not judged here.

    python studies/clean_accuracy.py --part quick

Writes `reports/<part>/clean-accuracy/` (README.md, metrics.json with the verdicts and the
commit the record was made at), which the study report (`python -m dfl_lib report`) reads.
Seconds.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "studies"))

from dfl_lib.errors import DataFileError, UsageError  # noqa: E402
from dfl_lib.paper.claims import claims  # noqa: E402
from dfl_lib.paper.intervals import INTERVAL_METHOD, effect_interval, outcome  # noqa: E402
from dfl_lib.paper.verdicts import NOT_TESTABLE, equivalence, verdict_lines  # noqa: E402
from dfl_lib.runs import io as runio  # noqa: E402
from dfl_lib.study.evidence import metrics_seed, row_mask  # noqa: E402
from dfl_lib.study.record import RECORD, recorded_cells  # noqa: E402

import headline  # noqa: E402

__all__ = ["CLAIM", "PAGE_TITLE", "judge", "write_page", "main"]

CLAIM = "pcl_clean_accuracy"
PAGE_TITLE = "# The paper's clean-accuracy claim, from the committed record"
FOLDER = "clean-accuracy"
BASELINE, MIN_SEEDS = "resnet", 3
LABELS = {"dfl_pcl": "DFL + PCL", "resnet": "the plain ResNet"}


def _masks(cells: dict, *, row: str, setting: str) -> dict[int, np.ndarray]:
    """{seed: clean bool mask (n,)} of the MNIST table cell (row, setting) in the record."""
    found = cells.get(("mnist", row, setting))
    return {metrics_seed(m): row_mask(m, "clean") for m in found["per_seed"]} if found else {}


def judge(part_dir: Path) -> list[dict]:
    """One verdict per row of `paper_claims.csv` of claim CLAIM (its part: "<row>, <setting>"),
    from `part_dir`'s record. DataFileError when the part has no record."""
    if not (Path(part_dir) / RECORD / "index.json").is_file():
        raise DataFileError(f"{part_dir} has no committed record ({RECORD}/index.json): the "
                            "clean masks are read from it")
    cells = recorded_cells(part_dir)
    out = []
    for c in (c for c in claims() if c.claim_id == CLAIM):
        row, setting = (p.strip() for p in c.part.split(",", 1))
        v = {"claim": c.label, "claim_id": c.claim_id, "text": c.text, "where": c.where,
             "dataset": c.dataset, "claimed": 0.0, "paper_effect": None, "estimate": None,
             "low": None, "high": None, "seeds": 0, "n": 0, "rows": {}, "unit": "points",
             "quantity": "clean accuracy"}
        masks = {r: _masks(cells, row=r, setting=setting) for r in (row, BASELINE)}
        seeds = sorted(set(masks[row]) & set(masks[BASELINE]))
        if len(seeds) < MIN_SEEDS:
            out.append({**v, "verdict": NOT_TESTABLE, "reason": (
                f"not run at this part: {len(seeds)} seed(s) with both {row} and {BASELINE} "
                f"({setting}) in its record; a verdict needs {MIN_SEEDS}")})
            continue
        samples = {r: {s: {"clean": masks[r][s]} for s in seeds} for r in (row, BASELINE)}
        est, low, high = effect_interval(
            samples, effect=lambda acc: acc[row]["clean"] - acc[BASELINE]["clean"])
        n = len(masks[BASELINE][seeds[0]])
        means = {r: float(np.mean([100.0 * masks[r][s].mean() for s in seeds]))
                 for r in (row, BASELINE)}
        v.update(estimate=est, low=low, high=high, seeds=len(seeds), n=n,
                 interval=INTERVAL_METHOD, rows={r: {"clean": means[r]} for r in means},
                 numbers=(f"clean test accuracy ({setting}): {LABELS[row]} {means[row]:.2f}%, "
                          f"{LABELS[BASELINE]} {means[BASELINE]:.2f}% (mean over seeds {seeds}, "
                          f"{n} images each); {LABELS[row]} minus {LABELS[BASELINE]}: "
                          f"{est:+.2f} points, 95% interval [{low:+.2f}, {high:+.2f}]; claimed "
                          "> 0" + equivalence(high=high, claimed=0.0)))
        out.append({**v, "verdict": outcome(low=low, high=high, claimed=0.0), "reason": ""})
    return out


def markdown(judged: list[dict], *, part: str) -> str:
    return "\n".join([
        f"{PAGE_TITLE}: does the PCL (with the DFL, the paper's proposal) classify clean images "
        "better than a plain ResNet?", "",
        f"Clean test accuracy of every table cell's run at every seed, read from "
        f"`reports/{part}/record/` (the per-image masks the tables were made from: no run, "
        "no training; `studies/clean_accuracy.py`). The paper's proposal minus the plain "
        "ResNet, paired by seed, t interval over seeds with the image noise inside each.", "",
        "What it does not show: the PCL's own share (the quick part trains the PCL only with "
        "the DFL), or clean accuracy at the paper's training length and width.", "",
        verdict_lines(judged), ""])


def write_page(part_dir: Path) -> list[dict]:
    """`part_dir`/clean-accuracy/README.md and metrics.json (`headline.write_verdict_page`);
    returns the verdicts."""
    judged = judge(part_dir)
    index = runio.read_json(Path(part_dir) / "03-robustness-tables" / "metrics.json")
    headline.write_verdict_page(Path(part_dir) / FOLDER, title=PAGE_TITLE,
                                text=markdown(judged, part=Path(part_dir).name), judged=judged,
                                profile=Path(part_dir).name, script="studies/clean_accuracy.py",
                                source_commit=index.get("provenance", {}).get("git_commit"),
                                example=f"reports/{Path(part_dir).name}")
    return judged


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", default="quick", help="the part whose record to read")
    p.add_argument("--reports", default=str(ROOT / "reports"))
    args = p.parse_args(argv)
    try:
        for v in write_page(Path(args.reports) / args.part):
            print(f"{v['claim']}: {v['verdict']}")
    except (UsageError, DataFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
