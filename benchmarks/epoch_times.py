"""Seconds per training epoch on this machine at a profile's widths and subset sizes.

Times a few batches of each (dataset x architecture x training attack) and extrapolates to the
profile's epoch (n_train / batch_size batches), printing one table; the notebook study is planned
from it.  Run:  .venv/bin/python benchmarks/epoch_times.py --profile quick [--batches 4]
"""
from __future__ import annotations

import argparse
import time

import torch

from dfl_lib.config import make_config
from dfl_lib.defences import training_attack
from dfl_lib.training.trainer import build_components, build_optimizer, load_data
from dfl_lib.training.loop import Adversary, EpochSetup, train_epoch

ARCHS = [("resnet18", False), ("resnet18", True), ("resnet34", False), ("resnet34", True),
         ("resnet50", False), ("resnet50", True), ("wrn", False)]
ATTACKS = ["none", "fgsm", "pgd"]


def seconds_per_epoch(cfg, data, *, batches: int) -> float:
    model, loss = build_components(cfg, data)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    opt = build_optimizer(cfg, model, loss)  # the engine's groups, rates and weight decay
    gen = torch.Generator().manual_seed(0)
    attack = training_attack(cfg, epoch=cfg.epochs - 1, generator=gen)
    n = cfg.batch_size * (batches + 1)
    x, y = data.x_train[:n], data.y_train[:n]
    # one warm-up batch, then the timed ones
    setup = EpochSetup(optimizer=opt, batch_size=cfg.batch_size, generator=gen,
                       augment=cfg.augment, memory_format=fmt)
    adversary = Adversary(attack=attack, fraction=cfg.adv_fraction) if attack else None
    train_epoch(model, loss, x[:cfg.batch_size], y[:cfg.batch_size], setup=setup,
                adversary=adversary)
    start = time.perf_counter()
    train_epoch(model, loss, x[cfg.batch_size:], y[cfg.batch_size:], setup=setup,
                adversary=adversary)
    per_batch = (time.perf_counter() - start) / batches
    return per_batch * len(data.y_train) / cfg.batch_size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", default=["mnist", "cifar10_jpeg"])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; profile {args.profile}")
    for dataset in args.datasets:
        base = make_config(args.profile, dataset=dataset)
        data = load_data(base)
        print(f"\n{data.source}: {len(data.y_train)} training images, batch {base.batch_size}, "
              f"width {base.width}, seconds per epoch (x epochs = {base.epochs})")
        print(f"{'model':<22}" + "".join(f"{a:>10}" for a in ATTACKS) + f"{'pgd/none':>10}")
        for model, dfl in ARCHS:
            times = []
            for attack in ATTACKS:
                cfg = base.replace(model=model, dfl=dfl, train_attack=attack,
                                   loss="pcl" if dfl else "ce")
                times.append(seconds_per_epoch(cfg, data, batches=args.batches))
            label = (f"WRN-{base.wrn_depth}-{base.widen_factor}" if model == "wrn" else model) + (
                " + DFL + PCL" if dfl else "")
            print(f"{label:<22}" + "".join(f"{t:10.1f}" for t in times) +
                  f"{times[2] / times[0]:10.1f}")


if __name__ == "__main__":
    main()
