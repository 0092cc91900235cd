"""The depth regime pilot (studies/depth_regime.py): its plain ResNet-18 is the quick profile's
table cell (so the AutoAttack-verified run stands in), its deeper nets differ from it only in
depth and the DFL, the attacks' masks re-derive every number and the worst case, a rerun
attacks nothing twice, and a bad option is one line."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "studies"))
import depth_regime as dr  # noqa: E402
import headline  # noqa: E402

from dfl_lib.study.plan import cell_config  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_plain_resnet18_is_quicks_table_cell_and_the_others_differ_only_in_depth_and_dfl():
    for seed in (0, 2):
        ours = dr.config("resnet18", seed=seed).to_dict()
        table = cell_config("quick", dataset="mnist", row="resnet", setting="adversarial training",
                            seed=seed, device="cpu").to_dict()
        assert ours == table
    base = dr.config("resnet18", seed=0).to_dict()
    for name, model, dfl in (("resnet50", "resnet50", False), ("resnet34+dfl", "resnet34", True)):
        other = dr.config(name, seed=0).to_dict()
        assert {k for k in base if base[k] != other[k]} <= {"model", "dfl"}
        assert (other["model"], other["dfl"]) == (model, dfl)
    with pytest.raises(dr.UsageError, match="--models must be among"):
        dr.config("resnet101", seed=0)


def test_masks_give_every_number_and_the_worst_case_is_below_each_attack(tiny_task):
    model, x, y = tiny_task
    saved = []
    done = dr.evaluate(model, x, y, attacks=("pgd10", "apgd_ce"), seed=0, eps=0.2,
                       save=lambda d: saved.append(dict(d)))
    assert set(done) == {"clean", "pgd10", "apgd_ce"} and len(saved) == 2
    for r in done.values():
        assert headline.unhex(r["mask"], n=r["n"]).mean() * 100 == pytest.approx(r["accuracy"])
    worst = dr.summary({"attacks": done})
    assert worst["accuracy"] <= min(done[a]["accuracy"] for a in ("pgd10", "apgd_ce"))
    assert worst["of"] == ["PGD-10", "APGD-CE"] and worst["n"] == len(y)
    again = dr.evaluate(model, x, y, attacks=("pgd10", "apgd_ce"), seed=0, eps=0.2, done=done,
                        save=lambda d: saved.append(d))
    assert again == done and len(saved) == 2  # nothing attacked twice


def _entry(model: str, seed: int, *, loss: float) -> dict:
    history = [{"epoch": e, "train_loss": loss * (3 - e), "train_error": 0.1, "val_acc": 0.98,
                "val_adv_acc": 0.9, "val_adv_error": 0.1} for e in (1, 2)]
    mask = headline.hex_mask([True] * 8 + [False] * 2)
    return {"model": model, "seed": seed, "run": f"run-{model}", "history": history,
            "last": {k: history[-1].get(k) for k in dr.QUANTITIES},
            "attacks": {"clean": {"mask": mask, "accuracy": 80.0, "n": 10},
                        "pgd50": {"mask": mask, "accuracy": 80.0, "n": 10}}}


def test_the_page_has_a_row_per_model_and_the_curves(tmp_path):
    report = {"profile": dr.PROFILE, "recipe": dr.RECIPE, "n": 10, "eps": 0.3, "models": {
        "resnet50+dfl s0": _entry("resnet50+dfl", 0, loss=0.5),
        "resnet18 s0": _entry("resnet18", 0, loss=0.3)}}
    dr.write_page(report, out=tmp_path / "pilot.json")
    page = (tmp_path / "README.md").read_text()
    rows = [li for li in page.splitlines() if li.startswith("| ResNet")]
    assert [r.split(" | ")[0] for r in rows] == ["| ResNet-18", "| ResNet-50 + DFL"]
    assert rows[0].endswith("| 80.0 | 80.0 | 80.0 | nan |")  # clean, PGD-50, worst, minutes
    assert "any verdict" in page and (tmp_path / "curves.png").stat().st_size > 10_000


def test_a_bad_option_is_one_line(capsys, tmp_path):
    assert dr.main(["--seeds", "x", "--out", str(tmp_path / "p.json")]) == 2
    assert dr.main(["--attacks", "fab", "--out", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(e.startswith("error:") for e in err)
