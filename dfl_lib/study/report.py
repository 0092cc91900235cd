"""The study report (`reports/README.md`): one page a reader opens first. It gathers every claim's
verdict from whichever part of the study ran its cells (the quick profile and the quick-full
parts each write their own report folder), leads with the findings, tables every claim of
`paper/paper_claims.csv` with the part and commit that made its verdict, embeds the figures
that show the answer, and links every part's notebooks and index.

    python -m dfl_lib report              # (re)writes reports/README.md from reports/*/
    rows = gather_claims("reports")       # one dict per claim, its chosen verdict and the rest

Read only from the committed reports' `metrics.json` files; `verify_study_report` checks that
the committed page says what they say.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import UsageError
from ..paper.claims import FLOAT_UNITS, claim, claims
from ..paper.regime import clean_floor

__all__ = ["PARTS", "gather_claims", "study_report_lines", "write_study_report",
           "verify_study_report"]

# (folder under reports/, what it is): the parts of the study, in the order they are listed
PARTS = (
    ("quick", "the quick profile: MNIST headline cells (ResNet, DFL + PCL; no defence and PGD "
              "training) at 3 seeds in the field's regime, the explorer, poisoning, forensics"),
    ("quick-full-clean", "every MNIST row without adversarial training, 3 seeds"),
    ("quick-full-pgd", "every MNIST row under PGD training, 3 seeds; Figure 6"),
    ("quick-full-depth", "the depth study (Figures 1, 3, 5): ResNet-18/34/50 with and without "
                         "the DFL under PGD training, 3 seeds"),
    ("quick-full-cifar", "CIFAR-10 (the JPEG copy) at illustration scale, below its regime"),
    ("quick-full-poisoning", "every training-set poison on every row, the adversarial poison "
                             "and BadNets at 3 seeds, poisons crafted against each defended "
                             "victim itself, the backdoors' rate sweeps"),
)
# other folders under reports/ and what they hold (listed, not gathered)
OTHER = (
    ("lab", "screenshots of the explorer notebook in JupyterLab"),
    ("benchmarks", "speed benchmarks and the bf16 / fp32 agreement"),
    ("fidelity-pcl-depth", "what makes ResNet-50 train under PGD training here (the lr "
                           "warm-up) and what the PCL's form changes"),
)
# the figures that show the answer: (part, path under it, caption)
FIGURES = (
    ("quick-full-clean", "03-robustness-tables/tables-paper-vs-ours.png",
     "Tables 1 and 3 without adversarial training: the paper's printed cells against ours "
     "(every clean-trained network is at 0% under PGD-10 at eps 0.3)"),
    ("quick-full-pgd", "03-robustness-tables/tables-paper-vs-ours.png",
     "Tables 1 and 3 under PGD training: the paper's cells against ours"),
    ("quick-full-depth", "01-depth/figure5-accuracies.png",
     "Figure 5: accuracies of ResNet-18/34/50 with and without the DFL under PGD training"),
    ("quick", "03-robustness-tables/sanity-curves.png",
     "Sanity curves of the headline evaluations (seed 0): accuracy against eps up to 1, "
     "against the attack's strength, and black-box against white-box attacks (whether each "
     "check holds, with its numbers, on the quick page)"),
    ("quick", "sanity-sweep/sweep.png",
     "Sanity sweeps of the headline models: accuracy against eps, against PGD's iterations "
     "and against random restarts (the checks on its page)"),
    ("quick", "07-data-poisoning/poisoning-bars.png",
     "Training-set poisoning: clean accuracy and backdoor success per defence"),
)
NOT_TESTABLE = "not testable here"
# what a verdict of a kind of claim does not yet measure, printed beside it (kind -> caveat)
CAVEATS = {"depth": "judged at the last epoch of 5,000-image runs, the validation quantities "
                    "under a PGD-10 monitor of 100 images; the depth runs have no AutoAttack "
                    "evaluation, so the regime gate is not passed"}
# a verdict made before the t interval (`paper.intervals.effect_interval`) names no method
OLD_INTERVAL = ("its interval is the earlier two-level percentile bootstrap, which under-covers "
                "at 3 seeds; the part's next run re-makes it with the t interval")
# reasons that say only that a part did not run the cells (another part may have)
_ABSENT = ("no notebook of this profile", "plan has no", "not trained at", "not run at this "
           "profile", "is not run at")


def _part_verdicts(root: Path, part: str) -> list[dict]:
    """Every verdict a part's notebooks wrote, each with the part, notebook and commit."""
    out = []
    for path in sorted((root / part).glob("*/metrics.json")):
        metrics = json.loads(path.read_text())
        commit = str(metrics.get("provenance", {}).get("git_commit", "unknown"))[:7]
        for v in metrics.get("verdicts", []):
            out.append({**v, "part": part, "notebook": path.parent.name, "commit": commit})
    return out


def _runs_elsewhere(root: Path, parts) -> dict[tuple[str, str, str], list[tuple[str, float]]]:
    """{(dataset, setting, row): [(part, clean accuracy %)]} of every table row a part's
    notebook 03 ran (its `tables`), in the parts' order."""
    out: dict = {}
    for part, _ in parts:
        path = root / part / "03-robustness-tables" / "metrics.json"
        if not path.is_file():
            continue
        for rows in json.loads(path.read_text()).get("tables", {}).values():
            for r in rows:
                clean = (r.get("strong") or {}).get("clean")
                key = (r["dataset"], r["setting"], r["row"])
                if r.get("ours") is not None and clean and \
                        part not in (p for p, _ in out.get(key, [])):
                    out.setdefault(key, []).append((part, float(clean[0])))
    return out


def _elsewhere_note(reason: str, *, claim, ran: dict) -> str:
    """Where `reason` says a baseline is "not run at this profile", the parts that ran it in the
    claim's setting and how it trained there ("" where none did): a reader otherwise takes the
    study for never having run it."""
    notes = []
    for row in dict.fromkeys(re.findall(r"(\w+) \(not run at this profile\)", reason)):
        for setting in claim.settings:
            for part, clean in ran.get((claim.dataset, setting, row), []):
                below = "" if clean >= clean_floor(claim.dataset) else ": did not train"
                notes.append(f"{row} is run in {part} ({setting}: {clean:.1f}% clean{below})")
    return "; ".join(notes)


def _rank(v: dict, order: int) -> tuple:
    """Higher is preferred: a tested verdict, then the most rows compared, then seeds and
    images; among untestable ones, a reason about the cells themselves (below the regime)
    over one that says only that this part did not run them; then the earlier part."""
    tested = v["verdict"] != NOT_TESTABLE
    absent = any(a in (v.get("reason") or "") for a in _ABSENT)
    return (tested, not absent, len(v.get("rows") or {}), v.get("seeds") or 0,
            v.get("n") or 0, -order)


def gather_claims(reports_root, *, parts=PARTS) -> list[dict]:
    """One dict per claim of `paper_claims.csv`, in its order: "claim" (the label), "where",
    "text", "claimed" (the claim's threshold, points; 0: any effect in its direction),
    "chosen" (the verdict dict the report prints, with "part", "notebook", "commit"; None where
    no part evaluated the claim) and "others" (the other parts' tested verdicts on it).
    UsageError when no part's folder exists under `reports_root`."""
    root = Path(reports_root)
    names = [p for p, _ in parts]
    if not any((root / p).is_dir() for p in names):
        raise UsageError(f"no part of the study found under {root} (expected one of "
                         f"{', '.join(names)})")
    found: dict[str, list[tuple[int, dict]]] = {}
    stale: dict[str, list[dict]] = {}
    quantity = {c.label: c.columns[0] for c in claims() if c.kind == "depth"}
    for order, part in enumerate(names):
        for v in _part_verdicts(root, part):
            # a depth verdict on another quantity than the claim's (an earlier version judged
            # the depth claims on clean accuracy) is not a verdict on this claim
            if v["claim"] in quantity and v.get("quantity", "final") != quantity[v["claim"]]:
                stale.setdefault(v["claim"], []).append(v)
                continue
            found.setdefault(v["claim"], []).append((order, v))
    for c in claims():  # a claim read in parts under the label it had before its readings split
        if c.kind == "depth" and c.part:
            stale.setdefault(c.label, []).extend(
                v for part in names for v in _part_verdicts(root, part)
                if v["claim"] == c.claim_id and "quantity" not in v)
    rows = []
    for c in claims():
        candidates = sorted(found.get(c.label, []), key=lambda ov: _rank(ov[1], ov[0]),
                            reverse=True)
        chosen = candidates[0][1] if candidates else None
        others = [v for _, v in candidates[1:] if v["verdict"] != NOT_TESTABLE]
        rows.append({"claim": c.label, "where": c.where, "text": c.text,
                     "claimed": c.threshold, "kind": c.kind, "chosen": chosen,
                     "others": others, "untestable": c.untestable,
                     "inconsistency": c.inconsistency, "stale": stale.get(c.label, [])})
    return rows


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _effect(v: dict | None) -> str:
    if not v or v.get("estimate") is None:
        return "-"
    unit = v.get("unit", "points")
    d = 3 if unit in FLOAT_UNITS else 1
    images = f" x {v.get('n', '?')} images" if v.get("n", "?") else ""
    return (f"{v['estimate']:+.{d}f}{' ' + unit if unit in FLOAT_UNITS else ''} [{v['low']:+.{d}f}, "
            f"{v['high']:+.{d}f}] ({v['seeds']} seed{'' if v['seeds'] == 1 else 's'}{images})")


def _claimed(row: dict) -> str:
    """The claimed effect: the claim's threshold, or for a pending claim (judged by a study
    script, not a notebook) the one its verdict was judged against; "-" where none."""
    claimed = row["claimed"]
    if row["kind"] == "pending" and row["chosen"] and row["chosen"].get("claimed") is not None:
        claimed = row["chosen"]["claimed"]
    elif row["kind"] in ("none", "pending"):
        return "-"
    return f">= {claimed:g}" if claimed else "> 0"


def study_report_lines(reports_root, *, parts=PARTS) -> list[str]:
    """The study report's markdown lines (see the module's docstring)."""
    root = Path(reports_root)
    rows = gather_claims(root, parts=parts)
    verdicts = [r["chosen"]["verdict"] if r["chosen"] else NOT_TESTABLE for r in rows]
    counts = {w: verdicts.count(w) for w in dict.fromkeys(verdicts)}
    lines = ["# The study report", "",
             "Does the Defensive Feature Layer (DFL) and the Polarised Contrastive Loss (PCL) of "
             "Hassanin et al. make very deep networks robust, as the paper claims? This page "
             "gathers every claim's verdict from the part of the study that ran its cells; each "
             "part's own page, executed notebooks and figures are linked below. It is written "
             "by `python -m dfl_lib report` from the parts' `metrics.json` files, and "
             "`python -m dfl_lib verify` checks it against them.", "",
             "## Findings", ""]
    lines.append(f"{len(rows)} claims of the paper: " + ", ".join(
        f"{n} {w}" for w, n in counts.items()) + ".")
    lines.append("")
    for r in rows:
        v = r["chosen"]
        if v and v["verdict"] != NOT_TESTABLE:
            lines.append(f"- {_cell(r['where'])}: the paper says \"{_cell(r['text'])}\" -- "
                         f"**{v['verdict']}** ({_cell(r['claim'])}): "
                         f"{_cell(v.get('numbers') or _effect(v))} [{v['part']}]"
                         + (f" ({CAVEATS[r['kind']]})" if r["kind"] in CAVEATS else ""))
    lines += ["", "Verdict words: **reproduced** (the 95% interval excludes zero and reaches the "
              "claimed effect), **direction only** (excludes zero, below the claim), "
              "**inconclusive** (covers both zero and the claim), **not reproduced** (below the "
              "claim, not excluding zero, or pointing the other way), **not testable here** "
              "(with the reason: below the field's regime, or not run yet).", "",
              "Effects: \"X minus A and B\" is X minus the better of A and B in each column (the "
              "lower, for an error or a loss), \"X minus the best baseline\" the same over three "
              "or more; over a claim's several columns (FGSM / PGD-10 / C&W) the smallest "
              "margin, or their mean where the claim speaks of a mean. Each part's machine "
              "(CPU cores and vector capability, or GPU) is under [The parts](#the-parts).", ""]
    for part, path, caption in FIGURES:
        if (root / part / path).exists():
            lines += [f"![{caption}]({part}/{path})", "", f"*{caption} ([{part}]({part}/"
                      "README.md)).*", ""]
    ran = _runs_elsewhere(root, parts)
    lines += ["## Every claim", "",
              "| claim | verdict | ours: effect [95% interval] | claimed | the paper's own "
              "numbers | why / note | part, notebook, commit |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        v = r["chosen"]
        verdict = v["verdict"] if v else NOT_TESTABLE
        reason = (v.get("reason") if v else r["untestable"]
                  or "no part of the study evaluated it yet") or ""
        if not v and r["stale"]:
            old = r["stale"][0]
            reason = (f"not run yet on the quantity the paper plots: the {old['part']} report "
                      f"(at {old['commit']}) judged it on final clean validation accuracy, at a "
                      f"96-98% ceiling (its verdict then: {old['verdict']}); re-running "
                      f"{old['part']} judges it on the training loss and error and the PGD-10 "
                      f"monitor")
        if v and v["verdict"] == NOT_TESTABLE:
            elsewhere = _elsewhere_note(reason, claim=claim(r["claim"]), ran=ran)
            reason += ("; " if reason and elsewhere else "") + elsewhere
        if r["inconsistency"] and r["inconsistency"] not in reason:
            reason += ("; " if reason else "") + "the paper's own numbers: " + \
                r["inconsistency"]
        if v and v.get("estimate") is not None and "interval" not in v:
            reason += ("; " if reason else "") + OLD_INTERVAL
        if r["kind"] in CAVEATS and v and v["verdict"] != NOT_TESTABLE:
            reason += ("; " if reason else "") + CAVEATS[r["kind"]]
        if r["others"]:
            reason += ("; " if reason else "") + "also " + "; ".join(
                f"{o['part']}: {o['verdict']} {_effect(o)}" for o in r["others"])
        paper = v.get("paper_effect") if v else None
        # a notebook's verdicts link the notebook; a study script's its folder's page
        page = (f"{v['notebook']}.ipynb" if v and (root / v["part"] / f"{v['notebook']}.ipynb")
                .exists() else f"{v['notebook']}/README.md" if v else "")
        made = f"[{v['part']}]({v['part']}/{page}) at {v['commit']}" if v else "-"
        lines.append(f"| {_cell(r['claim'])} ({_cell(r['where'])}) | **{verdict}** | "
                     f"{_cell(_effect(v))} | {_claimed(r)} | "
                     f"{'-' if paper is None else format(paper, '+.2f')} | {_cell(reason)} | "
                     f"{made} |")
    lines += ["", "## The parts", ""]
    for part, what in parts:
        if not (root / part).is_dir():
            continue
        notebooks = sorted(p.name for p in (root / part).glob("*.ipynb"))
        links = ", ".join(f"[{n[:-6]}]({part}/{n})" for n in notebooks) or "-"
        made = _invocations(root / part)
        lines.append(f"- [`{part}/`]({part}/README.md): {what}. Notebooks: {links}."
                     + (f" {made}" if made else ""))
    lines += ["", "Other folders:", ""]
    lines += [f"- [`{name}/`]({name}/{'README.md' if (root / name / 'README.md').exists() else ''}"
              f"): {what}." for name, what in OTHER if (root / name).is_dir()]
    return lines + [""]


def _invocations(folder: Path) -> str:
    """The part's own sentence on the study commands that made its runs, with their commits and
    machine (its run-times.json, written by the study runner: `invocations.invocation_summary`);
    "" where it has none."""
    path = folder / "run-times.json"
    if not path.is_file():
        return ""
    return str(json.loads(path.read_text()).get("invocations") or "")


def write_study_report(reports_root, *, parts=PARTS) -> Path:
    """Write `<reports_root>/README.md`; returns its path."""
    path = Path(reports_root) / "README.md"
    path.write_text("\n".join(study_report_lines(reports_root, parts=parts)))
    return path


def verify_study_report(reports_root, *, parts=PARTS) -> list[str]:
    """Mismatches (one line each) between the committed study report and what its parts'
    `metrics.json` files give today; [] when it says what they say."""
    path = Path(reports_root) / "README.md"
    if not path.exists():
        return [f"{path}: missing (write it with `python -m dfl_lib report`)"]
    want = study_report_lines(reports_root, parts=parts)
    have = path.read_text().split("\n")
    return [f"{path}:{i + 1}: has {h!r}, its parts give {w!r}"
            for i, (h, w) in enumerate(zip(have, want)) if h != w] + (
        [f"{path}: {len(have)} lines, its parts give {len(want)}"]
        if len(have) != len(want) else [])
