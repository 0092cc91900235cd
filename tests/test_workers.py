"""The plan's items in worker processes (issue 37): defaults from the machine, items that share
a run grouped into one worker, results bit-identical to one process at the same threads, and a
worker killed mid-plan losing nothing."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import worker_helpers

from dfl_lib.experiments.configs import make_config
from dfl_lib.study.plan import PlanItem, study_plan
from dfl_lib.study.runner import run_item
from dfl_lib.study.workers import _keys, default_workers, item_groups, run_parallel


@pytest.mark.parametrize("cores,memory,device,expected", [
    (2, 24e9, "cpu", (2, 1)),       # this project's CPUs: two processes of one thread
    (16, 128e9, "cpu", (8, 2)),     # a workstation: larger shares, two threads each
    (16, 6e9, "cpu", (2, 2)),       # memory holds two workers only
    (1, 24e9, "cpu", (1, 1)),
    (16, 128e9, "cuda", (1, 16)),   # one GPU: one process
])
def test_default_workers_follow_cores_memory_and_device(cores, memory, device, expected):
    assert default_workers(cores=cores, memory=memory, device=device) == expected


def test_items_that_share_a_run_a_surrogate_or_a_poisoned_set_share_a_worker():
    items = study_plan("quick")
    groups = item_groups(items)
    assert sorted(i for g in groups for i in g) == list(range(len(items)))
    keys = [{k for i in g for k in _keys(items[i])} for g in groups]
    for a in range(len(keys)):
        for b in range(a + 1, len(keys)):
            assert not keys[a] & keys[b], (groups[a], groups[b])
    assert len(groups) > 10  # independent work remains to share out


def _items(npz: Path) -> list[PlanItem]:
    def cfg(**over):
        return make_config("smoke", dataset="npz", data_path=str(npz), eps=0.1, epochs=1,
                           n_eval=32, **over)
    return [PlanItem("a | train", cfg(dfl=True, loss="pcl", train_attack="pgd"), None,
                     ("04",), "depth"),
            PlanItem("b | cell", cfg(train_attack="pgd"), "paper", ("03",), "cell"),
            PlanItem("a | cell", cfg(dfl=True, loss="pcl", train_attack="pgd"), "paper",
                     ("03",), "cell"),
            PlanItem("c | cell", cfg(seed=1), "paper", ("03",), "cell")]


def _digest(runs: Path) -> dict:
    """Every run's history (times left out), every metrics table's correct counts, and the
    bytes of every per-example mask, by run folder name."""
    out = {}
    for folder in sorted(p for p in runs.iterdir() if p.is_dir()):
        history = json.loads((folder / "history.json").read_text())
        out[folder.name] = {
            "history": [{k: v for k, v in h.items() if "seconds" not in k} for h in history],
            "tables": {m.name: [(r["name"], r["n_correct"]) for r in
                                json.loads(m.read_text())["table"]]
                       for m in sorted(folder.glob("metrics-*.json"))},
            "masks": {m.name: hashlib.sha256(m.read_bytes()).hexdigest()
                      for m in sorted(folder.glob("masks-*/*.npy"))}}
    return out


@pytest.fixture(scope="module")
def sequential(synthetic_npz, tmp_path_factory):
    """The items run one after the other in this process, on one torch thread."""
    runs = tmp_path_factory.mktemp("sequential")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for item in _items(synthetic_npz):
            run_item(item, runs_root=runs)
    finally:
        torch.set_num_threads(threads)
    return _digest(runs)


def test_two_workers_give_bit_identical_results(sequential, synthetic_npz, tmp_path):
    runs = tmp_path / "runs"
    items = _items(synthetic_npz)
    done = []
    results = run_parallel(items, workers=2, threads=1, run=run_item,
                           on_done=lambda key, s, r: done.append(key), runs_root=runs)
    assert set(results) == set(done) == {item.key for item in items}
    assert _digest(runs) == sequential


def test_a_worker_killed_mid_plan_loses_nothing(sequential, synthetic_npz, tmp_path, capsys):
    runs, marker = tmp_path / "runs", tmp_path / "died"
    items = _items(synthetic_npz)
    results = run_parallel(items, workers=2, threads=1, run=worker_helpers.run_or_die_once,
                           runs_root=runs, die_on="a | cell", marker=str(marker))
    assert marker.exists() and "a worker process died" in capsys.readouterr().out
    assert set(results) == {item.key for item in items}
    assert _digest(runs) == sequential


def test_a_local_dask_cluster_of_two_workers_gives_the_same_results(sequential, synthetic_npz,
                                                                     tmp_path):
    """The engine beyond one machine: the same items as Dask tasks on a local cluster of two
    worker processes (one thread each), results in a runs folder both see."""
    distributed = pytest.importorskip("distributed")
    from dfl_lib.study.cluster import dask_pool

    runs = tmp_path / "runs"
    items = _items(synthetic_npz)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        pool = dask_pool(cluster)
        results = run_parallel(items, workers=2, threads=1, run=run_item, pool=pool,
                               runs_root=runs)
    assert set(results) == {item.key for item in items}
    assert _digest(runs) == sequential


def test_an_unreachable_scheduler_is_one_line():
    pytest.importorskip("distributed")
    from dfl_lib.errors import UsageError
    from dfl_lib.study.cluster import dask_pool

    with pytest.raises(UsageError, match="no Dask scheduler at tcp://127.0.0.1:9"):
        dask_pool("tcp://127.0.0.1:9", timeout=2)


def test_the_longest_groups_start_first(synthetic_npz, tmp_path):
    """With one worker the groups run in the order they start: by estimated seconds, longest
    first (items that share a run stay together, in plan order: "b | cell" trains a's run)."""
    items = _items(synthetic_npz)
    seconds = {"a | train": 5.0, "b | cell": 20.0, "a | cell": 10.0, "c | cell": 100.0}
    log = tmp_path / "order.txt"
    run_parallel(items, workers=1, threads=1, run=worker_helpers.run_and_log,
                 cost=lambda item: seconds[item.key], log=str(log))
    # c (100 s) before the group of a's run (35 s), which comes first in plan order
    assert log.read_text().split("\n")[:-1] == ["c | cell", "a | train", "b | cell", "a | cell"]
