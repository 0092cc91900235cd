"""The paper's Figure 2 (the DFL pipeline), drawn from a model rather than by hand.

    nodes = trace_shapes(model, input_shape=(1, 1, 28, 28))   # one forward pass on zeros
    fig = draw_pipeline(model, input_shape=(1, 1, 28, 28))    # 14 x 5 inches
    fig.savefig("figure2.png", dpi=150)

`trace_shapes` hooks the model's real submodules (normalisation, stem, each stage, each DFL
deconvolution block, the DFL concatenation, the extra FC layer, the classifier), runs one
forward pass and records each node's output shape, parameter count and the nodes it feeds, so
the drawing follows the network that is actually built: a model without the DFL has no branch
row, a WideResNet has three stages and a final BN-ReLU.

Two steps of `StagedNet.forward` are functional calls, not modules, so no hook sees them:
  - the DFL's max-pooling of each branch: its shape is read from the real concatenated output
    (branch channels as measured on the deconvolution block, H x W of the concatenation, which
    torch.cat only accepts when every pooled branch matches the last stage);
  - the global average pool: its shape is that of `features["pooled"]` from the same forward.
Shapes are per example (the batch dimension is dropped).
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import FancyBboxPatch
from torch import nn

from ..errors import UsageError
from ..models.blocks import BasicBlock, Bottleneck, WideBasicBlock
from ..models.resnet import StagedNet

__all__ = ["trace_shapes", "draw_pipeline", "format_shape", "architecture_name"]

FONT = 8  # points; every label in the figure, the title is larger
_SHORT = {"Conv2d": "Conv", "ConvTranspose2d": "ConvT", "BatchNorm2d": "BN", "Linear": "FC"}


# --------------------------------------------------------------------------- tracing
def trace_shapes(model: nn.Module, *, input_shape: Sequence[int]) -> list[dict]:
    """One forward pass on zeros of `input_shape` (N, C, H, W) with hooks on the real modules.

    Returns the nodes in forward order, each a dict:
      name    "input", "normalize", "stem", "stage1".., "final" (WRN), "deconv1"..,
              "maxpool1".., "dfl_concat", "gap", "extra_fc", "head";
      module  the qualified submodule name ("stages.0", "dfl.blocks.0"), None for the input
              and the functional pools;
      cls     the module's class name ("F.adaptive_max_pool2d" etc. for functional steps);
      summary a short description ("2×BasicBlock", "Conv·BN·ReLU");
      shape   the output shape without the batch dimension: (C, H, W) or (d,);
      params  parameters owned by this node (summed over all nodes = the model's total);
      feeds   the names of the nodes that take this node's output;
      role    "input", "main", "branch", "pool", "concat" or "head" (the drawing's rows).
    The model's train/eval mode (per submodule) and its BN statistics are left unchanged: the
    pass runs in eval mode under no_grad, and every hook is removed even if the forward fails.
    """
    if not isinstance(model, StagedNet):
        raise UsageError(
            f"trace_shapes needs a StagedNet (dfl_lib.models.resnet), got {type(model).__name__}")
    shape = _check_input_shape(input_shape, in_channels=model.in_channels)
    watched = _watched_modules(model)  # node name -> module
    outputs: dict[str, tuple[int, ...]] = {}
    handles = []
    modes = {m: m.training for m in model.modules()}
    try:
        for name, module in watched.items():
            handles.append(module.register_forward_hook(_recorder(outputs, name)))
        model.eval()  # train mode would update BN running statistics with the zeros
        ref = next(model.parameters(), None)
        x = torch.zeros(shape, dtype=ref.dtype if ref is not None else torch.float32,
                        device=ref.device if ref is not None else "cpu")
        with torch.no_grad():
            logits, features = model(x, return_features=True)
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training
    missing = [n for n in watched if n not in outputs]
    if missing:
        raise RuntimeError(f"the forward pass never called {missing}; is forward overridden?")
    outputs["gap"] = tuple(features["pooled"].shape[1:])  # (d_pool,)
    if tuple(logits.shape[1:]) != outputs["head"]:
        raise RuntimeError(
            f"head output {outputs['head']} differs from logits {tuple(logits.shape)}")
    return _nodes(model, watched, outputs, input_chw=shape[1:])


def _check_input_shape(input_shape, *, in_channels: int) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if len(shape) != 4:
        raise UsageError(f"input_shape must be (N, C, H, W), got {shape} (rank {len(shape)})")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in shape):
        raise UsageError(f"input_shape must hold positive ints, got {shape}")
    if shape[1] != in_channels:
        raise UsageError(f"input_shape has {shape[1]} channels, the model expects {in_channels}")
    return shape


def _watched_modules(model: StagedNet) -> dict[str, nn.Module]:
    """Node name -> submodule, in forward order (the DFL blocks run inside model.dfl)."""
    watched = {"normalize": model.normalize, "stem": model.stem}
    for i, stage in enumerate(model.stages, start=1):
        watched[f"stage{i}"] = stage
    if not isinstance(model.final, nn.Identity):
        watched["final"] = model.final
    if model.dfl is not None:
        for i, block in enumerate(model.dfl.blocks, start=1):
            watched[f"deconv{i}"] = block
        watched["dfl_concat"] = model.dfl
    if model.extra_fc is not None:
        watched["extra_fc"] = model.extra_fc
    watched["head"] = model.head
    return watched


def _recorder(outputs: dict, name: str):
    def hook(module, args, out):
        outputs[name] = tuple(out.shape[1:])  # drop the batch dimension
    return hook


def _nodes(model: StagedNet, watched: dict, out: dict, *, input_chw) -> list[dict]:
    qualified = {id(m): n for n, m in model.named_modules()}
    n_stages = len(model.stages)
    n_branches = len(model.dfl.blocks) if model.dfl is not None else 0
    after_maps = "dfl_concat" if model.dfl is not None else "gap"
    penultimate = "extra_fc" if model.extra_fc is not None else "gap"

    def node(name, *, role, feeds, module=None, cls=None, summary=None, shape=None):
        params = sum(p.numel() for p in module.parameters()) if module is not None else 0
        if name == "dfl_concat":  # the blocks inside model.dfl are nodes of their own
            params -= sum(p.numel() for p in model.dfl.blocks.parameters())
        return {"name": name, "module": qualified.get(id(module)) if module is not None else None,
                "cls": cls or type(module).__name__, "summary": summary or _summary(module),
                "shape": shape if shape is not None else out[name], "params": params,
                "feeds": tuple(feeds), "role": role}

    nodes = [node("input", role="input", feeds=["normalize"], cls="Tensor",
                  summary="zeros in [0, 1]", shape=tuple(input_chw)),
             node("normalize", role="main", feeds=["stem"], module=model.normalize,
                  summary="(x - mean) / std"),
             node("stem", role="main", feeds=["stage1"], module=model.stem)]
    for i in range(1, n_stages + 1):
        nxt = f"stage{i + 1}" if i < n_stages else ("final" if "final" in watched else after_maps)
        feeds = [nxt] + ([f"deconv{i}"] if i <= n_branches else [])
        nodes.append(node(f"stage{i}", role="main", feeds=feeds, module=watched[f"stage{i}"]))
    if "final" in watched:
        nodes.append(node("final", role="main", feeds=[after_maps], module=model.final))
    if model.dfl is not None:
        concat = out["dfl_concat"]  # (sum c, H_m, W_m)
        for i in range(1, n_branches + 1):
            nodes.append(node(f"deconv{i}", role="branch", feeds=[f"maxpool{i}"],
                              module=watched[f"deconv{i}"]))
            # functional: channels of this branch, spatial size of the real concatenation
            nodes.append(node(f"maxpool{i}", role="pool", feeds=["dfl_concat"],
                              cls="F.adaptive_max_pool2d", summary="max-pool",
                              shape=(out[f"deconv{i}"][0], *concat[1:])))
        nodes.append(node("dfl_concat", role="concat", feeds=["gap"], module=model.dfl,
                          summary="concat channels"))
    nodes.append(node("gap", role="main", feeds=[penultimate if penultimate != "gap" else "head"],
                      cls="F.adaptive_avg_pool2d", summary="global avg pool"))
    if model.extra_fc is not None:
        nodes.append(node("extra_fc", role="main", feeds=["head"], module=model.extra_fc))
    nodes.append(node("head", role="head", feeds=[], module=model.head))
    return nodes


def _summary(module: nn.Module) -> str:
    """'2×BasicBlock' for a stage, 'Conv·BN·ReLU' for a small Sequential, else the class."""
    if isinstance(module, nn.Sequential):
        names = [type(m).__name__ for m in module]
        if len(set(names)) == 1 and len(names) > 1:
            return f"{len(names)}×{names[0]}"
        return "·".join(_SHORT.get(n, n) for n in names)
    return _SHORT.get(type(module).__name__, type(module).__name__)


def format_shape(shape: Sequence[int]) -> str:
    """(64, 28, 28) -> '64×28×28'; (960,) -> 'd=960'."""
    return f"d={shape[0]}" if len(shape) == 1 else "×".join(str(s) for s in shape)


def architecture_name(model: StagedNet) -> str:
    """'ResNet-18', 'ResNet-50', 'WRN-34-10' (+ ' + DFL', ' + FC-1024'), read from the blocks."""
    blocks = [b for stage in model.stages for b in stage]
    first = blocks[0] if blocks else None
    if isinstance(first, Bottleneck):
        name = f"ResNet-{3 * len(blocks) + 2}"
    elif isinstance(first, BasicBlock):
        name = f"ResNet-{2 * len(blocks) + 2}"
    elif isinstance(first, WideBasicBlock):
        k = first.conv1.out_channels // first.conv1.in_channels  # stage 1 widens the stem by k
        name = f"WRN-{2 * len(blocks) + 4}-{k}"
    else:
        name = type(model).__name__
    if model.dfl is not None:
        name += " + DFL"
    if model.extra_fc is not None:  # after the DFL, as in the forward pass
        name += f" + FC-{model.extra_fc[0].out_features}"
    return name


# --------------------------------------------------------------------------- drawing
# Geometry in inches: the axes fill the 14 x 5 figure and one data unit is one inch.
_W, _H, _MARGIN = 14.0, 5.0, 0.2
_LINE, _PAD = 0.135, 0.16  # height of one text line at FONT points, vertical padding of a box
_COLOURS = {"input": "#eeeeee", "main": "#d6e6f5", "branch": "#fde2c4", "pool": "#f4f4f4",
            "concat": "#f9c98f", "head": "#d6e6f5", "loss": "#f6d3d3"}


def draw_pipeline(model: nn.Module, *, input_shape: Sequence[int], title: str | None = None):
    """Figure 2 from the model: boxes for the traced nodes, arrows along `feeds`.

    Main path on one row, left to right; each DFL branch (deconvolution block, then its
    max-pool) on rows above the stage it reads, joined by a bus into the concatenation; below,
    the CE loss on the logits and the PCL's centroids on the penultimate features (dashed).
    Each box reads: name, what it is, output shape (C×H×W or d=...), parameters.
    Returns the figure (14 x 5 inches); nothing is saved.
    """
    nodes = trace_shapes(model, input_shape=input_shape)
    by_name = {n["name"]: n for n in nodes}
    main = [n for n in nodes if n["role"] in ("input", "main", "concat", "head")]
    has_dfl = "dfl_concat" in by_name
    pitch = (_W - 2 * _MARGIN) / len(main)
    x = {n["name"]: _MARGIN + pitch * (i + 0.5) for i, n in enumerate(main)}
    # rows (centre heights in inches); without the DFL the two rows sit lower and wider apart
    rows = ({"loss": 0.75, "main": 1.95, "branch": 3.1, "pool": 3.95} if has_dfl
            else {"loss": 1.55, "main": 3.0})
    bus_y = 4.38
    for n in nodes:  # a branch sits above the stage that feeds it, its pool above it
        if n["role"] in ("branch", "pool"):
            src = next(m["name"] for m in nodes if n["name"] in m["feeds"])
            x[n["name"]] = x[src]

    fig = plt.figure(figsize=(_W, _H))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, _W)
    ax.set_ylim(0, _H)
    ax.axis("off")
    box_w = pitch * 0.88
    boxes = {}  # name -> (x0, y0, x1, y1)
    for n in nodes:
        row = "main" if n["role"] in ("input", "concat", "head") else n["role"]
        boxes[n["name"]] = _box(ax, x[n["name"]], rows[row], box_w, _label(n),
                                colour=_COLOURS[n["role"]], dashed=n["cls"].startswith("F."))
    for n in nodes:
        for dst in n["feeds"]:
            _edge(ax, boxes[n["name"]], boxes[dst], bus_y=bus_y)

    penultimate = next(n for n in nodes if "head" in n["feeds"])
    head, k, d = by_name["head"], by_name["head"]["shape"][0], penultimate["shape"][0]
    losses = {"ce": (head, f"CE loss\non the logits\nK={k} classes"),
              "pcl": (penultimate, f"PCL (centroids)\nK×d = {k}×{d}\non {penultimate['name']}")}
    for name, (src, text) in losses.items():
        boxes[name] = _box(ax, x[src["name"]], rows["loss"], box_w, text, colour=_COLOURS["loss"])
        _edge(ax, boxes[src["name"]], boxes[name], bus_y=bus_y, dashed=True)

    chw = format_shape(tuple(input_shape)[1:])
    ax.text(_MARGIN, 0.12, "Traced by one forward pass on zeros; shapes per example. Dashed boxes: "
            "functional pooling (no module), shapes read from the real outputs. Dashed arrows: "
            "training losses.", fontsize=FONT, color="#555555", ha="left", va="bottom")
    fig.suptitle(title if title is not None else
                 f"Figure 2 (drawn from the model): {architecture_name(model)}, input {chw}",
                 fontsize=11, y=0.985)
    return fig


def _label(n: dict) -> str:
    lines = [n["name"], n["summary"], format_shape(n["shape"])]
    if n["role"] not in ("pool", "input"):  # nothing to count there, keep those boxes small
        lines.append(_count(n["params"]))
    return "\n".join(lines)


def _count(p: int) -> str:
    if p >= 1e6:
        return f"{p / 1e6:.2f}M params"
    return f"{p / 1e3:.1f}k params" if p >= 1e3 else f"{p} params"


def _box(ax, cx: float, cy: float, w: float, text: str, *, colour: str, dashed: bool = False):
    """A rounded box centred at (cx, cy), sized to the number of lines; returns its extent."""
    h = text.count("\n") * _LINE + _LINE + _PAD
    x0, y0 = cx - w / 2, cy - h / 2
    ax.add_patch(FancyBboxPatch((x0, y0), w, h, boxstyle="round,pad=0,rounding_size=0.06",
                                facecolor=colour, edgecolor="#333333", linewidth=0.8,
                                linestyle="--" if dashed else "-", gid="node-box"))
    ax.text(cx, cy, text, ha="center", va="center", fontsize=FONT, linespacing=1.15)
    return (x0, y0, x0 + w, y0 + h)


def _edge(ax, a, b, *, bus_y: float, dashed: bool = False):
    """An arrow from box a to box b: horizontal on one row, vertical in one column, and
    otherwise (a DFL branch into the concatenation) up to the bus, along it and down."""
    style = dict(arrowstyle="-|>", color="#333333", lw=0.9, linestyle="--" if dashed else "-",
                 shrinkA=0, shrinkB=0, mutation_scale=9)
    acx, bcx = (a[0] + a[2]) / 2, (b[0] + b[2]) / 2
    if abs(acx - bcx) < 1e-9:  # same column: up (into a branch) or down (into a loss)
        start, end = ((acx, a[3]), (bcx, b[1])) if b[1] > a[3] else ((acx, a[1]), (bcx, b[3]))
    elif abs((a[1] + a[3]) - (b[1] + b[3])) < 1e-9:  # same row: left to right
        start, end = (a[2], (a[1] + a[3]) / 2), (b[0], (b[1] + b[3]) / 2)
    else:  # the bus: from the top of a, along bus_y, down into the top of b
        ax.plot([acx, acx, bcx], [a[3], bus_y, bus_y], color="#333333", lw=0.9)
        start, end = (bcx, bus_y), (bcx, b[3])
    ax.annotate("", xy=end, xytext=start, arrowprops=style)
