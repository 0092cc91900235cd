"""The study runner's first stage: print the plan with estimated seconds, then train and evaluate
every plan item, one at a time or in worker processes that split the cores between them
(`workers.py`), with one progress bar across the plan. Interrupted, it resumes: finished runs
and evaluations are reused, unfinished runs resume from their checkpoints.

    run_plan("quick", runs_root="runs/quick", workers=2, threads=1)
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from tqdm.auto import tqdm

from ..device import resolve_device
from ..experiments.poison_metrics import poison_metrics
from ..experiments.run import train_and_evaluate, train_run
from ..runs import io as runio
from ..runs.folder import CONFIG_NAME, learned_fields, learned_key, run_name
from .cluster import dask_pool
from .estimate import item_seconds, poison_set
from .plan import study_plan
from .workers import run_parallel

__all__ = ["plan_table", "run_plan", "run_item", "plan_times", "measured_seconds", "TIMES_NAME",
           "PlanClock"]

TIMES_NAME = "plan-times.json"


def plan_table(items, *, device: str, cpu=None) -> tuple[list[tuple], float]:
    """[(key, what, estimated seconds)] with each training and each poisoned set's crafting
    counted once, and the total; cpu: this CPU's measured speed (`cpu_speed.CpuSpeed`), else
    the reference CPU's estimates."""
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    trained, crafted, rows, total = set(), set(), [], 0.0
    for item in items:
        poisoned = poison_set(item.cfg) if item.suite == "poison" else None
        seconds, _ = item_seconds(item, device=kind, craft=poisoned not in crafted, cpu=cpu)
        crafted.add(poisoned)
        tkey = learned_key(item.cfg)
        what = []
        if item.role in ("depth", "cell", "poison") and tkey not in trained:
            what.append(f"train {item.cfg.epochs} ep")
        elif item.suite is not None:  # training already counted: evaluation only
            seconds -= item_seconds(type(item)(item.key, item.cfg, None, item.notebooks,
                                               item.role), device=kind, cpu=cpu)[0]
        trained.add(tkey)
        if item.suite:
            what.append(f"{item.suite} suite on {item.cfg.n_eval or 'all'} images")
        rows.append((item.key, ", ".join(what), max(seconds, 0.0)))
        total += max(seconds, 0.0)
    return rows, total


def plan_folders(items, *, runs_root) -> list[Path]:
    """The run folders the plan's `items` use that exist under `runs_root`, each once (a runs
    folder may hold other profiles' runs too: --runs-dir shared between profiles)."""
    root = Path(runs_root or runio.default_runs_root())
    found = (_run_folder(root, item.cfg) for item in items)
    return list(dict.fromkeys(f for f in found if f is not None))


def measured_seconds(items, *, runs_root) -> dict[str, float]:
    """{plan item: compute seconds its artifacts record}: a training item's epochs (training
    plus validation, from history.json), an evaluation item's wall time (metrics provenance;
    it includes training when the evaluation trained the run, and a headline item's surrogate).
    Read from the run folders, so it holds whichever invocation did the work.

    A run's training counts once, for the first item of the plan that needs it. Where that item
    is an evaluation whose run finished training before the evaluation began (an invocation
    stopped between the two and the next one evaluated it), its epochs are added to the
    evaluation's wall time, which no longer holds them."""
    root = Path(runs_root or runio.default_runs_root())
    out, trained = {}, set()
    for item in items:
        rdir = _run_folder(root, item.cfg)
        if rdir is None:
            continue
        first = item.role in ("depth", "cell", "poison") and learned_key(item.cfg) not in trained
        trained.add(learned_key(item.cfg))
        history = rdir / "history.json"
        epochs = sum(e["train_seconds"] + e["val_seconds"]
                     for e in json.loads(history.read_text())) if history.exists() else 0.0
        if item.suite is None:
            if history.exists():
                out[item.key] = epochs
            continue
        metrics = rdir / f"metrics-{item.suite}.json"
        if metrics.exists():
            provenance = json.loads(metrics.read_text())["provenance"]
            out[item.key] = provenance["wall_seconds"]
            if first and _trained_before(rdir, provenance):
                out[item.key] += epochs
    return out


def _trained_before(rdir: Path, provenance: dict) -> bool:
    """Whether the run in `rdir` finished training before the evaluation that wrote
    `provenance` began (both timestamps recorded; else False: its wall time is taken as is)."""
    from datetime import datetime, timedelta

    done = rdir / "done.json"
    if not done.exists() or "timestamp_utc" not in provenance:
        return False
    try:
        trained = datetime.fromisoformat(json.loads(done.read_text())["timestamp_utc"])
        ended = datetime.fromisoformat(provenance["timestamp_utc"])
    except (KeyError, ValueError):
        return False
    return trained < ended - timedelta(seconds=float(provenance["wall_seconds"]))


def _run_folder(root: Path, cfg) -> Path | None:
    """The newest folder under root whose config.json is `cfg` in everything that is learned.
    Folders share a readable name across configs that differ elsewhere (the depth study's
    warm-up and no-warm-up runs, a cell and the poisoning study's 5,000-image reference), so the
    name alone picked whichever was written last."""
    want = learned_fields(cfg.to_dict())
    found = []
    for folder in root.glob(f"{run_name(cfg)}-*"):
        config = folder / CONFIG_NAME
        if config.exists() and learned_fields(json.loads(config.read_text())) == want:
            found.append(folder)
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def plan_times(runs_root) -> dict[str, float]:
    """{plan item: seconds it took when it really ran} (a reused item keeps its first time)."""
    path = Path(runs_root or runio.default_runs_root()) / TIMES_NAME
    return json.loads(path.read_text()) if path.exists() else {}


def _record_time(runs_root, *, key: str, seconds: float) -> None:
    times = plan_times(runs_root)
    times[key] = max(times.get(key, 0.0), seconds)
    runio.write_json(Path(runs_root or runio.default_runs_root()) / TIMES_NAME, times)


def run_plan(profile: str, *, data_root=None, runs_root=None, device: str = "auto",
             progress: bool = True, cpu=None, workers: int = 1,
             threads: int | None = None, cluster=None) -> list[dict]:
    """Execute the plan; one record per item: key, run folder, metrics path, measured seconds.
    cpu: this CPU's measured speed (`cpu_speed.CpuSpeed`): the estimates printed and the
    clock's are this CPU's, else the reference CPU's. workers > 1: items run in that many
    processes of `threads` torch threads each (`workers.run_parallel`); the records are the
    same, in plan order. cluster: a Dask scheduler's address (or cluster object): the items run
    there (`cluster.dask_pool`), `threads` torch threads per task, their runs in `runs_root`
    (which every worker must see), the clock counting `workers` at a time."""
    items = study_plan(profile, device=device)
    dev = str(resolve_device(device))
    rows, total = plan_table(items, device=dev, cpu=cpu)
    # the workers side by side get through the plan `speedup` times as fast as one job (this
    # CPU's measured speed-up, `cpu_speed.parallel_speedup`; 1 where it was not measured)
    speedup = cpu.parallel if cpu is not None and workers > 1 else 1.0
    how = "one job at a time" if workers == 1 else \
        f"{workers} workers of {threads} thread{'s' * (threads != 1)}" + (
            f": {speedup:.2f}x one job's speed, measured now" if speedup != 1.0 else
            ", the estimate one job's")
    print(f"study plan, profile {profile!r}, on {dev}: {len(items)} items, estimated "
          f"{total / speedup / 60:.0f} min ({how}; one job: {total / 60:.0f} min)")
    for key, what, seconds in rows:
        print(f"  {seconds:7.0f} s  {key:<58} {what}")
    out, clock = [], PlanClock(total_estimate=total / speedup)
    # items on the bar; time as text against the plan (tqdm's own rate and ETA would divide
    # estimated seconds by wall seconds: "1.09s/s" and hours left after one slow first item)
    bar = tqdm(total=len(items), desc=f"study {profile}", disable=not progress,
               bar_format="{desc}: {n_fmt}/{total_fmt} items |{bar}| {postfix}")
    if workers > 1 or cluster is not None:
        estimates = {key: seconds for key, _, seconds in rows}

        def done(key: str, seconds: float, record: dict) -> None:
            _record_time(runs_root, key=key, seconds=seconds)
            # an item's share of the wall time: its seconds over the workers running at once
            clock.finished(estimate=estimates[key] / speedup, seconds=seconds / workers)
            bar.set_postfix_str(clock.text())
            bar.update(1)

        pool = None
        if cluster is not None:  # a worker elsewhere reads these paths: absolute ones
            pool = dask_pool(cluster, gpu=dev.startswith("cuda"))
            data_root = data_root and str(Path(data_root).resolve())
            runs_root = str(Path(runs_root or runio.default_runs_root()).resolve())
        results = run_parallel(items, workers=workers, threads=threads or 1, run=run_item,
                               on_done=done, pool=pool, cost=lambda item: estimates[item.key],
                               data_root=data_root, runs_root=runs_root)
        bar.close()
        return [{"key": item.key, "seconds": results[item.key][0], **results[item.key][1]}
                for item in items]
    for item, (_, _, estimate) in zip(items, rows):
        start = time.perf_counter()
        bar.set_postfix_str(f"{clock.text()} | {item.key}")
        record = run_item(item, data_root=data_root, runs_root=runs_root)
        out.append({"key": item.key, "seconds": time.perf_counter() - start, **record})
        _record_time(runs_root, key=item.key, seconds=out[-1]["seconds"])
        clock.finished(estimate=estimate, seconds=out[-1]["seconds"])
        bar.set_postfix_str(clock.text())
        bar.update(1)
    bar.close()
    return out


def run_item(item, *, data_root=None, runs_root=None) -> dict:
    """Train (a depth run), evaluate (a table cell, a headline evaluation) or measure (a
    poisoning run) one plan item, reusing what is finished; {"run_dir": ...} or {"metrics":
    path}. Two processes may share a plan: a run being trained by one is waited for by the
    other (`runs.lock`), then reused."""
    if item.suite is None:
        run = train_run(item.cfg, data_root=data_root, runs_root=runs_root, progress=False)
        return {"run_dir": str(run["run_dir"])}
    if item.suite == "poison":  # the poisoning study's own measurements (notebook 07)

        return {"metrics": poison_metrics(item.cfg, data_root=data_root,
                                          runs_root=runs_root)["path"]}
    metrics = train_and_evaluate(item.cfg, suite=item.suite, data_root=data_root, runs_root=runs_root,
                           progress=False)
    return {"metrics": metrics["path"]}


class PlanClock:
    """Elapsed and remaining minutes of a plan, the estimate corrected as items finish.

    remaining = (estimated seconds of the items left) x (measured / estimated seconds of the
    items that did run). An item that took under a tenth of its estimate was reused from disk
    (a finished run or evaluation): it neither corrects the rate nor counts as work done.
    """

    REUSED = 0.1  # measured / estimated below this: the item was reused, not run

    def __init__(self, *, total_estimate: float):
        self.left = float(total_estimate)   # estimated seconds of the items not yet finished
        self.elapsed = 0.0                  # wall seconds so far
        self.ran_estimate = 0.0             # estimated seconds of the items that really ran
        self.ran_seconds = 0.0              # their measured seconds

    def finished(self, *, estimate: float, seconds: float) -> None:
        self.left = max(self.left - estimate, 0.0)
        self.elapsed += seconds
        if estimate > 0 and seconds >= self.REUSED * estimate:
            self.ran_estimate += estimate
            self.ran_seconds += seconds

    def remaining(self) -> float:
        """Seconds still to go, by the estimate corrected with the measured rate."""
        rate = self.ran_seconds / self.ran_estimate if self.ran_estimate else 1.0
        return self.left * rate

    def text(self) -> str:
        """e.g. "12.3 min elapsed, ~48.7 min left": minutes against the corrected plan."""
        return f"{self.elapsed / 60:.1f} min elapsed, ~{self.remaining() / 60:.1f} min left"
