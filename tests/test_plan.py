"""The study plan: every figure's and table's run of the profile's datasets is in it, shared
runs coincide on purpose, the cells behind verdicts have every seed, the depth study has its
seeds and its no-warm-up controls, and the paper profile keeps the paper's settings."""
import pytest

from dfl_lib.experiments.configs import make_config
from dfl_lib.study.estimate import item_seconds
from dfl_lib.paper.numbers import TABLES, paper_table
from dfl_lib.profiles import get_profile
from dfl_lib.study.plan import (DEPTH_CONTROLS, DEPTHS, HEADLINE_ROWS, SETTINGS, cell_config,
                                cell_seeds, datasets, depth_config, seeds, study_plan,
                                table_rows_of)
from dfl_lib.study.runner import plan_table
from dfl_lib.runs.folder import run_name


@pytest.mark.parametrize("profile", ["smoke", "quick", "quick-full", "paper", "gpu", "paper-jpeg",
                                     "gpu-jpeg"])
def test_every_paper_cell_of_the_profiles_datasets_and_rows_has_a_plan_run(profile):
    configs = {item.cfg for item in study_plan(profile)}
    # the profile's CIFAR-10: the original, or its JPEG copy where the profile chooses it
    cifar = "cifar10_jpeg" if "cifar10_jpeg" in datasets(profile) else "cifar10"
    names = {"MNIST": "mnist", "CIFAR-10": cifar}
    ours = {"resnet_dfl_pcl": "dfl_pcl"}
    missing, made = [], 0
    for table, meta in TABLES.items():
        for cell in paper_table(table):
            row = ours.get(cell["row"], cell["row"])
            dataset = names[meta["dataset"]]
            if (row, cell["setting"]) == ("dynamic", "no defence") or \
                    dataset not in datasets(profile) or \
                    (row != "wrn" and row not in table_rows_of(profile)):
                continue
            for seed in cell_seeds(profile, row=row, setting=cell["setting"]):
                made += 1
                cfg = cell_config(profile, dataset=dataset, row=row, setting=cell["setting"],
                                  seed=seed)
                if cfg not in configs:
                    missing.append((table, row, cell["setting"], seed))
    assert made and not missing


def test_quick_is_mnist_with_three_seeds_for_the_verdict_rows_and_quick_full_adds_the_rest():
    assert datasets("quick") == ("mnist",)
    for row in ("resnet", "dfl_pcl"):  # the headline rows (issue 37: the 120-minute quick)
        for setting in SETTINGS:
            assert cell_seeds("quick", row=row, setting=setting) == (0, 1, 2)
    assert table_rows_of("quick") == ("resnet", "dfl_pcl")
    quick = study_plan("quick")
    assert not [i.key for i in quick if i.role == "cell" and i.cfg.dfl and i.cfg.loss == "ce"]
    full = {i.cfg for i in study_plan("quick-full")}
    assert {i.cfg for i in quick} < full  # quick-full reuses every run of quick (same configs)
    assert cell_seeds("quick-full", row="mustafa", setting="adversarial training") == (0, 1, 2)
    assert cell_seeds("quick-full", row="dfl", setting="adversarial training") == (0, 1, 2)
    assert get_profile("quick-full").runs_dir == "quick"


@pytest.mark.parametrize("profile, depth_seeds", [("quick-full-depth", {0, 1, 2}),
                                                  ("quick-full", {0, 1, 2})])
def test_depth_study_has_every_depth_its_seeds_and_its_no_warmup_controls(profile, depth_seeds):
    items = [i for i in study_plan(profile) if i.role == "depth"]
    warm = [i for i in items if i.cfg.lr_warmup_epochs > 0]
    assert {(i.cfg.model, i.cfg.dfl, i.cfg.seed) for i in warm
            if i.cfg.train_attack == "pgd"} == {
        (m, d, s) for m in DEPTHS for d in (False, True) for s in depth_seeds}
    cold = {(i.cfg.model, i.cfg.dfl, i.cfg.train_attack) for i in items
            if i.cfg.lr_warmup_epochs == 0}
    assert cold == {(m, d, SETTINGS[s]) for m, d, s in DEPTH_CONTROLS}
    # the depth study has its own size at quick (where ResNet-50 trains); the controls stop
    # after 2 epochs; where a profile has none (paper), the backbone-depth runs are the
    # tables' cells, on purpose
    assert (warm[0].cfg.n_train, warm[0].cfg.epochs) == (5000, 6)
    assert {i.cfg.epochs for i in items if i.cfg.lr_warmup_epochs == 0} == {2}
    assert depth_config("paper", model="resnet50", dfl=True, setting="adversarial training") == \
        cell_config("paper", dataset="mnist", row="dfl", setting="adversarial training")


def test_headline_cells_have_every_seed_and_a_strong_evaluation():
    items = study_plan("quick")
    for dataset in datasets("quick"):
        for row, setting in HEADLINE_ROWS:
            got = {i.cfg.seed for i in items if i.role == "cell" and i.cfg.dataset == dataset
                   and i.cfg == cell_config("quick", dataset=dataset, row=row, setting=setting,
                                            seed=i.cfg.seed)}
            assert got == set(seeds("quick")) == {0, 1, 2}
    strong = [i for i in items if i.role == "headline"]
    assert len(strong) == len(datasets("quick")) * len(HEADLINE_ROWS)
    # AutoAttack's standard error at 88% on 250 images is about 2 points
    assert all(i.suite == "headline" and i.cfg.n_eval == 250 for i in strong)
    assert {i.suite for i in study_plan("paper") if i.role == "headline"} == {"full"}


def test_paper_profile_plan_keeps_the_papers_settings():
    items = study_plan("paper")
    cell = next(i.cfg for i in items if i.role == "cell" and i.cfg.dataset == "cifar10"
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
    rows, total = plan_table(study_plan("quick-full"), device="cpu")
    assert total == pytest.approx(sum(s for _, _, s in rows))
    trained = [key for key, what, _ in rows if what.startswith("train")]
    headline = [key for key, what, _ in rows if key.endswith("| s0 | headline")]
    assert headline and not set(headline) & set(trained)  # trained once, as a cell
    depth = {key: s for key, what, s in rows if what.startswith("train")}
    assert depth["mnist | resnet50 + DFL | adversarial training | s0"] > \
        depth["mnist | resnet18 + DFL | adversarial training | s0"] > \
        depth["mnist | resnet50 + DFL | no defence | s0 | no warm-up"]
    quick = sum(item_seconds(i, device="cuda")[1] for i in study_plan("quick"))
    paper = sum(item_seconds(i, device="cuda")[1] for i in study_plan("paper"))
    assert paper > 100 * quick  # FLOPs: full data, width 64, ResNet-50, 50-100 epochs


SLOW_CPU = dict(fp32_batch_s=0.28, bf16_batch_s=3.67, capability="AVX2", threads=2)


def _fixed_speed(monkeypatch, **speed):
    """The CLI's CPU measurement replaced by a fixed speed (an AVX2 CPU's, measured), its
    workers by 2 of 1 thread measured 1.25x as fast as one job."""
    import dfl_lib.study.cpu_speed as cpu_speed
    import dfl_lib.study.main as study_main

    monkeypatch.setattr(cpu_speed, "measure_cpu_speed",
                        lambda **_: cpu_speed.CpuSpeed(**(speed or SLOW_CPU)))
    monkeypatch.setattr(cpu_speed, "parallel_speedup", lambda **_: 1.25)
    monkeypatch.setattr(study_main, "default_workers", lambda **_: (2, 1))


def test_study_plan_only_prints_the_paper_profiles_time_on_this_cpu_and_a_gpu(capsys,
                                                                              monkeypatch):
    import dfl_lib.device as device
    from dfl_lib.__main__ import main

    _fixed_speed(monkeypatch)
    monkeypatch.setattr(device, "_cpu_flags", lambda: {"avx2", "fma"})  # no native bf16
    assert main(["study", "--profile", "paper", "--plan-only"]) == 0
    out = capsys.readouterr().out
    assert "the reference 2-core CPU (AVX-512 with bf16)" in out and "one H100 at 25%" in out
    assert "this CPU, from its training speed measured now" in out
    here = float(out.split(" h on this CPU, from its training speed")[0].split("estimated ")[-1])
    workers = float(out.split(" h on this CPU with 2 workers of 1 thread (1.25x one job's speed")[0]
                    .split("estimated ")[-1])
    assert workers == pytest.approx(here / 1.25, abs=0.06)  # the hours as printed, 1 decimal
    # one line per item with every estimate (it once printed the GPU's alone)
    items = [line for line in out.splitlines() if " s CPU " in line and " s GPU " in line
             and " s here " in line]
    assert len(items) == len(study_plan("paper"))
    assert any(float(line.split(" s CPU ")[0]) > 0 for line in items)
    # on this slow CPU every training item takes longer than on the reference one
    assert all(float(line.split(" s GPU ")[1].split(" s here")[0])
               > float(line.split(" s CPU ")[0]) for line in items)
    # without native bf16 the profile trains in fp32 (precision "auto"): no bf16 warning
    assert all(item.cfg.precision == "fp32" for item in study_plan("paper"))
    assert "warning: this profile trains under bf16 autocast" not in out


def test_gpu_profile_is_cifar10_with_the_papers_networks_and_its_time_is_printed(capsys,
                                                                                monkeypatch):
    from dfl_lib.__main__ import main

    # the original CIFAR-10; its JPEG copy only by choice (gpu-jpeg), and labelled
    assert datasets("gpu") == ("cifar10",) and datasets("gpu-jpeg") == ("cifar10_jpeg",)
    assert "JPEG copy" in get_profile("gpu-jpeg").deviations["data"]
    assert "data" not in get_profile("gpu").deviations
    cfg = cell_config("gpu", dataset="cifar10", row="dfl_pcl",
                      setting="adversarial training", seed=2)
    # the paper's network and data; 40 epochs (a listed deviation) for every row, baselines too
    assert (cfg.model, cfg.width, cfg.epochs, cfg.n_train, cfg.eps) == ("resnet50", 64, 40, 0,
                                                                        0.03)
    assert cell_config("gpu", dataset="cifar10", row="mustafa",
                       setting="adversarial training").epochs == 40
    assert "epochs" in get_profile("gpu").deviations
    # the depth study on the GPU (Figures 1, 3, 5): 5 seeds, every PGD-trained run's end under
    # AutoAttack on 1,000 test images, the regime gate and the robust readings
    ends = [i for i in study_plan("gpu") if i.role == "depth" and i.suite == "depth"]
    assert len(ends) == 5 * 6 and {i.cfg.n_eval for i in ends} == {1000}
    assert {i.cfg.train_attack for i in ends} == {"pgd"}
    _fixed_speed(monkeypatch)
    assert main(["study", "--profile", "gpu", "--plan-only"]) == 0
    out = capsys.readouterr().out
    assert "profile 'gpu'" in out and "one H100" in out


def test_gpu_profile_code_path_runs_at_tiny_size_on_the_cpu(tmp_path, synthetic_npz):
    """The gpu profile's configs (bf16, its suite) train and evaluate, shrunk to seconds."""
    from dfl_lib.experiments.run import train_and_evaluate

    cfg = cell_config("gpu", dataset="cifar10_jpeg", row="dfl_pcl",
                      setting="adversarial training").replace(
        dataset="npz", data_path=str(synthetic_npz), model="resnet18", width=4, n_train=64,
        n_val=32, n_eval=16, epochs=1, monitor_size=8, attack_steps=2, cw_steps=2,
        batch_size=32, device="cpu", precision="bf16")  # its bf16 path, forced on any CPU
    assert cfg.precision == "bf16"
    metrics = train_and_evaluate(cfg, suite="paper", runs_root=tmp_path, progress=False)
    assert metrics["n_eval"] == 16 and {r["name"] for r in metrics["table"]} >= {"clean"}


@pytest.mark.parametrize("profile, base", [("paper", 16), ("gpu", 16), ("quick-full", 4)])
def test_the_wideresnet_has_the_fields_base_width_where_the_resnet_has_64(profile, base):
    from dfl_lib.models import build_model

    wrn = cell_config(profile, dataset="cifar10_jpeg", row="wrn", setting="adversarial training")
    resnet = cell_config(profile, dataset="cifar10_jpeg", row="dfl_pcl",
                         setting="adversarial training")
    assert wrn.width == base == resnet.width // 4
    if profile == "paper":  # WRN-34-10: stages of 160, 320, 640 channels
        net = build_model("wrn", num_classes=10, in_channels=3, width=wrn.width,
                          depth=wrn.wrn_depth, widen_factor=wrn.widen_factor)
        widths = sorted({m.out_channels for m in net.modules()
                         if m.__class__.__name__ == "Conv2d"})
        assert (wrn.wrn_depth, wrn.widen_factor) == (34, 10) and widths[-1] == 640


def test_measured_seconds_reads_each_items_own_run_among_folders_sharing_its_name(tmp_path):
    """The depth study's warm-up and no-warm-up runs, a cell and the poisoning study's reference
    share a folder name; the quick index showed one item's seconds for the other and lost items
    whose newest namesake had no metrics of their suite."""
    import json

    from dfl_lib.study.plan import PlanItem
    from dfl_lib.study.runner import measured_seconds

    cfg = make_config("smoke", dataset="mnist", model="resnet18", train_attack="pgd")
    other = cfg.replace(epochs=cfg.epochs + 1)  # e.g. a 2-epoch control beside a 6-epoch run
    for name, c, train, wall in (("a", cfg, 10.0, 30.0), ("b", other, 99.0, None)):
        rdir = tmp_path / f"{run_name(c)}-{name}"
        rdir.mkdir()
        (rdir / "config.json").write_text(json.dumps(c.to_dict()))
        (rdir / "history.json").write_text(json.dumps([{"train_seconds": train,
                                                         "val_seconds": 1.0}]))
        if wall is not None:
            (rdir / "metrics-table.json").write_text(json.dumps(
                {"provenance": {"wall_seconds": wall}}))
    assert run_name(cfg) == run_name(other)  # the case: same readable name
    items = [PlanItem("train", cfg, None, (), "depth"), PlanItem("eval", cfg, "table", (), "cell"),
             PlanItem("control", other, None, (), "depth")]
    assert measured_seconds(items, runs_root=tmp_path) == {"train": 11.0, "eval": 30.0,
                                                           "control": 100.0}


def test_the_plan_counts_each_poisoned_set_crafted_once():
    """The headline seeds of a poisoning cell retrain victims on one poisoned set, crafted by
    the first of them: the estimate counts its crafting once, as the runner does it."""
    from dfl_lib.study.runner import plan_table

    rows = {key: seconds for key, _, seconds in
            plan_table(study_plan("quick-full-poisoning"), device="cpu")[0]}
    first = rows["poison | adversarial | resnet | no defence | s0"]
    again = rows["poison | adversarial | resnet | no defence | s1"]
    clean = rows["poison | none | resnet | no defence | s0"]
    assert first > 2 * again and abs(again - clean) < 0.2 * clean
    # another defence on the same set crafts nothing either; another set (error_min) does
    assert rows["poison | adversarial | dfl_pcl | no defence | s0"] < 0.5 * first
    assert rows["poison | error_min | resnet | no defence | s0"] > 2 * again


def test_an_item_stopped_between_training_and_evaluation_keeps_its_training_time(tmp_path):
    """An invocation stopped after a cell's training and before its evaluation: the next one
    evaluates it, and the evaluation's wall time no longer holds the training. The quick re-make
    recorded 88 s for a DFL + PCL cell whose own run took 53 s to train and 88 s to evaluate."""
    import json

    from dfl_lib.study.plan import PlanItem
    from dfl_lib.study.runner import measured_seconds

    cfg = make_config("smoke", dataset="mnist", model="resnet18")
    rdir = tmp_path / f"{run_name(cfg)}-a"
    rdir.mkdir()
    (rdir / "config.json").write_text(json.dumps(cfg.to_dict()))
    (rdir / "history.json").write_text(json.dumps([{"train_seconds": 50.0, "val_seconds": 3.0}]))

    def write(done: str, metrics: str) -> dict:
        (rdir / "done.json").write_text(json.dumps({"timestamp_utc": done}))
        (rdir / "metrics-table.json").write_text(json.dumps(
            {"provenance": {"wall_seconds": 88.0, "timestamp_utc": metrics}}))
        items = [PlanItem("cell", cfg, "table", (), "cell"),
                 PlanItem("headline", cfg, "table", (), "headline")]
        return measured_seconds(items, runs_root=tmp_path)

    # trained at 19:05, evaluated 19:23:07-19:24:35 by the next invocation: 53 + 88
    assert write("2026-11-30T19:05:17+00:00", "2026-11-30T19:24:35+00:00")["cell"] == 141.0
    # trained inside the evaluation (it began at 19:03:47, before the training ended)
    assert write("2026-11-30T19:04:00+00:00", "2026-11-30T19:05:15+00:00")["cell"] == 88.0
    # the training counts once: a later item on the same run keeps its own wall time
    assert write("2026-11-30T19:05:17+00:00", "2026-11-30T19:24:35+00:00")["headline"] == 88.0


def test_gpu_estimates_count_a_pass_floor_where_the_flops_alone_say_zero():
    """The quick plan's small MNIST networks are launch-bound on a GPU: the FLOP count alone
    gave 0 s for all 71 items (issue 37); each batch pass now costs at least the floor."""
    from dfl_lib.study.estimate import GPU_PASS_FLOOR_S, RATES, item_seconds

    items = study_plan("quick")
    for item in items:
        seconds, flops = item_seconds(item, device="cuda")
        if item.role in ("depth", "cell", "poison"):
            batches = item.cfg.n_train / item.cfg.batch_size * item.cfg.epochs
            assert seconds >= batches * GPU_PASS_FLOOR_S > 0, item.key
        assert seconds >= flops / RATES["cuda"]  # never below the FLOP rate's time


@pytest.mark.parametrize("attack, seconds", [("pgd", 44.7), ("none", 10.7)])
def test_the_cpu_estimate_gives_the_reference_cpus_clean_and_pgd_epochs(attack, seconds):
    """Both measured epochs of the reference CPU (epoch_times-quick.txt), not only the PGD one:
    a model update costs more per FLOP than an attack's pass (estimate.UPDATE_COST), so a clean
    epoch is not a sixth of a PGD-10 one (one rate for both made it 7.5 s)."""
    from types import SimpleNamespace

    from dfl_lib.experiments.configs import make_config

    cfg = make_config("quick", dataset="mnist", model="resnet18", width=16, dfl=False, loss="ce",
                      train_attack=attack, epochs=1, n_val=0, monitor_size=0, n_train=10_000,
                      precision="fp32")
    item = SimpleNamespace(cfg=cfg, role="cell", suite=None)
    assert item_seconds(item, device="cpu")[0] == pytest.approx(seconds, rel=1e-6)
