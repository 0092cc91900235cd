"""The additive margin softmax (AM-softmax; Wang et al. 2018): cross-entropy on cosine logits with
a margin subtracted from the true class's."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UsageError
from ..numerics import stat_dtype
from ..validation import check_nonnegative
from .base import _Loss, _check_batch


class AdditiveMarginSoftmax(_Loss):
    """Additive-margin softmax (CosFace, Wang et al. 2018; AM-softmax, Wang et al. 2018).

    For a model with a cosine head, logits = scale * cos(f, w_k) (build_model(..., head="cosine")
    with the same scale): CE after subtracting scale * margin from the true class's logit.
    Component "margin_ce". Features are not used. Raises ValueError when a logit exceeds `scale`
    in magnitude, i.e. the model has no cosine head or a larger scale than this loss.
    """

    def __init__(self, *, margin: float = 0.35, scale: float = 30.0):
        super().__init__()
        check_nonnegative(margin, name="margin")
        check_nonnegative(scale, name="scale")
        if scale == 0:
            raise UsageError(f"scale must be > 0, got {scale}")
        self.margin, self.scale = float(margin), float(scale)

    def components(self, logits, y, features=None) -> dict[str, torch.Tensor]:
        _check_batch(logits, y)
        top = float(logits.detach().abs().amax()) if logits.numel() else 0.0
        if top > self.scale * (1 + 1e-3):
            raise UsageError(f"AdditiveMarginSoftmax expects cosine logits scale * cos(f, w) with "
                             f"|logit| <= scale = {self.scale}, got |logit| up to {top:.4g}: build "
                             f"the model with head='cosine' and the same scale")
        # shifted in at least fp32: bf16 would round (true logit - scale * margin) to 8 bits
        logits = logits.to(stat_dtype(logits))
        shifted = logits - (self.scale * self.margin) * F.one_hot(y, logits.shape[1]).to(logits.dtype)
        return {"margin_ce": F.cross_entropy(shifted, y)}

    def extra_repr(self) -> str:
        return f"margin={self.margin}, scale={self.scale}"
