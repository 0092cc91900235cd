"""Figure 2 drawn from the model: traced shapes agree with a real forward pass, the graph
follows the DFL wiring, the figure shows every stage legibly, and tracing leaves no trace."""
import itertools

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import TinyCNN  # noqa: E402

from dfl_lib.figures.diagram import (  # noqa: E402
    architecture_name,
    draw_pipeline,
    format_shape,
    trace_shapes,
)
from dfl_lib.models.resnet import build_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
MNIST = (1, 1, 28, 28)


def small(name="resnet18", *, dfl=True, **kw):
    return build_model(name, num_classes=10, in_channels=1, width=4, dfl=dfl, **kw)


def by_name(nodes):
    return {n["name"]: n for n in nodes}


def real_stage_shapes(model, shape):
    """Stage outputs (C, H, W) computed by calling the modules directly, without hooks."""
    out = model.stem(model.normalize(torch.zeros(shape)))
    shapes = []
    for stage in model.stages:
        out = stage(out)
        shapes.append(tuple(out.shape[1:]))
    return shapes


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
@pytest.mark.parametrize("dfl", [False, True])
def test_traced_shapes_match_the_real_forward(name, dfl):
    model = small(name, dfl=dfl).eval()
    nodes = by_name(trace_shapes(model, input_shape=MNIST))
    stages = real_stage_shapes(model, MNIST)
    assert [nodes[f"stage{i}"]["shape"] for i in (1, 2, 3, 4)] == stages
    assert stages[-1][1:] == (4, 4)  # MNIST: 28 -> 28, 14, 7, 4
    logits, feats = model(torch.zeros(MNIST), return_features=True)
    assert nodes["head"]["shape"] == tuple(logits.shape[1:]) == (10,)
    d_pool = model.feature_dims["pooled"]
    assert nodes["gap"]["shape"] == tuple(feats["pooled"].shape[1:]) == (d_pool,)
    penultimate = next(n for n in nodes.values() if "head" in n["feeds"])
    assert penultimate["shape"] == (model.feature_dim,)
    # every parameter belongs to exactly one node
    assert sum(n["params"] for n in nodes.values()) == sum(p.numel() for p in model.parameters())
    if dfl:
        concat = nodes["dfl_concat"]["shape"]
        assert concat[0] == stages[-1][0] + sum(nodes[f"maxpool{i}"]["shape"][0] for i in (1, 2, 3))
        assert concat[1:] == stages[-1][1:]
        for i in (1, 2, 3):
            assert nodes[f"stage{i}"]["feeds"] == (f"stage{i + 1}", f"deconv{i}")
            assert nodes[f"deconv{i}"]["shape"] == stages[i - 1]  # 1x1 deconv keeps C, H, W
            assert nodes[f"deconv{i}"]["module"] == f"dfl.blocks.{i - 1}"
            assert nodes[f"deconv{i}"]["feeds"] == (f"maxpool{i}",)
            assert nodes[f"maxpool{i}"]["feeds"] == ("dfl_concat",)
            assert nodes[f"maxpool{i}"]["shape"][1:] == stages[-1][1:]  # pooled to the last stage
        assert nodes["stage4"]["feeds"] == ("dfl_concat",)
        assert nodes["dfl_concat"]["feeds"] == ("gap",)


def test_the_graph_runs_from_input_to_head_and_names_real_modules():
    model = small(dfl=True)
    nodes = trace_shapes(model, input_shape=MNIST)
    names = [n["name"] for n in nodes]
    assert len(set(names)) == len(names)
    modules = dict(model.named_modules())
    for n in nodes:
        assert set(n["feeds"]) <= set(names), n
        assert n["module"] is None or type(modules[n["module"]]).__name__ == n["cls"]
    reached, frontier = {"input"}, ["input"]
    nodes_by = by_name(nodes)
    while frontier:
        for dst in nodes_by[frontier.pop()]["feeds"]:
            if dst not in reached:
                reached.add(dst)
                frontier.append(dst)
    assert reached == set(names)
    assert nodes_by["head"]["feeds"] == ()


def test_without_dfl_there_are_no_dfl_nodes_and_stage4_feeds_the_pool():
    model = small(dfl=False)
    nodes = by_name(trace_shapes(model, input_shape=MNIST))
    assert not [n for n in nodes if n.startswith(("deconv", "maxpool", "dfl"))]
    assert {n["role"] for n in nodes.values()} == {"input", "main", "head"}
    assert nodes["stage4"]["feeds"] == ("gap",)
    fig = draw_pipeline(model, input_shape=MNIST)
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "deconv" not in texts and "maxpool" not in texts and "dfl_concat" not in texts
    plt.close(fig)


def test_extra_fc_and_wrn_final_are_traced():
    model = small(dfl=True, extra_fc=64)
    nodes = by_name(trace_shapes(model, input_shape=MNIST))
    assert nodes["gap"]["feeds"] == ("extra_fc",) and nodes["extra_fc"]["shape"] == (64,)
    assert nodes["extra_fc"]["feeds"] == ("head",) and model.feature_dim == 64
    wrn = build_model("wrn", num_classes=10, in_channels=3, width=4, depth=10, widen_factor=2,
                      dfl=True)
    nodes = by_name(trace_shapes(wrn, input_shape=(2, 3, 32, 32)))
    assert "stage4" not in nodes and nodes["stage3"]["feeds"] == ("final",)
    assert nodes["final"]["feeds"] == ("dfl_concat",)
    assert nodes["maxpool2"]["shape"] == (16, 8, 8)  # widths 8, 16, 32; CIFAR 32 -> 32, 16, 8
    assert architecture_name(wrn) == "WRN-10-2 + DFL"
    assert architecture_name(small("resnet50", dfl=False)) == "ResNet-50"
    assert architecture_name(model) == "ResNet-18 + DFL + FC-64"


def test_figure_shows_every_stage_with_its_shape_and_the_losses():
    model = small(dfl=True)
    nodes = trace_shapes(model, input_shape=MNIST)
    fig = draw_pipeline(model, input_shape=MNIST)
    assert tuple(fig.get_size_inches()) == (14, 5)
    texts = [t.get_text() for t in fig.axes[0].texts]
    for n in nodes:
        assert any(n["name"] in t and format_shape(n["shape"]) in t for t in texts), n["name"]
    assert any(t.startswith("CE loss") for t in texts)
    # K x d with d = 4 + 8 + 16 + 32
    assert any(t.startswith("PCL (centroids)") and "10×60" in t for t in texts)
    expected = "Figure 2 (drawn from the model): ResNet-18 + DFL, input 1×28×28"
    assert fig._suptitle.get_text() == expected
    assert min(t.get_fontsize() for t in [*fig.axes[0].texts, fig._suptitle]) >= 8
    plt.close(fig)
    fig = draw_pipeline(model, input_shape=MNIST, title="mine")
    assert fig._suptitle.get_text() == "mine"
    plt.close(fig)


def test_format_shape():
    assert format_shape((64, 28, 28)) == "64×28×28"
    assert format_shape((960,)) == "d=960"


def _overlap(a, b, tol=0.5):
    return a.x0 < b.x1 - tol and b.x0 < a.x1 - tol and a.y0 < b.y1 - tol and b.y0 < a.y1 - tol


@pytest.mark.parametrize("name,kw", [("resnet18", {"dfl": True}), ("resnet18", {"dfl": False}),
                                     ("resnet50", {"dfl": True}), ("resnet50", {"dfl": False}),
                                     ("resnet50", {"dfl": True, "width": 64, "extra_fc": 1024})])
def test_boxes_do_not_overlap_and_labels_fit_their_boxes(name, kw):
    kw = {"width": 4, **kw}
    model = build_model(name, num_classes=10, in_channels=1, **kw)
    fig = draw_pipeline(model, input_shape=MNIST)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [p.get_window_extent(renderer) for p in ax.patches if p.get_gid() == "node-box"]
    assert len(boxes) == len(trace_shapes(model, input_shape=MNIST)) + 2  # + CE and PCL
    for a, b in itertools.combinations(boxes, 2):
        assert not _overlap(a, b)
    fig_box = fig.bbox
    free = 0
    for t in [t for t in ax.texts if t.get_text()]:  # empty ones are the arrows
        ext = t.get_window_extent(renderer)
        assert fig_box.x0 <= ext.x0 and ext.x1 <= fig_box.x1 and fig_box.y0 <= ext.y0
        home = [b for b in boxes if b.contains(*ext.get_points().mean(axis=0))]
        if home:  # a box label lies wholly inside its box
            (b,) = home
            inner = b.padded(-2)  # and does not touch its edges (2 px at 100 dpi)
            assert inner.x0 <= ext.x0 and ext.x1 <= inner.x1, t.get_text()
            assert inner.y0 <= ext.y0 and ext.y1 <= inner.y1, t.get_text()
        else:  # the caption touches no box
            free += 1
            assert not any(_overlap(ext, b) for b in boxes)
    assert free == 1
    title = fig._suptitle.get_window_extent(renderer)
    assert not any(_overlap(title, b) for b in boxes) and title.y1 <= fig_box.y1
    plt.close(fig)


def _hooks(model):
    return [(n, m) for n, m in model.named_modules() if m._forward_hooks or m._forward_pre_hooks]


@pytest.mark.parametrize("mode", ["train", "eval", "mixed"])
def test_tracing_removes_its_hooks_and_keeps_mode_and_statistics(mode):
    model = small(dfl=True).train(mode != "eval")
    if mode == "mixed":
        model.stages[1].eval()
    mine = model.stem.register_forward_hook(lambda *a: None)  # a user's hook must survive
    modes = {n: m.training for n, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    trace_shapes(model, input_shape=MNIST)
    assert [n for n, _ in _hooks(model)] == ["stem"] and len(model.stem._forward_hooks) == 1
    mine.remove()
    assert _hooks(model) == []
    assert {n: m.training for n, m in model.named_modules()} == modes
    after = model.state_dict()  # no BN running statistics updated by the zeros
    assert all(torch.equal(state[k], after[k]) for k in state)


def test_hooks_are_removed_when_the_forward_fails():
    model = small(dfl=True).train()

    def broken(x):
        raise RuntimeError("stage 3 exploded")

    model.stages[2].forward = broken
    with pytest.raises(RuntimeError, match="exploded"):
        trace_shapes(model, input_shape=MNIST)
    assert _hooks(model) == []
    assert all(m.training for m in model.modules())


def test_bad_input_is_rejected_clearly():
    model = small(dfl=True)
    with pytest.raises(ValueError, match="StagedNet"):
        trace_shapes(TinyCNN(), input_shape=MNIST)
    with pytest.raises(ValueError, match="StagedNet"):
        draw_pipeline(torch.nn.Linear(3, 2), input_shape=MNIST)
    with pytest.raises(ValueError, match="rank 3"):
        trace_shapes(model, input_shape=(1, 28, 28))
    with pytest.raises(ValueError, match="3 channels"):
        trace_shapes(model, input_shape=(1, 3, 28, 28))
    with pytest.raises(ValueError, match="positive ints"):
        trace_shapes(model, input_shape=(0, 1, 28, 28))
    with pytest.raises(ValueError, match="positive ints"):
        draw_pipeline(model, input_shape=(1, 1, 28.0, 28))
    assert _hooks(model) == []
