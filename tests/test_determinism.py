"""Same inputs, same gradients, on several threads (issue 17: the quick study's Mustafa et al.
adversarial MNIST cell moved by 0.4 points between two runs of the same configuration).

The cause: `centroids[y]` differentiates through index_put_(accumulate=True), which torch runs
in parallel on the CPU once the gathered rows hold more than ~32k values (64 x 1024-d: Mustafa
et al.'s extra layer), so the centroid gradient's sums land in a thread-dependent order. Every
loss with per-class rows now gathers them with `losses.rows_of` (index_select: a fixed order).
"""
import pytest
import torch

from dfl_lib.losses import LOSSES, build_loss, rows_of


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _gradients(loss, logits, y, features):
    loss.zero_grad(set_to_none=True)
    parts = loss.components(logits, y, features) if hasattr(loss, "components") else \
        {"loss": loss(logits, y, features)}
    sum(parts.values()).backward()
    return [p.grad.clone() for p in loss.parameters() if p.grad is not None]


@pytest.mark.parametrize("name", sorted(set(LOSSES) - {"ce", "am_softmax"}))
def test_centroid_gradients_are_the_same_every_time_on_two_threads(name, two_threads):
    g = torch.Generator().manual_seed(0)
    n, d, k = 128, 1024, 10  # 128 x 1024 gathered values: the parallel path
    y = torch.randint(0, k, (n,), generator=g)
    logits = torch.randn(n, k, generator=g)
    features = {"pooled": torch.randn(n, d, generator=g),
                "penultimate": torch.randn(n, d, generator=g)}
    loss = build_loss(name, num_classes=k, feature_dims={"pooled": d, "penultimate": d})
    first = _gradients(loss, logits, y, features)
    assert first, "the loss has centroids with gradients"
    for _ in range(8):
        for a, b in zip(first, _gradients(loss, logits, y, features), strict=True):
            assert torch.equal(a, b), name


def test_rows_of_is_indexing(two_threads):
    table = torch.randn(10, 1024, requires_grad=True)
    y = torch.randint(0, 10, (128,), generator=torch.Generator().manual_seed(1))
    assert torch.equal(rows_of(table, y), table[y])
