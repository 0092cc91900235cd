"""The flawed evaluations of notebook 08 (dfl_lib/forensics): without a flaw the loop is the
library's attack exactly; each flaw changes the result where it should (softmax clipping blinds
the attack on a confident network, train-mode BatchNorm moves running statistics, eps read in
standardised units is eps x std, clipping the perturbation keeps only brightening, judging
against clean predictions or the correct subset counts differently) and equals the honest
evaluation where it should not matter; and nothing outside notebook 08 can select a flaw."""
import ast
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import quadrants
from dfl_lib.attacks import REGISTRY
from dfl_lib.attacks.cw_pgd import cw_pgd
from dfl_lib.attacks.fgsm import fgsm
from dfl_lib.attacks.pgd import pgd
from dfl_lib.errors import UsageError
from dfl_lib.forensics.attack import _attacked_model, flawed_accuracy, flawed_attack
from dfl_lib.forensics.flaws import FLAWS, combine
from dfl_lib.forensics.study import forensic_cells, forensic_consistency, forensic_statement
from dfl_lib.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def net():
    """A small ResNet-18 with the DFL (BatchNorm everywhere), briefly trained on quadrants."""
    torch.manual_seed(0)
    x, y = quadrants(256, seed=0)
    model = build_model("resnet18", num_classes=4, in_channels=1, width=4, dfl=True,
                        mean=(0.2,), std=(0.3,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(12):
        for i in range(0, 256, 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64]).backward()
            opt.step()
    model.eval()
    xt, yt = quadrants(64, seed=1)
    return model, xt, yt


def _confident(model, x, y):
    """The same classifier with its logits scaled so that the median margin is 40: predictions
    unchanged, the softmax saturated in fp32 (p_y > 1 - 1e-7 from a margin of ~16) while the
    logits' CE still has a gradient (exp(-margin) underflows only past ~100; scaling by 1000,
    as defensive distillation's temperature does, would blind the honest CE too)."""
    import copy

    with torch.no_grad():
        logits = model(x)
        top2 = logits.topk(2, dim=1).values
        scale = 40.0 / float((top2[:, 0] - top2[:, 1]).median())
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.head.weight.mul_(scale)
        twin.head.bias.mul_(scale)
    return twin.eval()


@pytest.mark.parametrize("column", ["FGSM", "PGD-10", "C&W"])
def test_without_a_flaw_the_loop_is_the_library_attack(net, column):
    model, x, y = net
    ours = flawed_attack(model, x, y, column=column, eps=0.2,
                         generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    library = {"FGSM": lambda: fgsm(model, x, y, eps=0.2),
               "PGD-10": lambda: pgd(model, x, y, eps=0.2, steps=10, keep_best=False,
                                     generator=g),
               "C&W": lambda: cw_pgd(model, x, y, eps=0.2, steps=10, keep_best=False,
                                     generator=g)}[column]()
    assert torch.equal(ours, library)


def test_clipped_softmax_is_blind_on_a_confident_network(net):
    model, x, y = net
    confident = _confident(model, x, y)
    p = torch.softmax(confident(x), 1).gather(1, y[:, None]).squeeze(1)
    saturated = p > 1 - 1e-7
    assert saturated.sum() > 10
    x_adv = flawed_attack(confident, x, y, column="FGSM", eps=0.3,
                          options={"objective": "clipped_log_softmax"})
    assert torch.equal(x_adv[saturated], x[saturated])  # sign(0) = 0: those never move
    # at eps 1 the honest FGSM breaks the quadrant task; the clipped objective cannot start
    # (PGD's random start can leave the saturated region: FGSM's cannot)
    honest = flawed_accuracy(confident, x, y, column="FGSM", eps=1.0).mean()
    flawed = flawed_accuracy(confident, x, y, column="FGSM", eps=1.0,
                             options={"objective": "clipped_log_softmax"}).mean()
    assert flawed > honest + 0.1
    # where nothing saturates (the unscaled network at a tiny eps) the two objectives agree
    plain = flawed_attack(model, x, y, column="FGSM", eps=0.01)
    unsat = torch.softmax(model(x), 1).gather(1, y[:, None]).squeeze(1) < 0.999
    clipped = flawed_attack(model, x, y, column="FGSM", eps=0.01,
                            options={"objective": "clipped_log_softmax"})
    assert unsat.any() and torch.equal(plain[unsat], clipped[unsat])


def test_train_mode_batchnorm_moves_a_copy_and_never_the_model(net):
    model, x, y = net
    before = {k: v.clone() for k, v in model.state_dict().items()}
    twin = _attacked_model(model, "train")
    twin(x)
    bn = [k for k in before if k.endswith("running_mean")]
    assert any(not torch.equal(twin.state_dict()[k], before[k]) for k in bn)
    hits = flawed_accuracy(model, x, y, column="PGD-10", eps=0.2, options={"mode": "train"})
    assert len(hits) == len(y)
    assert not model.training and all(not m.training for m in model.modules())
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert all(p.requires_grad for p in model.parameters())
    # train-mode predictions read the batch's statistics: a batch of one class changes them
    with torch.no_grad():
        one_class = x[y == 0]
        assert not torch.allclose(_attacked_model(model, "train")(one_class), model(one_class))


def test_eps_in_normalised_units_is_eps_times_std(net):
    model, x, y = net
    std = float(model.normalize.std.mean())
    a = flawed_attack(model, x, y, column="PGD-10", eps=0.3, options={"eps_units": "normalised"},
                      generator=torch.Generator().manual_seed(1))
    b = flawed_attack(model, x, y, column="PGD-10", eps=0.3 * std,
                      generator=torch.Generator().manual_seed(1))
    assert torch.allclose(a, b, atol=1e-6)
    assert (a - x).abs().max() <= 0.3 * std + 1e-6 < 0.3


def test_clipping_flaws(net):
    model, x, y = net
    loose = flawed_attack(model, x, y, column="FGSM", eps=0.3, options={"clip": "none"})
    assert loose.min() < 0 or loose.max() > 1
    assert (loose - x).abs().max() <= 0.3 + 1e-6
    bright = flawed_attack(model, x, y, column="PGD-10", eps=0.3, options={"clip": "delta"},
                           generator=torch.Generator().manual_seed(0))
    assert (bright - x).min() >= 0 and (bright - x).max() > 0


def test_judges(net):
    model, x, y = net
    wrong = y.clone()
    wrong[:8] = (y[:8] + 1) % 4  # eight labels the network gets "wrong" on clean images
    honest = flawed_accuracy(model, x, wrong, column="FGSM", eps=0.0)
    vs_clean = flawed_accuracy(model, x, wrong, column="FGSM", eps=0.0,
                               options={"judge": "clean_predictions"})
    subset = flawed_accuracy(model, x, wrong, column="FGSM", eps=0.0,
                             options={"judge": "correct_subset"})
    assert vs_clean.all() and not honest.all()  # eps 0: nothing changes, every clean error counts
    assert len(subset) == int(honest.sum()) and subset.all()
    # a judging flaw may reuse the honest evaluation's images: same hits as computing anew
    cache: dict = {}
    first = flawed_accuracy(model, x, y, column="PGD-10", eps=0.2, cache=cache)
    reused = flawed_accuracy(model, x, y, column="PGD-10", eps=0.2, cache=cache,
                             options={"judge": "clean_predictions"})
    assert len(cache) == 1 and np.array_equal(
        reused, flawed_accuracy(model, x, y, column="PGD-10", eps=0.2,
                                options={"judge": "clean_predictions"}))
    assert np.array_equal(first, flawed_accuracy(model, x, y, column="PGD-10", eps=0.2))
    # a network right on every clean image: the subset judge equals the honest one
    correct = model(x).argmax(1)
    assert np.array_equal(flawed_accuracy(model, x, correct, column="PGD-10", eps=0.2),
                          flawed_accuracy(model, x, correct, column="PGD-10", eps=0.2,
                                          options={"judge": "correct_subset"}))


def test_transfer_from_the_model_itself_is_the_honest_evaluation(net):
    model, x, y = net
    honest = flawed_accuracy(model, x, y, column="PGD-10", eps=0.2)
    same = flawed_accuracy(model, x, y, column="PGD-10", eps=0.2, options={"source": "plain"},
                           plain=model)
    assert np.array_equal(honest, same)
    with pytest.raises(UsageError, match="plain"):
        flawed_accuracy(model, x, y, column="PGD-10", eps=0.2, options={"source": "plain"})


def test_bad_options_and_combinations_are_refused(net):
    model, x, y = net
    with pytest.raises(UsageError, match="unknown forensic options"):
        flawed_attack(model, x, y, column="FGSM", eps=0.1, options={"moed": "train"})
    with pytest.raises(UsageError, match="expected one of"):
        flawed_attack(model, x, y, column="FGSM", eps=0.1, options={"mode": "training"})
    with pytest.raises(UsageError, match="centroids"):
        flawed_attack(model, x, y, column="FGSM", eps=0.1, options={"objective": "centroid"})
    with pytest.raises(UsageError, match="set judge twice"):
        combine("clean-prediction-judge", "correct-subset")
    stacked = combine("eps-normalised", "softmax-clipped-log")
    assert stacked.options == {"eps_units": "normalised", "objective": "clipped_log_softmax"}
    assert stacked.columns == ("FGSM", "PGD-10")


def test_consistency_and_statement_from_records():
    records = []
    for flaw, acc in (("honest", 0.0), ("train-mode-bn", 58.0)):
        for row in ("resnet", "dfl"):
            paper = 0.0 if row == "resnet" else 59.6
            got = acc if row == "dfl" else 0.0
            records.append({"flaw": flaw, "row": row, "setting": "no defence",
                            "column": "PGD-10", "accuracy": got, "low": got - 5,
                            "high": got + 5, "paper": paper,
                            "inside": got - 5 <= paper <= got + 5})
    summary = forensic_consistency(records)
    by = {s["flaw"]: s for s in summary}
    assert by["train-mode-bn"]["consistent"] and not by["honest"]["consistent"]
    text = forensic_statement(summary)
    assert "'train-mode-bn' (2 of 2 cells)" in text and "not proof" in text
    dfl_only = [s for s in summary if s["flaw"] == "train-mode-bn"]
    dfl_only[0].update(cells=1, cells_inside=1)  # as a flaw that skips the plain ResNet
    assert "(1 of 2 cells: it does not apply to the plain ResNet's)" in forensic_statement(summary)
    for r in records:
        r.update(table="Table 3", setting="no defence")
    cells = forensic_cells(records)
    by_row = {c["row"]: c for c in cells}
    assert by_row["dfl"]["matched_by"] == ["train-mode-bn"] and by_row["dfl"]["honest"] == 0.0
    assert by_row["resnet"]["matched_by"] == ["train-mode-bn"]  # 0% lies inside both there
    text = forensic_statement(summary, cells=cells)
    assert "dfl PGD-10 59.6 by 'train-mode-bn'" in text
    assert text.index("resnet PGD-10") < text.index("dfl PGD-10")  # the ResNet's cells first


def test_the_statement_names_the_printed_numbers_no_flaw_reproduces():
    """Issue 39: 'consistent with the adversarial-training numbers' left out the plain ResNet's
    cells (paper 57-60%, ours 90-93%), where the paper's +37 comes from."""
    def cell(row, column, paper, honest, matched):
        return {"setting": "adversarial training", "row": row, "column": column,
                "table": "Table 1", "paper": paper, "honest": honest, "matched_by": matched}

    cells = [cell("resnet", "PGD-10", 57.19, 90.4, []),
             cell("dfl_pcl", "PGD-10", 98.31, 90.0, ["a", "b", "c"])]
    summary = [{"flaw": "honest", "setting": "adversarial training", "cells": 2,
                "cells_inside": 0, "dfl_cells": 1, "dfl_inside": 0, "distance": 20.0,
                "consistent": False},
               {"flaw": "a", "setting": "adversarial training", "cells": 1,
                "cells_inside": 1, "dfl_cells": 1, "dfl_inside": 1, "distance": 0.3,
                "consistent": True}]
    text = forensic_statement(summary, setting="adversarial training", cells=cells)
    assert "(1 of 2 cells: it does not apply to the plain ResNet's, whose printed numbers no " \
        "flaw we tried reproduces)" in text
    assert "no flaw we tried reproduces resnet PGD-10 57.19 (ours, honest: 90.4)" in text
    assert "near the ceiling (printed >= 95%) many pipelines land on a cell (dfl_pcl PGD-10: " \
        "3)" in text


# --------------------------------------------------------------------------- kept apart

def _dfl_lib_modules():
    for path in (ROOT / "dfl_lib").rglob("*.py"):
        if "forensics" not in path.relative_to(ROOT / "dfl_lib").parts:
            yield path


def test_nothing_in_the_library_imports_the_forensics():
    for path in _dfl_lib_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any("forensics" in n for n in names), f"{path} imports the forensics"


def test_no_registry_suite_or_profile_can_select_a_flaw():
    from dfl_lib.evaluation.suites import SUITES, attack_suite
    from dfl_lib.profiles import PROFILES
    from dfl_lib.experiments.configs import make_config

    flaw_words = set(FLAWS) | {"forensic"}
    for name, entry in REGISTRY.items():
        assert not any(w in name for w in flaw_words)
        for fn in (entry.fn, entry.run):
            assert "forensics" not in (getattr(fn, "__module__", "") or "")
    for profile in PROFILES:
        # the profile's settings (which notebooks its report has may name notebook 08)
        text = json.dumps(dataclasses.replace(PROFILES[profile], notebooks="all"), default=str)
        assert "forensic" not in text and not any(w in text for w in FLAWS)
        cfg = make_config(profile, dataset="mnist")
        for suite in SUITES:
            rows = json.dumps(attack_suite(cfg, suite=suite), default=str)
            assert not any(w in rows for w in flaw_words), (profile, suite)


def test_only_notebook_08_uses_the_forensics():
    import dfl_lib
    from dfl_lib import notebook_api

    assert not [n for n, (module, _) in dfl_lib.PUBLIC.items() if module.startswith("forensics")]
    names = [n for n, (module, _) in notebook_api.NOTEBOOK_NAMES.items()
             if module.startswith("forensics")]
    assert names, "notebook 08 reads the forensics through dfl_lib.notebook_api's names"
    assert (ROOT / "notebooks" / "08-forensics.ipynb").exists()
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        source = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"])
        uses = [n for n in names if n in source] + (["forensics"] if "forensics." in source
                                                     else [])
        if nb.stem == "08-forensics":
            assert uses
        else:
            assert not uses, f"{nb.name} uses {uses}"


@pytest.mark.parametrize("setting", ["no defence", "adversarial training"])
@pytest.mark.parametrize("profile", ["quick", "smoke"])
def test_forensics_loads_only_runs_the_plan_trains(profile, setting, monkeypatch):
    """load_run trains a missing run: the forensic study must ask only for planned cells, or a
    cell the profile leaves out (quick: the DFL's PGD training) is trained inside notebook 08,
    unplanned and untimed."""
    from dfl_lib.forensics import study as forensics
    from dfl_lib.study import records
    from dfl_lib.study.plan import study_plan

    asked = []

    class Stop(Exception):
        pass

    class NotLoaded(dict):
        def __getitem__(self, key):
            raise Stop

    def fake_load_run(cfg, **kw):
        asked.append(cfg)
        return NotLoaded()

    monkeypatch.setattr(forensics, "load_run", fake_load_run)
    monkeypatch.setattr(forensics, "SETTINGS", (setting,))
    with pytest.raises(Stop):
        forensics.forensic_records(profile)
    planned = {i.cfg.replace(device="auto") for i in study_plan(profile)}
    assert asked and all(c.replace(device="auto") in planned for c in asked)


def test_the_combinations_are_left_out_only_when_asked():
    from dfl_lib.forensics.flaws import COMBINATIONS
    from dfl_lib.forensics.study import forensic_flaws

    alone, every = forensic_flaws(combinations=False), forensic_flaws()
    assert [f.name for f in alone] == ["honest", *FLAWS]
    assert every[:len(alone)] == alone and len(every) == len(alone) + len(COMBINATIONS)
    assert all(len(f.parts) > 1 for f in every[len(alone):])
