"""Loading a trained model without training it (dfl_lib/experiments/trained.py, issue 38): from
its run folder, and from a report's weights file, it computes what the trained model computed."""
import pytest
import torch

from dfl_lib import load_model
from dfl_lib.errors import DataFileError
from dfl_lib.experiments.configs import make_config
from dfl_lib.experiments.run import train_run


@pytest.mark.parametrize("overrides", [{"dfl": True, "loss": "pcl"}, {"loss": "am_softmax"}])
def test_a_loaded_model_computes_what_the_trained_one_did(synthetic_npz, tmp_path, overrides):
    cfg = make_config("smoke", dataset="npz", data_path=str(synthetic_npz), epochs=1, width=4,
                      n_train=64, n_val=16, monitor_size=8, device="cpu", **overrides)
    run = train_run(cfg, runs_root=tmp_path, progress=False)
    x = torch.rand(5, *run["data"].x_test.shape[1:])
    with torch.no_grad():
        expected = run["model"].eval()(x)
        from_folder = load_model(run["run_dir"])(x)
    assert torch.equal(from_folder, expected)
    # a record's weights file: the weights and the config alone
    state = torch.load(run["run_dir"] / "checkpoint.pt", weights_only=True)
    torch.save({"model": state["model"], "config": state["config"]}, tmp_path / "w.pt")
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "w.pt")(x), expected)
    assert not load_model(tmp_path / "w.pt").training


def test_what_is_not_a_trained_model_is_one_line_naming_it(tmp_path):
    with pytest.raises(DataFileError, match="no trained model at .*nowhere"):
        load_model(tmp_path / "nowhere")
    torch.save({"weights": {}}, tmp_path / "other.pt")
    with pytest.raises(DataFileError, match="other.pt holds no 'model' weights and 'config'"):
        load_model(tmp_path / "other.pt")


def test_any_model_under_a_named_suite_at_an_eps(one_thread):
    from conftest import quadrants, train_tiny

    from dfl_lib import evaluate_model, robust_accuracy

    x, y = quadrants(24, seed=1)
    model = train_tiny(x, y, seed=0)
    rows, checks = evaluate_model(model, x, y, suite="paper", eps=0.1, profile="smoke",
                                  dataset="mnist")
    names = [r["name"] for r in rows]
    assert names[:3] == ["clean", "FGSM", "PGD-2"] and checks == []
    linf = [r for r in rows[1:] if r["norm"] == "Linf"]
    assert len(linf) >= 3 and all(r["threat_model"] == {"norm": "Linf", "eps": 0.1} for r in linf)
    # the PGD row is PGD at that eps, as robust_accuracy computes it with the suite's seed
    ours = robust_accuracy(model, x, y, attack="pgd", eps=0.1, steps=2, seed=0)
    assert rows[2]["n_correct"] == ours["n_correct"]
    _, checks = evaluate_model(model, x, y, suite="headline", eps=0.1, profile="smoke",
                               dataset="mnist")
    assert {c["check"] for c in checks} and all("passed" in c for c in checks)


def test_any_model_under_the_l2_threat_model(one_thread, tiny_task):
    """The L2 suite: clean, APGD-CE and APGD-T at an L2 radius, each within it, and the worst
    case, the survivors of both (it is at most either)."""
    from dfl_lib import evaluate_model
    from dfl_lib.errors import UsageError

    model, x, y = tiny_task
    rows, checks = evaluate_model(model, x, y, suite="l2", eps=1.5)
    by = {r["name"]: r for r in rows}
    assert list(by)[:3] == ["clean", "APGD-CE (L2)", "APGD-T (L2)"] and checks == []
    for name in ("APGD-CE (L2)", "APGD-T (L2)"):
        assert by[name]["threat_model"] == {"norm": "L2", "eps": 1.5}
        assert by[name]["max_l2"] <= 1.5 + 1e-4 and by[name]["accuracy"] < by["clean"]["accuracy"]
    worst = rows[-1]
    assert worst["threat_model"] == {"norm": "L2", "eps": 1.5}
    assert worst["n_correct"] <= min(by[n]["n_correct"] for n in ("APGD-CE (L2)", "APGD-T (L2)"))
    with pytest.raises(UsageError, match="positive L2 radius"):
        evaluate_model(model, x, y, suite="l2", eps=0.0)


def test_a_finished_run_is_loaded_without_building_an_optimiser(synthetic_npz, tmp_path):
    """Loading a finished run builds no optimiser: torch's first optimiser in a process imports
    torch._dynamo (2.3 s on a 2-core CPU), which every notebook kernel paid to read runs."""
    import json
    import subprocess
    import sys

    cfg = make_config("smoke", dataset="npz", data_path=str(synthetic_npz), epochs=1, width=4,
                      n_train=64, n_val=16, monitor_size=8, device="cpu")
    first = train_run(cfg, runs_root=tmp_path, progress=False)
    code = ("import json, sys, torch; from dfl_lib.config import RunConfig; "
            "from dfl_lib.experiments.run import train_run; "
            f"cfg = RunConfig(**json.loads({json.dumps(json.dumps(cfg.to_dict()))})); "
            f"run = train_run(cfg, runs_root={str(tmp_path)!r}, progress=False); "
            "print(json.dumps({'dynamo': 'torch._dynamo' in sys.modules, "
            "'history': run['history']}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["dynamo"] is False
    assert loaded["history"] == json.loads(json.dumps(first["history"]))
