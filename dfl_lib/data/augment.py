"""CIFAR-style training augmentation as one batched tensor operation.

The standard CIFAR-10 recipe (He et al. 2016, and the paper's training setup): pad each image with
`pad` zero pixels on every side, crop a random H x W window, and mirror it left-right with
probability 1/2. Here every sample gets its own shift and flip, but the whole batch is cropped by
one advanced-indexing call instead of a Python loop over samples.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UsageError

__all__ = ["augment_batch"]


def augment_batch(x: torch.Tensor, *, generator: torch.Generator | None = None, pad: int = 4,
                  flip: bool = True) -> torch.Tensor:
    """Random crop with `pad`-pixel zero padding plus random horizontal flip, per sample.

    x: images (N, C, H, W), float (any range; zeros are the padding value) or uint8 (0..255).
    generator: source of the random shifts/flips; they are drawn on the generator's device (CPU
        when None, from torch's default generator) and moved to x's device, so a CPU generator
        also drives a batch on the GPU.
    pad: padding in pixels; each sample is shifted by dy, dx drawn uniformly from [-pad, pad].
    flip: mirror each sample left-right with probability 1/2 (after the crop).
    Returns a new tensor with x's shape, dtype and device. With pad=0 and flip=False it equals x.
    """
    if x.dim() != 4:
        raise UsageError(f"x must have shape (N, C, H, W), got {tuple(x.shape)}")
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise UsageError(f"pad must be an integer >= 0 (pixels), got {pad!r}")
    n, c, h, w = x.shape
    if n == 0 or (pad == 0 and not flip):
        return x.clone()
    draw_device = generator.device if generator is not None else torch.device("cpu")
    # Top-left corner of each window in the padded image: 0..2*pad, i.e. a shift of -pad..pad.
    top = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=draw_device)
    left = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=draw_device)
    mirror = (torch.randint(0, 2, (n,), generator=generator, device=draw_device).bool()
              if flip else torch.zeros(n, dtype=torch.bool, device=draw_device))
    top, left, mirror = top.to(x.device), left.to(x.device), mirror.to(x.device)

    padded = F.pad(x, (pad, pad, pad, pad)) if pad else x          # (N, C, H+2p, W+2p), zeros
    rows = top[:, None] + torch.arange(h, device=x.device)          # (N, H) padded-row index
    cols = left[:, None] + torch.arange(w, device=x.device)         # (N, W) padded-column index
    cols = torch.where(mirror[:, None], cols.flip(1), cols)         # mirror: columns reversed
    # One gather for the whole batch: out[i, ch, r, q] = padded[i, ch, rows[i, r], cols[i, q]].
    batch = torch.arange(n, device=x.device)[:, None, None, None]   # (N, 1, 1, 1)
    chan = torch.arange(c, device=x.device)[None, :, None, None]    # (1, C, 1, 1)
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]
