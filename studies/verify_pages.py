"""Every verdict page a study script wrote under reports/, re-derived from the committed data it
was judged from, and compared with what the page says (`make verify` runs it after
`python -m dfl_lib verify`, which re-derives the tables from a report's record).

A verdict page is a folder `reports/<part>/<name>/` whose metrics.json names the script that
wrote it (provenance.script). Each is judged again here as its script judges it, from the
committed files alone: the depth claims from the part's 01-depth curves, the poisoning claim
from notebook 07's effects, the clean-accuracy claim from the part's record, the black-box and
feature-space claims and the AutoAttack benchmark from the per-image masks in their JSON (the
regime gate read from the committed AutoAttack check). Each part's independent re-check
(`independent-check.json`) is held to its own per-example masks: every row's count and the
paired effect. A mismatch is a page made from other data or by other code than the committed:
re-make it with its script.

    python studies/verify_pages.py [--reports reports]    # exit 1 and one line per mismatch
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "studies"))

from dfl_lib.errors import DataFileError  # noqa: E402
from dfl_lib.runs import io as runio  # noqa: E402
from dfl_lib.study.record import compare  # noqa: E402

__all__ = ["JUDGES", "verify_pages", "main"]


def _depth(folder: Path, reports: Path) -> list[dict]:
    import depth_quantities
    return depth_quantities.judge(folder.parent)[0]


def _poisoning(folder: Path, reports: Path) -> list[dict]:
    import poison_verdicts
    return poison_verdicts.judge(folder.parent)[0]


def _clean(folder: Path, reports: Path) -> list[dict]:
    import clean_accuracy
    return clean_accuracy.judge(folder.parent)


def _autoattack(folder: Path, reports: Path) -> list[dict]:
    import autoattack_check
    return [autoattack_check.benchmark_verdict(runio.read_json(folder / "check.json"))]


def _blackbox(folder: Path, reports: Path) -> list[dict]:
    import blackbox_seeds
    from feature_seeds import _regime
    report = runio.read_json(folder / "blackbox.json")
    return blackbox_seeds.verdicts(report, regime=_regime(reports.parent, report["profile"]))


def _features(folder: Path, reports: Path) -> list[dict]:
    import feature_seeds
    report = runio.read_json(folder / "features.json")
    return feature_seeds.verdicts(report, regime=feature_seeds._regime(reports.parent,
                                                                       report["profile"]))


# the script a page names -> how it judges the page's folder again (folder, reports root)
JUDGES: dict[str, Callable[[Path, Path], list[dict]]] = {
    "studies/depth_quantities.py": _depth,
    "studies/poison_verdicts.py": _poisoning,
    "studies/clean_accuracy.py": _clean,
    "studies/autoattack_check.py": _autoattack,
    "studies/blackbox_seeds.py": _blackbox,
    "studies/feature_seeds.py": _features,
}


def verify_pages(reports) -> tuple[list[str], list[str]]:
    """(the pages checked, one line per mismatch) for every verdict page under `reports`
    (`reports/<part>/<name>/metrics.json` naming its script). DataFileError naming a page whose
    script has no judge here, or whose data is missing."""
    reports = Path(reports)
    checked, problems = [], []
    for path in sorted(reports.glob("*/*/metrics.json")):
        script = (json.loads(path.read_text()).get("provenance") or {}).get("script")
        if script is None:
            continue  # a notebook's metrics: the record and the study report check those
        if script not in JUDGES:
            raise DataFileError(f"{path} was written by {script}, which verify_pages.py cannot "
                                f"judge again; known: {', '.join(JUDGES)}")
        page = json.loads(path.read_text())
        again = json.loads(json.dumps(JUDGES[script](path.parent, reports),
                                      default=runio.json_default))
        compare(again, page.get("verdicts"), where=str(path.relative_to(reports.parent)),
                problems=problems)
        checked.append(str(path.parent.relative_to(reports.parent)))
    for path in sorted(reports.glob("*/independent-check.json")):
        import independent_check
        report = runio.read_json(path)
        again = independent_check.counts(report, from_masks=True)
        if again is None:
            continue  # written before the check kept its masks: nothing to re-derive from
        compare(json.loads(json.dumps(again, default=runio.json_default)),
                independent_check.counts(report, from_masks=False),
                where=str(path.relative_to(reports.parent)), problems=problems)
        checked.append(str(path.relative_to(reports.parent)))
    return checked, problems


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reports", default=str(ROOT / "reports"))
    args = p.parse_args(argv)
    try:
        checked, problems = verify_pages(args.reports)
    except DataFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in problems:
        print(line)
    if problems:
        return 1
    print(f"{len(checked)} verdict pages and checks re-derive from their committed data: "
          + ", ".join(checked))
    return 0


if __name__ == "__main__":
    sys.exit(main())
