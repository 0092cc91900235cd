"""The sanity sweeps (studies/sanity_sweep.py): accuracy against eps starts at the clean accuracy
and reaches 0, restarts only ever lower it, each point's mask is its accuracy, the checks flag a
curve that rises, does not reach 0 or gains from restarts, a rerun attacks nothing twice, and the
figure draws every model's three curves."""
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "studies"))
import headline  # noqa: E402
import sanity_sweep as sw  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _accuracies(points: dict) -> dict:
    return {k: p["accuracy"] for k, p in points.items()}


def test_eps_starts_clean_and_reaches_zero_and_masks_are_the_accuracy(tiny_task):
    model, x, y = tiny_task
    points = sw.sweep_model(model, x, y, sweep="eps", seed=0, eps_grid=(0.1, 0.3, 0.6))
    clean = 100.0 * float((model(x).argmax(1) == y).float().mean())
    acc = _accuracies(points)
    assert list(acc) == ["0", "0.1", "0.3", "0.6"] and acc["0"] == pytest.approx(clean)
    assert acc["0.6"] == 0.0 and acc["0.3"] < acc["0"]
    for p in points.values():
        assert headline.unhex(p["mask"], n=p["n"]).mean() * 100 == pytest.approx(p["accuracy"])
    assert points["0.3"]["max_linf"] <= 0.3 + 1e-6


def test_restarts_never_raise_accuracy_and_steps_are_keyed_by_k(tiny_task):
    model, x, y = tiny_task
    restarts = sw.sweep_model(model, x, y, sweep="restarts", seed=0, eps=0.2, restarts=3)
    acc = list(_accuracies(restarts).values())
    assert len(acc) == 3 and all(b <= a for a, b in zip(acc, acc[1:]))
    masks = [headline.unhex(p["mask"], n=p["n"]) for p in restarts.values()]
    assert all((b <= a).all() for a, b in zip(masks, masks[1:]))  # survivors of every start
    steps = sw.sweep_model(model, x, y, sweep="steps", seed=0, eps=0.2, steps_grid=(1, 5))
    assert list(steps) == ["1", "5"]
    with pytest.raises(sw.UsageError, match="sweep must be"):
        sw.sweep_model(model, x, y, sweep="iterations", seed=0)


def _entry(n: int = 100, **curves) -> dict:
    return {"sweeps": {s: {"points": {str(k): {"accuracy": a, "n": n} for k, a in c.items()},
                           "seconds": 1.0} for s, c in curves.items()}}


def test_the_checks_flag_what_a_sound_evaluation_must_not_show():
    good = sw.checks(_entry(eps={0: 98, 0.1: 95, 0.3: 89, 0.5: 0},
                            steps={1: 93, 10: 90, 50: 89, 100: 89},
                            restarts={1: 90, 5: 89.5}))
    assert [c["result"] for c in good] == ["holds"] * 5
    # one image of 500 (0.2 points) is within the tolerance, whatever the floats make of it
    edge = sw.checks(_entry(n=500, steps={1: 93.4, 50: 91.2, 100: 91.0}))
    assert [c["result"] for c in edge] == ["holds", "holds"]
    bad = {c["check"]: c["result"] for c in sw.checks(_entry(
        eps={0: 98, 0.1: 80, 0.3: 85, 0.5: 40}, steps={1: 90, 10: 92, 50: 89, 100: 80},
        restarts={1: 90, 5: 80}))}
    assert bad == {"reaches 0 by eps 0.5": "does not hold", "falls with eps": "does not hold",
                   "does not rise with PGD's iterations": "does not hold",
                   "PGD converged by its longest run": "does not hold",
                   "restarts gain little": "does not hold"}
    assert [c["check"] for c in sw.checks(_entry(eps={0: 98, 0.5: 0}))] == [
        "reaches 0 by eps 0.5", "falls with eps"]  # an undefended model: the eps sweep only


def test_a_rerun_sweeps_nothing_twice_and_the_page_draws_it(tiny_task, tmp_path, monkeypatch):
    model, x, y = tiny_task
    data = SimpleNamespace(x_test=(x * 255).to(torch.uint8), y_test=y)
    monkeypatch.setattr(sw, "cell_config", lambda profile, **kw: SimpleNamespace(**kw))
    monkeypatch.setattr(sw.headline, "models", lambda profile, undefended: [
        (r, setting, s) for r in headline.ROWS for setting in (headline.PGD, headline.UNDEFENDED)
        for s in (0, 1)])
    monkeypatch.setattr(sw.headline, "model_source", lambda cfg, **kw: ("run", tmp_path, data))
    monkeypatch.setattr(sw.headline, "load", lambda cfg, **kw: (
        model, data, f"run-{cfg.row}-{cfg.setting}-s{cfg.seed}"))
    swept = []

    def sweep_model(model, x, y, *, sweep, seed):
        swept.append((sweep, seed))
        return {"0": {"mask": headline.hex_mask(torch.ones(len(y), dtype=torch.bool)),
                      "accuracy": 100.0, "n": len(y), "max_linf": 0.0},
                "0.5": {"mask": headline.hex_mask(torch.zeros(len(y), dtype=torch.bool)),
                        "accuracy": 0.0, "n": len(y), "max_linf": 0.5}}
    monkeypatch.setattr(sw, "sweep_model", sweep_model)
    out = tmp_path / "sweep" / "sweep.json"
    out.parent.mkdir()
    report = sw.run("quick", runs_root=tmp_path, out=out, n=20, progress=lambda s: 0)
    # the first seed of each row: three sweeps of the PGD-trained model, eps of the undefended
    assert sorted(swept) == sorted([(s, 0) for s in sw.SWEEPS] * 2 + [("eps", 0)] * 2)
    sw.run("quick", runs_root=tmp_path, out=out, n=20, progress=lambda s: 0)
    assert len(swept) == 8  # nothing twice
    sw.run("quick", runs_root=tmp_path, out=out, n=20, seeds=[1], progress=lambda s: 0)
    assert len(swept) == 16 and len(report["models"]) == 4
    with pytest.raises(sw.UsageError, match="other settings"):
        sw.run("quick", runs_root=tmp_path, out=out, n=30, progress=lambda s: 0)
    sw.write_page(sw.runio.read_json(out), out=out)
    page = (out.parent / "README.md").read_text()
    assert page.startswith(sw.PAGE_TITLE) and "reaches 0 by eps 0.5: **holds**" in page
    assert (out.parent / "sweep.png").stat().st_size > 10_000


def test_the_command_answers_a_bad_option_in_one_line(capsys):
    assert sw.main(["--out", "x.json", "--rows", "resnet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1


def test_the_seed_table_puts_every_models_checks_side_by_side():
    """One row per model, sorted so the seeds of one configuration read together; a failed
    check is bold, with the numbers behind the two drops."""
    curves = dict(eps={0: 98, 0.3: 89, 0.5: 0}, steps={1: 93, 50: 89, 100: 89})
    report = {"models": {
        "dfl_pcl | adversarial training | s1": {"row": "dfl_pcl", "setting": "adversarial "
                                                "training", "seed": 1,
                                                **_entry(**curves, restarts={1: 92, 5: 89})},
        "resnet | no defence | s0": {"row": "resnet", "setting": "no defence", "seed": 0,
                                     **_entry(eps={0: 99, 0.3: 0, 0.5: 0})},
        "dfl_pcl | adversarial training | s0": {"row": "dfl_pcl", "setting": "adversarial "
                                                "training", "seed": 0,
                                                **_entry(**curves, restarts={1: 90, 5: 89.5})}}}
    header, _, *rows = sw.seed_table(report)
    assert header.startswith("| model | seed | reaches 0")
    assert [r.split(" | ")[1] for r in rows] == ["0", "1", "0"]
    assert rows[0].endswith("| holds (89.0 -> 89.0) | holds (90.0 -> 89.5) |")
    assert rows[1].endswith("| **does not hold** (92.0 -> 89.0) |")  # a 3-point gain
    assert rows[2].startswith("| resnet, no defence | 0 | holds | holds | - | - | - |")


def _point(mask: torch.Tensor, accuracy: float | None = None) -> dict:
    return {"mask": headline.hex_mask(mask), "n": len(mask), "max_linf": 0.0,
            "accuracy": 100.0 * float(mask.float().mean()) if accuracy is None else accuracy}


def test_the_tail_starts_where_pgd_leaves_at_most_five_percent():
    pts = {k: {"accuracy": a} for k, a in
           {"0": 99.0, "0.1": 80.0, "0.2": 4.0, "0.3": 0.0, "0.35": 2.4, "0.5": 1.8}.items()}
    assert sw.tail(pts) == ["0.2", "0.3", "0.35", "0.5"]
    assert sw.tail({"0": {"accuracy": 99.0}, "0.3": {"accuracy": 60.0}}) == []


def test_escalation_attacks_only_pgds_survivors_and_keeps_the_worst_case(tiny_task):
    """AutoAttack re-attacks the images PGD left correct; an image PGD already broke stays
    broken; a point with no survivor is PGD's own; accuracy is the mask's."""
    model, x, y = tiny_task
    n = len(y)
    alive = torch.zeros(n, dtype=torch.bool)
    alive[:6] = True
    points = {"0": _point(torch.ones(n, dtype=torch.bool)),
              "0.6": _point(alive, accuracy=1.0),   # PGD "left" 6 images at eps 0.6
              "0.7": _point(torch.zeros(n, dtype=torch.bool))}
    out = sw.escalate(model, x, y, eps_points=points, seed=0)
    assert list(out) == ["0.6", "0.7"]
    assert out["0.6"]["re_attacked"] == 6 and out["0.7"]["re_attacked"] == 0
    masks = {k: headline.unhex(p["mask"], n=n) for k, p in out.items()}
    assert not masks["0.6"][6:].any() and out["0.6"]["accuracy"] == 0.0  # eps 0.6 breaks all
    assert out["0.7"]["mask"] == points["0.7"]["mask"]
    for p in out.values():
        assert headline.unhex(p["mask"], n=n).mean() * 100 == pytest.approx(p["accuracy"])


def test_a_failing_curve_is_escalated_once_and_judged_on_the_worst_case():
    pgd = {"eps": {0: 98, 0.2: 0.8, 0.3: 0, 0.35: 0.4, 0.4: 0.6, 0.45: 2.4, 0.5: 1.8}}
    entry = _entry(n=500, **pgd)
    assert sw.needs_escalation(entry)
    assert not sw.needs_escalation(_entry(eps={0: 98, 0.3: 0, 0.5: 0}))  # sound: never run
    fixed = _entry(n=500, **pgd, **{sw.ESCALATED: {0.2: 0, 0.3: 0, 0.35: 0, 0.4: 0, 0.45: 0,
                                                   0.5: 0}})
    assert not sw.needs_escalation(fixed)  # held: not run again
    found = {c["key"]: c["result"] for c in sw.checks(fixed)}
    assert found["zero"] == found["falls"] == "does not hold"  # PGD-20's own curve, kept
    assert found["zero_aa"] == found["falls_aa"] == "holds"
    still = _entry(n=500, **pgd, **{sw.ESCALATED: {0.2: 0, 0.3: 0, 0.35: 0, 0.4: 0, 0.45: 1.0,
                                                   0.5: 1.0}})
    found = {c["key"]: c["result"] for c in sw.checks(still)}
    assert found["zero_aa"] == found["falls_aa"] == "does not hold"
    header, _, row = sw.seed_table({"models": {"m": {"row": "dfl_pcl", "setting": "no defence",
                                                     "seed": 1, **still}}})
    assert header.endswith("AutoAttack on PGD's survivors |")
    assert row.endswith("| **does not hold** |")
