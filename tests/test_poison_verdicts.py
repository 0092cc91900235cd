"""The paper's poisoning claim judged per poison (study/poison_verdicts.py and
studies/poison_verdicts.py): from per-example masks through poison_effects to one verdict per
row of paper_claims.csv, in the claim's direction (a lower attack success rate, a higher clean
accuracy); one seed, a backdoor that does not take hold, a poison not run: "not testable here"
with the reason; the page the study report reads. No model is trained."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from dfl_lib.paper.claims import claims
from dfl_lib.study.poison_records import poison_effects
from dfl_lib.study.poison_verdicts import CLAIM, READINGS, poison_verdicts
from dfl_lib.study.report import gather_claims

ROOT = Path(__file__).resolve().parents[1]
BADNETS_ASR = "poisoning_defence (BadNets, attack success rate)"
ADVERSARIAL = "poisoning_defence (adversarial poison, clean accuracy)"


def _records(tmp_path, *, cells, seeds=(0, 1, 2), n=400):
    """Records with per-example masks: cells maps (poison, row) -> (clean %, attack success %
    or None); the plain ResNet and DFL + PCL also get unpoisoned reference runs that train."""
    rng = np.random.default_rng(0)
    out = []
    for (poison, row), (clean, asr) in cells.items():
        for seed in seeds:
            folder = tmp_path / f"{poison}-{row}-{seed}"
            folder.mkdir()
            np.save(folder / "clean.npy", rng.random(n) < clean / 100)
            r = {"poison": poison, "row": row, "setting": "no defence", "seed": seed,
                 "fraction": 0.1, "surrogate": "resnet", "clean_accuracy": clean,
                 "n_eval": n, "masks": str(folder),
                 "crafted_against": "the plain ResNet" if poison == "adversarial" else ""}
            if asr is not None:
                np.save(folder / "attack_success.npy", rng.random(n) < asr / 100)
                r["attack_success_rate"] = asr
            out.append(r)
    for row in ("resnet", "dfl_pcl"):
        folder = tmp_path / f"none-{row}"
        folder.mkdir()
        out.append({"poison": "none", "row": row, "setting": "no defence", "seed": 0,
                    "fraction": 0.0, "surrogate": "resnet", "clean_accuracy": 99.0,
                    "n_eval": n, "masks": str(folder)})
    return out


def _judged(records):
    effects = poison_effects(records, fraction=0.1, n_boot=100)
    return {v["claim"]: v for v in poison_verdicts(effects, records=records, fraction=0.1)}


def test_every_row_of_the_claim_has_a_reading_and_gets_a_verdict_or_a_reason(tmp_path):
    rows = [c.label for c in claims() if c.claim_id == CLAIM]
    assert len(rows) == len(READINGS) >= 5
    judged = _judged(_records(tmp_path, cells={("badnets", "resnet"): (98.0, 95.0),
                                               ("badnets", "dfl_pcl"): (98.0, 94.0)}))
    assert sorted(judged) == sorted(rows)
    assert all(v["verdict"] and (v["verdict"] != "not testable here" or v["reason"])
               for v in judged.values())
    # a poison this part did not run: worded as the study report ranks an absent cell
    assert judged[ADVERSARIAL]["reason"].endswith("is not run at this profile")


def test_a_lower_attack_success_rate_is_the_claims_direction(tmp_path):
    judged = _judged(_records(tmp_path, cells={("badnets", "resnet"): (98.0, 95.0),
                                               ("badnets", "dfl_pcl"): (98.0, 10.0)}))
    v = judged[BADNETS_ASR]
    assert v["verdict"] == "reproduced" and v["low"] > 70 and v["seeds"] == 3 and v["n"] == 400
    assert "the plain ResNet minus DFL + PCL: +8" in v["numbers"]


def test_a_backdoor_the_defence_lets_through_more_often_is_not_reproduced(tmp_path):
    judged = _judged(_records(tmp_path, cells={("badnets", "resnet"): (98.0, 60.0),
                                               ("badnets", "dfl_pcl"): (98.0, 95.0)}))
    v = judged[BADNETS_ASR]
    assert v["verdict"] == "not reproduced" and v["high"] < 0
    assert "any positive effect is excluded" in v["numbers"]


def test_an_availability_poison_is_read_on_clean_accuracy(tmp_path):
    cells = {("adversarial", "resnet"): (20.0, None), ("adversarial", "dfl_pcl"): (60.0, None)}
    v = _judged(_records(tmp_path, cells=cells))[ADVERSARIAL]
    assert v["verdict"] == "reproduced" and v["quantity"] == "clean accuracy"
    assert v["rows"] == {"resnet": {"clean accuracy": 20.0},
                         "dfl_pcl": {"clean accuracy": 60.0}}


def test_a_one_seed_effect_reads_not_testable_and_states_no_equivalence(tmp_path):
    cells = {("badnets", "resnet"): (98.0, 60.0), ("badnets", "dfl_pcl"): (98.0, 99.0)}
    v = _judged(_records(tmp_path, cells=cells, seeds=(0,)))[BADNETS_ASR]
    assert v["verdict"] == "not testable here" and v["reason"] == "1 seed: an effect needs 3"
    assert "(image noise only)" in v["numbers"] and "excluded" not in v["numbers"]


def test_a_backdoor_that_does_not_take_hold_tests_no_defence(tmp_path):
    cells = {("badnets", "resnet"): (98.0, 3.0), ("badnets", "dfl_pcl"): (98.0, 1.0)}
    v = _judged(_records(tmp_path, cells=cells))[BADNETS_ASR]
    assert v["verdict"] == "not testable here" and "did not take hold" in v["reason"]


def _part(tmp_path, records, *, name="quick-full-poisoning"):
    part = tmp_path / "reports" / name
    (part / "07-data-poisoning").mkdir(parents=True)
    metrics = {"profile": name, "records": records, "fraction": 0.1,
               "effects": poison_effects(records, fraction=0.1, n_boot=100),
               "provenance": {"git_commit": "abcdef0123"}}
    (part / "07-data-poisoning" / "metrics.json").write_text(json.dumps(metrics))
    return part


_spec = importlib.util.spec_from_file_location("poison_verdicts_script",
                                               ROOT / "studies" / "poison_verdicts.py")
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)


def _script(capsys, *args):
    """The script's main in this process (a subprocess would import torch again): (code,
    stdout, stderr)."""
    code = script.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_page_is_what_the_study_report_reads(tmp_path, capsys):
    records = _records(tmp_path, cells={("badnets", "resnet"): (98.0, 95.0),
                                        ("badnets", "dfl_pcl"): (98.0, 10.0)})
    part = _part(tmp_path, records)
    code, out, err = _script(capsys, "--reports", str(tmp_path / "reports"), "--part", part.name)
    assert code == 0, err
    assert f"{BADNETS_ASR}: reproduced" in out
    saved = json.loads((part / "poisoning-verdicts" / "metrics.json").read_text())
    assert saved["provenance"]["source_commit"] == "abcdef0123"
    row = {r["claim"]: r for r in gather_claims(tmp_path / "reports")}[BADNETS_ASR]
    assert row["chosen"]["verdict"] == "reproduced"
    assert row["chosen"]["part"] == "quick-full-poisoning"
    assert "reproduced" in (part / "poisoning-verdicts" / "README.md").read_text()


@pytest.mark.parametrize("case", ["no notebook 07", "no effects", "a foreign page"])
def test_bad_input_is_one_line(tmp_path, capsys, case):
    records = _records(tmp_path, cells={("badnets", "resnet"): (98.0, 95.0),
                                        ("badnets", "dfl_pcl"): (98.0, 10.0)})
    part = _part(tmp_path, records)
    if case == "no notebook 07":
        args, needle = ("--part", "nowhere"), "no "
    elif case == "no effects":
        (part / "07-data-poisoning" / "metrics.json").write_text(json.dumps({"records": []}))
        args, needle = ("--part", part.name), "has no 'effects' and 'records'"
    else:
        (part / "poisoning-verdicts").mkdir()
        (part / "poisoning-verdicts" / "README.md").write_text("# someone else's page\n")
        args, needle = ("--part", part.name), "is not this script's page"
    code, _, err = _script(capsys, "--reports", str(tmp_path / "reports"), *args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_a_rate_sweeps_other_shares_stay_out_of_the_numbers(tmp_path):
    """Runs of the backdoor's rate sweep (here 5%) come before the default share's in the
    records: the verdict reads the share its effects are at (10%), whatever the order."""
    (tmp_path / "sweep").mkdir()
    sweep = _records(tmp_path / "sweep", cells={("badnets", "resnet"): (98.0, 40.0),
                                                ("badnets", "dfl_pcl"): (98.0, 30.0)},
                     seeds=(0,))
    for r in sweep:
        r["fraction"] = 0.05 if r["poison"] == "badnets" else r["fraction"]
    main = _records(tmp_path, cells={("badnets", "resnet"): (98.0, 95.0),
                                     ("badnets", "dfl_pcl"): (98.0, 94.0)})
    records = [r for r in sweep if r["poison"] == "badnets"] + main
    v = _judged(records)[BADNETS_ASR]
    assert v["rows"] == {"resnet": {"attack success rate": 95.0},
                         "dfl_pcl": {"attack success rate": 94.0}}
    assert v["numbers"].startswith("badnets (10% of the training set") and v["seeds"] == 3
