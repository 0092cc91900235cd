"""The study runner's second stage: execute every notebook in order with papermill (parameters
injected, executed copies into reports/<profile>/), time each, and write the index
reports/<profile>/README.md from the notebooks' metrics.json files.

    run_notebooks("quick", out_dir="reports/quick", runs_dir="runs/quick")
    write_index("quick", out_dir="reports/quick", plan_seconds={...}, notebook_seconds={...})
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..errors import DataFileError, MissingDataError, UsageError
from ..experiments.configs import profile_deviations
from ..figures.tables import comparison_markdown
from ..paper.claims import claims
from ..paper.verdicts import verdict_lines
from ..profiles import get_profile
from ..runs import io as runio
from .kernel import project_kernel
from .notebook import CIFAR_NOTE
from .plan import datasets, plan_deviations, study_plan
from .report import OLD_INTERVAL

__all__ = ["NOTEBOOKS", "PAPER_ITEMS", "profile_notebooks", "run_notebooks", "write_index",
           "committed_run_times", "NotebookFailed", "RUN_TIMES_NAME"]

NOTEBOOKS = ("01-depth", "02-decision-geometry", "03-robustness-tables", "04-training-curves",
             "05-feature-space", "06-explore", "07-data-poisoning", "08-forensics")
# the paper's figures and tables -> the notebook that reproduces each
PAPER_ITEMS = {"Figures 1, 2, 3, 5 (depth under attack; Figure 2 drawn from the model)":
               "01-depth",
               "Figure 4 (decision geometry)": "02-decision-geometry",
               "Tables 1-6": "03-robustness-tables", "Figure 6 (training curves)":
               "04-training-curves",
               "Feature space, clean vs adversarial (evasion) samples (not in the paper)":
               "05-feature-space",
               "Epsilon explorer (widgets)": "06-explore",
               "Training-set poisoning (not in the paper's experiments; its title and abstract "
               "name it)": "07-data-poisoning",
               "Forensics: which flawed evaluation gives numbers like the paper's (not in the "
               "paper)": "08-forensics"}
# parameters only some notebooks take (papermill warns about unknown ones)
# the study explores its own runs, not the committed weights a reader opening it gets
EXTRA_PARAMETERS = {"06-explore": {"INTERACTIVE": False, "WEIGHTS": ""}}
TIMINGS_NAME = "notebook-seconds.json"
# what the Time section reads from the runs (their compute, the invocations that made them),
# kept beside the index so it can be written again where the runs are not (a fresh clone)
RUN_TIMES_NAME = "run-times.json"
RUN_TIMES_FIELDS = ("plan_seconds", "invocations", "wall_seconds")
NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names it, the failing cell and the executed copy."""


def profile_notebooks(profile: str) -> tuple[str, ...]:
    """The notebooks of the profile's report, in order (`Profile.notebooks`; "all": NOTEBOOKS).
    Raises UsageError for an unknown profile or a notebook name the study does not have."""
    chosen = get_profile(profile).notebooks
    if chosen == "all":
        return NOTEBOOKS
    unknown = [n for n in chosen if n not in NOTEBOOKS]
    if unknown:
        raise UsageError(f"profile {profile!r} names unknown notebooks {unknown}; known: "
                         f"{', '.join(NOTEBOOKS)}")
    return tuple(n for n in NOTEBOOKS if n in chosen)


def run_notebooks(profile: str, *, out_dir, runs_dir, data_dir: str = "", device: str = "auto",
                  notebooks_dir=NOTEBOOKS_DIR, only: tuple[str, ...] | None = None,
                  committed: bool = False) -> dict:
    """Execute the profile's notebooks (`profile_notebooks`, or `only` of them) in order;
    {name: wall seconds}. A failing cell stops the run with NotebookFailed, naming the cell; its
    executed copy keeps the traceback. UsageError for a notebook outside the profile's.

    committed: run each notebook as committed at HEAD (a reproduction: an edited or autosaved
    copy in notebooks/ is left alone), not the file; UsageError for a notebook git has not
    committed. Without git (an unpacked archive), the files are what there is."""
    mine = profile_notebooks(profile)
    names = only or mine
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        raise UsageError(f"unknown notebooks {unknown}; known: {', '.join(NOTEBOOKS)}")
    # a notebook outside the profile's would train the runs it reads, untimed, inside its kernel
    foreign = [n for n in names if n not in mine]
    if foreign:
        raise UsageError(f"notebooks {foreign} are not part of profile {profile!r}; its "
                         f"notebooks: {', '.join(mine)}")
    out_dir, notebooks_dir = Path(out_dir).resolve(), Path(notebooks_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    # kernels run in the notebooks folder: a relative data root (the Makefile's ../shared/data)
    # is resolved here, from the caller's folder
    data_dir = data_dir or os.environ.get("DFL_DATA_DIR", "")
    params = {"PROFILE": profile, "DEVICE": device,
              "DATA_DIR": str(Path(data_dir).resolve()) if data_dir else "",
              "RUNS_DIR": str(Path(runs_dir).resolve()), "OUT_DIR": str(out_dir)}
    seconds = {}
    with project_kernel() as kernel:  # this interpreter's kernel, whatever else Jupyter finds
        for name in names:
            seconds[name] = _run_one(name, profile=profile, source_dir=notebooks_dir,
                                     out_dir=out_dir, kernel=kernel, committed=committed,
                                     parameters={**params, **EXTRA_PARAMETERS.get(name, {})})
    return seconds


def _run_one(name: str, *, profile: str, source_dir: Path, out_dir: Path, kernel: str,
             parameters: dict, committed: bool) -> float:
    """Execute one notebook into out_dir with papermill on `kernel` (from its committed text
    where `committed`); its wall seconds, also recorded in out_dir's timings file.
    NotebookFailed naming the failing cell."""
    import papermill as pm

    source = source_dir / f"{name}.ipynb"
    text = runio.committed_text(source) if committed else None
    if committed and text is None and runio.git_state()["commit"] != runio.UNKNOWN:
        raise UsageError(f"notebook {source} is not committed: commit it (the study runs the "
                         "committed notebooks), or pass --allow-dirty to run the file")
    if text is None and not source.exists():
        raise MissingDataError(f"notebook {source} is missing; restore it from git "
                               f"(git checkout -- {source.name})")
    if text is not None:  # the committed notebook, beside the outputs (kernels run in source_dir)
        source = out_dir / f".{name}.committed.ipynb"
        source.write_text(text)
    target = out_dir / f"{name}.ipynb"
    print(f"running {name} ({profile}) ...", flush=True)
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(source), str(target), parameters=parameters,
                            cwd=str(source_dir), kernel_name=kernel,
                            progress_bar=False, log_output=False)
    except pm.PapermillExecutionError as err:
        raise NotebookFailed(f"notebook {name} failed in cell {err.exec_count}: "
                             f"{err.ename}: {err.evalue}\n--- the cell ---\n{err.source}\n"
                             f"--- (executed copy with the traceback: {target})\n"
                             f"{''.join(err.traceback[-3:])}") from None
    finally:
        if text is not None:
            source.unlink(missing_ok=True)
    seconds = time.perf_counter() - start
    print(f"  {name}: {seconds:.0f} s", flush=True)
    timings = out_dir / TIMINGS_NAME  # kept across partial runs, for the index
    saved = json.loads(timings.read_text()) if timings.exists() else {}
    # atomically: a second process running other notebooks into the same folder (the
    # tests' smoke study does) never reads a half-written file
    runio.write_json(timings, {**saved, name: seconds})
    return seconds


def _metrics(out_dir: Path, name: str) -> dict:
    path = out_dir / name / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _cell(text: str) -> str:
    """`text` safe inside a markdown table cell."""
    return str(text).replace("|", "\\|")


def _verdict_lines(metrics: dict) -> list[str]:
    text = verdict_lines(metrics.get("verdicts", []), indent="  ")
    return text.split("\n") if text else []


def _interval(v: dict) -> str:
    if v.get("estimate") is None:
        return "-"
    seeds = f"{v['seeds']} seed{'' if v['seeds'] == 1 else 's'}"
    return f"{v['estimate']:+.1f} [{v['low']:+.1f}, {v['high']:+.1f}] ({seeds})"


def findings(out_dir) -> list[str]:
    """The study's answers first, in plain words: every claim of the paper (paper_claims.csv)
    with its verdict, our effect and interval, the claimed effect, what the paper's own numbers
    give and why a claim is not testable; then the notebooks' plain statements and our own
    checks. Read from the notebooks' metrics.json files and from the verdict pages study scripts
    wrote into the report's folder (`<name>/metrics.json` naming its script: the claims judged
    at every seed after the notebooks ran, or re-judged from their committed data), which take
    precedence, as the study report reads them."""
    out_dir = Path(out_dir)
    found, statements, checks = {}, [], []
    for path in sorted(out_dir.glob("*/metrics.json")):
        page = json.loads(path.read_text())
        if path.parent.name in NOTEBOOKS or not (page.get("provenance") or {}).get("script"):
            continue
        for v in page.get("verdicts", []):
            found.setdefault(v["claim"], {**v, "page": path.parent.name})
    for name in NOTEBOOKS:
        m = _metrics(out_dir, name)
        for v in m.get("verdicts", []):
            found.setdefault(v["claim"], v)
        statements += [s for s in ([m["statement"]] if m.get("statement") else [])
                       + m.get("statements", [])]
        checks += m.get("checks", [])
    # verdicts made before the t interval name no method: their rows say so
    old = any(v.get("estimate") is not None and "interval" not in v for v in found.values())
    method = ("a t interval on per-seed effects, its variance at least the image noise inside "
              "the seeds" + ("; the rows marked so used the earlier two-level percentile "
                             "bootstrap" if old else ""))
    lines = ["## Findings", "",
             "Each claim of the paper, tested against the effect it claims: our effect in points "
             "(positive in the claim's direction) with a 95% interval over seeds and test images "
             f"({method}); **reproduced** (the interval excludes zero and "
             "reaches the claim), **direction only** (excludes zero, below the claim), "
             "**inconclusive** (covers both), **not reproduced** (below the claim, not "
             "excluding zero, or pointing the other way), **not testable here** (with the "
             "reason).", ""]
    lines += [f"- {_plain(s)}" for s in statements]
    lines += ["", "| claim | verdict | ours: effect [95% interval] | claimed | the paper's own "
              "numbers | why / note |", "|---|---|---|---|---|---|"]
    for c in claims():
        v = found.get(c.label)
        verdict = v["verdict"] if v else "not testable here"
        # a claim no notebook judged: its own reason where the claims file gives one (a claim
        # untestable by nature, or one not judged yet), else that this profile did not
        reason = (v.get("reason") if v else c.untestable
                  or "no notebook of this profile evaluated it") or ""
        if v and v.get("estimate") is not None and "interval" not in v:
            reason = (reason + "; " if reason else "") + OLD_INTERVAL
        if v and v.get("page"):
            reason = (reason + "; " if reason else "") + \
                f"judged on its page: [{v['page']}]({v['page']}/README.md)"
        if c.inconsistency:
            reason = (reason + "; " if reason else "") + "the paper's own numbers: " + \
                c.inconsistency
        claimed = f">= {c.threshold:g}" if c.threshold else (
            "> 0" if c.kind not in ("none", "pending") else "-")
        if c.kind == "pending" and v and v.get("claimed") is not None:  # judged by its page
            claimed = f">= {v['claimed']:g}" if v["claimed"] else "> 0"
        paper = v.get("paper_effect") if v else None
        lines.append(f"| {_cell(c.label)} ({_cell(c.where)}) | **{verdict}** | "
                     f"{_cell(_interval(v or {}))} | {claimed} | "
                     f"{'-' if paper is None else format(paper, '+.2f')} | {_cell(reason)} |")
    if checks:
        lines += ["", "Our own checks (not claims of the paper):", ""]
        # the text names the cell: two cells can share a check's name
        lines += [f"- {c['check']} ({c['text']}): **{c['result']}** ({c['numbers']})"
                  for c in checks]
    return lines + [""]


def _plain(text: str) -> str:
    return text if text.startswith("**") else f"**{text}**"


# which part of the study's time budget (`Profile.budget_minutes`) a plan role or notebook is in
_PART_OF_ROLE = {"depth": "base", "cell": "base", "headline": "base", "poison": "poisoning"}
_PART_OF_NOTEBOOK = {"07-data-poisoning": "poisoning", "08-forensics": "notebook 08"}


def budget_parts(profile: str, *, plan_seconds: dict[str, float],
                 notebook_seconds: dict[str, float]) -> dict[str, float]:
    """{part: measured minutes} of the study's budget parts ("base", "poisoning",
    "notebook 08"): each plan item by its role, each notebook by its name (else "base")."""

    role = {item.key: item.role for item in study_plan(profile)}
    out = dict.fromkeys(("base", "poisoning", "notebook 08"), 0.0)
    for key, seconds in plan_seconds.items():
        out[_PART_OF_ROLE.get(role.get(key, "cell"), "base")] += seconds / 60
    for name, seconds in notebook_seconds.items():
        out[_PART_OF_NOTEBOOK.get(name, "base")] += seconds / 60
    return out


def budget_lines(profile: str, *, plan_seconds: dict[str, float],
                 notebook_seconds: dict[str, float],
                 wall_seconds: float | None = None) -> list[str]:
    """The index's table of measured minutes per budget part beside the profile's budget
    (`Profile.budget_minutes`), with whether each holds; [] for a profile without one.

    The plan's items run side by side (workers), so their seconds add up to more than the
    wall time: given the invocation's `wall_seconds`, the plan's wall time (it, less the
    notebooks') is shared among the parts in proportion to their items' seconds, and the total
    is the invocation's wall time."""
    budget = get_profile(profile).budget_minutes
    if not budget:
        return []
    parts = budget_parts(profile, plan_seconds=plan_seconds, notebook_seconds=notebook_seconds)
    if wall_seconds is not None and plan_seconds:
        books = budget_parts(profile, plan_seconds={}, notebook_seconds=notebook_seconds)
        items = {p: parts[p] - books[p] for p in parts}
        share = (wall_seconds / 60 - sum(books.values())) / max(sum(items.values()), 1e-9)
        parts = {p: books[p] + items[p] * share for p in parts}
    lines = ["", "| part | measured (min) | budget (min) | within |", "|---|---|---|---|"]
    for part, allowed in budget.items():
        lines.append(f"| {part} | {parts[part]:.1f} | {allowed} | "
                     f"{'yes' if parts[part] <= allowed else '**no**'} |")
    total, allowed = sum(parts[p] for p in budget), sum(budget.values())
    lines.append(f"| total | {total:.1f} | {allowed} | "
                 f"{'yes' if total <= allowed else '**no**'} |")
    return lines


def committed_run_times(out_dir) -> dict | None:
    """The Time section's inputs an earlier `write_index` kept in out_dir/run-times.json
    ({"plan_seconds": {plan item: s}, "invocations": sentence, "wall_seconds": s or None}),
    or None where it wrote none; DataFileError naming the file when it is not that dict."""
    path = Path(out_dir) / RUN_TIMES_NAME
    if not path.exists():
        return None
    saved = runio.read_json(path)
    if not isinstance(saved, dict) or set(saved) != set(RUN_TIMES_FIELDS) \
            or not isinstance(saved["plan_seconds"], dict):
        raise DataFileError(f"{path} is not a run-times record (a dict of "
                            f"{', '.join(RUN_TIMES_FIELDS)}): restore it from git")
    return saved


def write_index(profile: str, *, out_dir, plan_seconds: dict[str, float],
                notebook_seconds: dict[str, float], command: str,
                invocations: str = "", wall_seconds: float | None = None) -> Path:
    """reports/<profile>/README.md: each paper figure/table with its notebook, files, numbers
    beside the paper's and verdicts; the deviations; the time of every stage, with which
    invocations of the study command made the runs (`invocations`, one sentence:
    `study.invocations.invocation_summary`) and, where one command made them all, its wall
    time (`wall_seconds`: `study.invocations.invocation_wall`)."""

    out_dir = Path(out_dir)
    lines = [f"# The notebook study at the `{profile}` profile",
             "", f"Made by `{command}` ({get_profile(profile).summary}). Executed notebooks are "
             "the `NN-*.ipynb` files here; each notebook's figures (PNG and PDF) and "
             "`metrics.json` (with provenance: git commit, versions, device, wall time) are in "
             "its folder.", ""]
    if "cifar10_jpeg" in datasets(profile):  # the note belongs where the JPEG copy is used
        lines += [f"**{CIFAR_NOTE}**", ""]
    lines += findings(out_dir)
    lines += ["## Deviations of this profile from the paper", ""]
    lines += [f"- {d}" for d in profile_deviations(profile) + plan_deviations(profile)]
    lines += ["", "## The paper's figures and tables, ours beside them", ""]
    mine = profile_notebooks(profile)
    for item, name in PAPER_ITEMS.items():
        if name not in mine:
            continue  # another profile's report (a part of quick-full)
        m = _metrics(out_dir, name)
        figures = ", ".join(f"[{f}]({name}/{f})" for f in m.get("figures", [])) or "-"
        lines += [f"### {item}", "", f"- notebook: [{name}.ipynb]({name}.ipynb); figures: "
                  f"{figures}"]
        if item == "Tables 1-6" and m.get("tables"):
            for table, rows in m["tables"].items():
                lines += ["", comparison_markdown(rows, title=table)]
            lines.append("")
        if m.get("statement"):
            lines.append(f"- **{m['statement']}**")
        if m.get("verdicts"):
            lines += ["- verdicts:"] + _verdict_lines(m)
        lines.append("")
    # the notebooks of this profile (a timings file kept across runs may hold others')
    notebook_seconds = {n: s for n, s in notebook_seconds.items() if n in mine}
    total_plan = sum(plan_seconds.values())
    total_nb = sum(notebook_seconds.values())
    wall = (f"; the study command's wall time, start to end: {wall_seconds / 60:.1f} min"
            if wall_seconds is not None else "")
    lines += ["## Time", "", f"Runs and evaluations (the plan's items, side by side where the "
              f"study ran workers): {total_plan / 60:.1f} min of items' time over "
              f"{len(plan_seconds)} items; notebooks (one at a time): {total_nb / 60:.1f} min"
              f"{wall}." + (f" {invocations}" if invocations else ""),
              "", "| notebook | wall (s) |", "|---|---|"]
    lines += [f"| {n} | {s:.0f} |" for n, s in notebook_seconds.items()]
    lines += budget_lines(profile, plan_seconds=plan_seconds, notebook_seconds=notebook_seconds,
                          wall_seconds=wall_seconds)
    lines += ["", "| plan item | measured (s) |", "|---|---|"]
    # plan keys hold "|" ("mnist | resnet18 | no defence"): escaped, or the row splits into cells
    lines += [f"| {_cell(k)} | {s:.0f} |" for k, s in plan_seconds.items()]
    out_dir.mkdir(parents=True, exist_ok=True)
    runio.write_json(out_dir / RUN_TIMES_NAME, {"plan_seconds": plan_seconds,
                                                "invocations": invocations,
                                                "wall_seconds": wall_seconds})
    path = out_dir / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path
