"""The study's progress: minutes elapsed and left against the plan, corrected as items finish
(issue 17: the bar showed "1.09s/s" and 5 h 47 min left of a 61-minute plan after one item)."""
import pytest

from dfl_lib.study.runner import PlanClock


def test_before_anything_ran_the_plan_is_the_estimate():
    clock = PlanClock(total_estimate=61 * 60)
    assert clock.remaining() == pytest.approx(61 * 60)
    assert clock.text() == "0.0 min elapsed, ~61.0 min left"


def test_one_slow_first_item_scales_the_rest_by_the_measured_rate():
    clock = PlanClock(total_estimate=3600)
    clock.finished(estimate=100, seconds=150)  # 1.5x slower than estimated
    assert clock.remaining() == pytest.approx((3600 - 100) * 1.5)
    clock.finished(estimate=500, seconds=500)  # the rate is corrected as items finish
    assert clock.remaining() == pytest.approx((3600 - 600) * 650 / 600)
    assert clock.text().startswith("10.8 min elapsed, ~54.2 min left")


def test_reused_items_neither_correct_the_rate_nor_count_as_left():
    clock = PlanClock(total_estimate=1000)
    clock.finished(estimate=400, seconds=0.5)  # reused from disk
    assert clock.remaining() == pytest.approx(600)
    clock.finished(estimate=100, seconds=200)
    assert clock.remaining() == pytest.approx(500 * 2.0)


def test_the_bar_shows_minutes_not_a_rate(monkeypatch, capsys):
    import dfl_lib.study.runner as study

    seen = []

    class Bar:
        def __init__(self, **kw):
            seen.append(kw.get("bar_format", ""))

        def set_postfix_str(self, s):
            seen.append(s)

        update = close = lambda self, *a: None

    monkeypatch.setattr(study, "tqdm", Bar)
    monkeypatch.setattr(study, "study_plan", lambda profile, device: [])
    study.run_plan("smoke", progress=True)
    assert "rate" not in seen[0] and "remaining" not in seen[0] and "items" in seen[0]


def test_the_study_refuses_a_dirty_tree_before_any_work(monkeypatch, tmp_path, capsys):
    import dfl_lib.runs.io as runio
    import dfl_lib.study.runner as runner
    from dfl_lib.__main__ import main

    ran = []
    monkeypatch.setattr(runio, "git_state", lambda repo=None: {"commit": "x" * 40, "dirty": True})
    monkeypatch.setattr(runner, "run_plan", lambda *a, **k: ran.append("plan"))
    args = ["study", "--profile", "smoke", "--out-dir", str(tmp_path / "out"), "--runs-dir",
            str(tmp_path / "runs"), "--skip-plan", "--notebooks", "none"]
    assert main(args) == 2 and not ran
    assert "uncommitted changes" in capsys.readouterr().err
    import dfl_lib.study.index as index

    monkeypatch.setattr(index, "run_notebooks", lambda *a, **k: {})
    assert main([*args, "--allow-dirty"]) == 0


def test_with_workers_the_estimate_and_the_clock_count_their_measured_speedup(monkeypatch,
                                                                               capsys):
    """Two workers measured 1.25x as fast as one job: the plan's estimate is one job's over
    1.25, and an item finishing counts its seconds over the two workers running at once
    (the clock of 2026-12-06 said ~230 min left of a 135-minute plan after one item)."""
    import dfl_lib.study.runner as study
    from dfl_lib.study.cpu_speed import CpuSpeed
    from dfl_lib.study.plan import PlanItem

    items = [PlanItem(k, None, None, (), "cell") for k in ("a", "b")]
    monkeypatch.setattr(study, "study_plan", lambda profile, device: items)
    monkeypatch.setattr(study, "plan_table",
                        lambda items, device, cpu: ([("a", "train", 600.0), ("b", "train", 600.0)],
                                                    1200.0))
    clocks = []
    original = study.PlanClock

    def clock(**kw):
        clocks.append(original(**kw))
        return clocks[-1]

    def fake_parallel(items, *, on_done, **_):
        for item in items:  # each took 1.6x its one-job estimate on its one thread
            on_done(item.key, 960.0, {})
        return {item.key: (960.0, {}) for item in items}

    monkeypatch.setattr(study, "PlanClock", clock)
    monkeypatch.setattr(study, "run_parallel", fake_parallel)
    speed = CpuSpeed(fp32_batch_s=0.3, bf16_batch_s=3.0, capability="AVX2", threads=2,
                     parallel=1.25)
    study.run_plan("smoke", progress=False, cpu=speed, workers=2, threads=1)
    assert "estimated 16 min (2 workers of 1 thread: 1.25x one job's speed" in \
        capsys.readouterr().out
    assert clocks[0].elapsed == pytest.approx(960.0)  # 2 x 960 s of work on 2 workers
    assert clocks[0].remaining() == 0.0


def test_one_worker_is_no_speedup_and_two_are_measured_running_at_once():
    from dfl_lib.study.cpu_speed import parallel_speedup

    assert parallel_speedup(workers=1, threads=2) == 1.0
    two = parallel_speedup(workers=2, threads=1, batches=1, batch_size=16)
    assert 0.2 < two < 4.0  # measured, not assumed: a number near 1-2 on any CPU
