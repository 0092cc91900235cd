"""A newcomer adds a training-set poison (issue 36): one new file registering it, and the run's
config accepts it, the poisoned set is crafted and cached like any other, the poisoned run's
measurements treat it by what the registry says (a subset changed: the detectors run), and the
study's poisoning grid (notebook 07's table) has its rows. No other file is touched."""
import importlib
import sys
import textwrap

import pytest

from dfl_lib.errors import UsageError
from dfl_lib.experiments.configs import make_config
from dfl_lib.experiments.data import load_data
from dfl_lib.experiments.poison_metrics import poison_metrics
from dfl_lib.poisoning import POISONS, get_poison
from dfl_lib.study.plan import poison_grid

TOY = '''
"""A toy poison: a share of the training labels set to class 0 (a crude label flip)."""
import torch

from dfl_lib.poisoning import PoisonedSet, register_poison


@register_poison("toy_zero", kind="labels", needs="nothing", subset=True, cost=0.0,
                 share="of the training set", summary="labels of a share set to class 0")
def toy_zero(x, y, *, num_classes, budget, model):
    gen = torch.Generator().manual_seed(budget.seed)
    candidates = torch.nonzero(y != 0).flatten()
    count = int(round(budget.fraction * len(y)))
    chosen = candidates[torch.randperm(len(candidates), generator=gen)[:count]].sort().values
    y_new = y.clone()
    y_new[chosen] = 0
    return PoisonedSet(x=x.clone(), y=y_new, indices=chosen, kind="toy_zero",
                       params={"fraction": budget.fraction, "seed": budget.seed})
'''


@pytest.fixture
def toy_poison(tmp_path):
    (tmp_path / "my_toy_poison.py").write_text(textwrap.dedent(TOY))
    sys.path.insert(0, str(tmp_path))
    try:
        importlib.import_module("my_toy_poison")
        yield get_poison("toy_zero")
    finally:
        POISONS.pop("toy_zero", None)
        sys.modules.pop("my_toy_poison", None)
        sys.path.remove(str(tmp_path))


def test_an_unknown_poison_is_refused_naming_the_registered_ones():
    with pytest.raises(UsageError, match="unknown poison 'toy_zero'; known: none, badnets"):
        make_config("smoke", poison="toy_zero")


def test_a_toy_poison_in_a_new_file_reaches_the_runs_and_the_study(toy_poison, synthetic_npz,
                                                                   tmp_path, one_thread):
    assert toy_poison.kind == "labels" and toy_poison.subset
    cfg = make_config("smoke", dataset="npz", data_path=str(synthetic_npz), eps=0.1, epochs=1,
                      n_eval=32, poison="toy_zero", poison_fraction=0.1)
    data = load_data(cfg, runs_root=tmp_path / "runs")
    n_poisoned = round(0.1 * cfg.n_train)  # 10% of the training images
    assert data.poisoned.kind == "toy_zero" and len(data.poisoned.indices) == n_poisoned
    assert (data.y_train[data.poisoned.indices] == 0).all()
    assert list((tmp_path / "runs" / "poisons").glob("*toy_zero*.pt"))  # cached like any other
    metrics = poison_metrics(cfg, runs_root=tmp_path / "runs")
    assert metrics["poison"] == "toy_zero" and metrics["n_poisoned"] == n_poisoned
    assert "detection" in metrics and "attack_success_rate" not in metrics
    grid = [key for key, _ in poison_grid("quick-full-poisoning")]  # quick names its poisons
    assert any("| toy_zero | resnet | no defence | s0" in key for key in grid)
