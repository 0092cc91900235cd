"""A newcomer adds a defence (issue 18): one new file registering a `Defence` subclass, and a
smoke run trains with it through the normal command path (config, training loop, run folder).
No other file is touched."""
import importlib
import sys
import textwrap

import pytest

from dfl_lib.experiments.configs import make_config
from dfl_lib.defences import DEFENCES
from dfl_lib.experiments.run import train_run

TOY = '''
"""A toy defence: training samples perturbed by uniform noise of size eps (no gradients)."""
from functools import partial

import torch

from dfl_lib.defences import Defence, register_defence

CALLS = []


def noise(model, x, y, *, eps, generator):
    CALLS.append(len(x))
    return (x + eps * (2 * torch.rand(x.shape, generator=generator) - 1)).clamp(0, 1)


@register_defence
class NoiseTraining(Defence):
    name = "toy_noise_training"
    notes = "a toy: uniform noise instead of an attack"

    def config_defaults(self, *, train_attack):
        return {"adv_fraction": 1.0}

    def validate(self, cfg):
        if cfg.train_attack != "none":
            from dfl_lib.errors import UsageError
            raise UsageError("toy_noise_training draws its own noise: set train_attack=none")

    def training_attack(self, cfg, *, epoch, generator):
        return partial(noise, eps=cfg.eps, generator=generator)
'''


def test_a_toy_defence_in_a_new_file_trains_a_smoke_run(tmp_path, synthetic_npz, one_thread):
    (tmp_path / "my_toy_defence.py").write_text(textwrap.dedent(TOY))
    sys.path.insert(0, str(tmp_path))
    try:
        toy = importlib.import_module("my_toy_defence")
        cfg = make_config("smoke", dataset="npz", data_path=str(synthetic_npz), n_train=128,
                          n_val=32, epochs=2, width=4, eps=0.1, method="toy_noise_training")
        assert cfg.adv_fraction == 1.0  # the defence's own default
        run = train_run(cfg, runs_root=tmp_path / "runs", progress=False)
        assert len(run["history"]) == 2 and (run["run_dir"] / "done.json").exists()
        assert sum(toy.CALLS) == 2 * 128  # every training sample, both epochs
        with pytest.raises(ValueError, match="draws its own noise"):
            make_config("smoke", method="toy_noise_training", train_attack="pgd")
    finally:
        DEFENCES.pop("toy_noise_training", None)
        sys.modules.pop("my_toy_defence", None)
        sys.path.remove(str(tmp_path))


def test_an_unknown_method_lists_the_registered_defences():
    with pytest.raises(ValueError, match="unknown method 'tpyo'.*dynamic.*mustafa.*standard"):
        make_config("smoke", method="tpyo")
