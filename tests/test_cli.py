"""The command line: typed overrides, and train/evaluate writing their files with provenance."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dfl_lib.cli import parse_overrides

ROOT = Path(__file__).resolve().parents[1]


def test_overrides_are_typed_by_the_config():
    assert parse_overrides(["epochs=3", "dfl=false", "eps=0.1", "model=resnet34"]) == {
        "epochs": 3, "dfl": False, "eps": 0.1, "model": "resnet34"}


@pytest.mark.parametrize("bad,match", [(["epoch=3"], "unknown config key"),
                                       (["epochs=three"], "takes an integer"),
                                       (["dfl=maybe"], "true or false"),
                                       (["epochs"], "key=value")])
def test_bad_overrides_are_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        parse_overrides(bad)


def _cli(*args, runs):
    return subprocess.run([sys.executable, "-m", "dfl_lib", *args, "--runs-dir", str(runs),
                           "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_train_then_evaluate_write_history_checkpoint_and_metrics(synthetic_npz, tmp_path):
    common = ["--profile", "smoke", "--set", "dataset=npz", "--set", f"data_path={synthetic_npz}",
              "--set", "epochs=1", "--set", "eps=0.1", "--set", "n_eval=40"]
    trained = _cli("train", *common, runs=tmp_path)
    assert trained.returncode == 0, trained.stderr
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    for name in ("checkpoint.pt", "history.json", "config.json", "done.json"):
        assert (run / name).exists(), name
    done = json.loads((run / "done.json").read_text())
    assert {"git_commit", "versions", "device", "seed", "config", "wall_seconds"} <= set(done)

    evaluated = _cli("evaluate", *common, "--suite", "paper", runs=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "reusing finished run" in evaluated.stdout
    metrics = json.loads((run / "metrics-paper.json").read_text())
    attacks = [row["name"] for row in metrics["table"]]
    assert attacks[0] == "clean" and "FGSM" in attacks and attacks[-1] == "worst case (Linf, eps 0.1)"
    assert metrics["paper_columns"] == {"FGSM": "FGSM", "PGD": "PGD-2", "C&W": "CW-inf (PGD-2)"}
    paper_cw = next(r for r in metrics["table"] if r["name"].startswith("C&W-L2 paper setting"))
    assert "non-informative" in paper_cw["note"] and paper_cw["norm"] == "L2"
    assert metrics["n_eval"] == 40 and metrics["provenance"]["config"]["epochs"] == 1


def test_unknown_profile_is_rejected(capsys):
    """argparse's own refusal, through the entry point in this process (a subprocess imported
    torch again for a one-line answer)."""
    from dfl_lib.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "--profile", "fast", "--quiet"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_full_suite_has_strong_adaptive_and_transfer_attacks_and_masking_flags(synthetic_npz,
                                                                                 tmp_path,
                                                                                 monkeypatch):
    from dfl_lib.experiments.configs import make_config
    from dfl_lib.experiments.run import train_and_evaluate

    cfg = make_config("smoke", dataset="npz", data_path=str(synthetic_npz), eps=0.1, n_eval=40,
                      dfl=True, loss="pcl", train_attack="pgd")
    import torchattacks

    built = []
    original = torchattacks.AutoAttack.forward

    def spy(self, images, labels):  # records the components actually built, then attacks
        built.extend(self._autoattack.attacks)
        return original(self, images, labels)

    monkeypatch.setattr(torchattacks.AutoAttack, "forward", spy)
    metrics = train_and_evaluate(cfg, runs_root=tmp_path, progress=False)
    rows = {row["name"]: row for row in metrics["table"]}
    attacks = {row["attack"] for row in metrics["table"]}
    assert {"clean", "fgsm", "pgd", "cw", "cw_pgd", "autoattack", "pgd_adaptive", "transfer",
            "worst case"} <= attacks
    # the AutoAttack components carry the config's budgets (every batch builds the same four)
    assert {(type(a).__name__, getattr(a, "steps", None), getattr(a, "n_queries", None))
            for a in built} == {("APGD", cfg.aa_steps, None), ("APGDT", cfg.aa_steps, None),
                                ("FAB", cfg.aa_steps, None), ("Square", None, cfg.aa_queries)}
    # the L-inf worst case is the minimum over the L-inf rows, not over the L2 C&W rows
    linf = [r for r in metrics["table"] if r["norm"] == "Linf" and r["attack"] != "worst case"]
    worst = rows["worst case (Linf, eps 0.1)"]
    assert worst["accuracy"] <= min(r["accuracy"] for r in linf)
    assert set(worst["settings"]["of"]) == {r["name"] for r in linf}
    search = rows[f"C&W-L2 (search, L2 <= {cfg.cw_l2_budget:g})"]
    assert search["norm"] == "L2" and search["settings"]["binary_search_steps"] == \
        cfg.cw_l2_search_steps and search["settings"]["l2_budget"] == cfg.cw_l2_budget
    assert [c["check"] for c in metrics["masking"]] == list(
        __import__("dfl_lib.evaluation.checks", fromlist=["CHECKS"]).CHECKS)
    # the masks of every row are on disk, and the metrics file holds them all
    saved = json.loads(Path(metrics["path"]).read_text())
    assert len(saved["table"]) == len(metrics["table"])
    assert len(list((Path(metrics["path"]).parent / "masks-full").glob("*.npy"))) == len(metrics["table"])


def test_demo_table_shows_rows_that_only_one_run_has():
    from dfl_lib.demo import format_demo

    def result(label, names):
        table = [{"name": n, "accuracy": 0.5, "ci_low": 0.4, "ci_high": 0.6} for n in names]
        return {"label": label, "table": table, "masking": [], "n_train": 10, "n_eval": 4,
                "train_seconds": 1.0, "path": "x", "provenance": {"config": {"eps": 0.3,
                                                                              "width": 4,
                                                                              "epochs": 1}}}

    text = format_demo([result("(a)", ["clean", "PGD-10", "worst case (Linf, eps 0.3)"]),
                        result("(b)", ["clean", "PGD-10", "worst case (Linf, eps 0.3)",
                                       "adaptive PGD (PCL)"])],
                       profile="smoke")
    rows = [line.split("  ")[0] for line in text.splitlines()]
    assert "adaptive PGD (PCL)" in rows
    adaptive = next(line for line in text.splitlines() if line.startswith("adaptive"))
    assert adaptive.split()[3] == "-"  # run (a) has no such row: its cell is a dash
    assert rows.index("worst case (Linf, eps 0.3)") > rows.index("adaptive PGD (PCL)")


def test_metrics_are_reused_under_the_same_evaluation_key(synthetic_npz, tmp_path, monkeypatch,
                                                          capsys):
    from dfl_lib.experiments import run as experiment
    from dfl_lib.experiments.configs import make_config

    cfg = make_config("smoke", dataset="npz", data_path=str(synthetic_npz), eps=0.1, n_eval=16,
                      epochs=1)
    first = experiment.train_and_evaluate(cfg, suite="paper", runs_root=tmp_path, progress=False)

    def no_evaluation(*args, **kwargs):
        raise AssertionError("evaluated again under the same key")

    monkeypatch.setattr(experiment, "evaluate_suite", no_evaluation)
    again = experiment.train_and_evaluate(cfg, suite="paper", runs_root=tmp_path, progress=False)
    assert again["eval_key"] == first["eval_key"] and again["table"] == first["table"]
    assert "reusing metrics" in capsys.readouterr().out
    # another evaluation setting (more test images) re-evaluates the same trained run
    bigger = cfg.replace(n_eval=24)
    assert experiment.eval_key(bigger, suite="paper", transfer=True) != first["eval_key"]
    with pytest.raises(AssertionError, match="evaluated again"):
        experiment.train_and_evaluate(bigger, suite="paper", runs_root=tmp_path, progress=False)
