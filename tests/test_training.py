"""Training engine: every mode and baseline learns, checkpoints resume exactly after a SIGKILL,
finished runs are reused, and failures lose nothing already written."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from dfl_lib.training import trainer as train_mod
from dfl_lib.experiments.configs import make_config
from dfl_lib.errors import DataFileError
from dfl_lib.training.loop import to_float
from dfl_lib import defences
from dfl_lib.runs.folder import run_path
from dfl_lib.experiments.data import load_data
from dfl_lib.training.trainer import build_components, train

ROOT = Path(__file__).resolve().parents[1]


def _cfg(npz, **kw):
    base = dict(dataset="npz", data_path=str(npz), n_train=256, n_val=64, epochs=3, width=4,
                batch_size=16,
                lr=0.05, eps=0.1, monitor_size=32)
    return make_config("smoke", **{**base, **kw})


def _fit(model, data) -> tuple[float, float]:
    """(clean CE, clean accuracy) on the training set, model in eval mode: what every mode must
    improve, whatever its own objective (a regulariser can fall while CE sits at chance)."""
    model.eval()
    with torch.no_grad():
        logits = model(to_float(data.x_train))
        ce = torch.nn.functional.cross_entropy(logits, data.y_train)
        return float(ce), float((logits.argmax(1) == data.y_train).float().mean())


MODES = {
    "clean CE": dict(loss="ce"),
    "DFL + PCL, PGD training": dict(dfl=True, loss="pcl", train_attack="pgd"),
    "FGSM random start": dict(train_attack="fgsm", fgsm_random_start=True),
    "C&W training": dict(train_attack="cw", loss="center"),
    "Mustafa two-stage": dict(method="mustafa", loss="prototype_conformity", extra_fc=32, epochs=6, lr=0.01),
    "Mustafa adversarial": dict(method="mustafa", loss="prototype_conformity", extra_fc=32,
                                train_attack="pgd", epochs=6, lr=0.01),
    "Dynamic (FOSC PGD)": dict(method="dynamic", train_attack="pgd"),
    "Dynamic box-aware": dict(method="dynamic", train_attack="pgd", dynamic_box_aware=True),
    "AM-softmax": dict(loss="am_softmax"),
    "WRN + DFL": dict(model="wrn", dfl=True, wrn_depth=10, widen_factor=1),
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_mode_learns_the_task(mode, synthetic_npz, tmp_path):
    cfg = _cfg(synthetic_npz, **MODES[mode])
    data = load_data(cfg)
    model, loss = build_components(cfg, data)
    ce_before, _ = _fit(model, data)
    history = train(model, loss, data, cfg, runs_root=tmp_path, progress=False)
    assert len(history) == cfg.epochs
    ce_after, acc_after = _fit(model, data)
    print(f"\n{mode}: CE {ce_before:.3f} -> {ce_after:.3f}, clean train accuracy {acc_after:.3f}")
    assert acc_after > 0.5, "no better than chance (0.25) by a margin: the mode did not learn"
    assert ce_after < ce_before
    row = history[-1]
    for key in ("train_loss", "train_acc", "train_error", "val_loss", "val_acc", "val_adv_loss",
                "val_adv_acc", "train_seconds", "collapse", "lr"):
        assert key in row
    saved = json.loads((run_path(cfg, data, runs_root=tmp_path) / "history.json").read_text())
    assert len(saved) == cfg.epochs


def test_finished_run_is_reused_not_retrained(synthetic_npz, tmp_path, monkeypatch, capsys):
    cfg = _cfg(synthetic_npz, epochs=2)
    data = load_data(cfg)
    model, loss = build_components(cfg, data)
    first = train(model, loss, data, cfg, runs_root=tmp_path, progress=False)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(train_mod, "train_epoch", no_training)
    model2, loss2 = build_components(cfg, data)
    second = train(model2, loss2, data, cfg, runs_root=tmp_path, progress=False)
    assert "reusing finished run" in capsys.readouterr().out
    assert second == first
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)


CHILD = textwrap.dedent("""
    import os, signal, sys, torch
    torch.set_num_threads(1)
    from dfl_lib.experiments.configs import make_config
    from dfl_lib.experiments.data import load_data
    from dfl_lib.training.trainer import build_components, train
    cfg = make_config("smoke", **{cfg!r})
    data = load_data(cfg)
    model, loss = build_components(cfg, data)
    def kill(epoch, run_dir):
        if epoch == {kill_after}:
            os.kill(os.getpid(), signal.SIGKILL)
    train(model, loss, data, cfg, runs_root={runs!r}, progress=False, on_epoch_end=kill)
""")


def _strip_times(history):
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in history]


def test_resume_after_sigkill_matches_an_uninterrupted_run(synthetic_npz, tmp_path):
    overrides = dict(dataset="npz", data_path=str(synthetic_npz), n_train=256, n_val=64,
                     epochs=3, width=4, eps=0.1, monitor_size=32, train_attack="pgd",
                     fgsm_random_start=False, dfl=True, loss="pcl")
    script = CHILD.format(cfg=overrides, kill_after=1, runs=str(tmp_path / "killed"))
    child = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert child.returncode == -9, child.stderr  # died by SIGKILL right after checkpoint 2

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = make_config("smoke", **overrides)
        data = load_data(cfg)
        resumed_model, resumed_loss = build_components(cfg, data)
        resumed = train(resumed_model, resumed_loss, data, cfg, runs_root=tmp_path / "killed",
                        progress=False)
        whole_model, whole_loss = build_components(cfg, data)
        whole = train(whole_model, whole_loss, data, cfg, runs_root=tmp_path / "whole",
                      progress=False)
    finally:
        torch.set_num_threads(threads)
    assert _strip_times(resumed) == _strip_times(whole)
    for (name, a), b in zip(resumed_model.state_dict().items(), whole_model.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(resumed_loss.centroids, whole_loss.centroids)


def test_failure_keeps_what_was_written(synthetic_npz, tmp_path):
    cfg = _cfg(synthetic_npz, epochs=3)
    data = load_data(cfg)
    model, loss = build_components(cfg, data)

    def fail(epoch, run_dir):
        if epoch == 1:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated"):
        train(model, loss, data, cfg, runs_root=tmp_path, progress=False, on_epoch_end=fail)
    rdir = run_path(cfg, data, runs_root=tmp_path)
    assert len(json.loads((rdir / "history.json").read_text())) == 2
    state = torch.load(rdir / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1
    assert not (rdir / "done.json").exists()
    assert not [p for p in rdir.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


def test_checkpoint_from_another_architecture_is_a_clear_error(synthetic_npz, tmp_path):
    small = _cfg(synthetic_npz, epochs=1)
    data = load_data(small)
    model, loss = build_components(small, data)

    def stop(epoch, run_dir):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model, loss, data, small, runs_root=tmp_path, progress=False, on_epoch_end=stop)
    other = _cfg(synthetic_npz, epochs=1, width=8)
    dest = run_path(other, data, runs_root=tmp_path)
    dest.mkdir(parents=True)
    os.replace(run_path(small, data, runs_root=tmp_path) / "checkpoint.pt", dest / "checkpoint.pt")
    model8, loss8 = build_components(other, data)
    # the checkpoint's own config says width 4 (the smoke width) where the folder's key is for width 8: the
    # record is refused naming the file, before its weights are even tried (issue 35)
    with pytest.raises(DataFileError, match=r"checkpoint.pt.*width=4 where the run is 8"):
        train(model8, loss8, data, other, runs_root=tmp_path, progress=False)
    state = torch.load(dest / "checkpoint.pt", weights_only=True)
    state["config"]["width"] = 8  # a checkpoint that lies about its config too
    torch.save(state, dest / "checkpoint.pt")
    with pytest.raises(ValueError, match="another architecture"):
        train(model8, loss8, data, other, runs_root=tmp_path, progress=False)


def test_channels_last_matches_the_plain_path(synthetic_npz, tmp_path):
    # clean training: the same weights after two epochs, within floating-point tolerance
    results = []
    for cl in (True, False):
        cfg = _cfg(synthetic_npz, epochs=2, channels_last=cl, train_attack="none")
        data = load_data(cfg)
        model, loss = build_components(cfg, data)
        history = train(model, loss, data, cfg, runs_root=tmp_path / str(cl), progress=False)
        results.append((history[-1]["train_loss"], model.state_dict()))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-4)
    for a, b in zip(results[0][1].values(), results[1][1].values()):
        assert torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-5)
    # attacked training differs only through the attack's input gradients, which agree; (PGD's
    # sign() turns float noise at near-zero gradients into whole steps, so whole PGD runs can drift)
    cfg = _cfg(synthetic_npz, epochs=1)
    data = load_data(cfg)
    model, _ = build_components(cfg, data)
    model.eval()
    x, y = to_float(data.x_train[:32]), data.y_train[:32]
    grads = []
    for memory_format in (torch.channels_last, torch.contiguous_format):
        model.to(memory_format=memory_format)
        xi = x.contiguous(memory_format=memory_format).requires_grad_(True)
        torch.nn.functional.cross_entropy(model(xi), y).backward()
        grads.append(xi.grad.contiguous())
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-7)


def test_fosc_criterion_and_stopping():
    from dfl_lib.defences.dynamic import dynamic_criterion, fosc

    assert dynamic_criterion(0, epochs=120) == 0.5
    assert dynamic_criterion(50, epochs=120) == pytest.approx(0.25)
    assert dynamic_criterion(100, epochs=120) == 0.0
    x0 = torch.full((1, 1, 2, 2), 0.5)
    g = torch.tensor([1.0, -1.0, 2.0, 0.0]).view(1, 1, 2, 2)
    # at x0: eps * ||g||_1; at the maximiser of <x - x0, g>: 0
    assert fosc(x0, x0, g, eps=0.1).item() == pytest.approx(0.4)
    best = x0 + 0.1 * g.sign()
    assert fosc(best, x0, g, eps=0.1).item() == pytest.approx(0.0, abs=1e-7)
    # box-aware: pixels at 1 cannot move up, so a positive gradient there promises nothing
    ones = torch.ones(1, 1, 2, 2)
    assert fosc(ones, ones, g.abs(), eps=0.1, box_aware=True).item() == pytest.approx(0.0)
    assert fosc(ones, ones, g.abs(), eps=0.1).item() > 0


def test_run_key_ignores_evaluation_settings_but_not_training_ones(synthetic_npz, tmp_path):
    cfg = _cfg(synthetic_npz)
    data = load_data(cfg)
    here = run_path(cfg, data, runs_root=tmp_path)
    assert run_path(cfg.replace(n_eval=7, aa_queries=10, channels_last=False), data,
                    runs_root=tmp_path) == here
    for change in (dict(epochs=4), dict(eps=0.2), dict(seed=1), dict(dfl=not cfg.dfl)):
        assert run_path(cfg.replace(**change), data, runs_root=tmp_path) != here, change


def test_pcl_margin_zero_is_a_margin_and_none_the_default(synthetic_npz):
    data = load_data(_cfg(synthetic_npz))
    _, zero = build_components(_cfg(synthetic_npz, loss="pcl", pcl_margin=0.0), data)
    _, default = build_components(_cfg(synthetic_npz, loss="pcl"), data)
    assert zero.margin == 0.0 and default.margin == pytest.approx(2 ** 0.5)


def test_history_records_each_loss_term(synthetic_npz, tmp_path):
    cfg = _cfg(synthetic_npz, loss="pcl", epochs=1)
    data = load_data(cfg)
    model, loss = build_components(cfg, data)
    (row,) = train(model, loss, data, cfg, runs_root=tmp_path, progress=False)
    terms = {k: row[f"train_{k}"] for k in ("ce", "intra", "inter_push", "inter_angle")}
    assert sum(terms.values()) == pytest.approx(row["train_loss"], rel=1e-5)


def test_lr_warmup_is_linear_per_batch_then_off(synthetic_npz):
    cfg = _cfg(synthetic_npz, lr_warmup_epochs=1.5)
    first = defences.warmup(cfg, epoch=0, n_batches=10)
    second = defences.warmup(cfg, epoch=1, n_batches=10)
    assert [first(i) for i in (0, 9)] == [pytest.approx(1 / 15), pytest.approx(10 / 15)]
    assert [second(i) for i in (0, 4, 9)] == [pytest.approx(11 / 15), 1.0, 1.0]
    assert defences.warmup(cfg, epoch=2, n_batches=10) is None
    assert defences.warmup(_cfg(synthetic_npz), epoch=0, n_batches=10) is None
