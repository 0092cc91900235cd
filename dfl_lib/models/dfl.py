"""The Defensive Feature Layer (the paper's Section 3.1, Eq. 1; Figure 2): a 1x1 deconvolution
block on each ResNet stage's output, max-pooled to the last stage's spatial size and
concatenated with it, so the classifier sees multi-scale "defensive" feature maps.

Used by every builder in `resnet.py` when dfl=True.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError

__all__ = ["DefensiveFeatureLayer"]


class DefensiveFeatureLayer(nn.Module):
    """The paper's DFL (Eq. 1): F = F_m (+) ||_{j<m} D(F_j).

    Each stage output F_j but the last goes through a deconvolution block D_j (a 1x1
    ConvTranspose2d that keeps F_j's channel count by default, BatchNorm, ReLU), is max-pooled to
    the last stage's spatial size, and everything is concatenated with F_m along channels.
    Adaptive max-pooling is used because no fixed kernel fits every input size: MNIST's stages
    are 28/14/7/4 pixels wide, CIFAR-10's 32/16/8/4.
    """

    def __init__(self, stage_channels: Sequence[int], *, deconv_channels: Sequence[int] | None = None):
        super().__init__()
        early = list(stage_channels[:-1])
        out = list(deconv_channels) if deconv_channels is not None else early
        if len(out) != len(early):
            raise UsageError(f"deconv_channels needs {len(early)} entries, got {len(out)}")
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(c_in, c_out, kernel_size=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            )
            for c_in, c_out in zip(early, out)
        )
        self.out_channels = sum(out) + stage_channels[-1]

    def forward(self, stages: Sequence[torch.Tensor]) -> torch.Tensor:
        """stages: [F_1 (N, c_1, H_1, W_1), ..., F_m (N, c_m, H_m, W_m)] -> (N, sum c, H_m, W_m)."""
        last = stages[-1]
        size = last.shape[-2:]
        pooled = [F.adaptive_max_pool2d(block(f), size) for block, f in zip(self.blocks, stages[:-1])]
        return torch.cat([last, *pooled], dim=1)
