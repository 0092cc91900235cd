"""BatchNorm folding for evaluation (dfl_lib.evaluation.fold): the same function, the model untouched, and
robust_accuracy's results equal to attacking the unfolded model."""
import pytest
import torch

from dfl_lib.attacks import pgd
from dfl_lib.evaluation.robust import robust_accuracy
from dfl_lib.evaluation.fold import count_batchnorm, fold_batchnorm
from dfl_lib.models.resnet import build_model

EPS = 0.005  # small enough that some examples of the calibrated model below survive
NETS = {
    "resnet18 + DFL": dict(name="resnet18", dfl=True),
    "resnet50 + DFL": dict(name="resnet50", dfl=True),
    "wrn + DFL": dict(name="wrn", dfl=True, depth=10, widen_factor=2),
}


def _trained_like(spec: dict, *, channels: int = 3, seed: int = 0) -> torch.nn.Module:
    """A small model whose BatchNorms hold non-trivial statistics and affine terms (fresh ones
    are the identity map, which any folding would get right), in eval mode."""
    torch.manual_seed(seed)
    model = build_model(spec["name"], num_classes=10, in_channels=channels, width=4,
                        **{k: v for k, v in spec.items() if k != "name"})
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.mark.parametrize("net", sorted(NETS))
def test_folded_copy_computes_the_same_logits_and_leaves_the_model_alone(net):
    model = _trained_like(NETS[net])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n_bn = count_batchnorm(model)
    folded = fold_batchnorm(model)
    x = torch.rand(6, 3, 32, 32)
    with torch.no_grad():
        want, got = model(x), folded(x)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4), (got - want).abs().max()
    assert count_batchnorm(model) == n_bn
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(p.requires_grad for p in folded.parameters())
    if net.startswith("resnet"):  # post-activation: every BatchNorm folds, the DFL's included
        assert count_batchnorm(folded) == 0
    else:  # pre-activation WRN: its BatchNorms come before their convolutions
        assert 0 < count_batchnorm(folded) < n_bn


def test_folding_keeps_channels_last():
    model = _trained_like(NETS["resnet18 + DFL"]).to(memory_format=torch.channels_last)
    folded = fold_batchnorm(model)
    conv = folded.stages[0][0].conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()


def test_folding_a_model_in_train_mode_is_refused():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(_trained_like(NETS["resnet18 + DFL"]).train())


def test_robust_accuracy_matches_attacking_the_unfolded_model():
    # BatchNorm statistics measured on inputs (a randomly set model is nearly constant in x)
    torch.manual_seed(0)
    model = build_model("resnet18", num_classes=10, in_channels=1, width=4, dfl=True)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # running statistics = the plain average over the batch below
    with torch.no_grad():
        model.train()(torch.rand(64, 1, 28, 28))
    model.eval()
    x = torch.rand(24, 1, 28, 28)
    with torch.no_grad():
        y = model(x).argmax(1)  # every example correct clean: the attack decides each one
    got = robust_accuracy(model, x, y, attack="pgd", eps=EPS, steps=5, seed=3)
    x_adv = pgd(model, x, y, eps=EPS, steps=5, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = model(x_adv).argmax(1) == y
    assert 0 < int(want.sum()) < len(y)  # some examples survive, some do not: a real comparison
    assert torch.equal(got["correct"], want)


def test_a_fold_is_reused_only_while_nothing_it_depends_on_changed():
    """One fold per model for a whole suite (robust_accuracy folds at every row), but a new one
    after any change: a training step, a loaded state, a BatchNorm update, a mode switch, a
    moved memory format, or a change made to the handed-out copy itself."""
    model = _trained_like(NETS["resnet18 + DFL"])
    x = torch.rand(4, 3, 32, 32)
    first = fold_batchnorm(model)
    assert fold_batchnorm(model) is first

    def agrees(folded):
        with torch.no_grad():
            return torch.allclose(folded(x), model(x), rtol=1e-4, atol=1e-4)

    with torch.no_grad():  # a training step's in-place update of one weight
        model.stem[0].weight.add_(0.3)
    second = fold_batchnorm(model)
    assert second is not first and agrees(second) and not agrees(first)
    other = _trained_like(NETS["resnet18 + DFL"], seed=1)
    model.load_state_dict(other.state_dict())
    third = fold_batchnorm(model)
    assert third is not second and agrees(third)
    model.train()
    model(torch.rand(4, 3, 32, 32))  # BatchNorm statistics move
    model.eval()
    fourth = fold_batchnorm(model)
    assert fourth is not third and agrees(fourth)
    model.to(memory_format=torch.channels_last)
    fifth = fold_batchnorm(model)
    assert fifth is not fourth and agrees(fifth)
    fifth.train()  # someone changed the copy: it is not handed out again
    assert fold_batchnorm(model) is not fifth
    assert fold_batchnorm(other) is not fold_batchnorm(model)  # another model, its own fold
