"""Numerics shared by training, losses and multi-process statistics: the dtype a statistic is
taken in. A leaf module (imports torch only), so losses need not import training code."""
from __future__ import annotations

import torch

__all__ = ["stat_dtype"]


def stat_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype statistics of `tensors` are taken in: their promoted dtype, at least fp32 (bf16
    or fp16 activations under autocast -> fp32; fp64 stays fp64). Low-precision sums round
    every partial result to 8 (bf16) or 11 (fp16) significant bits, which a mean or variance
    over thousands of values, or a distance between nearby large vectors, cannot afford."""
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype
