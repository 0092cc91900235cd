"""Each training epoch records the gradient norms at the network's first and last modules (the
stem and the head): the quantity of the paper's claim that a vanishing gradient is more likely
in a deep network under adversarial training (claim gradient_vanishing_deep)."""
import pytest
import torch
import torch.nn.functional as F

from conftest import TinyCNN, quadrants
from dfl_lib.models import build_model
from dfl_lib.training.loop import EpochSetup, gradient_norms, train_epoch

pytestmark = pytest.mark.usefixtures("one_thread")


def _net(seed=0):
    torch.manual_seed(seed)
    return build_model("resnet18", num_classes=4, in_channels=1, width=4)


class _CE(torch.nn.Module):
    def forward(self, logits, y, feats=None):
        return F.cross_entropy(logits, y)


def _setup(model, batch_size):
    return EpochSetup(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                      batch_size=batch_size, generator=torch.Generator().manual_seed(0))


def test_one_batch_epoch_records_the_norms_of_the_first_steps_gradients():
    x, y = quadrants(32, seed=0)
    images = (x * 255).round().to(torch.uint8)  # what train_epoch reads, as floats below
    reference = _net()
    # the gradient of the one step train_epoch takes (train mode, the whole batch)
    F.cross_entropy(reference(images.float() / 255), y).backward()
    expected = {name: torch.cat([p.grad.flatten() for p in getattr(reference, name).parameters()])
                .norm().item() for name in ("stem", "head")}
    model = _net()
    stats = train_epoch(model, _CE(), images, y, setup=_setup(model, batch_size=32))
    assert set(stats["gradients"]) == {"stem", "head"}
    for name, value in expected.items():  # the batch's order differs: float rounding only
        assert stats["gradients"][name] == pytest.approx(value, rel=1e-4), name
    assert stats["gradients"]["stem"] != pytest.approx(stats["gradients"]["head"], rel=1e-3)


def test_the_epochs_value_is_the_mean_over_its_batches():
    x, y = quadrants(64, seed=1)
    model = _net(seed=1)
    seen = []
    original = gradient_norms

    def spy(m):
        norms = original(m)
        seen.append({k: float(v) for k, v in norms.items()})
        return norms

    import dfl_lib.training.loop as loop
    loop.gradient_norms, saved = spy, loop.gradient_norms
    try:
        stats = train_epoch(model, _CE(), (x * 255).to(torch.uint8), y,
                            setup=_setup(model, batch_size=16))
    finally:
        loop.gradient_norms = saved
    assert len(seen) == 4
    for name in ("stem", "head"):
        assert stats["gradients"][name] == pytest.approx(sum(s[name] for s in seen) / 4)


class _Body(TinyCNN):
    """A user's network with neither module: its layers under other names."""

    def __init__(self):
        super().__init__()
        self.classifier, self.head = self.head, None

    def forward(self, x, return_features=False):
        f = self.body(x)
        logits = self.classifier(f)
        return (logits, {"penultimate": f}) if return_features else logits


def test_a_model_records_the_probes_it_has():
    x, y = quadrants(32, seed=0)
    images = (x * 255).to(torch.uint8)
    for model, probes in ((TinyCNN(), {"head"}), (_Body(), set())):
        stats = train_epoch(model, _CE(), images, y, setup=_setup(model, batch_size=32))
        assert set(stats["gradients"]) == probes


def test_a_trained_runs_history_holds_the_norms_per_epoch(tmp_path, synthetic_npz):
    from dfl_lib.experiments.configs import make_config
    from dfl_lib.experiments.run import train_run

    cfg = make_config("smoke", dataset="npz", data_path=str(synthetic_npz), eps=0.1, epochs=2,
                      n_train=64, n_val=16, monitor_size=8, batch_size=32, train_attack="pgd")
    history = train_run(cfg, runs_root=tmp_path, progress=False)["history"]
    assert len(history) == 2
    for row in history:
        assert row["train_grad_stem"] > 0 and row["train_grad_head"] > 0
