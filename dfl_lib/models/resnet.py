"""CIFAR-style ResNet-18/34/50 and WideResNet, with or without the Defensive Feature Layer.

One network class (`StagedNet`) serves every architecture: normalisation -> stem -> stages ->
[DFL] -> global average pool -> [extra FC] -> head. The builders only choose the stem, the
block type and the stage widths, so "with DFL" and "without DFL" differ in exactly one module.

    model = build_model("resnet50", num_classes=10, in_channels=3, dfl=True)
    logits = model(x)                                  # x (N, 3, 32, 32) in [0, 1]
    logits, feats = model(x, return_features=True)     # feats["penultimate"]: (N, d)
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError, UsageTypeError
from ..validation import check_known
from .blocks import BasicBlock, Bottleneck, CosineClassifier, Normalize, WideBasicBlock
from .dfl import DefensiveFeatureLayer
from .narrow import guard_narrow_strided

__all__ = ["StagedNet", "Backbone", "Head", "resnet18", "resnet34", "resnet50", "wide_resnet", "MODELS", "build_model"]


@dataclass(frozen=True)
class Backbone:
    """The trunk of a `StagedNet`: the stem, the stages in order with each stage's output
    channels, and an optional module applied to the last stage's map (pre-activation nets
    such as WRN need a last BN-ReLU there; None: identity)."""
    stem: nn.Module
    stages: Sequence[nn.Module]
    stage_channels: Sequence[int]
    final: nn.Module | None = None


@dataclass(frozen=True)
class Head:
    """The classifier on the pooled features: `num_classes` outputs, "linear" or "cosine"
    (`CosineClassifier` at `cosine_scale`), with Mustafa et al.'s extra FC layer of `extra_fc`
    units (and a ReLU) before it when set."""
    num_classes: int
    kind: str = "linear"
    extra_fc: int | None = None
    cosine_scale: float = 30.0


class StagedNet(nn.Module):
    """A classifier made of a stem and a list of stages, optionally with the DFL.

    backbone: the stem, stages and their channels (`Backbone`); head: the classifier
    (`Head`); in_channels, mean, std: the input it expects (C of (N, C, H, W) in [0, 1]) and the
    per-channel normalisation applied first; dfl: the Defensive Feature Layer on every stage.
    Raises UsageError for an unknown head kind.

    Features returned with `return_features=True` (a dict):
      "pooled":      (N, d_pool) global-average-pooled map (the DFL concatenation when dfl=True);
      "penultimate": (N, d) the vector fed to the head: "pooled", or the extra FC layer's output
                     when `extra_fc` is set (Mustafa et al.'s 1024-d layer).
    """

    def __init__(self, *, backbone: Backbone, head: Head, in_channels: int,
                 mean: Sequence[float], std: Sequence[float], dfl: bool):
        super().__init__()
        # the modules are made in the order the parameters are initialised and saved
        self.in_channels = in_channels
        self.num_classes = head.num_classes
        self.normalize = Normalize(mean, std)
        self.stem = backbone.stem
        self.stages = nn.ModuleList(backbone.stages)
        self.final = backbone.final if backbone.final is not None else nn.Identity()
        channels = backbone.stage_channels
        self.dfl = DefensiveFeatureLayer(channels) if dfl else None
        d_pool = self.dfl.out_channels if dfl else channels[-1]
        extra_fc = head.extra_fc
        self.extra_fc = nn.Sequential(nn.Linear(d_pool, extra_fc), nn.ReLU()) if extra_fc else None
        d = extra_fc or d_pool
        self.feature_dims = {"pooled": d_pool, "penultimate": d}
        if head.kind == "linear":
            self.head = nn.Linear(d, head.num_classes)
        elif head.kind == "cosine":
            self.head = CosineClassifier(d, head.num_classes, scale=head.cosine_scale)
        else:
            raise UsageError(f"unknown head {head.kind!r}; known: cosine, linear")
        # narrow strided convolutions crash oneDNN's backward on the CPU: computed at stride 1
        guard_narrow_strided(self)

    @property
    def feature_dim(self) -> int:
        return self.feature_dims["penultimate"]

    def forward(self, x: torch.Tensor, return_features: bool = False):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise UsageError(
                f"expected input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        out = self.stem(self.normalize(x))
        maps = []
        for stage in self.stages:
            out = stage(out)
            maps.append(out)
        maps[-1] = self.final(maps[-1])
        fmap = self.dfl(maps) if self.dfl is not None else maps[-1]  # (N, d_pool, h_m, w_m)
        pooled = torch.flatten(F.adaptive_avg_pool2d(fmap, 1), 1)  # (N, d_pool)
        penultimate = self.extra_fc(pooled) if self.extra_fc is not None else pooled
        logits = self.head(penultimate)  # (N, num_classes)
        if return_features:
            return logits, {"pooled": pooled, "penultimate": penultimate}
        return logits


def _make_stage(block: type, in_planes: int, planes: int, n_blocks: int, stride: int):
    layers = []
    for s in [stride] + [1] * (n_blocks - 1):
        layers.append(block(in_planes, planes, s))
        in_planes = planes * block.expansion
    return nn.Sequential(*layers), in_planes


def _resnet(block: type, depths: Sequence[int], *, num_classes, in_channels, width, dfl,
            mean, std, **head_kw) -> StagedNet:
    """CIFAR-style ResNet (He et al. 2016): 3x3 stem, no max-pool, four stages, strides 1,2,2,2."""
    _check_common(num_classes=num_classes, in_channels=in_channels, width=width)
    stem = nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
    )
    stages, channels, planes_in = [], [], width
    for i, n in enumerate(depths):
        stage, planes_in = _make_stage(block, planes_in, width * 2**i, n, 1 if i == 0 else 2)
        stages.append(stage)
        channels.append(planes_in)
    return StagedNet(backbone=Backbone(stem=stem, stages=stages, stage_channels=channels),
                     head=_head(num_classes, **head_kw), in_channels=in_channels, dfl=dfl,
                     **_norm(mean, std, in_channels))


def resnet18(*, num_classes=10, in_channels=3, width=64, dfl=False, mean=None, std=None, **kw):
    return _resnet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, in_channels=in_channels,
                   width=width, dfl=dfl, mean=mean, std=std, **kw)


def resnet34(*, num_classes=10, in_channels=3, width=64, dfl=False, mean=None, std=None, **kw):
    return _resnet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels,
                   width=width, dfl=dfl, mean=mean, std=std, **kw)


def resnet50(*, num_classes=10, in_channels=3, width=64, dfl=False, mean=None, std=None, **kw):
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels,
                   width=width, dfl=dfl, mean=mean, std=std, **kw)


def wide_resnet(*, num_classes=10, in_channels=3, width=16, depth=34, widen_factor=10, dfl=False,
                mean=None, std=None, **kw) -> StagedNet:
    """WideResNet-depth-k (Zagoruyko & Komodakis 2016); stage widths width * (k, 2k, 4k).

    The paper's Table 6 names no size; WRN-34-10 (width 16) is the field's usual choice for
    CIFAR-10 robustness and is our recorded guess. `width` < 16 makes CPU-sized variants.
    """
    _check_common(num_classes=num_classes, in_channels=in_channels, width=width)
    if (depth - 4) % 6 != 0 or depth < 10:
        raise UsageError(f"WideResNet depth must be 6n + 4 (>= 10), got {depth}")
    if widen_factor < 1:
        raise UsageError(f"widen_factor must be >= 1, got {widen_factor}")
    n = (depth - 4) // 6
    stem = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
    stages, channels, planes_in = [], [], width
    for i in range(3):
        stage, planes_in = _make_stage(WideBasicBlock, planes_in, width * widen_factor * 2**i, n,
                                       1 if i == 0 else 2)
        stages.append(stage)
        channels.append(planes_in)
    final = nn.Sequential(nn.BatchNorm2d(planes_in), nn.ReLU())
    return StagedNet(backbone=Backbone(stem=stem, stages=stages, stage_channels=channels,
                                       final=final),
                     head=_head(num_classes, **kw), in_channels=in_channels, dfl=dfl,
                     **_norm(mean, std, in_channels))


def _head(num_classes: int, *, extra_fc: int | None = None, head: str = "linear",
          cosine_scale: float = 30.0) -> Head:
    """The `Head` from build_model's keyword arguments (the names the configs use)."""
    return Head(num_classes=num_classes, kind=head, extra_fc=extra_fc, cosine_scale=cosine_scale)


def _check_common(*, num_classes: int, in_channels: int, width: int) -> None:
    for name, v in (("num_classes", num_classes), ("in_channels", in_channels), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise UsageTypeError(f"{name} must be an int, got {type(v).__name__}")
        if v < 1:
            raise UsageError(f"{name} must be >= 1, got {v}")
    if num_classes < 2:
        raise UsageError(f"num_classes must be >= 2, got {num_classes}")


def _norm(mean, std, in_channels: int) -> dict:
    """Default to 0.5 / 0.5 per channel (maps [0, 1] to [-1, 1]); datasets supply their own."""
    mean = tuple(mean) if mean is not None else (0.5,) * in_channels
    std = tuple(std) if std is not None else (0.5,) * in_channels
    if len(mean) != in_channels or len(std) != in_channels:
        raise UsageError(
            f"mean/std need {in_channels} channel values, got {len(mean)} and {len(std)}"
        )
    return {"mean": mean, "std": std}


MODELS: dict[str, Callable[..., StagedNet]] = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "wrn": wide_resnet,
}


def build_model(name: str, **kwargs) -> StagedNet:
    """Build a registered model by name, e.g. build_model("resnet18", in_channels=1, dfl=True).

    Common keyword arguments: num_classes, in_channels (1 or 3), width (64 = standard ResNet,
    16 = standard WRN; smaller for CPU profiles), dfl, mean, std, extra_fc, head ("linear" or
    "cosine"), cosine_scale; WRN also takes depth and widen_factor.
    """
    check_known(name, MODELS, kind="model")
    return MODELS[name](**kwargs)
