"""The training's PGD monitor (train.validate): a class-balanced subset of the validation split,
whatever the file order, and an example counts as robust only if it is also correct clean."""
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from dfl_lib.experiments.configs import make_config
from dfl_lib.training.trainer import monitor_indices, validate

GREY = 128  # uint8 grey: clean images are exactly 128 / 255 after to_float


class _Rule(nn.Module):
    """Logits (N, 2) by a fixed rule on the pixels (no weights): `rule(x) -> predicted class (N,)`.
    Its input gradient is zero, so PGD never moves from its random start."""

    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def forward(self, x, return_features=False):
        pred = self.rule(x)  # (N,)
        logits = 10.0 * F.one_hot(pred, 2).float() + 0.0 * x.flatten(1).sum(1, keepdim=True)
        return (logits, {"penultimate": logits}) if return_features else logits


def _data(labels: torch.Tensor) -> SimpleNamespace:
    """A validation split of grey 1x4x4 images in the given label order (file order)."""
    x = torch.full((len(labels), 1, 4, 4), GREY, dtype=torch.uint8)
    return SimpleNamespace(x_val=x, y_val=labels, num_classes=2)


def _validate(model, data, **kw) -> dict:
    cfg = make_config("smoke", eps=0.1, attack_steps=3, monitor_size=20, eval_batch_size=8,
                      device="cpu", **kw)
    return validate(model.eval(), lambda logits, y, feats: F.cross_entropy(logits, y), data, cfg)


def test_monitor_subset_is_class_balanced_on_class_sorted_files():
    y = torch.arange(10).repeat_interleave(50)  # 500 labels, class by class (image folders)
    idx = monitor_indices(y, n=100, num_classes=10, seed=7)
    assert torch.bincount(y[idx], minlength=10).tolist() == [10] * 10
    assert torch.equal(idx, monitor_indices(y, n=100, num_classes=10, seed=7))  # fixed per run


def test_monitor_of_a_constant_model_matches_its_clean_accuracy_on_sorted_files():
    # class 0 first: a prefix of the split would be all class 0 and the model 100% "robust"
    data = _data(torch.tensor([0] * 30 + [1] * 30))
    out = _validate(_Rule(lambda x: torch.zeros(len(x), dtype=torch.long)), data)
    assert out["val_acc"] == 0.5
    assert out["val_adv_acc"] == 0.5


def test_monitor_counts_an_example_robust_only_if_it_is_correct_clean():
    # every image is class 1; the model says 1 for any image off the grey and 0 on it: wrong on
    # every clean image, right at every PGD iterate (the random start leaves the grey for good)
    data = _data(torch.ones(40, dtype=torch.long))
    off_grey = lambda x: ((x - GREY / 255).abs().flatten(1).amax(1) > 1e-6).long()  # noqa: E731
    out = _validate(_Rule(off_grey), data)
    assert out["val_acc"] == 0.0
    assert out["val_adv_acc"] == 0.0
