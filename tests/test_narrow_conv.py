"""Narrow strided convolutions computed at stride 1 (oneDNN's strided kernel corrupted the heap in
their backward on an AVX2 CPU: width-4 networks killed test workers in training and attacks).
The guarded layer is the same function with the same parameters, and every network built here
has its narrow strided layers guarded."""
import copy

import pytest
import torch
from torch import nn

from dfl_lib.models import build_model
from dfl_lib.models.narrow import MIN_STRIDED_CHANNELS, NarrowStridedConv2d, guard_narrow_strided


@pytest.mark.filterwarnings("ignore:TF32 acceleration")  # torch's, from mkldnn.flags()
@pytest.mark.parametrize("kernel, stride, padding, size", [
    (1, 2, 0, 12), (1, 2, 0, 7), (3, 2, 1, 12), (3, 2, 1, 7), (3, 3, 0, 11), (5, 2, 2, 9),
    (1, 2, 1, 8)])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_the_guarded_layer_is_the_same_function_forward_and_backward(kernel, stride, padding,
                                                                     size, memory_format):
    torch.manual_seed(0)
    plain = nn.Conv2d(4, 6, kernel, stride=stride, padding=padding)
    guarded = copy.deepcopy(plain)
    assert guard_narrow_strided(guarded) == 1 and isinstance(guarded, NarrowStridedConv2d)
    x = torch.rand(3, 4, size, size).contiguous(memory_format=memory_format)
    outs, grads = [], []
    for conv in (plain, guarded):
        conv.to(memory_format=memory_format)
        xi = x.clone().requires_grad_(True)
        # the reference without oneDNN (its strided kernel is the one that crashes), the guarded
        # layer as the networks run it
        with torch.backends.mkldnn.flags(enabled=conv is guarded):
            out = conv(xi)
            out.square().sum().backward()
        outs.append(out)
        grads.append((xi.grad, conv.weight.grad, conv.bias.grad))
    assert outs[0].shape == outs[1].shape
    assert torch.allclose(outs[0], outs[1], atol=1e-5)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-4)


def test_only_narrow_strided_layers_are_guarded_and_their_parameters_stay():
    narrow = build_model("resnet18", num_classes=10, in_channels=1, width=4)
    guarded = [m for m in narrow.modules() if isinstance(m, NarrowStridedConv2d)]
    assert guarded and all(m.in_channels < MIN_STRIDED_CHANNELS and max(m.stride) > 1
                           for m in guarded)
    assert not [m for m in build_model("resnet18", num_classes=10, in_channels=1,
                                       width=16).modules() if isinstance(m, NarrowStridedConv2d)]
    # the same parameter names: a checkpoint of either loads into the other
    plain = nn.Conv2d(4, 8, 1, stride=2)
    state = plain.state_dict()
    guard_narrow_strided(plain)
    assert plain.state_dict().keys() == state.keys()


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "wrn"])
def test_a_width_4_network_trains_and_is_attacked_without_a_crash(name):
    """The reported case: width-4 networks, 12x12 one-channel images, batch 16, one thread,
    their training step and the input gradient an attack takes (each crashed the test workers
    on the AVX2 CPU before the guard)."""
    extra = {"depth": 10, "widen_factor": 1} if name == "wrn" else {}
    torch.manual_seed(0)
    model = build_model(name, num_classes=4, in_channels=1, width=4, dfl=True, **extra)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.rand(16, 1, 12, 12), torch.arange(16) % 4
    for _ in range(5):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    xi = x.clone().requires_grad_(True)
    nn.functional.cross_entropy(model(xi), y).backward()
    assert torch.isfinite(xi.grad).all() and xi.grad.abs().sum() > 0
