"""The poisoning study's plain-words answers (study/poison_records.py) on hand-made records:
the detection sentence says "easier" / "harder" only when the t interval of the AUROC difference
(paired by seed) excludes zero, and poison_effects reads a defence that keeps the clean
accuracy a backdoor costs as "mitigates". No model is trained."""
import numpy as np
import pytest

from dfl_lib.study.poison_records import detection_statement, poison_effects, poison_statements


def _record(row, seed, *, auroc=None, poison="badnets", setting="no defence", fraction=0.1,
            clean=98.0, asr=None, masks=None):
    r = {"poison": poison, "row": row, "setting": setting, "seed": seed, "fraction": fraction,
         "clean_accuracy": clean, "masks": str(masks) if masks else "/nonexistent"}
    if auroc is not None:
        r["detection"] = {"spectral signatures": {"auroc": auroc}}
    if asr is not None:
        r["attack_success_rate"] = asr
    return r


def test_detection_statement_needs_an_interval_that_excludes_zero():
    records = [_record("resnet", s, auroc=a) for s, a in enumerate((0.70, 0.72, 0.74))]
    records += [_record("dfl", s, auroc=a) for s, a in enumerate((0.80, 0.85, 0.90))]
    records += [_record("dfl_pcl", s, auroc=a) for s, a in enumerate((0.50, 0.55, 0.60))]
    records += [_record("pcl", s, auroc=a) for s, a in enumerate((0.60, 0.73, 0.95))]
    text = detection_statement(records, poison="badnets", fraction=0.1)
    assert "DFL only: easier to detect (AUROC +0.13, 95% interval [+0.06, +0.20], 3 seeds)" \
        in text
    assert "DFL + PCL: harder to detect (AUROC -0.17" in text
    assert "PCL only: no clear difference (AUROC +0.04" in text
    assert "ResNet (CE) 0.72 (0.70-0.74)" in text


def test_seeds_that_do_not_overlap_are_no_detection_difference_without_the_noise_test():
    """Issue 39: "easier / harder to detect" had no noise test; the earlier rule (every seed of
    the defence beyond every seed of the ResNet) read these seeds as "easier". Paired by seed
    the differences are +0.03, +0.09, +0.23: their t interval covers zero."""
    records = [_record("resnet", s, auroc=a) for s, a in enumerate((0.70, 0.71, 0.72))]
    records += [_record("dfl", s, auroc=a) for s, a in enumerate((0.73, 0.80, 0.95))]
    text = detection_statement(records, poison="badnets", fraction=0.1)
    assert "DFL only: no clear difference (AUROC +0.12" in text


def test_detection_statement_names_a_single_seed_and_ignores_other_poisons():
    records = [_record("resnet", 0, auroc=0.6), _record("dfl", 0, auroc=0.9),
               _record("resnet", 0, auroc=0.1, poison="label_flip")]
    text = detection_statement(records, poison="badnets", fraction=0.1)
    assert "DFL only: not testable here (1 seed: a difference needs 3)" in text
    assert "0.10" not in text
    assert detection_statement(records, poison="clean_label", fraction=0.1) == ""


def test_poison_effects_and_statements_from_masks(tmp_path):
    rng = np.random.default_rng(0)
    records = []
    for row, p_clean, p_asr in (("resnet", 0.80, 0.95), ("dfl_pcl", 0.99, 0.10)):
        for seed in (0, 1, 2):
            folder = tmp_path / f"{row}-{seed}"
            folder.mkdir()
            np.save(folder / "clean.npy", rng.random(400) < p_clean)
            np.save(folder / "attack_success.npy", rng.random(400) < p_asr)
            records.append(_record(row, seed, clean=100 * p_clean, asr=100 * p_asr, masks=folder,
                                   auroc=0.9 if row == "resnet" else 0.6))
        unpoisoned = tmp_path / f"{row}-none"
        unpoisoned.mkdir()
        records.append(_record(row, 0, poison="none", fraction=0.0, clean=99.0,
                               masks=unpoisoned))
    effects = poison_effects(records, fraction=0.1, n_boot=300)
    by = {(e["poison"], e["measure"]): e for e in effects if e["row"] == "dfl_pcl"}
    assert by[("badnets", "clean accuracy")]["answer"] == "mitigates"
    assert by[("badnets", "attack success rate")]["answer"] == "mitigates"
    assert by[("badnets", "attack success rate")]["high"] < 0
    text = poison_statements(effects, records, fraction=0.1)
    assert len(text) == 2 and "the backdoor succeeds on 95.0%" in text[0]
    assert "DFL + PCL: harder to detect (AUROC -0.30, 95% interval [-0.30, -0.30], 3 seeds)" \
        in text[1]


def test_a_one_seed_poisoning_effect_reads_not_testable(tmp_path):
    """Issue 39: the quick report stated "mitigates" (+20.2 points) and "worsens" (-20.0) from
    one seed while the one 3-seed cell swung 10.8-27.8% between seeds."""
    rng = np.random.default_rng(2)
    records = []
    for row, p_clean in (("resnet", 0.70), ("dfl", 0.95)):
        folder = tmp_path / row
        folder.mkdir()
        np.save(folder / "clean.npy", rng.random(400) < p_clean)
        records.append(_record(row, 0, poison="adversarial", clean=100 * p_clean, masks=folder))
        records.append(_record(row, 0, poison="none", fraction=0.0, clean=99.0, masks=folder))
    (effect,) = [e for e in poison_effects(records, fraction=0.1, n_boot=50)
                 if e["poison"] == "adversarial"]
    assert effect["answer"] == "not testable here (1 seed: an effect needs 3)"
    assert effect["effect"] > 20  # the number is still shown, beside the reason


def test_untrained_references_make_the_answer_not_testable(tmp_path):
    records = []
    for row in ("resnet", "dfl"):
        folder = tmp_path / row
        folder.mkdir()
        np.save(folder / "clean.npy", np.ones(50, dtype=bool))
        records.append(_record(row, 0, masks=folder))
        records.append(_record(row, 0, poison="none", fraction=0.0, clean=11.0, masks=folder))
    effects = poison_effects(records, fraction=0.1, n_boot=100)
    assert effects and all(e["answer"].startswith("not testable here") for e in effects)


def test_a_backdoor_that_did_not_take_hold_makes_its_mitigation_not_testable(tmp_path):
    """The quick study's clean-label backdoor reached 0.2% success on the plain ResNet: "no
    difference detected" on its success rate would read as a finding; the clean accuracy
    comparison stays."""
    rng = np.random.default_rng(1)
    records = []
    for row in ("resnet", "dfl_pcl"):
        for seed in (0, 1, 2):
            folder = tmp_path / f"{row}-{seed}"
            folder.mkdir()
            np.save(folder / "clean.npy", rng.random(400) < 0.98)
            np.save(folder / "attack_success.npy", rng.random(400) < 0.002)
            records.append(_record(row, seed, poison="clean_label", clean=98.0, asr=0.2,
                                   masks=folder))
        records.append(_record(row, 0, poison="none", fraction=0.0, clean=98.0, masks=folder))
    effects = poison_effects(records, fraction=0.1, n_boot=100)
    by = {e["measure"]: e["answer"] for e in effects if e["poison"] == "clean_label"}
    assert by["attack success rate"].startswith("not testable here (the backdoor did not take "
                                                "hold: 0.2% success")
    assert not by["clean accuracy"].startswith("not testable")
    text = poison_statements(effects, records, fraction=0.1)[0]
    assert "did not take hold at this scale" in text
    # the same records with a backdoor that works: testable
    for r in records:
        if "attack_success_rate" in r:
            r["attack_success_rate"] = 95.0
    assert not any(e["answer"].startswith("not testable")
                   for e in poison_effects(records, fraction=0.1, n_boot=100)
                   if e["poison"] == "clean_label")


if __name__ == "__main__":
    pytest.main([__file__])


@pytest.mark.parametrize("rates, verdict", [
    ((0.2, 30.0, 70.0), "it takes hold (at least 50% success) from 100% of the target class"),
    ((0.2, 3.0, 9.0), "it took hold at no share tried (up to 100% of the target class)"),
])
def test_the_rate_sweep_says_from_which_share_a_backdoor_takes_hold(rates, verdict):
    """Issue 39: the clean-label backdoor was run at one count (50 poisons) at which it did not
    take hold; the sweep says where it does, or that it does at no count tried."""
    from dfl_lib.study.poison_records import sweep_statement

    records = [_record("resnet", 0, poison="clean_label", fraction=f, asr=a)
               for f, a in zip((0.1, 0.5, 1.0), rates)]
    records.append(_record("dfl_pcl", 0, poison="clean_label", fraction=1.0, asr=99.0))
    text = sweep_statement(records, poison="clean_label")
    assert text.endswith(verdict + ".")
    assert "10%: 0.2%, 50%: " in text
    assert sweep_statement(records[:1], poison="clean_label") == ""


def test_the_full_poisoning_grid_sweeps_the_clean_label_share():
    from dfl_lib.study.plan import poison_grid

    keys = [k for k, _ in poison_grid("quick-full-poisoning", device="cpu")]
    for row in ("resnet", "dfl_pcl"):
        for rate in ("0.5", "1"):
            assert f"poison | clean_label | {row} | no defence | s0 | rate {rate}" in keys
