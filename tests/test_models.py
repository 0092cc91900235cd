"""Shapes, features and bad input for every architecture, with and without the DFL."""
import pytest
import torch

from dfl_lib.models.dfl import DefensiveFeatureLayer
from dfl_lib.models.resnet import MODELS, build_model

# CPU-sized variants: the architecture (depth, block type, DFL wiring) is what is under test
SMALL = {
    "resnet18": {"width": 4},
    "resnet34": {"width": 4},
    "resnet50": {"width": 4},
    "wrn": {"width": 4, "depth": 10, "widen_factor": 2},
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("dfl", [False, True])
@pytest.mark.parametrize("in_channels,size", [(1, 28), (3, 32)])
def test_output_shapes(name, dfl, in_channels, size):
    model = build_model(name, num_classes=7, in_channels=in_channels, dfl=dfl, **SMALL[name]).eval()
    x = torch.rand(3, in_channels, size, size)
    logits = model(x)
    assert logits.shape == (3, 7)
    logits2, feats = model(x, return_features=True)
    assert torch.equal(logits, logits2)
    assert set(feats) >= {"pooled", "penultimate"}
    for key, dim in model.feature_dims.items():
        assert feats[key].shape == (3, dim)
    assert model.feature_dim == model.feature_dims["penultimate"]


def test_dfl_concatenates_every_stage():
    # ResNet-18 width 4: stages have 4, 8, 16, 32 channels; the DFL keeps each channel count
    plain = build_model("resnet18", in_channels=1, width=4)
    dfl = build_model("resnet18", in_channels=1, width=4, dfl=True)
    assert plain.feature_dims["pooled"] == 32
    assert dfl.feature_dims["pooled"] == 4 + 8 + 16 + 32
    # ResNet-50 standard width: 256 + 512 + 1024 + 2048
    assert build_model("resnet50", dfl=True).feature_dims["pooled"] == 3840


def test_dfl_blocks_are_1x1_deconvolutions_max_pooled_to_last_stage():
    layer = DefensiveFeatureLayer([2, 3, 5])
    conv = layer.blocks[0][0]
    assert isinstance(conv, torch.nn.ConvTranspose2d) and conv.kernel_size == (1, 1)
    # MNIST-like stage sizes 28/14/7 -> everything pooled to 7x7
    stages = [torch.rand(2, 2, 28, 28), torch.rand(2, 3, 14, 14), torch.rand(2, 5, 7, 7)]
    out = layer(stages)
    assert out.shape == (2, 10, 7, 7)
    assert torch.equal(out[:, :5], stages[-1])  # F_m comes first, untouched
    # the pooled branch is a max over the 4x4 windows of D(F_1)
    d1 = layer.blocks[0](stages[0])
    assert torch.allclose(out[:, 5:7], torch.nn.functional.max_pool2d(d1, 4))


def test_dfl_gradients_reach_early_stages():
    model = build_model("resnet18", in_channels=1, width=4, dfl=True)
    logits = model(torch.rand(4, 1, 28, 28))
    logits.sum().backward()
    grad = model.dfl.blocks[0][0].weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_extra_fc_and_cosine_head():
    model = build_model("resnet18", in_channels=3, width=4, extra_fc=16, head="cosine",
                        cosine_scale=10.0).eval()
    logits, feats = model(torch.rand(2, 3, 32, 32), return_features=True)
    assert feats["pooled"].shape == (2, 32) and feats["penultimate"].shape == (2, 16)
    assert logits.abs().max() <= 10.0 + 1e-5  # scaled cosines


def test_normalisation_is_inside_the_model():
    model = build_model("resnet18", in_channels=3, width=4, mean=(0.1, 0.2, 0.3), std=(1, 2, 3))
    x = torch.rand(1, 3, 32, 32)
    expected = (x - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)) / torch.tensor(
        [1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    assert torch.allclose(model.normalize(x), expected)


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet99")
    with pytest.raises(ValueError, match="channels|shape"):
        build_model("resnet18", in_channels=1, width=4)(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="shape"):
        build_model("resnet18", in_channels=1, width=4)(torch.rand(2, 28, 28))
    with pytest.raises(ValueError, match="mean/std"):
        build_model("resnet18", in_channels=3, mean=(0.5,), std=(0.5,))
    with pytest.raises(TypeError, match="width"):
        build_model("resnet18", width=8.0)
    with pytest.raises(ValueError, match="depth"):
        build_model("wrn", depth=12)
    with pytest.raises(ValueError, match="head"):
        build_model("resnet18", head="softmax")
