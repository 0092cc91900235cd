"""The paper's method (Hassanin et al.): a ResNet with or without the Defensive Feature Layer,
trained with cross-entropy or the Polarised Contrastive Loss, clean ("no defence") or on
attacked samples ("adversarial training"). It is the base behaviour of `Defence`."""
from __future__ import annotations

from .base import Defence, register_defence


@register_defence
class Standard(Defence):
    """cfg.method = "standard": the paper's training, as `Defence` defines it."""

    name = "standard"
