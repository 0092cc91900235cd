"""Poisons crafted against each victim itself (issue 39, item 5: "an attacker who knows the
defence"): the config field `poison_surrogate`, the reference network it picks, the keys it must
leave alone at its old value, the poisoning grid's adaptive cells, and the effects that keep
transfer and adaptive poisons apart. No model is trained here except where marked."""
import json
from pathlib import Path

import numpy as np
import pytest

from dfl_lib.config import EVAL_ONLY, RunConfig
from dfl_lib.device import key_device
from dfl_lib.errors import UsageError
from dfl_lib.experiments.configs import checked
from dfl_lib.experiments.poisoned import poison_key, reference_config
from dfl_lib.experiments.run import eval_key
from dfl_lib.runs import io as runio
from dfl_lib.runs.folder import run_name, run_path
from dfl_lib.runs.versions import computation_version
from dfl_lib.study.plan import cell_config, poison_grid
from dfl_lib.study.poison_records import ADAPTIVE, TRANSFER, poison_effects, transfer_records

ROOT = Path(__file__).resolve().parents[1]
VICTIM = RunConfig(dataset="mnist", model="resnet18", width=4, dfl=True, loss="pcl",
                   poison="adversarial", poison_seed=3, device="cpu")


class _Data:
    fingerprint = "f" * 12


def test_the_victim_surrogate_keeps_the_defence_and_the_default_drops_it():
    plain = reference_config(VICTIM)
    assert (plain.dfl, plain.loss, plain.seed) == (False, "ce", 2003)
    own = reference_config(VICTIM.replace(poison_surrogate="victim"))
    assert (own.dfl, own.loss, own.seed, own.poison) == (True, "pcl", 2003, "none")
    assert own.train_attack == "none" and own.poison_surrogate == "resnet"
    # another poisoned set, another run folder, told apart by name
    assert poison_key(VICTIM, _Data()) != poison_key(VICTIM.replace(poison_surrogate="victim"),
                                                     _Data())
    assert run_name(VICTIM.replace(poison_surrogate="victim")).endswith("adaptive-s0")
    assert "adaptive" not in run_name(VICTIM)


def _without_surrogate(cfg: RunConfig) -> dict:
    return {k: v for k, v in cfg.to_dict().items() if k != "poison_surrogate"}


def test_at_its_old_value_the_new_field_changes_no_key():
    """Every key made before the field existed must stay: runs, evaluations and poisoned sets
    would otherwise be retrained, re-evaluated and re-crafted."""
    data = _Data()
    old_run = runio.run_key(config={k: v for k, v in _without_surrogate(VICTIM).items()
                                    if k not in EVAL_ONLY},
                            data_fingerprint=data.fingerprint,
                            versions=computation_version("train"))
    assert run_path(VICTIM, data, runs_root="/r").name.endswith(old_run)
    assert run_path(VICTIM.replace(poison_surrogate="victim"), data,
                    runs_root="/r").name.split("-")[-1] != old_run
    old_poison = runio.short_hash({
        "poison": {k: v for k, v in _without_surrogate(VICTIM).items()
                   if k.startswith("poison")},
        "data": data.fingerprint, "eps": VICTIM.eps,
        "reference": {**_without_surrogate(reference_config(VICTIM)),
                      "device": key_device("cpu")},
        "code": computation_version("poison", "train")})
    assert poison_key(VICTIM, data) == old_poison
    assert eval_key(VICTIM, suite="table", transfer=False) != eval_key(
        VICTIM.replace(poison_surrogate="victim"), suite="table", transfer=False)


def test_the_committed_quick_runs_keep_their_folders(real_data_root):
    """The quick study's record names its runs' folders; the plan must still find them there."""
    from dfl_lib.experiments.data import load_data

    index = json.loads((ROOT / "reports/quick/record/index.json").read_text())
    checked_cells = 0
    for cell in index["cells"]:
        for seed, path in enumerate(cell["per_seed"]):
            cfg = cell_config("quick", dataset=cell["dataset"], row=cell["row"],
                              setting=cell["setting"], seed=seed, device="cpu")
            cfg = cfg.replace(precision="fp32")  # as the committed runs were trained
            data = load_data(cfg, root=real_data_root)
            assert run_path(cfg, data, runs_root="runs").name == Path(path).parent.name
            checked_cells += 1
    assert checked_cells >= 6


@pytest.mark.parametrize("fields, match", [
    ({"poison": "badnets", "poison_surrogate": "victim"}, "crafted against no network"),
    ({"poison_surrogate": "victim"}, "without a poison"),
])
def test_a_surrogate_that_cannot_apply_is_a_one_line_error(fields, match):
    with pytest.raises(UsageError, match=match) as err:
        checked(RunConfig(dataset="mnist", device="cpu").replace(**fields))
    assert "\n" not in str(err.value)


def test_the_grid_crafts_against_each_victim_and_keeps_the_old_keys():
    smoke = dict(poison_grid("smoke", device="cpu"))
    adaptive = {k: c for k, c in smoke.items() if c.poison_surrogate == "victim"}
    assert list(adaptive) == ["poison | adversarial | dfl_pcl | no defence | s0 | "
                              "crafted against the victim"]
    transfer = smoke["poison | adversarial | dfl_pcl | no defence | s0"]
    assert transfer.poison_surrogate == "resnet"
    assert adaptive[list(adaptive)[0]] == transfer.replace(poison_surrogate="victim")
    # the quick grid (BadNets only: crafted against no network) has no adaptive cell
    assert all(c.poison_surrogate == "resnet" for _, c in poison_grid("quick", device="cpu"))
    full = poison_grid("quick-full-poisoning", device="cpu")
    rows = {(c.poison, c.dfl, c.loss, c.seed) for _, c in full if c.poison_surrogate == "victim"}
    assert ("adversarial", True, "pcl", 2) in rows  # the headline with every seed
    assert {p for p, *_ in rows} == {"adversarial", "clean_label", "error_min"}
    assert not any(not dfl and loss == "ce" for _, dfl, loss, _ in rows)  # never the ResNet


def _record(tmp_path, row, seed, p_clean, *, surrogate="resnet", poison="adversarial",
            rng=np.random.default_rng(0)):
    folder = tmp_path / f"{row}-{seed}-{surrogate}-{poison}"
    folder.mkdir()
    np.save(folder / "clean.npy", rng.random(600) < p_clean)
    return {"poison": poison, "row": row, "setting": "no defence", "seed": seed,
            "fraction": 0.0 if poison == "none" else 0.1, "clean_accuracy": 100 * p_clean,
            "surrogate": surrogate, "masks": str(folder)}


def test_transfer_and_adaptive_effects_are_kept_apart(tmp_path):
    """The defence keeps its clean accuracy against the ResNet's poison (transfer) and loses it
    against its own (adaptive): mixing the runs would blur both answers."""
    records = [_record(tmp_path, row, 0, 0.99, poison="none") for row in ("resnet", "dfl_pcl")]
    for seed in (0, 1, 2):
        records.append(_record(tmp_path, "resnet", seed, 0.60))
        records.append(_record(tmp_path, "dfl_pcl", seed, 0.95))
        records.append(_record(tmp_path, "dfl_pcl", seed, 0.40, surrogate="victim"))
    effects = {e["attacker"]: e for e in poison_effects(records, fraction=0.1, n_boot=50)
               if e["poison"] == "adversarial"}
    assert effects[TRANSFER]["answer"] == "mitigates" and effects[TRANSFER]["effect"] > 25
    assert effects[ADAPTIVE]["answer"] == "worsens" and effects[ADAPTIVE]["effect"] < -10
    assert all(r["surrogate"] == "resnet" for r in transfer_records(records))
    assert len(transfer_records(records)) == len(records) - 3


def test_the_grids_rate_is_the_profiles_not_the_largest_swept(tmp_path):
    """The clean-label sweep goes up to all of its target class (rate 1): notebook 07 took the
    largest rate as the grid's and found no adaptive run at it (the quick-full-poisoning study
    stopped there)."""
    from dfl_lib.study.plan import poison_fraction

    assert poison_fraction("quick-full-poisoning") == 0.1
    assert max(c.poison_fraction for _, c in poison_grid("quick-full-poisoning", device="cpu")
               if c.poison != "none") == 1.0
    records = [_record(tmp_path, row, 0, 0.99, poison="none") for row in ("resnet", "dfl")]
    for seed in (0, 1, 2):
        records.append(_record(tmp_path, "resnet", seed, 0.6))
        records.append(_record(tmp_path, "dfl", seed, 0.9))
    records.append({**_record(tmp_path, "resnet", 9, 0.5, poison="clean_label"), "fraction": 1.0})
    effects = poison_effects(records, n_boot=20)  # no rate given: the one most runs share
    assert {e["poison"] for e in effects} >= {"adversarial"}
    assert all(e["seeds"] == 3 for e in effects if e["poison"] == "adversarial")


def test_an_adaptive_cell_only_where_the_victims_poison_differs():
    """Error-minimising noise trains a fresh network with its own cross-entropy: a PCL-only
    victim (the plain ResNet's network) got the very poison the plain ResNet got, and its
    "crafted against itself" run repeated the transfer run to the last mask (quick-full-
    poisoning at f863b0a). The grid leaves such cells out."""
    from dfl_lib.experiments.poisoned import adaptive_differs

    base = RunConfig(dataset="mnist", model="resnet18", width=4, dfl=False, loss="ce",
                     device="cpu")
    assert not adaptive_differs(base.replace(poison="error_min", loss="pcl"))
    assert adaptive_differs(base.replace(poison="error_min", dfl=True))
    assert adaptive_differs(base.replace(poison="adversarial", loss="pcl"))
    assert not adaptive_differs(base.replace(poison="badnets", dfl=True))
    cells = {(c.poison, c.dfl, c.loss) for _, c in poison_grid("quick-full-poisoning",
                                                               device="cpu")
             if c.poison_surrogate == "victim"}
    assert ("error_min", False, "pcl") not in cells and ("error_min", True, "pcl") in cells
