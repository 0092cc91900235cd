"""bf16 autocast training (the GPU path, and the CPU where it pays): the code path runs on the
CPU, keeps weights and adversarial examples in fp32, tracks fp32 training closely on the same
seed, and is part of the run's identity. (Whether its models agree with fp32 under attack is a
measurement: studies/bf16_agreement.py, reports/benchmarks/bf16-agreement.json.)"""
import pytest
import torch

from conftest import TinyCNN, quadrants
from dfl_lib.attacks import pgd
from dfl_lib.experiments.configs import make_config
from dfl_lib.losses import build_loss
from dfl_lib.training.loop import Adversary, EpochSetup, train_epoch
from dfl_lib.runs.folder import run_name

pytestmark = pytest.mark.usefixtures("one_thread")


def _epoch(autocast_dtype, *, seed=0):
    x, y = quadrants(256, seed=seed)
    torch.manual_seed(seed)
    model = TinyCNN()
    loss = build_loss("pcl", num_classes=4, feature_dims={"penultimate": 32}, seed=seed)
    opt = torch.optim.SGD(list(model.parameters()) + list(loss.parameters()), lr=0.05)
    seen = []

    def attack(m, xb, yb):
        x_adv = pgd(m, xb, yb, eps=0.1, steps=3, generator=torch.Generator().manual_seed(0),
                    keep_best=False)
        seen.append(x_adv.dtype)
        return x_adv

    stats = train_epoch(model, loss, (x * 255).to(torch.uint8), y,
                        setup=EpochSetup(optimizer=opt, batch_size=64,
                                         generator=torch.Generator().manual_seed(seed),
                                         autocast_dtype=autocast_dtype),
                        adversary=Adversary(attack=attack) if attack is not None else None)
    return model, stats, seen


def test_bf16_epoch_keeps_fp32_weights_and_tracks_fp32():
    model32, stats32, _ = _epoch(None)
    model16, stats16, seen = _epoch(torch.bfloat16)
    assert all(p.dtype == torch.float32 for p in model16.parameters())
    assert set(seen) == {torch.float32}  # adversarial examples stay fp32 images
    assert torch.isfinite(torch.tensor(stats16["loss"]))
    # bf16 keeps ~3 significant digits: one epoch's mean loss within a few percent of fp32's
    assert stats16["loss"] == pytest.approx(stats32["loss"], rel=0.05)
    # and it really ran in bf16: the weights differ from fp32's beyond fp32 rounding
    diff = max((a - b).abs().max() for a, b in zip(model16.parameters(), model32.parameters()))
    assert diff > 1e-6


def test_precision_is_validated_and_part_of_the_run_name():
    assert make_config("smoke").precision == "fp32"
    assert run_name(make_config("smoke", precision="bf16")).endswith("-bf16-s0")
    with pytest.raises(ValueError, match="precision"):
        make_config("smoke", precision="fp16")
