"""Strided convolutions with few input channels, computed without oneDNN's strided kernel.

On this project's CPUs, oneDNN (torch 2.14.1) corrupts the heap in the backward of a strided
convolution with fewer than 8 input channels (its `brgconv_strided` AVX2 kernel: "double free or
corruption", "corrupted double-linked list", a bus error or a segfault, later, anywhere). Measured
on an AVX2 AMD EPYC with one thread: 1x1 stride-2 convolutions with 2, 4, 5, 6 and 7 input
channels crash, with 8, 9, 12 and more never; in channels-last or contiguous memory alike (for
1-channel images oneDNN picks its own layout); a width-4 ResNet's shortcut is such a layer, and
it killed test workers in training and in attacks. On the AVX-512 CPU it crashed with 2 threads.

Such a layer here computes the same function another way: a 1x1 kernel without padding reads
every s-th pixel, so it runs at stride 1 on the subsampled input; any other kernel runs at stride
1 and its output is subsampled (the same outputs: a stride-s convolution is the stride-1 one
read every s-th position). Stride-1 convolutions do not use the strided kernel. The layer stays
an nn.Conv2d with the same parameters (checkpoints, folding and the optimiser see no change);
only its forward differs.

    guard_narrow_strided(model)    # every such layer of `model`, in place; returns how many
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MIN_STRIDED_CHANNELS", "NarrowStridedConv2d", "guard_narrow_strided"]

MIN_STRIDED_CHANNELS = 8  # input channels from which oneDNN's strided kernel is safe


class NarrowStridedConv2d(nn.Conv2d):
    """An nn.Conv2d (stride > 1, fewer than MIN_STRIDED_CHANNELS input channels) computed at
    stride 1; input (N, C_in, H, W) -> output (N, C_out, H_out, W_out) as nn.Conv2d's."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias):
        sh, sw = self.stride
        if self.padding_mode != "zeros":  # padding modes other than zeros pad explicitly
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding = (0, 0)
        else:
            padding = self.padding
        if self.kernel_size == (1, 1) and padding in ((0, 0), "valid"):
            return F.conv2d(x[:, :, ::sh, ::sw], weight, bias, 1, 0, self.dilation, self.groups)
        out = F.conv2d(x, weight, bias, 1, padding, self.dilation, self.groups)
        return out[:, :, ::sh, ::sw]


def guard_narrow_strided(model: nn.Module) -> int:
    """Make every strided nn.Conv2d of `model` with fewer than MIN_STRIDED_CHANNELS input
    channels a NarrowStridedConv2d (in place: the same parameters); returns how many."""
    count = 0
    for module in model.modules():
        if type(module) is nn.Conv2d and max(module.stride) > 1 \
                and module.in_channels < MIN_STRIDED_CHANNELS:
            module.__class__ = NarrowStridedConv2d
            count += 1
    return count
