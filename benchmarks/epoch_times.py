"""Seconds per training epoch on this machine at a profile's widths and subset sizes.

Times a few batches of each (dataset x architecture x training attack) and extrapolates to the
profile's epoch (n_train / batch_size batches), printing one table; the notebook study is planned
from it.  Run:  .venv/bin/python benchmarks/epoch_times.py --profile quick [--batches 4]
"""
from __future__ import annotations

import argparse

import torch

from dfl_lib.experiments.configs import make_config
from dfl_lib.study.cpu_speed import seconds_per_batch
from dfl_lib.experiments.data import load_data

ARCHS = [("resnet18", False), ("resnet18", True), ("resnet34", False), ("resnet34", True),
         ("resnet50", False), ("resnet50", True), ("wrn", False)]
ATTACKS = ["none", "fgsm", "pgd"]


def seconds_per_epoch(cfg, data, *, batches: int) -> float:
    """The engine's training step timed on `batches` batches (after one warm-up;
    `dfl_lib.study.cpu_speed.seconds_per_batch`), extrapolated to the profile's epoch."""
    n = cfg.batch_size * (batches + 1)
    per_batch = seconds_per_batch(cfg, x=data.x_train[:n], y=data.y_train[:n], batches=batches,
                                  num_classes=data.num_classes)
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
