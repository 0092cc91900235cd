"""Shared fixtures and helpers: small synthetic data the tests write themselves, a tiny CNN
trained on it, one torch thread for tiny models, and the real data root (../shared/data) when
it exists. Test files import the helpers with `from conftest import ...`."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# `make test` runs two pytest-xdist workers on this project's 2 cores: one torch thread each, and
# the same for what they start (notebook kernels, CLI runs, DDP processes read OMP_NUM_THREADS),
# or the two would slow each other far more than twice
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

# The files whose setup dominates the suite's wall time, run first: `make test` hands files to
# the two workers in collection order (--no-loadscope-reorder), so the smoke study (about half
# the suite's time on one worker) starts at once while the other worker takes the rest. The
# other long files stay in collection order: run beside the smoke study's two processes, the
# ones that start processes of their own (test_workers.py, test_distributed.py) took twice as
# long and the suite 18 s more (382.5 s against 364.5 s, measured on a 2-core AVX2 CPU).
LONGEST_FIRST = ("test_notebooks.py", "test_lab.py")
# end to end: the smoke study, its notebooks and the browser (marked in their files), and the
# files whose tests train on real data, start the command line in subprocesses or recompute the
# golden runs (10-90 s each on a 2-core CPU). All of them carry the "study" mark, so the inner
# loop while coding, `pytest -n 2 -m "not study"`, runs in under a minute; CI runs everything.
END_TO_END = ("test_cli_errors.py", "test_attacks.py", "test_training.py", "test_distributed.py",
              "test_cli.py", "test_data.py", "test_featurespace.py", "test_poison_detect.py",
              "test_golden.py", "test_reproducible.py", "test_runs_lock.py", "test_workers.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order kept
    for item in items:
        if item.path.name in END_TO_END:
            item.add_marker(pytest.mark.study)


def write_synthetic_npz(path: Path, *, n_train=320, n_test=80, size=12, channels=1, seed=0) -> Path:
    """An easy 4-class task: class k is a bright 4x4 square in quadrant k, plus noise.

    Images uint8 (N, H, W[, C]); learnable in a few epochs by a tiny network.
    """
    rng = np.random.default_rng(seed)

    def make(n):
        y = np.arange(n) % 4
        x = rng.integers(0, 60, size=(n, size, size, channels)).astype(np.uint8)
        half = size // 2
        for k in range(4):
            r, c = (k // 2) * half + 1, (k % 2) * half + 1
            x[y == k, r:r + 4, c:c + 4, :] = 230
        return (x[..., 0] if channels == 1 else x), y.astype(np.int64)

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture(scope="session")
def synthetic_npz(tmp_path_factory) -> Path:
    return write_synthetic_npz(tmp_path_factory.mktemp("synthetic") / "quadrants.npz")


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    if not (REAL_DATA / "MNIST" / "raw").is_dir():
        pytest.skip(f"real data not found at {REAL_DATA} (../shared/data beside the repo)")
    return REAL_DATA


def quadrants(n: int, *, seed: int, size: int = 12):
    """x float (n, 1, size, size) in [0, 1], y (n,) in 0..3: class k lights quadrant k."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = torch.rand(n, 1, size, size, generator=gen) * 0.3
    bright = 0.5 + 0.5 * torch.rand(n, generator=gen)
    offset = torch.randint(0, 3, (n, 2), generator=gen)
    half = size // 2
    for i in range(n):
        k = int(y[i])
        r, c = (k // 2) * half + int(offset[i, 0]), (k % 2) * half + int(offset[i, 1])
        x[i, :, r:r + 3, c:c + 3] = bright[i]
    return x, y


class TinyCNN(nn.Module):
    """Two conv layers and a 32-d penultimate layer; forward(x, return_features) as our models."""

    def __init__(self, num_classes: int = 4):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(16 * 3 * 3, 32), nn.ReLU())
        self.head = nn.Linear(32, num_classes)

    def forward(self, x, return_features=False):
        f = self.body(x)  # (N, 32)
        logits = self.head(f)
        return (logits, {"penultimate": f}) if return_features else logits


def train_tiny(x, y, *, seed: int = 0, epochs: int = 3, lr: float = 3e-3) -> TinyCNN:
    """A TinyCNN trained with Adam on (x, y), in eval mode. Moderate training on purpose: a
    model trained much longer gets logit margins of tens, and CE-PGD then stalls on it (see
    dfl_lib.evaluation.checks's notes)."""
    torch.manual_seed(seed)
    model = TinyCNN()
    opt = torch.optim.Adam(model.parameters(), lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(64):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.zero_grad(set_to_none=True)
    return model.eval()


@pytest.fixture(scope="module")
def tiny_task():
    """(TinyCNN trained on 512 quadrant images, x (40, 1, 12, 12) held-out images in [0, 1], y
    (40,)): a model the headline checks' logic runs on in seconds."""
    x_train, y_train = quadrants(512, seed=1)
    x, y = quadrants(40, seed=2)
    return train_tiny(x_train, y_train, seed=0).eval(), x, y


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread; two threads per process oversubscribe a shared
    2-core CPU (test_robust_accuracy + test_masking_checks: 56 s with 2 threads vs 9 s with 1, beside one busy
    process). Use with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
