"""One guard for every path that judges, attacks or extracts features from a model (issue 17,
fault 1): a model in eval mode at the top with one BatchNorm left in train mode is refused, and
nothing changes its buffers or mode.

The reported example: `evaluate.robust_accuracy`'s clean and transfer rows ran such a model and
rewrote `stem.1.running_mean` / `running_var`.
"""
from __future__ import annotations

import pytest
import torch

from dfl_lib.errors import UsageError
from dfl_lib.evaluation.robust import evaluate, robust_accuracy
from dfl_lib.evaluation.featurespace import penultimate_features
from dfl_lib.evaluation.fold import fold_batchnorm
from dfl_lib.evaluation.checks import masking_checks
from dfl_lib.evaluation.threat import ThreatModel
from dfl_lib.models.resnet import build_model


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model("resnet18", num_classes=10, in_channels=1, width=4, dfl=True)
    with torch.no_grad():  # non-trivial running statistics, so a rewrite would show
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _partly_training(seed: int = 0) -> torch.nn.Module:
    model = _model(seed)
    model.stem[1].train()  # the reported state: eval at the top, one BatchNorm in train mode
    return model


def _state(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [m.training for m in model.modules()])


def _assert_untouched(model, before):
    buffers, modes = before
    for k, v in model.state_dict().items():
        assert torch.equal(v, buffers[k]), f"{k} changed"
    assert [m.training for m in model.modules()] == modes


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(6, 1, 16, 16, generator=g), torch.arange(6) % 10


@pytest.mark.parametrize("attack", ["clean", "fgsm", "pgd", "cw_pgd"])
def test_every_row_refuses_a_model_partly_in_train_mode(attack, batch):
    x, y = batch
    model = _partly_training()
    before = _state(model)
    with pytest.raises(UsageError, match=r"eval mode.*stem\.1"):
        robust_accuracy(model, x, y, attack=attack, eps=0.1)
    _assert_untouched(model, before)


def test_transfer_refuses_a_partly_training_model_or_surrogate(batch):
    x, y = batch
    model, surrogate = _partly_training(0), _model(1)
    before = _state(model)
    with pytest.raises(UsageError, match="eval mode"):
        robust_accuracy(model, x, y, attack="transfer", surrogate=surrogate, eps=0.1, steps=2)
    _assert_untouched(model, before)
    model, surrogate = _model(0), _partly_training(1)
    before = _state(surrogate)
    with pytest.raises(UsageError, match=r"eval mode.*stem\.1"):
        robust_accuracy(model, x, y, attack="transfer", surrogate=surrogate, eps=0.1, steps=2)
    _assert_untouched(surrogate, before)


def test_evaluate_refuses_before_the_first_row(batch):
    x, y = batch
    model = _partly_training()
    before = _state(model)
    with pytest.raises(UsageError, match="eval mode"):
        evaluate(model, x, y, attacks={"clean": {}, "pgd": {"eps": 0.1, "steps": 2}})
    _assert_untouched(model, before)


@pytest.mark.parametrize("path", ["features", "fold", "masking"])
def test_features_folding_and_masking_checks_use_the_guard(path, batch):
    x, y = batch
    model = _partly_training()
    before = _state(model)
    with pytest.raises(UsageError, match=r"eval mode.*stem\.1"):
        if path == "features":
            penultimate_features(model, x)
        elif path == "fold":
            fold_batchnorm(model)
        else:
            masking_checks(model, x, y, threat=ThreatModel("Linf", 0.1))
    _assert_untouched(model, before)


def test_an_eval_model_leaves_every_row_unchanged(batch):
    x, y = batch
    model, surrogate = _model(0), _model(1)
    before, before_s = _state(model), _state(surrogate)
    evaluate(model, x, y, attacks={"clean": {}, "pgd": {"eps": 0.1, "steps": 2},
                                   "transfer": {"eps": 0.1, "steps": 2}},
             live={"surrogate": surrogate})
    penultimate_features(model, x)
    _assert_untouched(model, before)
    _assert_untouched(surrogate, before_s)
