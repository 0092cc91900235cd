"""Shared fixtures: small synthetic data the tests write themselves, and the real data root
(../shared/data) when it exists."""
from pathlib import Path

import numpy as np
import pytest

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
