"""Which invocations of the study command made a runs folder: one line per start and per end
in `<runs>/invocations.jsonl`, so the index can say whether its report came from one invocation
or from several (a study interrupted and resumed), and at which commits.

    log_start(runs_dir, items_done=12, commit=..., dirty=False)
    log_end(runs_dir, wall_seconds=5400.0)
    summary = invocation_summary(read_invocations(runs_dir))   # one sentence for the index

Per-item times do not depend on this: each item's seconds are read from its own run folder
(`runner.measured_seconds`), whichever invocation did it.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from ..runs import io as runio

__all__ = ["INVOCATIONS_NAME", "log_start", "log_end", "read_invocations",
           "invocation_summary", "invocation_wall", "run_commits", "run_commits_sentence"]

INVOCATIONS_NAME = "invocations.jsonl"


def _append(runs_dir, record: dict) -> None:
    path = Path(runs_dir) / INVOCATIONS_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), **record}
    with path.open("a") as f:  # one short line per event: an interrupted write loses one line
        f.write(json.dumps(record, sort_keys=True) + "\n")


def log_start(runs_dir, *, items_done: int, items: int, commit: str, dirty,
              what: str = "plan and notebooks", machine: str = "", profile: str = "") -> None:
    """Record a study command's start: how many of the plan's `items` were already done, what
    it was asked to do (`what`: "plan and notebooks", or e.g. "notebooks 07"), on which
    machine (`machine`, e.g. "2 CPU cores, AVX2": the CPUs lent differ, and so do the times)
    and for which profile (`profile`: profiles may share a runs folder with --runs-dir)."""
    _append(runs_dir, {"event": "start", "items_done": items_done, "items": items,
                       "commit": commit, "dirty": dirty, "what": what, "machine": machine,
                       **({"profile": profile} if profile else {})})


def log_end(runs_dir, *, wall_seconds: float) -> None:
    """Record that the study command finished (plan, notebooks and index)."""
    _append(runs_dir, {"event": "end", "wall_seconds": round(wall_seconds, 1)})


def read_invocations(runs_dir, *, profile: str | None = None) -> list[dict]:
    """The recorded events, oldest first ([] when none; an unreadable line is skipped). With
    `profile`, only that profile's invocations (a start and the end that follows it): a start
    recorded without a profile (before profiles were recorded) belongs to the profile the runs
    folder is named after (runs/<profile>, the study's default)."""
    path = Path(runs_dir) / INVOCATIONS_NAME
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    if profile is None:
        return out
    mine, keep = [], False
    for event in out:
        if event.get("event") == "start":
            keep = event.get("profile", Path(runs_dir).name) == profile
        if keep:
            mine.append(event)
    return mine


def invocation_summary(events: list[dict]) -> str:
    """One sentence: how many study commands made these runs since the last one that started
    on an empty runs folder, how many of them were interrupted, at which commits, and the
    notebook-only re-runs after them that ended (with their commits)."""
    starts = [i for i, e in enumerate(events) if e.get("event") == "start"]
    if not starts:
        return "The study commands that made these runs were not recorded."
    fresh = [i for i in starts if events[i].get("items_done") == 0]
    first = fresh[-1] if fresh else starts[0]
    mine = events[first:]

    def is_plan(e: dict) -> bool:
        return e.get("event") == "start" and e.get("what", "plan and notebooks") == \
            "plan and notebooks"

    plans = [e for e in mine if is_plan(e)]
    # a notebook-only re-run counts once it ended: one that failed (e.g. its data missing)
    # wrote nothing the index reports and is followed by another start, not by an end
    reruns = list(dict.fromkeys(
        f"{e['what']} at commit {str(e.get('commit', 'unknown'))[:7]}"
        for e, nxt in zip(mine, mine[1:])
        if e.get("event") == "start" and not is_plan(e) and nxt.get("event") == "end"))
    # interrupted: a start followed by another start before any end (the last start, with
    # nothing after it, is the invocation writing this index: it has not ended yet)
    interrupted = sum(is_plan(e) and nxt.get("event") == "start" for e, nxt in zip(mine, mine[1:]))
    commits = list(dict.fromkeys(str(e.get("commit", "unknown"))[:7] for e in plans))
    head = "one invocation" if len(plans) == 1 else f"{len(plans)} invocations"
    if interrupted:
        head += f" ({interrupted} of them interrupted, then resumed by the next)"
    origin = ("from an empty runs folder" if fresh else
              f"starting with {events[first].get('items_done')} of "
              f"{events[first].get('items')} items already done")
    machines = list(dict.fromkeys(e["machine"] for e in plans if e.get("machine")))
    where = f", on {' and '.join(machines)}" if machines else ""
    text = (f"These runs were made by {head} of the study command, {origin}, at commit"
            f"{'s' if len(commits) > 1 else ''} {', '.join(commits)}{where}.")
    if reruns:
        text += f" Re-run after them: {'; '.join(reruns)}."
    return text


def run_commits(runs_dir, *, folders=None) -> dict[str, int]:
    """{commit: finished runs whose own provenance (done.json) names it}, commits in order of
    first appearance by run folder name; "unknown" for a run without one. A run trained while
    the checkout moved on, or re-made by hand after the study, names another commit than the
    invocation that started the study: the index says so. `folders`: only these run folders
    (a profile's own, where profiles share the runs folder), else every one in it."""
    counts: dict[str, int] = {}
    chosen = sorted(Path(runs_dir).glob(f"*/{runio.DONE_NAME}")) if folders is None else \
        sorted(Path(f) / runio.DONE_NAME for f in folders if (Path(f) / runio.DONE_NAME).exists())
    for done in chosen:
        try:
            commit = str(json.loads(done.read_text()).get("git_commit") or "unknown")
        except (json.JSONDecodeError, AttributeError):
            commit = "unknown"
        counts[commit] = counts.get(commit, 0) + 1
    return counts


def run_commits_sentence(counts: dict[str, int]) -> str:
    """One sentence from `run_commits`: "" when every run names one commit."""
    if len(counts) <= 1:
        return ""
    parts = [f"{commit[:7]} ({n} run{'s' * (n != 1)})" for commit, n in counts.items()]
    return f"The runs' own records name commits {', '.join(parts)}."


def invocation_wall(events: list[dict], *, now: datetime | None = None) -> float | None:
    """The wall seconds of the one study command that made these runs from an empty runs folder
    (planning, the plan and the notebooks, start to end): its recorded end, or, while it is
    still writing its index (no end yet), the time since its start. None when several plan
    invocations made them (interrupted and resumed) or none was recorded."""
    starts = [i for i, e in enumerate(events) if e.get("event") == "start"
              and e.get("what", "plan and notebooks") == "plan and notebooks"]
    fresh = [i for i in starts if events[i].get("items_done") == 0]
    if not fresh or len([i for i in starts if i >= fresh[-1]]) != 1:
        return None
    first = fresh[-1]
    end = next((e for e in events[first + 1:] if e.get("event") == "end"), None)
    if end is not None:
        return float(end["wall_seconds"])
    if any(e.get("event") == "start" for e in events[first + 1:]):
        return None  # a later notebook-only command, never ended: no wall of the plan's own
    started = datetime.fromisoformat(events[first]["utc"])
    return ((now or datetime.now(timezone.utc)) - started).total_seconds()
