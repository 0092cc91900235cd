"""The baselines as their authors ran them: Mustafa et al.'s two stages, eps draws, centre rates
and concatenated batches; Wang et al.'s FOSC order, self-weighted CE and lr milestones."""
import pytest
import torch
from torch import nn

from dfl_lib import defences

from dfl_lib.training import trainer as train_mod
from dfl_lib.experiments.configs import make_config
from dfl_lib.defences.dynamic import SelfWeightedCrossEntropy, dynamic_pgd
from dfl_lib.training.loop import Adversary, EpochSetup, train_epoch
from dfl_lib.defences import training_attack
from dfl_lib.experiments.data import load_data
from dfl_lib.training.trainer import build_components


def _cfg(npz, **kw):
    base = dict(dataset="npz", data_path=str(npz), n_train=128, n_val=32, width=4, eps=0.1,
                monitor_size=16)
    return make_config("smoke", **{**base, **kw})


def _tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 12 * 12, 4))


# --------------------------------------------------------------------------- Mustafa et al.

def test_mustafa_adversarial_starts_from_a_clean_softmax_stage(synthetic_npz):
    cfg = _cfg(synthetic_npz, method="mustafa", train_attack="pgd", epochs=7)
    gen = torch.Generator().manual_seed(0)
    stage1 = round(7 * 164 / 664)  # 2 of 7 epochs
    assert all(training_attack(cfg, epoch=e, generator=gen) is None for e in range(stage1))
    assert all(training_attack(cfg, epoch=e, generator=gen) is not None for e in range(stage1, 7))
    ce = nn.Identity()
    loss = object()
    assert defences.epoch_loss(cfg, loss, stage1 - 1, ce) is ce
    assert defences.epoch_loss(cfg, loss, stage1, ce) is loss


def test_mustafa_attack_draws_eps_per_batch_in_their_range(synthetic_npz):
    cfg = _cfg(synthetic_npz, method="mustafa", train_attack="pgd", epochs=7, eps=0.03,
               attack_steps=10)
    attack = training_attack(cfg, epoch=6, generator=torch.Generator().manual_seed(0))
    model = _tiny().eval()
    x = torch.rand(16, 1, 12, 12)
    y = torch.arange(16) % 4
    sizes = [float((attack(model, x, y) - x).abs().amax()) for _ in range(8)]
    assert all(0.02 - 1e-6 <= s <= 0.05 + 1e-6 for s in sizes)  # their U(0.02, 0.05)
    assert max(sizes) - min(sizes) > 0.005  # drawn anew for each batch


def test_mustafa_rates_centres_fixed_model_lr_tenth_in_stage_two(synthetic_npz):
    cfg = _cfg(synthetic_npz, method="mustafa", train_attack="pgd", epochs=7)
    data = load_data(cfg)
    model, loss = build_components(cfg, data)
    assert model.feature_dims["penultimate"] == 1024  # their extra FC layer
    assert loss.w_conprox == 1e-5  # adversarial training: w_conprox 1e-5
    opt = train_mod.build_optimizer(cfg, model, loss)
    sched = train_mod.build_scheduler(cfg, opt)
    centre = [g["lr"] for g in opt.param_groups[1:]]
    assert centre == [0.5, pytest.approx(1e-5 / 1e-5)]  # prox 0.5; conprox 1e-5 / w 1e-5
    model_lrs = []
    for _ in range(7):
        model_lrs.append(opt.param_groups[0]["lr"])
        assert [g["lr"] for g in opt.param_groups[1:]] == centre  # never decayed
        opt.step()
        sched.step()
    # stage 1 (2 of 7 epochs): their softmax schedule, / 10 at 81, 122, 140 of 164 epochs ->
    # epochs 1, 1, 2 of 2 here; stage 2: a tenth of the base rate, constant
    assert model_lrs[:2] == [cfg.lr, pytest.approx(0.01 * cfg.lr)]
    assert model_lrs[2:] == [pytest.approx(0.1 * cfg.lr)] * 5


class _WithFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _tiny()

    def forward(self, x, return_features=False):
        logits = self.net(x)
        return (logits, {"penultimate": logits}) if return_features else logits


def test_concat_mode_trains_on_clean_and_attacked_copies():
    model = _WithFeatures()
    x = (torch.rand(40, 1, 12, 12) * 255).to(torch.uint8)
    y = torch.arange(40) % 4
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    attack = lambda m, xb, yb: xb.flip(-1)  # noqa: E731
    stats = {mode: train_epoch(model, SelfWeightedCrossEntropy(), x, y,
                               setup=EpochSetup(optimizer=opt, batch_size=16,
                                                generator=torch.Generator().manual_seed(0)),
                               adversary=Adversary(attack=attack, fraction=1.0, mode=mode))
             for mode in ("replace", "concat")}
    assert stats["replace"]["n"] == 40 and stats["concat"]["n"] == 80


# --------------------------------------------------------------------------- Wang et al.

def test_dynamic_pgd_always_takes_the_first_step():
    model = _tiny().eval()
    x = torch.rand(8, 1, 12, 12) * 0.5 + 0.25  # inside the box: no step is clipped away
    y = torch.arange(8) % 4
    # a criterion nothing satisfies: after the (always taken) first step every example stops
    out = dynamic_pgd(model, x, y, eps=0.1, c_threshold=1e9, random_start=False, steps=10)
    moved = (out - x).abs().flatten(1).amax(1)
    assert torch.allclose(moved, torch.full((8,), 0.025))  # one step of eps / 4, no more
    # with no criterion, every example takes all its steps
    free = dynamic_pgd(model, x, y, eps=0.1, c_threshold=0.0, random_start=False, steps=10)
    assert ((free - x).abs().flatten(1).amax(1) > 0.05).all()


def test_dynamic_pgd_refuses_a_model_with_a_submodule_in_train_mode():
    model = _tiny().eval()
    model[0].train()
    with pytest.raises(ValueError, match="eval mode"):
        dynamic_pgd(model, torch.rand(2, 1, 12, 12), torch.tensor([0, 1]), eps=0.1,
                    c_threshold=0.0)


def test_dynamic_weights_ce_from_the_second_epoch_and_steps_lr_at_their_milestones(synthetic_npz):
    cfg = _cfg(synthetic_npz, method="dynamic", train_attack="pgd", epochs=12)
    loss = object()
    assert defences.epoch_loss(cfg, loss, 0, None) is loss
    assert isinstance(defences.epoch_loss(cfg, loss, 1, None), SelfWeightedCrossEntropy)
    data = load_data(cfg)
    model, loss = build_components(cfg, data)
    opt = train_mod.build_optimizer(cfg, model, loss)
    sched = train_mod.build_scheduler(cfg, opt)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # Wang et al.: / 10 at epochs 60 and 100 of 120 -> 6 and 10 of 12
    assert lrs[5] == pytest.approx(cfg.lr) and lrs[6] == pytest.approx(cfg.lr / 10)
    assert lrs[9] == pytest.approx(cfg.lr / 10) and lrs[10] == pytest.approx(cfg.lr / 100)


def test_self_weighted_ce_is_the_ce_weighted_by_itself():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]], requires_grad=True)
    y = torch.tensor([0, 0, 1])
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none").detach()
    value = SelfWeightedCrossEntropy()(logits, y)
    assert float(value.detach()) == pytest.approx(float((ce * ce).mean()))
    value.backward()  # the weights are constants: d/dlogits = mean(w_i * dce_i)
    assert torch.isfinite(logits.grad).all()


def test_baseline_metrics_carry_the_note_of_what_differs(synthetic_npz, tmp_path):
    from dfl_lib.experiments.run import train_and_evaluate
    from dfl_lib.defences import BASELINE_NOTES

    cfg = _cfg(synthetic_npz, method="dynamic", train_attack="pgd", epochs=1, n_eval=16)
    metrics = train_and_evaluate(cfg, suite="paper", runs_root=tmp_path, progress=False)
    assert metrics["baseline_note"] == BASELINE_NOTES["dynamic"]
    assert "Differences:" in BASELINE_NOTES["dynamic"] and "Differences:" in BASELINE_NOTES["mustafa"]
    plain = train_and_evaluate(_cfg(synthetic_npz, epochs=1, n_eval=16), suite="paper",
                         runs_root=tmp_path, progress=False)
    assert "baseline_note" not in plain
