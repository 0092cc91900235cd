"""What the DFL adds to one PGD step: forward + backward to the input of ResNet-18 (width 16) on an
MNIST-sized batch, with and without the DFL, in fp32 and under bf16 autocast (the quick profile's
training precision), and the DFL's 1x1 ConvTranspose2d against a 1x1 Conv2d on stage-1-shaped maps.

The contenders run alternately in one process (`timing.alternate`: A B, B A, ...), medians over
repeats, because on this 2-core CPU separate runs of the same step differ by about 20%.

    python benchmarks/dfl_step.py [--batch 128] [--repeats 20]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import alternate  # noqa: E402
from dfl_lib.models.resnet import build_model  # noqa: E402

CPU = torch.device("cpu")


def input_gradient(module: nn.Module, x: torch.Tensor, *, bf16: bool,
                   y: torch.Tensor | None = None) -> torch.Tensor:
    """d(loss)/dx: cross-entropy when y is given (a network), else the output's sum (a layer)."""
    x = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = module(x)
        loss = F.cross_entropy(out, y) if y is not None else out.float().sum()
    grad, = torch.autograd.grad(loss, x)
    return grad


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    nets = {dfl: build_model("resnet18", num_classes=10, in_channels=1, width=16, dfl=dfl).eval()
            for dfl in (False, True)}
    stage1 = torch.rand(args.batch, 16, 28, 28, generator=gen)  # the first stage's output
    layers = {"ConvTranspose2d 1x1": nn.ConvTranspose2d(16, 16, 1, bias=False),
              "Conv2d 1x1": nn.Conv2d(16, 16, 1, bias=False)}
    for bf16 in (False, True):
        steps = alternate({"without DFL": lambda: input_gradient(nets[False], x, y=y, bf16=bf16),
                           "with DFL": lambda: input_gradient(nets[True], x, y=y, bf16=bf16)},
                          repeats=args.repeats, device=CPU, memory=False)
        parts = alternate({name: (lambda m=m: input_gradient(m, stage1, bf16=bf16))
                           for name, m in layers.items()},
                          repeats=args.repeats, device=CPU, memory=False)
        ms = {name: 1000 * t["median_s"] for name, t in {**steps, **parts}.items()}
        print(f"{'bf16' if bf16 else 'fp32'}: PGD step (batch {args.batch}) without DFL "
              f"{ms['without DFL']:.1f} ms, with {ms['with DFL']:.1f} ms "
              f"({ms['with DFL'] / ms['without DFL']:.2f}x); stage-1 layer: "
              + ", ".join(f"{name} {ms[name]:.1f} ms" for name in layers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
