"""quick-full in parts (each within one 180-minute session of a fresh machine): together with
quick they make every item of quick-full's plan with quick-full's own configs, each part runs
only the notebooks its plan feeds, and those notebooks' loaders ask for no run the part does not
train (a notebook loads a missing run by training it, untimed, inside its kernel)."""
import pytest

from dfl_lib.errors import UsageError
from dfl_lib.profiles import QUICK_FULL_PARTS, get_profile
from dfl_lib.study.index import NOTEBOOKS, profile_notebooks, run_notebooks, write_index
from dfl_lib.study.plan import study_plan


def test_quick_and_the_parts_make_every_item_of_quick_full_and_nothing_else():
    # an item is its run and its evaluation: the same config and suite as quick-full's item
    # give the same run key and the same numbers
    full = {(item.cfg, item.suite): item for item in study_plan("quick-full")}
    made = {(item.cfg, item.suite) for item in study_plan("quick")}
    for part in QUICK_FULL_PARTS:
        items = study_plan(part)
        assert items, part
        assert [i.key for i in items if (i.cfg, i.suite) not in full] == [], part
        made |= {(i.cfg, i.suite) for i in items}
    assert [item.key for pair, item in full.items() if pair not in made] == []


def test_the_parts_share_only_the_plain_resnets():
    """quick-full-pgd retrains the plain ResNet without attacks (Figure 6b's reference and a
    headline cell) and quick-full-clean the PGD-trained one's seed 0 (its regime anchor, about
    14 minutes measured): a part never reads another's runs."""
    seen, shared = {}, set()
    for part in QUICK_FULL_PARTS:
        for item in study_plan(part):
            if seen.setdefault(item.cfg, part) != part:
                shared.add((item.cfg.dfl, item.cfg.loss, item.cfg.method, item.cfg.train_attack,
                            item.cfg.seed if item.cfg.train_attack == "pgd" else "any"))
    assert shared == {(False, "ce", "standard", "none", "any"), (False, "ce", "standard", "pgd", 0)}


def test_a_part_evaluates_headline_cells_it_trains_and_no_other():
    keys = [i.key for i in study_plan("quick-full-clean") if i.role == "headline"]
    assert keys == ["mnist | resnet | no defence | s0 | headline",
                    "mnist | resnet | adversarial training | s0 | headline"]
    assert not [i for i in study_plan("quick-full-depth") if i.role != "depth"]


@pytest.mark.parametrize("part", QUICK_FULL_PARTS)
def test_a_part_with_mnist_cells_trains_its_own_regime_anchor(part):
    """Every robustness verdict needs the PGD-trained ResNet's AutoAttack accuracy (seed 0's
    headline evaluation, `evidence.profile_regime`): a part with MNIST table cells trains that
    run and evaluates it, or its Tables 1 and 3 verdicts could only read "not measured"."""
    items = study_plan(part)
    if not [i for i in items if i.role == "cell" and i.cfg.dataset == "mnist"]:
        return
    anchor = [i for i in items if i.role == "headline" and i.cfg.dataset == "mnist"
              and i.cfg.seed == 0 and i.cfg.train_attack == "pgd" and not i.cfg.dfl
              and i.cfg.loss == "ce" and i.cfg.method == "standard"]
    assert len(anchor) == 1, part


def test_an_anchor_cell_is_seed_0_only():
    from dfl_lib.study.plan import cell_seeds

    assert cell_seeds("quick-full-clean", row="resnet", setting="adversarial training") == (0,)
    assert cell_seeds("quick-full-clean", row="dfl_pcl", setting="adversarial training") == ()
    assert cell_seeds("quick-full-clean", row="dfl_pcl", setting="no defence") == (0, 1, 2)


def test_each_part_has_its_own_runs_folder_and_only_the_poisoning_part_poisons():
    for part in QUICK_FULL_PARTS:
        p = get_profile(part)
        assert p.runs_dir == "" and p.budget_minutes
        poisons = [i for i in study_plan(part) if i.role == "poison"]
        if part == "quick-full-poisoning":
            assert poisons and {i.role for i in study_plan(part)} == {"poison"}
        else:
            assert p.poisoning == {} and not poisons


def test_quick_keeps_the_headline_and_leaves_the_rest_to_the_parts():
    """The 120-minute quick: the MNIST headline cells at 3 seeds with their AutoAttack cells and
    BadNets at 3 seeds; no depth study, no DFL-only row, no other poison."""
    items = study_plan("quick")
    cells = {(i.cfg.method, i.cfg.dfl, i.cfg.loss, i.cfg.train_attack) for i in items
             if i.role == "cell"}
    assert cells == {("standard", False, "ce", "none"), ("standard", False, "ce", "pgd"),
                     ("standard", True, "pcl", "none"), ("standard", True, "pcl", "pgd")}
    assert {i.cfg.seed for i in items if i.role == "cell"} == {0, 1, 2}
    assert len([i for i in items if i.role == "headline"]) == 3
    assert not [i for i in items if i.role == "depth"]
    assert {i.cfg.poison for i in items if i.role == "poison"} == {"none", "badnets"}
    assert {i.cfg.seed for i in items if i.cfg.poison == "badnets"} == {0, 1, 2}
    assert "01-depth" not in profile_notebooks("quick")


def test_profile_notebooks_keeps_the_study_order_and_all_means_every_one():
    assert profile_notebooks("quick-full") == NOTEBOOKS
    assert profile_notebooks("quick") == NOTEBOOKS[1:]
    assert profile_notebooks("quick-full-pgd") == ("03-robustness-tables", "04-training-curves")


def test_running_a_notebook_outside_the_profile_is_refused_before_any_kernel(tmp_path):
    with pytest.raises(UsageError, match="not part of profile 'quick-full-depth'"):
        run_notebooks("quick-full-depth", out_dir=tmp_path, runs_dir=tmp_path,
                      only=("03-robustness-tables",))
    assert not list(tmp_path.iterdir())


def test_a_parts_index_lists_only_its_notebooks(tmp_path):
    text = write_index("quick-full-depth", out_dir=tmp_path, command="pytest", plan_seconds={},
                       notebook_seconds={"01-depth": 3.0}).read_text()
    assert "01-depth.ipynb" in text
    assert not [n for n in NOTEBOOKS[1:] if f"{n}.ipynb" in text]
    assert "a part of quick-full" in text


class _Loaded(Exception):
    """Raised by the fake loaders with the config a notebook asked for."""


@pytest.mark.parametrize("part", QUICK_FULL_PARTS)
def test_the_parts_notebooks_ask_only_for_runs_the_part_trains(part, monkeypatch):
    """The loaders behind notebooks 01, 03, 04 and 07, with training and evaluation
    replaced by a recorder: every config they ask for is one the part's plan makes."""
    from types import SimpleNamespace

    import torch

    from dfl_lib.study import records

    asked = []

    def fake_train(cfg, **_):
        asked.append(cfg)
        data = SimpleNamespace(y_val=torch.zeros(4), y_train=torch.zeros(8))
        return {"model": None, "loss": None, "data": data, "run_dir": SimpleNamespace(name="x"),
                "history": [{"val_acc": 0.9, "val_adv_acc": 0.5}]}

    def fake_train_and_evaluate(cfg, **_):
        asked.append(cfg)
        return {}

    monkeypatch.setattr(records, "train_run", fake_train)
    monkeypatch.setattr(records, "train_and_evaluate", fake_train_and_evaluate)
    books = profile_notebooks(part)
    datasets = get_profile(part).datasets
    if "01-depth" in books:
        records.depth_records(part)
    if "03-robustness-tables" in books:
        records.cell_results(part)
    if "07-data-poisoning" in books:
        from dfl_lib.study import poison_records

        monkeypatch.setattr(poison_records, "poison_metrics",
                            lambda cfg, **_: asked.append(cfg) or {"path": "x/metrics.json"})
        poison_records.poison_records(part)
    if "04-training-curves" in books:
        for dataset in datasets:
            records.component_records(part, dataset=dataset)
        defences = records.defence_records(part, dataset="mnist")
        # Figure 6 (b) names the seed of each curve (curve_grid refuses a record without one)
        assert [r["seed"] for r in defences] == [c.seed for c in asked[-len(defences):]]
    planned = {item.cfg for item in study_plan(part)}
    assert asked, part
    assert [(c.dataset, c.model, c.dfl, c.loss, c.method, c.train_attack, c.seed)
            for c in asked if c not in planned] == []
