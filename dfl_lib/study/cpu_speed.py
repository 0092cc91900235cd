"""This CPU's training speed against the reference CPU the plan's estimates are calibrated on.

The CPU estimates (`study.estimate`) are calibrated on one machine: 2 cores with AVX-512 and
native bf16, where a clean training epoch of the quick ResNet-18 took 10.7 s per 10,000 MNIST
images in fp32 (reports/benchmarks/epoch_times-quick.txt) and bf16 autocast trained 1.45x
faster. A CPU without native bf16 (AVX2 only, as an AMD EPYC this project was lent) ran the same
epoch 2.0-2.3x slower in fp32, and bf16 autocast 13-15x slower than its own fp32: the quick
profile's bf16 training took 150 s per 5,000-image epoch instead of about 3
(benchmarks/README.md, section 7). So the study measures this
CPU first, with the engine's own training step, and says so before it starts.

    speed = measure_cpu_speed()                  # about 1 s on the reference CPU, 15 s on AVX2
    speed.fp32_factor, speed.bf16_speedup        # 2.1 and 0.08 on that AVX2 CPU
    print(*speed_lines(speed, uses_bf16=True), sep="\n")
"""
from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from ..defences import training_attack
from ..errors import UsageError
from ..experiments.configs import make_config
from ..training.loop import Adversary, EpochSetup, train_epoch
from ..training.trainer import build_components, build_optimizer

__all__ = ["CpuSpeed", "measure_cpu_speed", "parallel_speedup", "seconds_per_batch", "speed_lines",
           "REFERENCE_CLEAN_BATCH_S", "REFERENCE_PGD_EPOCH_S", "REFERENCE_BF16_SPEEDUP"]

# the reference CPU: the quick ResNet-18 (width 16), MNIST, batch 128, clean training, fp32,
# the engine's channels-last epoch: 10.7 s per 10,000 images (epoch_times-quick.txt) = 78.1
# batches
REFERENCE_CLEAN_BATCH_S = 10.7 / (10_000 / 128)
# the same network, data and CPU with PGD-10 training: 44.7 s per 10,000 images (the estimates'
# calibration, `study.estimate`)
REFERENCE_PGD_EPOCH_S = 44.7
REFERENCE_BF16_SPEEDUP = 1.45  # PGD-10 training epoch, fp32 / bf16 autocast, the same CPU


@dataclass(frozen=True)
class CpuSpeed:
    """Seconds per training batch on this CPU (fp32 and bf16 autocast) and its capability
    (`torch.backends.cpu.get_cpu_capability()`, e.g. "AVX2", "AVX512")."""
    fp32_batch_s: float
    bf16_batch_s: float
    capability: str
    threads: int
    # how much faster the plan's workers run side by side than one job of every thread
    # (`parallel_speedup`); 1.0 for one job at a time
    parallel: float = 1.0

    @property
    def fp32_factor(self) -> float:
        """This CPU's fp32 training time over the reference CPU's (2.1: 2.1x slower)."""
        return self.fp32_batch_s / REFERENCE_CLEAN_BATCH_S

    @property
    def bf16_speedup(self) -> float:
        """fp32 time over bf16 autocast time here (above 1: bf16 is faster)."""
        return self.fp32_batch_s / self.bf16_batch_s


def seconds_per_batch(cfg, *, x: torch.Tensor, y: torch.Tensor, batches: int,
                      autocast: bool = False, num_classes: int = 10) -> float:
    """Wall seconds per training batch of the engine's epoch (`training.loop.train_epoch`) for
    `cfg` (model, width, DFL, loss, training attack, batch size, channels-last) on x (N, C, H, W
    in [0, 1]) and y (N,), N at least (batches + 1) x cfg.batch_size: one warm-up batch, then
    `batches` timed. autocast: under bf16 autocast, as cfg.precision "bf16" trains.
    Raises UsageError when x holds too few images."""
    need = cfg.batch_size * (batches + 1)
    if len(x) < need:
        raise UsageError(f"seconds_per_batch needs {need} images ({batches} timed batches and "
                         f"one warm-up of {cfg.batch_size}); got {len(x)}")
    info = SimpleNamespace(num_classes=num_classes, in_channels=x.shape[1],
                           mean=None, std=None)
    model, loss = build_components(cfg.replace(device="cpu"), info)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    opt = build_optimizer(cfg, model, loss)
    gen = torch.Generator().manual_seed(0)
    attack = training_attack(cfg, epoch=cfg.epochs - 1, generator=gen)
    setup = EpochSetup(optimizer=opt, batch_size=cfg.batch_size, generator=gen,
                       augment=cfg.augment, memory_format=fmt,
                       autocast_dtype=torch.bfloat16 if autocast else None)
    adversary = Adversary(attack=attack, fraction=cfg.adv_fraction) if attack else None
    b = cfg.batch_size
    train_epoch(model, loss, x[:b], y[:b], setup=setup, adversary=adversary)
    start = time.perf_counter()
    train_epoch(model, loss, x[b:need], y[b:need], setup=setup, adversary=adversary)
    return (time.perf_counter() - start) / batches


def _reference_step(batches: int, batch_size: int, *, autocast: bool = False) -> float:
    """Seconds per batch of the reference step (the quick ResNet-18, width 16, MNIST-sized
    random images, clean training; under bf16 autocast with `autocast`) in this process, at
    torch's current thread count: one warm-up batch, then `batches` timed."""
    cfg = make_config("quick", dataset="mnist", model="resnet18", width=16, dfl=False,
                      loss="ce", train_attack="none", batch_size=batch_size, augment=False)
    gen = torch.Generator().manual_seed(0)
    n = cfg.batch_size * (batches + 1)
    x = torch.rand(n, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    return seconds_per_batch(cfg, x=x, y=y, batches=batches, autocast=autocast)


def measure_cpu_speed(*, batches: int = 2, batch_size: int = 128) -> CpuSpeed:
    """This CPU's speed on the reference step (the quick ResNet-18, width 16, MNIST-sized random
    images, batch 128, clean training), fp32 and bf16 autocast, `batches` timed batches each
    after one warm-up, at torch's current thread count; seconds per batch of `batch_size`
    images, scaled to the reference's 128 (another size is for tests: the ratio is the
    reference's only at 128)."""
    fp32 = _reference_step(batches, batch_size)
    bf16 = _reference_step(batches, batch_size, autocast=True)
    scale = 128 / batch_size
    return CpuSpeed(fp32_batch_s=fp32 * scale, bf16_batch_s=bf16 * scale,
                    capability=torch.backends.cpu.get_cpu_capability(),
                    threads=torch.get_num_threads())


def _worker_step(threads: int, batches: int, batch_size: int, barrier) -> float:
    """One worker's seconds per batch of the reference step at `threads` torch threads,
    started with the others (`barrier`) so that they contend as the plan's workers do."""
    torch.set_num_threads(threads)
    _reference_step(1, batch_size)  # imports, allocator and kernels warmed before the start
    barrier.wait()
    return _reference_step(batches, batch_size)


def parallel_speedup(*, workers: int, threads: int, batches: int = 6,
                     batch_size: int = 128) -> float:
    """How much faster `workers` processes of `threads` torch threads each get through the
    reference step side by side than one process of torch's current threads alone: workers x
    (one process's seconds per batch) / (a worker's, measured with every worker running at
    once, as the plan's do). On a 2-core AVX2 CPU, 2 workers of 1 thread: about 1.1-1.4
    (benchmarks/README.md, section 8). 1.0 for one worker."""
    if workers <= 1:
        return 1.0
    # the faster of two measurements alone: a first call in a process runs cold
    alone = min(_reference_step(batches, batch_size) for _ in range(2))
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        times = list(pool.map(_worker_step, [threads] * workers, [batches] * workers,
                              [batch_size] * workers, [barrier] * workers))
    return workers * alone / (sum(times) / len(times))


def speed_lines(speed: CpuSpeed, *, uses_bf16: bool) -> list[str]:
    """What the study prints before it starts: this CPU against the reference, and a warning
    where the profile trains under bf16 autocast and this CPU runs it slower than fp32."""
    lines = [f"this CPU ({speed.capability}, {speed.threads} threads, measured now): fp32 "
             f"training {speed.fp32_factor:.1f}x the reference CPU's time, bf16 autocast "
             f"{speed.bf16_speedup:.2f}x as fast as fp32 (the reference: "
             f"{REFERENCE_BF16_SPEEDUP}x)"]
    if uses_bf16 and speed.bf16_speedup < 1:
        lines.append(f"warning: this plan trains under bf16 autocast, which runs "
                     f"{1 / speed.bf16_speedup:.0f}x slower than fp32 on this CPU (no native "
                     f"bf16); the estimates for this CPU count it. The study's profiles pick "
                     f"fp32 on such a CPU (precision 'auto'): bf16 was asked for explicitly")
    return lines
