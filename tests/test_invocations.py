"""The runs folder records which study commands made it, and the index says so in one sentence:
one invocation, or several (interrupted and resumed), at which commits."""
from dfl_lib.study.invocations import (INVOCATIONS_NAME, invocation_summary, log_end,
                                       log_start, read_invocations)


def test_one_uninterrupted_invocation(tmp_path):
    log_start(tmp_path, items_done=0, items=71, commit="a" * 40, dirty=False)
    log_end(tmp_path, wall_seconds=7000.0)
    text = invocation_summary(read_invocations(tmp_path))
    assert text.startswith("These runs were made by one invocation of the study command, "
                           "from an empty runs folder, at commit aaaaaaa.")


def test_an_interrupted_invocation_resumed_at_another_commit_and_a_notebook_rerun(tmp_path):
    log_start(tmp_path, items_done=0, items=71, commit="a" * 40, dirty=False)
    log_start(tmp_path, items_done=40, items=71, commit="b" * 40, dirty=False)
    log_end(tmp_path, wall_seconds=3000.0)
    log_start(tmp_path, items_done=71, items=71, commit="c" * 40, dirty=False,
              what="notebooks 07-data-poisoning")
    log_end(tmp_path, wall_seconds=100.0)
    text = invocation_summary(read_invocations(tmp_path))
    assert "2 invocations (1 of them interrupted, then resumed by the next)" in text
    assert "at commits aaaaaaa, bbbbbbb." in text
    assert text.endswith("Re-run after them: notebooks 07-data-poisoning at commit ccccccc.")


def test_a_notebook_rerun_that_failed_before_it_ended_is_not_listed(tmp_path):
    """A re-run that stopped at a missing data root, then the same re-run that ended: the index
    listed 'notebooks 07-data-poisoning' twice."""
    log_start(tmp_path, items_done=0, items=25, commit="a" * 40, dirty=False)
    log_end(tmp_path, wall_seconds=7000.0)
    for _ in range(2):
        log_start(tmp_path, items_done=25, items=25, commit="c" * 40, dirty=False,
                  what="notebooks 07-data-poisoning")
    log_end(tmp_path, wall_seconds=45.0)
    text = invocation_summary(read_invocations(tmp_path))
    assert text.endswith("Re-run after them: notebooks 07-data-poisoning at commit ccccccc.")


def test_a_fresh_start_begins_the_count_again_and_bad_lines_are_skipped(tmp_path):
    log_start(tmp_path, items_done=0, items=71, commit="a" * 40, dirty=False)
    with (tmp_path / INVOCATIONS_NAME).open("a") as f:
        f.write("{not json\n")
    log_start(tmp_path, items_done=0, items=71, commit="d" * 40, dirty=False)
    log_end(tmp_path, wall_seconds=1.0)
    assert len(read_invocations(tmp_path)) == 3
    assert "one invocation" in invocation_summary(read_invocations(tmp_path))
    assert "not recorded" in invocation_summary([])


def test_resumed_on_runs_made_before_the_log_existed(tmp_path):
    log_start(tmp_path, items_done=26, items=74, commit="e" * 40, dirty=False)
    log_end(tmp_path, wall_seconds=1.0)
    assert "starting with 26 of 74 items already done" in invocation_summary(
        read_invocations(tmp_path))


def test_the_invocation_writing_the_index_has_not_ended_and_is_not_interrupted(tmp_path):
    """The study writes its index before it logs its end: the running invocation is the last
    start with nothing after it, never counted as interrupted."""
    log_start(tmp_path, items_done=0, items=71, commit="a" * 40, dirty=False)
    assert "one invocation of" in invocation_summary(read_invocations(tmp_path))
    log_start(tmp_path, items_done=15, items=71, commit="b" * 40, dirty=False)
    assert "2 invocations (1 of them interrupted, then resumed by the next)" in \
        invocation_summary(read_invocations(tmp_path))


def test_the_summary_names_the_machines_that_made_the_runs(tmp_path):
    """The CPUs lent differ 2-40x in speed (an AVX2 CPU without native bf16 beside the AVX-512
    one the profiles are sized on): the time table means something only with its machine."""
    log_start(tmp_path, items_done=0, items=27, commit="a" * 40, dirty=False,
              machine="2 CPU cores, AVX512")
    log_start(tmp_path, items_done=10, items=27, commit="a" * 40, dirty=False,
              machine="2 CPU cores, AVX2")
    text = invocation_summary(read_invocations(tmp_path))
    assert text.endswith("at commit aaaaaaa, on 2 CPU cores, AVX512 and 2 CPU cores, AVX2.")


def test_the_study_records_its_machine(tmp_path, monkeypatch):
    import dfl_lib.study.index as index
    import dfl_lib.study.runner as runner
    from dfl_lib.__main__ import main

    monkeypatch.setattr(index, "run_notebooks", lambda *a, **k: {})
    monkeypatch.setattr(runner, "run_plan", lambda *a, **k: [])
    assert main(["study", "--profile", "smoke", "--out-dir", str(tmp_path / "out"),
                 "--runs-dir", str(tmp_path / "runs"), "--skip-plan", "--notebooks", "01-depth",
                 "--allow-dirty", "--device", "cpu"]) == 0
    import torch

    events = read_invocations(tmp_path / "runs")
    # the CPU, the precision its runs train in and how the plan was shared out
    assert f"CPU cores, {torch.backends.cpu.get_cpu_capability()}, precision fp32, " \
        in events[0]["machine"]
    assert events[0]["machine"].endswith((" worker of 1 thread", " workers of 1 thread",
                                          " threads"))


def test_the_wall_time_is_the_one_fresh_invocations_own(tmp_path):
    from datetime import datetime, timezone

    from dfl_lib.study.invocations import invocation_wall

    start = {"event": "start", "items_done": 0, "items": 25, "what": "plan and notebooks",
             "utc": "2026-12-06T15:47:07+00:00"}
    assert invocation_wall([start, {"event": "end", "wall_seconds": 7031.6}]) == 7031.6
    # still writing its index: the time since its start
    now = datetime(2026, 12, 6, 17, 47, 7, tzinfo=timezone.utc)
    assert invocation_wall([start], now=now) == 7200.0
    # interrupted and resumed: no one command's wall time
    resumed = {**start, "items_done": 12}
    assert invocation_wall([start, resumed, {"event": "end", "wall_seconds": 10.0}]) is None
    # a notebook re-run afterwards does not change the plan's own
    rerun = {**start, "what": "notebooks 03-robustness-tables", "items_done": 25}
    assert invocation_wall([start, {"event": "end", "wall_seconds": 50.0}, rerun]) == 50.0
    assert invocation_wall([]) is None


def test_runs_re_made_at_other_commits_are_named_with_their_counts(tmp_path):
    """Three runs re-made by hand after the study (their weights bit-identical) made the index's
    "made by one invocation" true of the folder but not of those runs: it names their commits."""
    import json

    from dfl_lib.study.invocations import run_commits, run_commits_sentence

    for name, commit in (("r1", "a" * 40), ("r2", "a" * 40), ("r3", "b" * 40), ("r4", None)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "done.json").write_text(json.dumps({"git_commit": commit}))
    (tmp_path / "unfinished").mkdir()  # no done.json: not a finished run
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "done.json").write_text("{")
    counts = run_commits(tmp_path)
    assert counts == {"a" * 40: 2, "b" * 40: 1, "unknown": 2}
    # in order of first appearance, folders by name ("broken" first)
    assert run_commits_sentence(counts) == ("The runs' own records name commits unknown (2 runs), "
                                            "aaaaaaa (2 runs), bbbbbbb (1 run).")
    assert run_commits_sentence({"a" * 40: 5}) == ""


def test_profiles_sharing_a_runs_folder_keep_their_own_invocations(tmp_path):
    """quick-full-poisoning run with --runs-dir runs/quick (to reuse quick's BadNets runs) told
    quick's invocations as its own: "made by 4 invocations ... from an empty runs folder"."""
    from dfl_lib.study.invocations import log_end, log_start, read_invocations

    runs = tmp_path / "quick"
    log_start(runs, items_done=0, items=40, commit="a" * 40, dirty=False)  # before profiles
    log_end(runs, wall_seconds=100.0)
    log_start(runs, items_done=10, items=59, commit="b" * 40, dirty=False,
              profile="quick-full-poisoning")
    log_end(runs, wall_seconds=200.0)
    quick = read_invocations(runs, profile="quick")
    poisoning = read_invocations(runs, profile="quick-full-poisoning")
    assert [e.get("wall_seconds") for e in quick if e["event"] == "end"] == [100.0]
    assert [e["commit"][0] for e in poisoning if e["event"] == "start"] == ["b"]
    assert len(read_invocations(runs)) == 4


def test_run_commits_counts_only_the_profiles_own_runs_when_given(tmp_path):
    import json as _json

    from dfl_lib.study.invocations import run_commits

    for name, commit in (("a-1", "c1"), ("b-2", "c2")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "done.json").write_text(_json.dumps({"git_commit": commit}))
    assert run_commits(tmp_path) == {"c1": 1, "c2": 1}
    assert run_commits(tmp_path, folders=[tmp_path / "b-2"]) == {"c2": 1}
