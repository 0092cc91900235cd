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
