"""Models: one network class (`StagedNet`: normalisation -> stem -> stages -> [DFL] -> pool ->
[extra FC] -> head) and the builders of every depth the paper uses.

    resnet.py   `build_model(name, num_classes=, in_channels=, width=, dfl=)`, `MODELS`,
                ResNet-18/34/50 and WideResNet
    dfl.py      the Defensive Feature Layer (the paper's Eq. 1, Figure 2)
    blocks.py   normalisation as the first layer, residual blocks, the cosine head
    narrow.py   strided convolutions with few input channels computed at stride 1 (oneDNN's
                strided CPU kernel corrupts the heap in their backward)

`model(x)` returns logits; `model(x, return_features=True)` returns (logits, features) with
features["penultimate"] the vector the classifier sees. May import: the core modules (errors,
validation) only; models know nothing of losses, attacks, training or evaluation.
"""
from .dfl import DefensiveFeatureLayer
from .resnet import MODELS, StagedNet, build_model

__all__ = ["MODELS", "StagedNet", "build_model", "DefensiveFeatureLayer"]
