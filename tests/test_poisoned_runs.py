"""A poisoned training set is part of a run's configuration: crafted once, saved by key, read
back identically, never touching the validation and test splits, and a run trained on it is
another run (its data fingerprint) than the clean one."""
import pytest
import torch

from dfl_lib.experiments.configs import make_config
from dfl_lib.experiments.data import load_data

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(path, **kw):
    return make_config("smoke", dataset="npz", data_path=str(path), n_train=128, n_val=32,
                       **kw)


def test_badnets_poisons_the_training_split_only_and_is_cached(tmp_path, synthetic_npz):
    clean = load_data(_cfg(synthetic_npz), runs_root=tmp_path)
    cfg = _cfg(synthetic_npz, poison="badnets", poison_fraction=0.25, poison_target=1,
               poison_patch=2)
    a = load_data(cfg, runs_root=tmp_path)
    saved = list((tmp_path / "poisons").glob("*.pt"))
    assert len(saved) == 1
    b = load_data(cfg, runs_root=tmp_path)  # read back
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    idx = a.poisoned.indices
    assert len(idx) == round(0.25 * len(clean.y_train))
    assert (a.y_train[idx] == 1).all()
    rest = torch.ones(len(clean.y_train), dtype=torch.bool)
    rest[idx] = False
    assert torch.equal(a.x_train[rest], clean.x_train[rest])
    assert torch.equal(a.y_train[rest], clean.y_train[rest])
    for split in ("x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(a, split), getattr(clean, split))
    assert a.fingerprint != clean.fingerprint  # another run than the clean one
    assert a.mean == clean.mean and a.std == clean.std


def test_label_flip_and_a_bad_target_through_the_config(tmp_path, synthetic_npz):
    from dfl_lib.errors import UsageError

    flipped = load_data(_cfg(synthetic_npz, poison="label_flip", poison_fraction=0.5),
                        runs_root=tmp_path)
    clean = load_data(_cfg(synthetic_npz), runs_root=tmp_path)
    assert (flipped.y_train != clean.y_train).sum() == round(0.5 * len(clean.y_train))
    with pytest.raises(UsageError, match="target"):
        load_data(_cfg(synthetic_npz, poison="badnets", poison_target=7), runs_root=tmp_path)


def test_the_poison_is_the_attackers_the_seed_is_the_victims(tmp_path, synthetic_npz):
    """The seeds of a poisoning cell retrain the victim on one poisoned set: the victim's `seed`
    never changes the set (nor its cache file), `poison_seed` does."""
    kw = dict(poison="badnets", poison_fraction=0.25, poison_target=1)
    a = load_data(_cfg(synthetic_npz, seed=0, **kw), runs_root=tmp_path)
    b = load_data(_cfg(synthetic_npz, seed=1, **kw), runs_root=tmp_path)
    assert torch.equal(a.poisoned.indices, b.poisoned.indices)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert len(list((tmp_path / "poisons").glob("*.pt"))) == 1
    c = load_data(_cfg(synthetic_npz, seed=0, poison_seed=1, **kw), runs_root=tmp_path)
    assert not torch.equal(a.poisoned.indices.sort().values, c.poisoned.indices.sort().values)
    assert len(list((tmp_path / "poisons").glob("*.pt"))) == 2
    with pytest.raises(Exception, match="poison_seed"):
        _cfg(synthetic_npz, poison_seed=-1)
