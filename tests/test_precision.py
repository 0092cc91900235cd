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


# ----------------------------------------------------------------- precision from the hardware

@pytest.mark.parametrize("flags,native", [({"avx2", "fma"}, False), ({"avx512f", "avx512bw"}, False),
                                          ({"avx512f", "avx512_bf16"}, True),
                                          ({"amx_tile", "amx_bf16"}, True)])
def test_a_cpu_computes_bf16_natively_only_with_avx512_bf16_or_amx(flags, native, monkeypatch):
    import dfl_lib.device as device

    monkeypatch.setattr(device, "_cpu_flags", lambda: flags)
    cpu = torch.device("cpu")
    assert device.native_bf16(cpu) is native
    assert device.resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    assert device.resolve_precision("fp32", cpu) == "fp32"  # a user's choice is kept
    assert device.resolve_precision("bf16", cpu) == "bf16"


@pytest.mark.parametrize("supported", [True, False])
def test_a_cuda_gpu_takes_bf16_where_it_supports_it(supported, monkeypatch):
    import dfl_lib.device as device

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    assert device.native_bf16(torch.device("cuda")) is supported
    assert device.native_bf16(torch.device("mps")) is False


@pytest.mark.parametrize("flags,expected", [({"avx2"}, "fp32"), ({"avx512_bf16"}, "bf16")])
def test_the_study_profiles_train_in_the_precision_the_machine_computes(flags, expected,
                                                                       monkeypatch):
    """quick, paper and gpu ask for "auto": resolved when the config is composed, so the run's
    name, key and provenance say what it trained in (a report made on two machine kinds tells
    its runs apart); an explicit precision is never overridden."""
    import dfl_lib.device as device

    monkeypatch.setattr(device, "_cpu_flags", lambda: flags)
    for profile in ("quick", "paper"):
        cfg = make_config(profile, dataset="mnist", device="cpu")
        assert cfg.precision == expected
        assert ("-bf16-" in run_name(cfg)) is (expected == "bf16")
    assert make_config("quick", dataset="mnist", device="cpu", precision="bf16").precision == "bf16"
    assert make_config("quick", dataset="mnist", device="cpu", precision="fp32").precision == "fp32"


def test_training_refuses_an_unresolved_precision(synthetic_npz):
    from dfl_lib.config import RunConfig
    from dfl_lib.errors import UsageError
    from dfl_lib.experiments.data import load_data
    from dfl_lib.training.trainer import build_components

    cfg = make_config("smoke", dataset="npz", data_path=str(synthetic_npz)).replace(
        precision="auto")
    assert isinstance(cfg, RunConfig)
    with pytest.raises(UsageError, match="precision 'auto' reached training unresolved"):
        build_components(cfg, load_data(cfg))
