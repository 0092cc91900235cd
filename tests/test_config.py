"""The run configuration: paper defaults, profiles, typed overrides, plain-dict serialisation."""
import json

import pytest

from dfl_lib.config import RunConfig
from dfl_lib.experiments.configs import make_config, profile_deviations
from dfl_lib.profiles import PROFILES


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


METHOD_RUNS = [dict(method="standard", train_attack="none"),
               dict(method="standard", train_attack="pgd"),
               dict(method="mustafa", train_attack="none"),
               dict(method="mustafa", train_attack="pgd"),
               dict(method="dynamic", train_attack="pgd")]


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("dataset", ["mnist", "cifar10_jpeg"])
@pytest.mark.parametrize("run", METHOD_RUNS, ids=lambda r: f"{r['method']}-{r['train_attack']}")
def test_every_field_a_profile_changes_is_a_listed_deviation(profile, dataset, run):
    paper = make_config("paper", dataset=dataset, **run).to_dict()
    cfg = make_config(profile, dataset=dataset, **run).to_dict()
    changed = {k for k in cfg if cfg[k] != paper[k]}
    unlisted = changed - set(PROFILES[profile].deviations)
    assert not unlisted, f"{profile} changes {sorted(unlisted)} without listing them"
    assert all(PROFILES[profile].deviations.values())
    assert profile_deviations(profile)


def test_paper_profile_evaluates_on_the_whole_test_set():
    assert make_config("paper", dataset="mnist").n_eval == 0  # 0 = all 10,000 test images
    assert "n_eval" in PROFILES["quick"].deviations


def test_baselines_get_their_authors_settings_and_the_profiles_scaling():
    dyn = make_config("paper", dataset="cifar10_jpeg", method="dynamic", train_attack="pgd")
    assert (dyn.lr, dyn.batch_size, dyn.epochs, dyn.lr_milestones, dyn.adv_fraction,
            dyn.loss, dyn.weight_decay) == (0.01, 128, 120, "0.5,0.8333", 1.0, "ce", 0.0)
    quick_dyn = make_config("quick", dataset="mnist", method="dynamic", train_attack="pgd")
    assert (quick_dyn.lr, quick_dyn.epochs) == (0.01, PROFILES["quick"].per_dataset["mnist"]["epochs"])
    must = make_config("paper", dataset="cifar10_jpeg", method="mustafa", train_attack="pgd")
    assert (must.extra_fc, must.adv_mode, must.adv_fraction, must.weight_decay, must.epochs,
            must.dfl) == (1024, "concat", 1.0, 1e-4, 664, False)
    assert make_config("paper", method="mustafa").epochs == 564  # clean: 164 + 400
    # explicit overrides still win
    assert make_config("quick", method="dynamic", train_attack="pgd", lr=0.02).lr == 0.02


def test_optional_fields_take_none_and_zero_means_zero():
    cfg = make_config("smoke", pcl_margin=0.0, centroid_lr=None)
    assert cfg.pcl_margin == 0.0 and cfg.centroid_lr is None
    assert make_config("smoke").pcl_margin is None
    with pytest.raises(TypeError, match="pcl_margin.*float or None"):
        make_config("smoke", pcl_margin="big")


def test_parse_overrides_reads_none_only_for_optional_fields():
    from dfl_lib.cli import parse_overrides

    assert parse_overrides(["pcl_margin=none", "centroid_lr=0.2"]) == {"pcl_margin": None,
                                                                       "centroid_lr": 0.2}
    with pytest.raises(ValueError, match="epochs"):
        parse_overrides(["epochs=none"])


def test_method_specific_errors():
    with pytest.raises(ValueError, match="extra_fc"):
        make_config("smoke", method="mustafa", extra_fc=0)
    with pytest.raises(ValueError, match="fgsm or pgd"):
        make_config("smoke", method="mustafa", train_attack="cw")
    with pytest.raises(ValueError, match="loss='ce'"):
        make_config("smoke", method="dynamic", train_attack="pgd", loss="pcl")
    with pytest.raises(ValueError, match="lr_milestones"):
        make_config("smoke", lr_milestones="0.8,0.5")
    with pytest.raises(ValueError, match="adv_mode"):
        make_config("smoke", adv_mode="mix")


def test_closed_sets_are_types_that_match_the_registries():
    from dfl_lib.config import field_choices
    from dfl_lib.data.datasets import DATASETS
    from dfl_lib.losses import LOSSES
    from dfl_lib.models.resnet import MODELS

    assert set(field_choices("dataset")) == set(DATASETS)
    assert set(field_choices("model")) == set(MODELS)
    assert set(field_choices("loss")) == set(LOSSES)
    assert field_choices("lr") is None
    for key, bad in (("loss", "arcface"), ("model", "vgg"), ("schedule", "step"),
                     ("adv_mode", "mix"), ("method", "trades")):
        with pytest.raises(ValueError, match=f"unknown {key} '{bad}'"):
            make_config("smoke", **{key: bad})
