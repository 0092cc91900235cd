"""The run configuration: paper defaults, profiles, typed overrides, plain-dict serialisation."""
import json

import pytest

from dfl_lib.config import PROFILES, RunConfig, make_config, profile_deviations


def test_defaults_are_the_papers_values():
    cfg = RunConfig()
    assert (cfg.model, cfg.lr, cfg.batch_size, cfg.attack_steps, cfg.cw_c) == (
        "resnet50", 0.1, 64, 10, 0.1)
    paper_mnist = make_config("paper", dataset="mnist")
    assert (paper_mnist.epochs, paper_mnist.eps, paper_mnist.augment) == (50, 0.3, False)
    paper_cifar = make_config("paper", dataset="cifar10_jpeg")
    assert (paper_cifar.epochs, paper_cifar.eps, paper_cifar.augment) == (100, 0.03, True)


def test_overrides_win_over_profile_and_dataset():
    cfg = make_config("quick", dataset="mnist", epochs=1, eps=0.1)
    assert (cfg.epochs, cfg.eps) == (1, 0.1)
    assert make_config("quick", dataset="mnist").width == PROFILES["quick"].overrides["width"]


def test_overrides_keep_the_defaults_type():
    assert make_config("smoke", lr=1).lr == 1.0  # int accepted for a float
    with pytest.raises(TypeError, match="epochs"):
        make_config("smoke", epochs=2.5)
    with pytest.raises(TypeError, match="dfl"):
        make_config("smoke", dfl="yes")


def test_bad_values_are_clear_errors():
    with pytest.raises(ValueError, match="unknown config key 'epoch'"):
        make_config("smoke", epoch=3)
    with pytest.raises(ValueError, match="unknown profile"):
        make_config("fast")
    with pytest.raises(ValueError, match="eps"):
        make_config("smoke", eps=-0.1)
    with pytest.raises(ValueError, match="train_attack"):
        make_config("smoke", train_attack="deepfool")
    with pytest.raises(ValueError, match="dynamic"):
        make_config("smoke", method="dynamic", train_attack="none")


def test_config_is_frozen_and_serialises_to_a_plain_dict():
    cfg = make_config("quick", dataset="mnist")
    with pytest.raises(AttributeError):
        cfg.lr = 1.0
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert RunConfig(**d) == cfg


def test_every_non_paper_profile_records_its_deviations():
    assert profile_deviations("quick") and profile_deviations("smoke")
