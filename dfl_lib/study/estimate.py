"""How long a plan item should take, from the model's FLOP count and a device's effective rate.

A training epoch costs about (forward + backward) x (attack steps x attacked share + 1) per image;
an evaluation, one forward + backward per attack step per image. The CPU rate is calibrated on
this project's measured epoch times (reports/benchmarks/epoch_times-quick.txt: ResNet-18, width
16, MNIST, 10,000 images on 2 cores: 44.7 s with PGD-10 training, 10.7 s clean), which also
give what a training update costs beside an attack's pass (`UPDATE_COST`); the GPU rate is an
assumption (a share of an H100's dense bf16 peak), printed with the estimate.

    seconds, flops = item_seconds(item, device="cpu")
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..attacks import REGISTRY
from ..config import RunConfig
from ..evaluation.suites import CHECKED_SUITES, attack_suite
from ..experiments.configs import make_config
from ..poisoning import get_poison
from ..models.resnet import build_model
from .cpu_speed import REFERENCE_BF16_SPEEDUP, REFERENCE_CLEAN_BATCH_S, REFERENCE_PGD_EPOCH_S

__all__ = ["forward_flops", "train_flops", "eval_flops", "poison_flops", "poison_set",
           "item_seconds", "RATES", "H100_BF16_PEAK", "GPU_PASS_FLOOR_S", "UPDATE_COST"]

H100_BF16_PEAK = 989e12   # dense bf16 FLOP/s of an H100 SXM (NVIDIA's datasheet)
# effective FLOP/s (forward + backward counted as 3 forwards); the CPU figure is calibrated in
# `_cpu_rate`, the GPU one assumes 25% of bf16 peak for small-image ResNets
RATES = {"cuda": 0.25 * H100_BF16_PEAK}
# a GPU pass (forward + backward of one batch) takes at least this long, whatever its FLOPs:
# kernel launches bound the small networks of the quick profiles (a width-16 ResNet-18 on a
# batch of 128 MNIST images is 0.17 TFLOP per PGD-10 step, under a millisecond at the rate
# above, while its ~60 layers launch hundreds of kernels per pass). An assumption, ~4 ms for
# these 18-50-layer ResNets, to be replaced by the GPU check's measurement (issue 37, item 6)
GPU_PASS_FLOOR_S = 0.004
# the reference CPU's clean epoch (10,000 images, the engine's model updates alone) and its
# PGD-10 epoch (the same updates plus 5 attack passes per image: half the batch, 10 steps)
_REFERENCE_CLEAN_EPOCH_S = REFERENCE_CLEAN_BATCH_S * 10_000 / 128
_REFERENCE_ATTACK_PASSES = 0.5 * 10 * 10_000
# a training update (forward + backward + optimiser step, BatchNorm in train mode) costs this
# many times an attack's input-gradient pass of the same FLOPs (eval mode, BatchNorm folded):
# 1.07 ms against 0.68 ms per image on the reference CPU, 1.57x. Counting both at one rate made
# clean training 1.44x faster in the estimate than measured (10.7 s per epoch), and the quick
# plan's no-defence cells 1.4x under their time on an AVX2 CPU (2026-12-06)
UPDATE_COST = (_REFERENCE_CLEAN_EPOCH_S / 10_000) / (
    (REFERENCE_PGD_EPOCH_S - _REFERENCE_CLEAN_EPOCH_S) / _REFERENCE_ATTACK_PASSES)
_SHAPES = {"mnist": (1, 28), "fashion_mnist": (1, 28), "cifar10": (3, 32),
           "cifar10_jpeg": (3, 32)}


@lru_cache(maxsize=64)
def _flops(model: str, width: int, dfl: bool, dataset: str, wrn_depth: int, widen_factor: int,
           extra_fc: int) -> int:
    channels, size = _SHAPES.get(dataset, (3, 32))
    extra = {"depth": wrn_depth, "widen_factor": widen_factor} if model == "wrn" else {}
    if extra_fc:
        extra["extra_fc"] = extra_fc
    net = build_model(model, num_classes=10, in_channels=channels, width=width, dfl=dfl,
                      **extra).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, channels, size, size))
    return counter.get_total_flops()


def forward_flops(cfg: RunConfig) -> int:
    """FLOPs of one forward pass of one image through the model `cfg` describes."""
    return _flops(cfg.model, cfg.width, cfg.dfl, cfg.dataset, cfg.wrn_depth, cfg.widen_factor,
                  cfg.extra_fc)


def train_flops(cfg: RunConfig, *, n_train: int) -> float:
    """FLOPs of the whole training run (forward + backward = 3 forwards)."""
    attacked = cfg.adv_fraction if cfg.train_attack != "none" else 0.0
    steps = {"none": 0, "fgsm": 1, "pgd": cfg.attack_steps, "cw": cfg.attack_steps}[cfg.train_attack]
    per_image = 3 * (1 + attacked * steps + (attacked if cfg.adv_mode == "concat" else 0.0))
    monitor = cfg.monitor_size * 3 * cfg.attack_steps + cfg.n_val  # the per-epoch validation
    return forward_flops(cfg) * cfg.epochs * (n_train * per_image + monitor)


def update_flops(cfg: RunConfig, *, n_train: int) -> float:
    """FLOPs of the training run's model updates alone (forward + backward of every training
    image, every epoch), the part of `train_flops` that costs `UPDATE_COST` per FLOP."""
    return forward_flops(cfg) * 3 * cfg.epochs * n_train


def eval_flops(cfg: RunConfig, *, suite: str, n_eval: int) -> float:
    """FLOPs of one evaluation suite on n_eval images (AutoAttack on its still-robust share)."""
    robust = 0.6 if cfg.train_attack != "none" else 0.05  # share AutoAttack keeps attacking
    passes = 0.0
    for spec in attack_suite(cfg, suite=suite).values():  # each attack states its own cost
        settings = {k: v for k, v in spec.items() if k not in ("attack", "note")}
        entry = REGISTRY[spec["attack"]]
        passes += entry.cost(entry.settings(settings), robust)
    if suite in CHECKED_SUITES:  # transfer (on the surrogate) and the masking checks
        passes += 2 * 5 * cfg.attack_steps + 3 * cfg.attack_steps
    return forward_flops(cfg) * 3 * passes * n_eval


def poison_flops(cfg: RunConfig, *, n_train: int, craft: bool = True) -> float:
    """FLOPs of a poisoning run's measurements (clean and triggered test images, detector
    features) and, with craft=True, of crafting its poisoned set (a plan crafts each set once:
    `poison_set` names it; the runs sharing it reuse it)."""
    f = forward_flops(cfg)
    # the poison's own crafting cost, in forward passes per training image (its registration)
    work = n_train * get_poison(cfg.poison).cost if craft and cfg.poison != "none" else 0.0
    return f * (work + 3 * (cfg.n_eval or 10_000) + n_train)


def poison_set(cfg: RunConfig) -> tuple | None:
    """What identifies the poisoned training set a run trains on (None: unpoisoned): the data
    and its size, the poison fields (its seed among them), eps, and the crafting network's
    architecture; the victim's seed, defence and training are not part of it
    (`experiments.poisoned.poison_key` keys the set itself)."""
    if cfg.poison == "none":
        return None
    fields = tuple(sorted((k, v) for k, v in cfg.to_dict().items() if k.startswith("poison")))
    # a poison crafted against the victim itself depends on the victim's network and loss too
    victim = (cfg.dfl, cfg.loss, cfg.extra_fc) if cfg.poison_surrogate == "victim" else ()
    return (cfg.dataset, cfg.data_path, cfg.n_train, cfg.n_val, cfg.eps, cfg.model, cfg.width,
            *fields, *victim)


@lru_cache(maxsize=1)
def _cpu_rate() -> float:
    """FLOP/s of an attack's pass on the reference CPU (fp32, 2 threads): the PGD-10 epoch's
    attack passes over what the clean epoch leaves of its time."""
    ref = make_config("quick", dataset="mnist", model="resnet18", width=16, dfl=False,
                      loss="ce", train_attack="pgd", epochs=1, n_val=0, monitor_size=0)
    return forward_flops(ref) * 3 * _REFERENCE_ATTACK_PASSES / (
        REFERENCE_PGD_EPOCH_S - _REFERENCE_CLEAN_EPOCH_S)


def item_seconds(item, *, device: str, craft: bool = True, cpu=None) -> tuple[float, float]:
    """(estimated seconds, FLOPs) of a plan item: its training (if not cached) plus its
    evaluation; `device` is "cpu" or "cuda"; craft: whether a poisoning item crafts its
    poisoned set (False where an earlier item of the plan did: `poison_set`); cpu: this CPU's
    measured speed (`cpu_speed.CpuSpeed`) to estimate for it, else the reference CPU."""
    cfg = item.cfg
    n_train = cfg.n_train or (60_000 if "mnist" in cfg.dataset else 50_000) - cfg.n_val
    # the run whose training this item pays for: its own, or a headline's surrogate (clean)
    trained = cfg if item.role in ("depth", "cell", "poison") else \
        cfg.replace(dfl=False, loss="ce", extra_fc=0, train_attack="none",
                    method="standard") if item.role == "headline" else None
    flops = train_flops(trained, n_train=n_train) if trained is not None else 0.0
    if item.suite == "poison":
        flops += poison_flops(cfg, n_train=n_train, craft=craft)
    elif item.suite is not None:
        n_eval = cfg.n_eval or 10_000
        flops += eval_flops(cfg, suite=item.suite, n_eval=n_eval)
    on_gpu = device.startswith("cuda")
    rate = RATES["cuda"] if on_gpu else _cpu_rate() / (cpu.fp32_factor if cpu else 1.0)
    # on a CPU a model update costs UPDATE_COST attack passes of its FLOPs (train mode)
    extra = 0.0 if on_gpu or trained is None else \
        (UPDATE_COST - 1) * update_flops(trained, n_train=n_train)
    seconds = (flops + extra) / rate
    if on_gpu:  # launch-bound below the FLOP rate: every batch pass costs at least the floor
        passes = flops / (3 * forward_flops(cfg) * max(cfg.batch_size, 1))
        seconds = max(seconds, passes * GPU_PASS_FLOOR_S)
    if not on_gpu and cfg.precision == "bf16" and item.role in ("depth", "cell", "poison"):
        # the CPU rate is fp32's; bf16 autocast trains at its own speed (1.45x faster on the
        # reference CPU, studies/bf16_agreement.py; 14x slower on one without native bf16);
        # the evaluation part stays fp32, so only training's share changes
        speedup = cpu.bf16_speedup if cpu else REFERENCE_BF16_SPEEDUP
        train = (train_flops(cfg, n_train=n_train) + extra) / rate
        seconds -= train * (1 - 1 / speedup)
    return seconds, flops
