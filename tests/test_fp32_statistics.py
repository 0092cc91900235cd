"""Statistics and accumulations under bf16 autocast (the quick and paper profiles' precision)
are taken in fp32 and in a stable form: each member of the kind is compared with an fp64 (or
fp32 torch) reference on the same bf16 inputs, with large means (8 and 3 per coordinate, std
1) where one-pass or low-precision forms cancel. Inputs are rounded to bf16 first, so the
references see exactly what the code sees: what is left is the code's own error."""
import copy

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from conftest import TinyCNN, quadrants
from dfl_lib.training import distributed
from dfl_lib.training.distributed import GlobalBatchNorm, Shard
from dfl_lib.defences.dynamic import SelfWeightedCrossEntropy, fosc
from dfl_lib.training.loop import EpochSetup, train_epoch
from dfl_lib.losses import AdditiveMarginSoftmax, build_loss

pytestmark = pytest.mark.usefixtures("one_thread")

MEANS = [8.0, 3.0]
BF16 = dict(device_type="cpu", dtype=torch.bfloat16)


def _bf16_normal(shape, *, mean: float, seed: int = 0) -> torch.Tensor:
    """N(mean, 1) rounded to bf16: what autocast's activations look like."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=gen) + mean).bfloat16()


# --------------------------------------------------------------------------- GlobalBatchNorm

@pytest.fixture
def global_batch_path(tmp_path, monkeypatch):
    """A gloo group of one process (file store), with the module told it is one of two, so
    GlobalBatchNorm takes its global-batch path; the all-reduces then sum over this process
    alone (identity), so the result must equal plain BatchNorm on the same batch."""
    if dist.is_initialized():
        pytest.skip("a process group is already running in this process")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    monkeypatch.setattr(distributed, "current_shard", lambda: Shard(rank=0, world=2))
    yield
    dist.destroy_process_group()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.distributed.nn's all_reduce
@pytest.mark.parametrize("mean", MEANS)
def test_global_batchnorm_matches_fp32_batchnorm_under_bf16(global_batch_path, mean):
    x = _bf16_normal((64, 4, 8, 8), mean=mean).requires_grad_()
    # momentum 1: running_var is exactly the batch's unbiased variance, nothing averaged away
    ref, glob = nn.BatchNorm2d(4, momentum=1.0), GlobalBatchNorm(4, momentum=1.0)
    x32 = x.detach().float().requires_grad_()
    out_ref = ref(x32)
    with torch.autocast(**BF16):
        out = glob(x)
    # before: 0.085 (mean 8) and 0.113 (mean 3); now bf16 output rounding only (0.008)
    assert (out.float() - out_ref).abs().max() < 0.02
    torch.testing.assert_close(glob.running_mean, ref.running_mean, rtol=1e-5, atol=1e-5)
    # before: 3.9% (mean 8) and 5.9% (mean 3) off; now 1e-7
    assert ((glob.running_var - ref.running_var) / ref.running_var).abs().max() < 0.01
    assert int(glob.num_batches_tracked) == 1
    # backward through the statistics: the input gradient of the same weighted sum
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (g,) = torch.autograd.grad((out.float() * w).sum(), x)
    (g_ref,) = torch.autograd.grad((out_ref * w).sum(), x32)
    assert ((g.float() - g_ref).norm() / g_ref.norm()) < 0.02
    assert out.dtype == torch.bfloat16  # as torch's BatchNorm2d returns under autocast


# --------------------------------------------------------------------------- PCL distances

def _near_centroids(loss: nn.Module, y: torch.Tensor, *, spread: float, seed: int = 0):
    """bf16 features (N, d) at their class centroid plus N(0, spread^2) noise: the
    well-clustered regime, where distances are small next to the features' norm."""
    c = loss.centroids.detach().double()
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(y), c.shape[1], generator=gen, dtype=torch.float64)
    return (c[y] + spread * noise).bfloat16()


def _fp64_twin(loss: nn.Module) -> nn.Module:
    twin = copy.deepcopy(loss).double()
    twin.load_state_dict({k: v.double() for k, v in loss.state_dict().items()})
    return twin


@pytest.mark.parametrize("mean", MEANS)
@pytest.mark.parametrize("name", ["pcl", "pcl_legacy"])
def test_pcl_distances_terms_and_centroid_gradients_in_fp32(name, mean):
    k, d, n = 10, 64, 256
    y = torch.arange(n) % k
    loss = build_loss(name, num_classes=k, feature_dims={"penultimate": d}, seed=0)
    with torch.no_grad():  # large-norm centroids: every coordinate about `mean`
        loss.centroids.copy_(loss.centroids.abs() + mean)
    ref = _fp64_twin(loss)
    f = _near_centroids(loss, y, spread=0.05)
    logits = torch.randn(n, k, generator=torch.Generator().manual_seed(2)).bfloat16()
    with torch.autocast(**BF16):
        dist_ = loss.distances(f)
        terms = loss.components(logits, y, {"penultimate": f})
    # before: bf16 distances, own-class ones off by up to 0.7% (pcl) and 13% (legacy)
    torch.testing.assert_close(dist_.double(), ref.distances(f.double()), rtol=1e-5, atol=1e-6)
    assert dist_.dtype == torch.float32
    ref_terms = ref.components(logits.double(), y, {"penultimate": f.double()})
    for key, value in terms.items():  # before: up to 3e-3 relative
        assert value.item() == pytest.approx(ref_terms[key].item(), rel=1e-5, abs=1e-7), key
    # what the optimiser moves the centroids by (before: 4.5e-3 and 119% relative)
    sum(terms.values()).backward()
    sum(ref_terms.values()).backward()
    g, g_ref = loss.centroids.grad.double(), ref.centroids.grad
    assert (g - g_ref).norm() / g_ref.norm() < 1e-4


def test_pcl_centroid_closeness_keeps_its_shrink_under_bf16():
    loss = build_loss("pcl", num_classes=4, feature_dims={"penultimate": 8}, seed=0)
    with torch.no_grad():  # two coinciding centroids: arccos at its steepest
        loss.centroids[1] = loss.centroids[0]
    with torch.autocast(**BF16):
        close = loss.centroid_closeness()
    ref = _fp64_twin(loss).centroid_closeness()
    # before: 0.969 for 0.9955 (cosines rounded to 2^-8 swallowed cos_eps = 1e-4)
    torch.testing.assert_close(close.double(), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("mean", MEANS)
@pytest.mark.parametrize("name", ["center", "prototype_conformity"])
def test_centre_losses_stay_fp32_under_bf16(name, mean):
    """Guard: these two were fp32 already (their fp32 centroids promote the bf16 features);
    this keeps it so."""
    k, d, n = 10, 64, 256
    y = torch.arange(n) % k
    dims = {"penultimate": d, "pooled": d}
    loss = build_loss(name, num_classes=k, feature_dims=dims, seed=0)
    with torch.no_grad():
        for p in loss.parameters():
            p.add_(mean)
    ref = _fp64_twin(loss)
    c = loss.centroids if name == "center" else loss.prox["pooled"]
    f = (c.detach()[y] + 0.05 * torch.randn(n, d, generator=torch.Generator().manual_seed(0)))
    f = f.bfloat16()
    logits = torch.randn(n, k, generator=torch.Generator().manual_seed(2)).bfloat16()
    with torch.autocast(**BF16):
        terms = loss.components(logits, y, {"penultimate": f, "pooled": f})
    ref_terms = ref.components(logits.double(), y,
                               {"penultimate": f.double(), "pooled": f.double()})
    for key, value in terms.items():
        assert value.dtype == torch.float32, key
        assert value.item() == pytest.approx(ref_terms[key].item(), rel=1e-5, abs=1e-7), key


def test_additive_margin_shift_in_fp32():
    n, k = 256, 10
    y = torch.arange(n) % k
    gen = torch.Generator().manual_seed(0)
    logits = (torch.rand(n, k, generator=gen) * 60 - 30).bfloat16()  # cosine logits, scale 30
    loss = AdditiveMarginSoftmax()
    with torch.autocast(**BF16):
        value = loss(logits, y)
    ref = AdditiveMarginSoftmax()(logits.double(), y)
    # before: 1.1e-3 off (true logit - 10.5 rounded to bf16); now 1e-6
    assert float(value) == pytest.approx(float(ref), rel=0, abs=1e-5)


# --------------------------------------------------------------------------- Wang et al.

@pytest.mark.parametrize("mean", MEANS)
def test_fosc_sums_in_fp32(mean):
    """Latent (the attack's images and gradients are fp32): a bf16 caller still gets fp32."""
    eps = 8 / 255
    x0 = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    x = (x0 + eps * (2 * torch.rand(x0.shape, generator=torch.Generator().manual_seed(1)) - 1))
    grad = _bf16_normal(x0.shape, mean=mean, seed=2)
    x, x0 = x.bfloat16(), x0.bfloat16()
    got = fosc(x, x0, grad, eps=eps)
    ref = fosc(x.double(), x0.double(), grad.double(), eps=eps)
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-6)  # before: 2e-3 relative
    assert got.dtype == torch.float32


def test_self_weighted_ce_in_fp32_with_bf16_logits():
    n, k = 256, 10
    y = torch.arange(n) % k
    logits = (torch.randn(n, k, generator=torch.Generator().manual_seed(0)) * 3 + 8).bfloat16()
    ref = SelfWeightedCrossEntropy()(logits.double(), y)
    for autocast in (True, False):  # autocast keeps CE in fp32; so must the loss without it
        with torch.autocast(**BF16, enabled=autocast):
            value = SelfWeightedCrossEntropy()(logits, y)
        assert float(value) == pytest.approx(float(ref), rel=1e-5), autocast
        assert value.dtype == torch.float32, autocast


# --------------------------------------------------------------------------- the training loop

class _Recorded(nn.Module):
    """A loss that also records, per batch, its terms recomputed in fp64 on the same (bf16)
    logits and features, the batch size and the number of correct predictions."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.rows = inner, []

    def components(self, logits, y, features):
        parts = self.inner.components(logits, y, features)
        twin = _fp64_twin(self.inner)  # the centroids as they are at this batch
        with torch.autocast(**BF16, enabled=False), torch.no_grad():
            ref = twin.components(logits.double(), y,
                                  {k: v.double() for k, v in features.items()})
        self.rows.append(({k: float(v) for k, v in ref.items()}, len(y),
                          int((logits.argmax(1) == y).sum())))
        return parts


def test_train_epoch_running_sums_match_fp64_under_bf16():
    x, y = quadrants(512, seed=0)
    torch.manual_seed(0)
    model = TinyCNN()
    loss = _Recorded(build_loss("pcl", num_classes=4, feature_dims={"penultimate": 32}, seed=0))
    opt = torch.optim.SGD(list(model.parameters()) + list(loss.parameters()), lr=0.05)
    stats = train_epoch(model, loss, (x * 255).to(torch.uint8), y,
                        setup=EpochSetup(optimizer=opt, batch_size=16,
                                         generator=torch.Generator().manual_seed(0),
                                         autocast_dtype=torch.bfloat16))
    assert len(loss.rows) == 32 and stats["n"] == 512
    n = sum(size for _, size, _ in loss.rows)
    ref_terms = {key: sum(terms[key] * size for terms, size, _ in loss.rows) / n
                 for key in loss.rows[0][0]}
    # before: the PCL's terms came back in bf16, each batch's rounded to 8 bits (1e-3 relative)
    for key, value in stats["terms"].items():
        assert value == pytest.approx(ref_terms[key], rel=1e-5), key
    assert stats["loss"] == pytest.approx(sum(ref_terms.values()), rel=1e-5)
    assert stats["acc"] == sum(c for _, _, c in loss.rows) / n  # an exact count


class _Bf16Terms(nn.Module):
    """A loss whose terms come back in bf16 (CE of about 1.4 and a 0.01 regulariser)."""

    def components(self, logits, y, features):
        ce = F.cross_entropy(logits.float(), y)
        reg = 0.01 * features["penultimate"].float().pow(2).mean()
        return {"ce": ce.bfloat16(), "reg": reg.bfloat16()}

    def forward(self, logits, y, features):
        return sum(self.components(logits, y, features).values())


def test_train_epoch_adds_bf16_terms_in_fp32():
    x, y = quadrants(512, seed=0)
    torch.manual_seed(0)
    model = TinyCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    stats = train_epoch(model, _Bf16Terms(), (x * 255).to(torch.uint8), y,
                        setup=EpochSetup(optimizer=opt, batch_size=16,
                                         generator=torch.Generator().manual_seed(0),
                                         autocast_dtype=torch.bfloat16))
    # the reported loss is the fp64 sum of the reported terms (before: their bf16 sum per batch,
    # 1e-3 relative off)
    assert stats["loss"] == pytest.approx(sum(stats["terms"].values()), rel=1e-6)
