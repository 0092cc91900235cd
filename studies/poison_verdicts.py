r"""The paper's poisoning claim judged on a part's committed poisoning results.

The paper (Section 1): "we integrate a DFL and PCL in a compact model for defending against data
poisoning attacks". Notebook 07 measures each poison's effect on DFL + PCL against the plain
ResNet (`study.poison_records.poison_effects`: a t interval over seeds holding image noise) and,
from its next run on, writes one verdict per poison (`study.poison_verdicts`). A part whose
notebook 07 ran before that has the effects and no verdicts; this script judges them from the
part's committed `07-data-poisoning/metrics.json` (no runs, no training) and writes the page
`reports/<part>/poisoning-verdicts/` (README.md, metrics.json with the verdicts and the commit
the effects were made at), which the study report (`python -m dfl_lib report`) reads.

    python studies/poison_verdicts.py --part quick-full-poisoning

Seconds; reads and writes only under --reports.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dfl_lib.errors import UsageError  # noqa: E402
from dfl_lib.paper.verdicts import verdict_lines  # noqa: E402
from dfl_lib.runs import io as runio  # noqa: E402
from dfl_lib.study.poison_verdicts import ROW, SETTING, poison_verdicts  # noqa: E402

__all__ = ["PAGE_TITLE", "judge", "write_page", "main"]

PAGE_TITLE = "# The paper's poisoning claim, judged per poison"
SOURCE = Path("07-data-poisoning") / "metrics.json"
FOLDER = "poisoning-verdicts"


def judge(part_dir: Path) -> tuple[list[dict], dict]:
    """(verdicts, the notebook's metrics) from `part_dir`/07-data-poisoning/metrics.json.
    UsageError naming the file when it is missing or holds no poisoning effects."""
    source = part_dir / SOURCE
    if not source.is_file():
        raise UsageError(f"no {source}: --part must name a report folder whose notebook 07 ran "
                         "(e.g. quick-full-poisoning)")
    metrics = json.loads(source.read_text())
    if not {"effects", "records"} <= set(metrics):
        raise UsageError(f"{source} has no 'effects' and 'records' (is it notebook 07's "
                         "metrics.json?)")
    if "fraction" not in metrics:
        raise UsageError(f"{source} has no 'fraction' (the poisoned share its effects are at)")
    return poison_verdicts(metrics["effects"], records=metrics["records"],
                           fraction=metrics["fraction"]), metrics


def markdown(judged: list[dict], *, part: str, source_commit: str) -> str:
    """The page: what was compared, then the verdicts in the study's one format."""
    return "\n".join([
        PAGE_TITLE, "",
        f"From `reports/{part}/{SOURCE.as_posix()}` (notebook 07, made at "
        f"{source_commit[:7]}): for each poison the study runs, DFL + PCL ({ROW}) against the "
        f"plain ResNet, both trained without adversarial training (\"{SETTING}\") on the "
        "same poisoned training set and evaluated on the same clean test images, paired by "
        "seed (`dfl_lib/study/poison_verdicts.py`; `studies/poison_verdicts.py` wrote this "
        "page). The measure is the one a defence against the poison must move: the attack "
        "success rate of a backdoor (the plain ResNet's minus DFL + PCL's), the clean accuracy "
        "after an availability poison (DFL + PCL's minus the plain ResNet's); 95% t interval "
        "over seeds holding the image noise inside each seed; claimed > 0 (the paper gives no "
        "size and reports no poisoning experiment: the reading is the study's). An effect "
        "needs 3 seeds; a backdoor that does not take hold on the plain ResNet (under 50% "
        "success) tests no defence.", "",
        "What it does not show: a poison crafted against the plain ResNet must transfer to "
        "DFL + PCL, so a difference there mixes the defence with the transfer; the reading "
        "\"crafted against DFL + PCL\" is the attacker who knows the defence.", "",
        verdict_lines(judged), ""])


def write_page(part_dir: Path) -> list[dict]:
    """`part_dir`/poisoning-verdicts/README.md and metrics.json (verdicts with provenance);
    returns the verdicts. UsageError where that folder holds another page."""
    judged, metrics = judge(part_dir)
    folder = part_dir / FOLDER
    page = folder / "README.md"
    if page.exists() and not page.read_text().startswith(PAGE_TITLE):
        raise UsageError(f"{page} is not this script's page; move it first")
    source_commit = str(metrics.get("provenance", {}).get("git_commit", "unknown"))
    git = runio.git_state()
    runio.write_json(folder / "metrics.json", {
        "notebook": FOLDER, "profile": metrics.get("profile"), "verdicts": judged,
        "provenance": {"git_commit": git["commit"], "git_dirty": git["dirty"],
                       "script": "studies/poison_verdicts.py", "source": SOURCE.as_posix(),
                       "source_commit": source_commit}})
    page.write_text(markdown(judged, part=part_dir.name, source_commit=source_commit))
    return judged


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", default="quick-full-poisoning",
                   help="the report folder under --reports whose notebook 07 is judged")
    p.add_argument("--reports", default=str(ROOT / "reports"), help="the reports root")
    args = p.parse_args(argv)
    try:
        for v in write_page(Path(args.reports) / args.part):
            print(f"{v['claim']}: {v['verdict']}")
        return 0
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
