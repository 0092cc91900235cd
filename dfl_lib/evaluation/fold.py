"""BatchNorm folded into the convolution before it, for evaluation.

In eval mode a BatchNorm after a convolution is a fixed per-channel affine map, so it can be
merged into the convolution's weight and bias: the same function (up to float rounding, ~1e-6 of
the logits) with one pass over the activations fewer, forward and backward. Attacks spend
nearly all their time in those passes: AutoAttack on a quick-profile ResNet-18 ran 1.23x faster
folded with identical per-example results (benchmarks/fold_bn.py, benchmarks/README.md).

    attacked = fold_batchnorm(model)   # a folded copy in eval mode; `model` is left untouched

The last copy made is kept and handed out again while the model's parameters and buffers are
the same tensors, unchanged (their in-place version counters): a suite folds each model once,
not once per attack row (a tenth of the smoke study's evaluation time was deep copies).

Folded only where the BatchNorm reads the convolution's output directly: consecutive (conv, BN)
in an nn.Sequential (stems, shortcuts, the DFL's deconvolution blocks) and convN -> bnN in the
post-activation ResNet blocks. Pre-activation blocks (WideResNet: BN before its conv) keep
their BatchNorm.
"""
from __future__ import annotations

import copy
import itertools
import weakref

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..models.blocks import BasicBlock, Bottleneck
from ..validation import require_eval

__all__ = ["fold_batchnorm", "count_batchnorm"]

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)
_LAST: dict = {}  # the last fold: {"model": weakref to it, "state": its state key, "folded"}


def _fuse(conv: nn.Module, bn: nn.BatchNorm2d) -> nn.Module:
    return fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of `model` (which must be in eval mode) with every conv -> BatchNorm pair folded
    into one convolution; its parameters require no gradient (attacks need input gradients
    only) and it keeps the model's memory format. The copy is for evaluation only: training it
    would train a different parametrisation."""
    # train-mode BatchNorm normalises with batch statistics, which cannot be folded
    require_eval(model, what="folding its BatchNorm")
    state = _state_key(model)
    source = _LAST.get("model")
    if source is not None and source() is model and _LAST["state"] == state \
            and _state_key(_LAST["folded"]) == _LAST["folded_state"]:  # nobody changed the copy
        return _LAST["folded"]
    folded = _fold(model)
    _LAST.update(model=weakref.ref(model), state=state, folded=folded,
                 folded_state=_state_key(folded))
    return folded


def _state_key(model: nn.Module) -> tuple:
    """What a fold depends on: each parameter and buffer (which tensor, where its memory is, its
    dtype, and its in-place version: an optimiser step or a BatchNorm update moves it) and every
    module's train/eval flag."""
    tensors = itertools.chain(model.parameters(), model.buffers())
    return (tuple((id(t), t.data_ptr(), t.dtype, t._version) for t in tensors),
            tuple(m.training for m in model.modules()))


def _fold(model: nn.Module) -> nn.Module:
    folded = copy.deepcopy(model)
    for module in folded.modules():
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if isinstance(module[i], _CONVS) and isinstance(module[i + 1], nn.BatchNorm2d):
                    module[i], module[i + 1] = _fuse(module[i], module[i + 1]), nn.Identity()
        elif isinstance(module, (BasicBlock, Bottleneck)):
            for k in (1, 2, 3):
                conv, bn = getattr(module, f"conv{k}", None), getattr(module, f"bn{k}", None)
                if isinstance(conv, _CONVS) and isinstance(bn, nn.BatchNorm2d):
                    setattr(module, f"conv{k}", _fuse(conv, bn))
                    setattr(module, f"bn{k}", nn.Identity())
    folded.requires_grad_(False)
    if _channels_last(model):
        folded.to(memory_format=torch.channels_last)
    return folded.eval()


def count_batchnorm(model: nn.Module) -> int:
    """How many BatchNorm2d layers a model still has."""
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def _channels_last(model: nn.Module) -> bool:
    """Whether the model's first 4-D convolution weight is stored channels-last."""
    for p in model.parameters():
        if p.dim() == 4 and p.shape[1] > 1:
            return p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
    return False
