"""The depth claims (Figures 1, 3, 5) judged on the quantities the paper plots, from a committed
depth report's curves, without its runs (they are not kept): every run's per-epoch history is in
`reports/<part>/01-depth/metrics.json`, so today's claims (`paper/paper_claims.csv`: training
loss and error on the adversarial batches, validation loss, error and accuracy under the PGD-10
monitor, at the last epoch) re-judge that report's runs exactly as notebook 01 would.

    python studies/depth_quantities.py [--report reports/quick-full-depth]

Writes <report>/depth-quantities/metrics.json (the verdicts, with provenance: this commit, the
source file's sha256) and README.md (the verdict lines and the statement); the study report
(`python -m dfl_lib report`) reads the verdicts as the part's. Where the depth runs have no
AutoAttack evaluation (the regime gate) every verdict is "not testable here" and its numbers
are still given.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from dfl_lib.paper.verdicts import depth_statement, verdict_lines
from dfl_lib.runs.io import git_state, write_json
from dfl_lib.study.evidence import depth_verdicts
from dfl_lib.study.records import depth_records_from_report

NAME = "depth-quantities"


def judge(report: Path) -> tuple[list[dict], str, dict]:
    """(verdicts, statement, the notebook's metrics) of the depth claims from `report`'s
    01-depth/metrics.json (the curves of every run), as notebook 01 would judge them today."""
    metrics = json.loads((Path(report) / "01-depth" / "metrics.json").read_text())
    records = depth_records_from_report(metrics, profile=metrics["profile"])
    verdicts = depth_verdicts(metrics["profile"], records=records)
    finals = [{**f, "val_acc": f.get("val_acc")} for f in metrics["final"]]
    return verdicts, depth_statement(verdicts, finals), metrics


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", default="reports/quick-full-depth",
                        help="a report folder with 01-depth/metrics.json")
    args = parser.parse_args(argv)
    report = Path(args.report)
    source = report / "01-depth" / "metrics.json"
    if not source.is_file():
        raise SystemExit(f"error: {source} not found; expected a depth report's notebook metrics")
    verdicts, statement, metrics = judge(report)
    git = git_state()
    out = report / NAME
    write_json(out / "metrics.json", {
        "notebook": NAME, "profile": metrics["profile"], "verdicts": verdicts,
        "statement": statement,
        "provenance": {"git_commit": git["commit"], "git_dirty": git["dirty"],
                       "script": "studies/depth_quantities.py", "source": str(source),
                       "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
                       "source_commit": metrics.get("provenance", {}).get("git_commit")}})
    (out / "README.md").write_text(
        f"# The depth claims on the paper's quantities ({metrics['profile']})\n\n"
        f"Re-judged by `python studies/depth_quantities.py --report {report}` at commit "
        f"{git['commit'][:7]} from the curves of [01-depth](../01-depth.ipynb) (made at "
        f"{str(metrics.get('provenance', {}).get('git_commit', 'unknown'))[:7]}): the "
        "last epoch of every PGD-trained run, without the runs themselves.\n\n"
        f"**{statement}**\n\n{verdict_lines(verdicts)}\n")
    print(verdict_lines(verdicts))
    return out


if __name__ == "__main__":
    main()
