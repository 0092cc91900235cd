"""The study plan: every figure's and table's run is in it, shared runs coincide on purpose,
headline cells have every seed, and the paper profile keeps the paper's settings."""
import pytest

from dfl_lib.config import make_config
from dfl_lib.study.estimate import item_seconds
from dfl_lib.paper.numbers import TABLES, paper_table
from dfl_lib.study.plan import (DEPTHS, HEADLINE_ROWS, SETTINGS, cell_config, depth_config, seeds,
                          study_plan)
from dfl_lib.study.runner import plan_table


@pytest.mark.parametrize("profile", ["smoke", "quick", "paper"])
def test_every_paper_cell_has_a_plan_run(profile):
    configs = {item.cfg for item in study_plan(profile)}
    datasets = {"MNIST": "mnist", "CIFAR-10": "cifar10_jpeg"}
    ours = {"resnet_dfl_pcl": "dfl_pcl"}
    missing = []
    for table, meta in TABLES.items():
        for cell in paper_table(table):
            row = ours.get(cell["row"], cell["row"])
            if (row, cell["setting"]) == ("dynamic", "no defence"):
                continue
            cfg = cell_config(profile, dataset=datasets[meta["dataset"]], row=row,
                              setting=cell["setting"])
            if cfg not in configs:
                missing.append((table, row, cell["setting"]))
    assert not missing


def test_depth_study_has_every_depth_and_shares_the_table_backbone_runs():
    items = [i for i in study_plan("quick") if i.role == "depth"]
    assert {(i.cfg.model, i.cfg.dfl, i.cfg.train_attack) for i in items} == {
        (m, d, a) for m in DEPTHS for d in (False, True) for a in SETTINGS.values()}
    # the same config, on purpose: the depth study's ResNet-18 runs are the tables' cells
    assert depth_config("quick", model="resnet18", dfl=True, setting="adversarial training") == \
        cell_config("quick", dataset="mnist", row="dfl", setting="adversarial training")
    assert depth_config("quick", model="resnet18", dfl=False, setting="no defence") == \
        cell_config("quick", dataset="mnist", row="resnet", setting="no defence")


def test_headline_cells_have_every_seed_and_a_strong_evaluation():
    items = study_plan("quick")
    for dataset in ("mnist", "cifar10_jpeg"):
        for row, setting in HEADLINE_ROWS:
            got = {i.cfg.seed for i in items if i.role == "cell" and i.cfg.dataset == dataset
                   and i.cfg == cell_config("quick", dataset=dataset, row=row, setting=setting,
                                            seed=i.cfg.seed)}
            assert got == set(seeds("quick")) == {0, 1, 2}
    strong = [i for i in items if i.role == "headline"]
    assert len(strong) == 2 * len(HEADLINE_ROWS)
    assert all(i.suite == "headline" and i.cfg.n_eval == 100 for i in strong)
    assert {i.suite for i in study_plan("paper") if i.role == "headline"} == {"full"}


def test_paper_profile_plan_keeps_the_papers_settings():
    items = study_plan("paper")
    cell = next(i.cfg for i in items if i.role == "cell" and i.cfg.dataset == "cifar10_jpeg"
                and i.cfg.dfl and i.cfg.loss == "pcl" and i.cfg.model == "resnet50")
    assert (cell.width, cell.epochs, cell.lr, cell.batch_size, cell.eps, cell.n_eval,
            cell.n_train) == (64, 100, 0.1, 64, 0.03, 0, 0)
    assert make_config("paper").lr_warmup_epochs == 0.0


def test_unknown_rows_settings_and_dynamic_without_attacks_are_errors():
    with pytest.raises(ValueError, match="unknown table row"):
        cell_config("quick", dataset="mnist", row="nope", setting="no defence")
    with pytest.raises(ValueError, match="unknown setting"):
        cell_config("quick", dataset="mnist", row="dfl", setting="sometimes")
    with pytest.raises(ValueError, match="adversarial training by construction"):
        cell_config("quick", dataset="mnist", row="dynamic", setting="no defence")
    with pytest.raises(ValueError, match="unknown profile"):
        study_plan("fast")


def test_plan_estimates_count_each_training_once_and_scale_with_the_profile():
    rows, total = plan_table(study_plan("quick"), device="cpu")
    assert total == pytest.approx(sum(s for _, _, s in rows))
    trained = [key for key, what, _ in rows if what.startswith("train")]
    shared = [key for key, what, _ in rows if key.startswith("mnist | resnet | no defence | s0")]
    assert shared and shared[0] not in trained  # its training was counted in the depth study
    depth = {key: s for key, what, s in rows if what.startswith("train")}
    assert depth["mnist | resnet50 + DFL | adversarial training"] > \
        depth["mnist | resnet18 + DFL | adversarial training"] > depth["mnist | resnet18 | no defence"]
    quick = sum(item_seconds(i, device="cuda")[1] for i in study_plan("quick"))
    paper = sum(item_seconds(i, device="cuda")[1] for i in study_plan("paper"))
    assert paper > 100 * quick  # FLOPs: full data, width 64, ResNet-50, 50-100 epochs


def test_study_plan_only_prints_the_paper_profiles_time_on_this_cpu_and_a_gpu(capsys):
    from dfl_lib.__main__ import main

    assert main(["study", "--profile", "paper", "--plan-only"]) == 0
    out = capsys.readouterr().out
    assert "this project's 2-core CPU" in out and "one H100 at 25%" in out
    assert out.count(" s (GPU)  ") == len(study_plan("paper"))
