"""Verdicts test each claim against its own claimed effect (issue 19): the outcome is a partition
of where the interval lies; a refuted claim reads "not reproduced", a below-regime or untrained
cell "not testable here"; seed variance widens the interval; fed the paper's own numbers, every
claim is reproduced except those whose printed numbers contradict the sentence, named once."""
import re

import numpy as np
import pytest

from dfl_lib.errors import UsageError
from dfl_lib.figures.tables import comparison_markdown, records_markdown
from dfl_lib.paper.claims import claim, claims, paper_effect
from dfl_lib.paper.intervals import OUTCOMES, effect_interval, outcome
from dfl_lib.paper.regime import regime_reason
from dfl_lib.paper.verdicts import claim_verdict, depth_statement, verdict_lines


@pytest.mark.parametrize("low, high, claimed, expected", [
    (5.0, 50.0, 37.0, "reproduced"),
    (5.0, 20.0, 37.0, "direction only"),
    (-5.0, 40.0, 37.0, "inconclusive"),
    (-5.0, 10.0, 37.0, "not reproduced"),
    (-20.0, -5.0, 37.0, "not reproduced"),   # the other way
    (0.5, 3.0, 0.0, "reproduced"),           # a claim of direction only
    (-0.5, 3.0, 0.0, "inconclusive"),
    (-3.0, -0.5, 0.0, "not reproduced"),
    (0.0, 0.0, 0.0, "not reproduced"),       # both rows at 0% on every image: no advantage
    (-1.5, 0.0, 0.0, "not reproduced"),
])
def test_outcome_is_where_the_interval_lies(low, high, claimed, expected):
    assert outcome(low=low, high=high, claimed=claimed) == expected


def test_outcome_partition_gives_every_interval_exactly_one_label():
    grid = np.linspace(-50, 80, 27)
    for low in grid:
        for high in grid[grid >= low]:
            for claimed in (0.0, 3.0, 37.0, 60.0):
                assert outcome(low=low, high=high, claimed=claimed) in OUTCOMES[:4]


def test_outcome_refuses_nonsense():
    for bad in ({"low": 2.0, "high": 1.0, "claimed": 1.0},
                {"low": float("nan"), "high": 1.0, "claimed": 1.0},
                {"low": 0.0, "high": 1.0, "claimed": -1.0}):
        with pytest.raises(UsageError):
            outcome(**bad)


def _mask(acc: float, n: int, rng) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[rng.choice(n, size=int(round(acc * n)), replace=False)] = True
    return m


def _samples(accs: dict, claim_, *, n=500, seed=0):
    """{row: {seed: {cell: mask}}} with each row's accuracy per seed from accs[row][seed]."""
    rng = np.random.default_rng(seed)
    return {row: {s: {cell: _mask(a, n, rng) for cell in claim_.cells}
                  for s, a in enumerate(per_seed)} for row, per_seed in accs.items()}


def test_seed_variance_widens_the_interval():
    c = claim("table1_margins (adversarial training)")
    steady = _samples({"dfl_pcl": [0.90, 0.90, 0.90], "resnet": [0.88] * 3,
                       "mustafa": [0.50] * 3}, c)
    spread = _samples({"dfl_pcl": [0.80, 0.90, 0.99], "resnet": [0.88] * 3,
                       "mustafa": [0.50] * 3}, c)
    _, lo1, hi1 = effect_interval(steady, effect=c.effect)
    _, lo2, hi2 = effect_interval(spread, effect=c.effect)
    assert hi2 - lo2 > 2 * (hi1 - lo1)


def test_pairing_on_the_same_images_narrows_a_difference():
    c = claim("table5_pcl_adversarial")  # pcl minus dfl, > 0
    rng = np.random.default_rng(1)
    base = {cell: _mask(0.6, 400, rng) for cell in c.cells}
    better = {cell: m | (rng.random(400) < 0.05) for cell, m in base.items()}
    paired = {"pcl": {0: better}, "dfl": {0: base}}
    shuffled = {"pcl": {0: {k: rng.permutation(v) for k, v in better.items()}},
                "dfl": {0: base}}
    _, lo_p, hi_p = effect_interval(paired, effect=c.effect)
    _, lo_s, hi_s = effect_interval(shuffled, effect=c.effect)
    assert hi_p - lo_p < 0.6 * (hi_s - lo_s)
    assert lo_p > 0  # the paired difference is decisive


def test_bootstrap_refuses_unpaired_seeds_and_lengths():
    c = claim("table5_pcl_adversarial")
    rng = np.random.default_rng(0)
    with pytest.raises(UsageError, match="paired by seed"):
        effect_interval({"pcl": {0: {k: _mask(.5, 10, rng) for k in c.cells}},
                          "dfl": {1: {k: _mask(.5, 10, rng) for k in c.cells}}}, effect=c.effect)
    with pytest.raises(UsageError, match="same images"):
        effect_interval({"pcl": {0: {k: _mask(.5, 10, rng) for k in c.cells}},
                          "dfl": {0: {k: _mask(.5, 12, rng) for k in c.cells}}}, effect=c.effect)


def _clean(rows, value=98.0):
    return {r: value for r in rows}


def test_a_refuted_claim_gives_not_reproduced():
    # our DFL + PCL equals the PGD-trained ResNet; the paper claims >= 37 points over it
    c = claim("table1_margins (adversarial training)")
    s = _samples({"dfl_pcl": [0.90, 0.88, 0.91], "resnet": [0.89, 0.90, 0.90],
                  "mustafa": [0.85, 0.86, 0.84]}, c)
    v = claim_verdict(c, samples=s, clean=_clean(c.rows))
    assert v["verdict"] == "not reproduced"
    assert v["high"] < 37 and v["low"] <= 0
    assert v["seeds"] == 3 and v["n"] == 500


def test_a_baseline_no_profile_runs_is_named_with_its_reason_not_as_left_to_this_profile():
    """quick-full-clean's no-defence margins read "adding dynamic (not run at this profile)":
    Dynamic has no run without attacks at any profile (adversarial training by construction)."""
    c = claim("table1_margins (no defence)")
    s = _samples({"dfl_pcl": [0.0] * 3, "resnet": [0.0] * 3, "mustafa": [0.0] * 3}, c)
    v = claim_verdict(c, samples=s, clean=_clean(c.rows))
    assert v["verdict"] == "not reproduced"
    assert "dynamic (Dynamic is adversarial training by construction" in v["reason"]
    assert "not run at this profile" not in v["reason"]
    c = claim("table3_margins (adversarial training)")
    s = _samples({"dfl": [0.5] * 3, "resnet": [0.5] * 3, "mustafa": [0.5] * 3}, c)
    assert "dynamic (not run at this profile)" in claim_verdict(
        c, samples=s, clean=_clean(c.rows))["reason"]


def test_a_real_effect_is_reproduced_and_a_small_one_direction_only():
    c = claim("table1_margins (adversarial training)")
    big = claim_verdict(c, samples=_samples({"dfl_pcl": [0.95] * 3, "resnet": [0.50] * 3,
                                             "mustafa": [0.40] * 3}, c), clean=_clean(c.rows))
    assert big["verdict"] == "reproduced"
    small = claim_verdict(c, samples=_samples({"dfl_pcl": [0.95] * 3, "resnet": [0.80] * 3,
                                               "mustafa": [0.40] * 3}, c), clean=_clean(c.rows))
    assert small["verdict"] == "direction only"


def test_below_regime_or_untrained_cells_are_not_testable():
    c = claim("table1_margins (adversarial training)")
    s = _samples({"dfl_pcl": [0.5] * 3, "resnet": [0.5] * 3, "mustafa": [0.5] * 3}, c)
    reason = regime_reason(dataset="mnist", baseline_autoattack=47.0, n=100)
    v = claim_verdict(c, samples=s, clean=_clean(c.rows), regime=reason)
    assert v["verdict"] == "not testable here" and "below regime" in v["reason"]
    assert v["estimate"] is not None  # the numbers are still shown
    untrained = claim_verdict(c, samples=s, clean={**_clean(c.rows), "dfl_pcl": 29.4})
    assert untrained["verdict"] == "not testable here"
    assert "did not train" in untrained["reason"] and "29.4" in untrained["reason"]
    assert regime_reason(dataset="mnist", baseline_autoattack=88.0, n=250) == ""


def test_a_cifar_row_below_its_clean_floor_reads_below_regime_not_did_not_train():
    """quick-full-cifar's DFL + PCL trained to 37% clean (chance is 10%): below CIFAR-10's
    70% floor it is below the regime; "did not train" was false there."""
    from dfl_lib.paper.regime import untrained_reason

    assert untrained_reason(dataset="cifar10_jpeg", clean={"dfl_pcl": 37.3, "resnet": 75.0}) \
        == "below regime: dfl_pcl 37.3% clean (floor 70%)"
    assert untrained_reason(dataset="mnist", clean={"dfl_pcl": 29.4}) \
        == "did not train: dfl_pcl 29.4% clean (floor 90%)"
    assert untrained_reason(dataset="cifar10_jpeg", clean={"dfl_pcl": 71.0}) == ""


def test_too_few_seeds_or_missing_rows_are_not_testable_unless_refuted_a_fortiori():
    c = claim("table1_margins (adversarial training)")
    one = _samples({"dfl_pcl": [0.9], "resnet": [0.9], "mustafa": [0.9]}, c)
    v = claim_verdict(c, samples=one, clean=_clean(c.rows))
    assert v["verdict"] == "not testable here" and "1 seed" in v["reason"]
    assert v["estimate"] is not None and v["seeds"] == 1  # numbers shown, image noise only
    # Mustafa et al. with one seed leaves; our margin over the ResNet alone is far below 37,
    # and more baselines can only lower it: "not reproduced" stands
    s = _samples({"dfl_pcl": [0.9] * 3, "resnet": [0.9] * 3}, c)
    s["mustafa"] = {0: s["resnet"][0]}
    v = claim_verdict(c, samples=s, clean=_clean(c.rows))
    assert v["verdict"] == "not reproduced" and "a fortiori" in v["reason"]
    # a large margin over the ResNet alone decides nothing while Mustafa et al. is missing
    big = _samples({"dfl_pcl": [0.95] * 3, "resnet": [0.3] * 3}, c)
    v = claim_verdict(c, samples=big, clean=_clean(c.rows))
    assert v["verdict"] == "not testable here" and "mustafa" in v["reason"]
    assert claim_verdict(c, samples={}, clean={})["verdict"] == "not testable here"


def _printed_numbers(text: str) -> set[float]:
    return {float(x) for x in re.findall(r"\d+\.\d+", text)}


def test_calibration_the_papers_own_numbers_reproduce_every_claim_but_its_inconsistencies():
    """Fed the paper's printed numbers (an interval of zero width), each claim is reproduced,
    or its `inconsistency` names the printed numbers that contradict the sentence."""
    checked = 0
    for c in claims():
        effect = paper_effect(c)
        if effect is None:
            continue
        checked += 1
        got = outcome(low=effect, high=effect, claimed=c.threshold)
        if c.inconsistency:
            assert got != "reproduced", c.label
            # the text names the margin the paper's numbers give
            assert effect in _printed_numbers(c.inconsistency) or \
                abs(effect) in _printed_numbers(c.inconsistency), (c.label, effect)
        else:
            assert got == "reproduced", (c.label, effect, c.threshold)
    assert checked >= 13
    listed = [c.label for c in claims() if c.inconsistency]
    assert len(listed) == len(set(listed))  # each inconsistency listed once


def test_every_claim_is_specified_and_untestable_ones_say_why():
    for c in claims():
        assert c.kind in ("table", "depth", "rise", "none", "pending"), c.label
        if c.kind in ("none", "pending"):
            assert c.untestable
            v = claim_verdict(c)
            assert v["verdict"] == "not testable here" and v["reason"] == c.untestable
        else:
            assert c.ours and c.baselines and c.columns and c.dataset, c.label
        if c.kind == "table":
            assert c.table


def test_depth_statement_says_each_claim_plainly_and_names_runs_below_the_floor():
    v = claim_verdict(claim("fig5_resnet50_dfl_gain (with against without the DFL)"),
                      samples={"resnet50+dfl": {s: {"val_adv_acc": (44, 100)} for s in range(3)},
                               "resnet50": {s: {"val_adv_acc": (47, 100)} for s in range(3)}},
                      clean={"resnet50+dfl": 88.0, "resnet50": 94.0})
    assert v["verdict"] == "not testable here" and "did not train" in v["reason"]
    finals = [{"depth": "ResNet-50", "variant": "with DFL", "setting": "PGD-10 training",
               "seed": 1, "warmup": False, "val_acc": 0.11},
              {"depth": "ResNet-18", "variant": "with DFL", "setting": "PGD-10 training",
               "seed": 0, "warmup": True, "val_acc": 0.97}]
    text = depth_statement([v], finals, floor=90.0)
    assert "the DFL lifts ResNet-50" in text and "not testable here" in text
    assert "ResNet-50 with DFL" in text and "no lr warm-up" in text and "11.0%" in text
    assert "ResNet-18 with DFL" not in text


def test_verdict_lines_label_checks_as_checks():
    c = claim("table5_pcl_adversarial")
    v = claim_verdict(c, unavailable="the CIFAR-10 claims are tested at the gpu profile")
    check = {"check": "strong_attacks_mnist", "result": "holds", "numbers": "PGD-10 90%"}
    text = verdict_lines([v, check])
    assert "**table5_pcl_adversarial**: not testable here" in text and "gpu profile" in text
    assert "check **strong_attacks_mnist** (ours, not the paper's): holds" in text


def _cell(row, setting, column, ours, *, n=500, paper=50.0):
    return {"row": row, "setting": setting, "column": column, "ours": ours, "paper": paper,
            "label": row, "n_eval": n, "std": None, "diff": ours - paper, "seeds": 1,
            "strong": {}, "flags": [], "note": ""}


def test_comparison_markdown_has_one_line_per_row_group_and_every_paper_value():
    rows = [_cell(row, "adversarial training", col, v) for row, per in
            {"resnet": (50, 40, 40), "dfl_pcl": (70, 60, 60)}.items()
            for col, v in zip(("FGSM", "PGD-10", "C&W"), per)]
    rows[0]["strong"] = {"AutoAttack": (33.0, None)}
    text = comparison_markdown(rows, title="Table X")
    body = [line for line in text.splitlines() if line.startswith("| adversarial")]
    assert len(body) == 2
    assert "FGSM paper" in text and "+20.0" in text and "33.0" in text
    table = records_markdown({"a": {"x": 0.12345, "y": "z"}})
    assert "| a | 0.123 | z |" in table


def _depth_records(pgd: dict, clean: dict, *, seeds=(0, 1, 2), n=500, loss=None, error=None,
                   grad=None):
    """Depth records whose epochs hold every quantity the depth claims read: `pgd` the
    validation accuracy under the PGD-10 monitor per row (clean accuracy 0.02 above it),
    `loss` / `error` the training loss (nats) and error per row (default: from `pgd`), `grad`
    the stem's gradient norm per row at the last epoch, 10x that at the first (default 1.0;
    None in `grad`: not recorded), each seed a little apart (seed s adds 0.003 s)."""
    out = []
    for row, acc in pgd.items():
        model, dfl = row.replace("+dfl", ""), row.endswith("+dfl")
        norm = (grad or {}).get(row, 1.0)
        for s in seeds:
            jitter = 0.003 * s
            last = {"epoch": 2, "val_acc": min(acc + 0.02, 1.0), "val_adv_acc": acc - jitter,
                    "val_adv_error": 1 - acc + jitter,
                    "val_adv_loss": 2.0 * (1 - acc) + jitter,
                    "train_loss": (loss or {}).get(row, 2.0 * (1 - acc)) + jitter,
                    "train_error": (error or {}).get(row, 1 - acc) + jitter}
            first = {"epoch": 1, "val_acc": acc / 2}
            if norm is not None:
                last["train_grad_stem"] = norm * (1 + jitter)
                first["train_grad_stem"] = 10 * norm * (1 + jitter)
            out.append({"model": model, "dfl": dfl, "seed": s, "warmup": True, "n_val": n,
                        "n_train": 5000, "monitor_size": 100, "setting": "PGD-10 training",
                        "run": f"{row}-s{s}", "history": [first, last]})
    for row, acc in clean.items():
        out.append({"model": row.replace("+dfl", ""), "dfl": row.endswith("+dfl"), "seed": 0,
                    "warmup": True, "n_val": n, "setting": "no defence",
                    "history": [{"epoch": 1, "val_acc": acc}]})
    return out


def test_depth_claims_read_the_clean_trained_configuration_for_the_floor():
    from dfl_lib.study.evidence import depth_verdicts

    # 100 monitor images per seed: only a large effect survives 3 seeds' t interval
    pgd = {"resnet18": 0.85, "resnet34": 0.55, "resnet50": 0.40,
           "resnet18+dfl": 0.85, "resnet34+dfl": 0.76, "resnet50+dfl": 0.50}
    trains = {row: 0.99 for row in pgd}
    got = {v["claim"]: v for v in depth_verdicts("quick-full", regime="",
                                                 records=_depth_records(pgd, trains))}
    # ResNet-50 ends lower under PGD training, and trains without attacks: the effect the
    # claims are about, tested on the PGD-10 monitor (100 images)
    assert got["fig1_deeper_less_convergence (accuracy)"]["verdict"] == "reproduced"
    assert got["fig135_deeper_better_with_dfl (PGD-10 monitor)"]["verdict"] == "not reproduced"
    # the same numbers where ResNet-50 + DFL does not train even without attacks
    failed = {**trains, "resnet50+dfl": 0.31}
    got = {v["claim"]: v for v in depth_verdicts("quick-full", regime="",
                                                 records=_depth_records(pgd, failed))}
    assert got["fig135_deeper_better_with_dfl (PGD-10 monitor)"]["verdict"] == "not testable here"
    assert "resnet50+dfl 31.0% clean" in got["fig135_deeper_better_with_dfl (PGD-10 monitor)"][
        "reason"]
    # without clean runs the PGD runs' own clean accuracy is the (stricter) floor
    got = {v["claim"]: v for v in depth_verdicts("quick-full", regime="",
                                                 records=_depth_records(pgd, {}))}
    assert got["fig5_resnet50_dfl_gain (with against without the DFL)"]["verdict"] == \
        "not testable here"


def test_a_depth_verdict_is_computed_from_the_loss_and_the_error_under_pgd_training():
    """Issue 39: the depth claims on what the paper plots (the training loss and the error under
    attack), not on clean accuracy at its ceiling. Deeper nets that end at a higher training
    loss reproduce Figure 1's "less convergence" whatever their clean accuracy; without an
    AutoAttack evaluation of the depth study's ResNet-18 (the regime gate) every verdict says
    so and still shows its numbers."""
    from dfl_lib.study.evidence import depth_verdicts

    pgd = {row: 0.80 for row in ("resnet18", "resnet34", "resnet50", "resnet18+dfl",
                                 "resnet34+dfl", "resnet50+dfl")}
    loss = {"resnet18": 0.30, "resnet34": 0.36, "resnet50": 0.45}
    error = {"resnet18+dfl": 0.12, "resnet34+dfl": 0.11, "resnet50+dfl": 0.16}
    records = _depth_records(pgd, {row: 0.99 for row in pgd}, loss=loss, error=error)
    got = {v["claim"]: v for v in depth_verdicts("quick-full", regime="", records=records)}
    fig1 = got["fig1_deeper_less_convergence (training loss)"]
    assert fig1["verdict"] == "reproduced" and fig1["unit"] == "nats"
    assert fig1["estimate"] == pytest.approx(0.06)  # the shallower deeper one, minus ResNet-18
    assert "training loss on the adversarial batches" in fig1["numbers"]
    assert "nats" in fig1["numbers"] and "images" not in fig1["numbers"]
    # with the DFL, ResNet-50 ends with the highest training error, not the lowest
    fig3 = got["fig3_dfl_resnet50_lower_error (training error)"]
    assert fig3["verdict"] == "not reproduced" and fig3["estimate"] == pytest.approx(-5.0)
    assert "5000 images" in fig3["numbers"]
    # equal accuracy under the monitor: no effect either way
    assert got["fig135_deeper_better_with_dfl (PGD-10 monitor)"]["estimate"] == \
        pytest.approx(0.0)
    # the regime gate: no AutoAttack evaluation of the depth runs, nothing decided
    gated = {v["claim"]: v for v in depth_verdicts("quick-full", records=records)}
    for label, v in gated.items():
        assert v["verdict"] == "not testable here", label
        if label.endswith("AutoAttack)"):  # read from the end evaluation, which they lack
            assert "no end evaluation" in v["reason"] and v["estimate"] is None
        else:
            assert "no AutoAttack evaluation" in v["reason"] and v["estimate"] is not None
    text = depth_statement(list(got.values()), [], floor=90.0)
    assert "higher training loss" in text and "nats" in text


def test_gradient_vanishing_is_judged_on_the_stems_gradient_norm_over_every_epoch():
    """Section 1's "gradient vanishing is more likely in a deep architecture": ResNet-18's
    log10 stem gradient (mean over epochs) minus the stronger of the deeper nets'. A
    history without gradient norms (runs made before they were recorded) says so."""
    from dfl_lib.study.evidence import depth_sample, depth_verdicts

    pgd = {row: 0.80 for row in ("resnet18", "resnet34", "resnet50")}
    clean = {row: 0.99 for row in pgd}  # every depth trains (the clean floor)
    label = "gradient_vanishing_deep (stem gradient)"
    # the deeper nets' stem gradients 10x and 100x weaker: the claim's direction
    weaker = _depth_records(pgd, clean, grad={"resnet18": 1.0, "resnet34": 0.1, "resnet50": 0.01})
    v = {v["claim"]: v for v in depth_verdicts("quick-full", regime="", records=weaker)}[label]
    assert v["verdict"] == "reproduced" and v["unit"] == "log10"
    assert v["estimate"] == pytest.approx(1.0, abs=1e-6)  # against ResNet-34, the stronger
    assert "gradient norm at the stem" in v["numbers"] and "log10" in v["numbers"]
    # the mean over both epochs of log10: (log10(10) + log10(1)) / 2 for ResNet-18, seed 0
    r18 = next(r for r in weaker if r["run"] == "resnet18-s0")
    assert depth_sample(r18, quantity="train_grad_stem") == pytest.approx(0.5)
    # deeper nets with the stronger gradient: pointing the other way
    stronger = _depth_records(pgd, clean, grad={"resnet18": 0.1, "resnet34": 1.0, "resnet50": 1.0})
    v = {v["claim"]: v for v in depth_verdicts("quick-full", regime="", records=stronger)}[label]
    assert v["verdict"] == "not reproduced" and v["estimate"] == pytest.approx(-1.0, abs=1e-6)
    # Section 3.2: the DFL's skip connections carry the gradient to ResNet-50's first layer
    rows = {row: 0.80 for row in ("resnet18", "resnet50", "resnet50+dfl")}
    both = _depth_records(rows, {row: 0.99 for row in rows},
                          grad={"resnet18": 1.0, "resnet50": 0.01, "resnet50+dfl": 0.1})
    got = {v["claim"]: v for v in depth_verdicts("quick-full", regime="", records=both)}
    dfl = got["dfl_prevents_gradient_vanishing (stem gradient, ResNet-50)"]
    assert dfl["verdict"] == "reproduced" and dfl["estimate"] == pytest.approx(1.0, abs=1e-6)
    # histories from before the gradient norms were recorded: not measured, no numbers
    old = _depth_records(pgd, clean, grad={row: None for row in pgd})
    assert depth_sample(old[0], quantity="train_grad_stem") is None
    v = {v["claim"]: v for v in depth_verdicts("quick-full", regime="", records=old)}[label]
    assert v["verdict"] == "not testable here" and v["estimate"] is None
    assert "hold no train_grad_stem" in v["reason"]


def test_a_claim_whose_cells_the_profile_leaves_to_another_says_which_trains_them():
    """quick leaves the DFL-only row to the quick-full parts (Table 3's claims): each verdict is
    "not testable here" naming the profiles that train its cells; a row quick trains (DFL +
    PCL, Table 1) reads its (here absent) cells as usual."""
    from dfl_lib.study.evidence import table_verdicts

    table3 = [v for v in table_verdicts("quick", cells={}) if v["claim_id"] == "table3_margins"]
    assert [v["claim"] for v in table3] == ["table3_margins (no defence)",
                                           "table3_margins (adversarial training)"]
    for verdict, setting in zip(table3, ("no defence", "adversarial training")):
        assert verdict["verdict"] == "not testable here"
        assert verdict["reason"].startswith(f"the dfl cells with {setting} are not trained at "
                                            f"quick")
        assert "quick-full" in verdict["reason"] and "smoke" not in verdict["reason"]
    table1 = [v for v in table_verdicts("quick", cells={}) if v["claim_id"] == "table1_margins"]
    assert table1 and not [v for v in table1 if "not trained at quick" in v["reason"]]


def _adaptive_cell(pairs):
    """A cell group whose per-seed tables hold PGD-10, PGD-50 and the adaptive attack (%)."""
    per_seed = []
    for seed, (adaptive, pgd50) in enumerate(pairs):
        per_seed.append({"provenance": {"seed": seed}, "n_eval": 500,
                         "paper_columns": {"PGD": "pgd10"},
                         "table": [{"name": "pgd10", "attack": "pgd", "accuracy": 0.5,
                                    "settings": {"steps": 10, "restarts": 1}},
                                   {"name": "pgd50", "attack": "pgd", "accuracy": pgd50 / 100,
                                    "settings": {"steps": 50, "restarts": 1}},
                                   {"name": "adaptive", "attack": "pgd_adaptive",
                                    "accuracy": adaptive / 100,
                                    "settings": {"steps": 50, "restarts": 1}}]})
    return {("mnist", "dfl_pcl", "no defence"): {"per_seed": per_seed, "headline": None}}


@pytest.mark.parametrize("pairs, expected", [
    ([(40.0, 41.0), (38.0, 38.2)], "holds"),
    ([(45.0, 41.0), (38.0, 38.2)], "does not hold"),
    # PGD-50 leaves nothing correct: every attack ties it (quick-full-clean's clean-trained
    # DFL + PCL read "holds" at 0.0 vs 0.0 on every seed)
    ([(0.0, 0.0), (0.2, 0.0)], "uninformative"),
    ([(3.0, 0.0), (0.0, 0.0)], "does not hold"),
])
def test_the_adaptive_check_says_when_pgd50_leaves_nothing_to_compare(pairs, expected):
    from dfl_lib.study.evidence import adaptive_checks

    (check,) = adaptive_checks(_adaptive_cell(pairs))
    assert check["result"] == expected
    assert "seed 1: adaptive" in check["numbers"]


def test_the_conclusions_75_and_55_are_table_1s_column_means():
    """Issue 39: the Conclusion's "margins of approximately 75% and 55%" were marked untestable;
    they are exact means over Table 1's three columns (DFL + PCL minus ResNet-50 without
    adversarial training, minus Mustafa et al. with it), so they are judged like any margin."""
    no_defence = claim("conclusion_margins_75_55 (no defence)")
    adversarial = claim("conclusion_margins_75_55 (adversarial training)")
    assert (no_defence.statistic, adversarial.statistic) == ("mean", "mean")
    assert paper_effect(no_defence) == 75.5 and paper_effect(adversarial) == 55.56
    # a mean, not the worst column: one column far below the claim does not decide it alone
    acc = {"dfl_pcl": {"no defence | FGSM": 90.0, "no defence | PGD-10": 60.0,
                       "no defence | C&W": 85.0},
           "resnet": {"no defence | FGSM": 5.0, "no defence | PGD-10": 0.0,
                      "no defence | C&W": 0.0}}
    assert no_defence.effect(acc) == pytest.approx((85 + 60 + 85) / 3)


def test_the_conclusions_12_percent_is_judged_as_a_relative_training_error():
    """'The DFL reduces the training error by 12%' was marked untestable as an absolute error;
    its relative reading (ResNet-50's training error minus ResNet-50 + DFL's, in % of
    ResNet-50's) is judged from the depth runs like any depth claim."""
    c = claim("conclusion_dfl_error_accuracy (training error, relative)")
    assert (c.kind, c.statistic, c.threshold, c.columns) == ("depth", "relative", 12.0,
                                                             ("train_error",))
    assert c.unit == "% of the baseline's"
    # 20% -> 15% is a 25% reduction; 11.4% -> 15.8% (the committed depth runs' means) a rise
    assert c.effect({"resnet50+dfl": {"train_error": 15.0},
                     "resnet50": {"train_error": 20.0}}) == pytest.approx(25.0)
    assert c.effect({"resnet50+dfl": {"train_error": 15.8},
                     "resnet50": {"train_error": 11.4}}) == pytest.approx(-38.6, abs=0.1)
    with pytest.raises(ValueError, match="is 0"):
        c.effect({"resnet50+dfl": {"train_error": 1.0}, "resnet50": {"train_error": 0.0}})
    # the absolute reading stays untestable, saying why; the 7.1% points to the claim testing it
    assert claim("fig5_training_error_12").kind == "none"
    assert "fig5_resnet50_dfl_gain" in claim("conclusion_dfl_error_accuracy (accuracy)").untestable


def test_every_claim_row_of_the_index_has_a_verdict_or_its_own_reason(tmp_path):
    """The index printed "no notebook of this profile evaluated it" for claims untestable by
    nature and for claims not judged yet; each now prints its own reason."""
    from dfl_lib.study.index import findings

    lines = [li for li in findings(tmp_path) if li.startswith("| ") and "**" in li]
    assert len(lines) == len(claims())
    for c, line in zip(claims(), lines):
        reason = line.split(" | ")[5]
        assert reason.strip(" |"), c.label
        if c.kind in ("none", "pending"):
            assert c.untestable.split(":")[0] in reason, (c.label, reason)


def test_the_depth_runs_end_evaluation_gives_autoattack_verdicts_and_the_regime_gate(tmp_path):
    """With an end evaluation of every PGD-trained depth run (suite "depth", per-example masks),
    the plain ResNet-18's AutoAttack accuracy decides the regime: at 88% the claims are judged
    (on AutoAttack accuracy too), at 60% every one is "not testable here: below regime"."""
    import numpy as np

    from dfl_lib.evaluation.robust import mask_file
    from dfl_lib.study.evidence import depth_verdicts

    pgd = {row: 0.80 for row in ("resnet18", "resnet34", "resnet50", "resnet18+dfl",
                                 "resnet34+dfl", "resnet50+dfl")}

    def with_end(aa: dict) -> list[dict]:
        records = _depth_records(pgd, {row: 0.99 for row in pgd})
        for r in records:
            if r["setting"] != "PGD-10 training":
                continue
            row = r["model"] + ("+dfl" if r["dfl"] else "")
            folder = tmp_path / f"{row}-{aa[row]}-s{r['seed']}"
            mask = np.arange(500) < int(aa[row] * 500) - 5 * r["seed"]
            (folder / "masks-depth").mkdir(parents=True, exist_ok=True)
            np.save(mask_file(folder / "masks-depth", "AutoAttack"), mask)
            r["evaluation"] = {"path": str(folder / "metrics-depth.json"),
                               "table": [{"name": "AutoAttack", "attack": "autoattack"}]}
        return records

    aa = {"resnet18": 0.88, "resnet34": 0.86, "resnet50": 0.84, "resnet18+dfl": 0.88,
          "resnet34+dfl": 0.86, "resnet50+dfl": 0.70}
    got = {v["claim"]: v for v in depth_verdicts("quick-full", records=with_end(aa))}
    v = got["fig5_resnet50_dfl_gain (with against without the DFL, AutoAttack)"]
    assert v["verdict"] == "not reproduced" and v["n"] == 500
    assert v["estimate"] == pytest.approx(-14.0)
    assert "test accuracy under AutoAttack" in v["numbers"]
    # in the regime: the PGD-10 monitor's claims are judged too, no gate reason
    assert not got["fig1_deeper_less_convergence (training loss)"]["reason"]
    low = {**aa, "resnet18": 0.60}
    gated = depth_verdicts("quick-full", records=with_end(low))
    assert all(v["verdict"] == "not testable here" and v["reason"].startswith("below regime")
               for v in gated)


def _component_records(curves: dict, *, n_val=1000):
    """Figure 6a's records: {row: [val_acc per epoch]} at seeds 0-2, seed s adding 0.002 s."""
    return [{"dataset": "mnist", "row": row, "seed": s, "n_val": n_val,
             "history": [{"epoch": e + 1, "val_acc": a + 0.002 * s} for e, a in enumerate(acc)]}
            for row, acc in curves.items() for s in (0, 1, 2)]


def test_figure_6a_both_components_judged_on_the_last_epoch_and_the_worst_step():
    """"combining both guarantees stable training and better performances": DFL + PCL's last
    validation accuracy minus the better component's, and its largest epoch-to-epoch fall
    against the steadier component's (a change in points: the higher, the steadier)."""
    from dfl_lib.study.evidence import rise_verdicts, worst_step

    assert worst_step([{"val_acc": 0.90}, {"val_acc": 0.95}, {"val_acc": 0.93}]) == \
        pytest.approx(-2.0)
    assert worst_step([{"val_acc": 0.9}]) is None
    curves = {"dfl": [0.90, 0.96, 0.97, 0.975],          # steady: worst step +0.5
              "pcl": [0.80, 0.97, 0.93, 0.98],           # a fall of 4 points at epoch 3
              "dfl_pcl": [0.85, 0.95, 0.965, 0.985]}     # worst step +1.5, ends highest
    got = {v["claim"]: v for v in rise_verdicts("quick-full", records=_component_records(curves))}
    better = got["fig6_both_stable_better (better performances)"]
    assert better["estimate"] == pytest.approx(0.5, abs=1e-6) and better["n"] == 1000
    stable = got["fig6_both_stable_better (stable training)"]
    assert stable["estimate"] == pytest.approx(1.0, abs=1e-6) and stable["n"] == 0
    assert stable["verdict"] == "reproduced"  # no image noise, seeds agree exactly
    # the PCL rises by 18 points, the DFL by 7.5: the paper's first sentence, unchanged
    rises = got["fig6_pcl_rises_dfl_steady"]
    assert rises["estimate"] == pytest.approx(10.5, abs=1e-6)
    # a steadier component than both: pointing the other way
    curves["dfl"] = [0.90, 0.93, 0.96, 0.99]
    got = {v["claim"]: v for v in rise_verdicts("quick-full", records=_component_records(curves))}
    assert got["fig6_both_stable_better (stable training)"]["verdict"] == "not reproduced"
    # one epoch per run: no step to judge, the other readings still are
    one = _component_records({row: acc[-1:] for row, acc in curves.items()})
    got = {v["claim"]: v for v in rise_verdicts("quick-full", records=one)}
    steps = got["fig6_both_stable_better (stable training)"]
    assert steps["verdict"] == "not testable here" and "one epoch" in steps["reason"]
    assert got["fig6_both_stable_better (better performances)"]["estimate"] == \
        pytest.approx(-0.5, abs=1e-6)
