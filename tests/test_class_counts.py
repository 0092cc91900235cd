"""Class counts other than 10 (issue 17, fault 2): every attack and evaluation path either gives
a result or refuses with a clear error from our code, before any work is done.

The reported example: a 3-class model under `apgd_t` / `autoattack` stopped with
`IndexError: index -4 is out of bounds for dimension 1 with size 3` inside torchattacks'
targeted DLR loss.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from dfl_lib.attacks import REGISTRY, build_peer_attack, n_targets
from dfl_lib.errors import UsageError
from dfl_lib.evaluation.robust import evaluate, robust_accuracy


def _linear(k: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, k)).eval()


def _batch(k: int, n: int = 8):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=g), torch.arange(n) % k


@pytest.mark.parametrize("attack", ["apgd_t", "autoattack"])
@pytest.mark.parametrize("k", [2, 3])
def test_targeted_dlr_refuses_fewer_than_4_classes_by_name(attack, k):
    x, y = _batch(k)
    with pytest.raises(UsageError, match=rf"'{attack}'.*at least 4 classes.*has {k}"):
        robust_accuracy(_linear(k), x, y, attack=attack, eps=0.1, steps=2)


def test_the_refusal_comes_before_any_row_runs():
    x, y = _batch(3)
    model = _linear(3)
    seen = []
    model.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    with pytest.raises(UsageError, match="apgd_t"):
        evaluate(model, x, y, attacks={"clean": {}, "pgd": {"eps": 0.1, "steps": 2},
                                       "apgd_t": {"eps": 0.1, "steps": 2}})
    assert all(b == 1 for b in seen), "a row ran before the class count was checked"


@pytest.mark.parametrize("k", [2, 3, 100])
@pytest.mark.parametrize("attack", ["clean", "fgsm", "pgd", "cw_pgd", "cw", "apgd_ce", "fab",
                                    "square"])
def test_attacks_defined_for_k_classes_give_results(attack, k):
    x, y = _batch(min(k, 8))
    kw = {"cw": {"binary_search_steps": 1, "steps": 5}, "square": {"n_queries": 10},
          "clean": {}, "fgsm": {"eps": 0.1}}.get(attack, {"eps": 0.1, "steps": 2})
    if attack in ("apgd_ce", "fab", "square"):
        kw["eps"] = 0.1
    row = robust_accuracy(_linear(k), x, y, attack=attack, **kw)
    assert row["n"] == len(y) and 0.0 <= row["accuracy"] <= 1.0
    assert row["n_classes"] == k


@pytest.mark.parametrize("k", [4, 100])
def test_targeted_attacks_run_with_autoattacks_targets(k):
    x, y = _batch(min(k, 8))
    for attack in ("apgd_t", "autoattack"):
        row = robust_accuracy(_linear(k), x[:4], y[:4], attack=attack, eps=0.05, steps=2,
                              **({"n_queries": 5} if attack == "autoattack" else {}))
        assert row["n_classes"] == k


@pytest.mark.parametrize("k,targets", [(3, 2), (4, 3), (10, 9), (100, 9)])
def test_targets_are_reduced_as_autoattacks_authors_do(k, targets):
    assert n_targets(k) == targets
    model = _linear(k)
    for kind in ("apgd_t", "fab"):
        atk = build_peer_attack(kind, model, eps=0.1, seed=0, n_classes=k, steps=2,
                                n_restarts=1)
        assert atk.n_target_classes == targets
    aa = build_peer_attack("autoattack", model, eps=0.1, seed=0, n_classes=k, steps=2,
                           n_queries=5)
    parts = [p for p in aa._autoattack.attacks if hasattr(p, "n_target_classes")]
    assert len(parts) == 2 and all(p.n_target_classes == targets for p in parts)


def test_a_label_outside_the_models_outputs_is_refused():
    x, _ = _batch(3)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 0])
    with pytest.raises(UsageError, match="label 3 .* 3 classes"):
        robust_accuracy(_linear(3), x, y, attack="clean")


def test_every_registered_attack_states_its_class_floor():
    for name, entry in REGISTRY.items():
        assert entry.min_classes >= 2 and entry.classes_why, name
    assert REGISTRY["apgd_t"].min_classes == 4 and REGISTRY["autoattack"].min_classes == 4
