"""The fp32 CPU path against this CPU's own limit, side by side in one process (alternating,
medians): the quick profile's PGD-10 training step (ResNet-18 width 16 + DFL + PCL, MNIST, batch
128, half the batch adversarial) as the engine runs it (channels-last), in contiguous memory,
under torch.compile (inductor, default mode; compile time left out), and as a textbook loop;
evaluation's forward passes under no_grad vs inference_mode; and the measured limits: sgemm
(2048^3) and the step's arithmetic (torch's FLOP counter) give the share of the sgemm rate the
step reaches.

    .venv/bin/python benchmarks/fp32_path.py --data-dir ../shared/data --repeats 5 \\
        --out benchmarks/results-fp32-path-<machine>.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench_cases import _our_epoch, _plain_epoch
from timing import alternate

from dfl_lib.device import set_threads
from dfl_lib.experiments.data import load_data
from dfl_lib.study.plan import cell_config
from dfl_lib.training.trainer import build_components


def sgemm_gflops(*, n: int = 2048, repeats: int = 5) -> float:
    """The best of `repeats` n^3 fp32 matrix products, in GFLOP/s (2 n^3 flops each)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def step_flops(model, x: torch.Tensor, y: torch.Tensor, *, steps: int, fraction: float) -> float:
    """Floating-point operations of one PGD-`steps` training step on (x, y) with `fraction` of
    the batch adversarial: `steps` forward + backward passes on that share, one on the batch
    (torch's FLOP counter: convolutions and matrix products; it cannot watch autograd.grad, so
    each pass is counted as a forward and loss.backward())."""
    def passes(n: int) -> float:
        with FlopCounterMode(display=False) as counter:
            out = model(x[:n])
            out = out[0] if isinstance(out, tuple) else out
            torch.nn.functional.cross_entropy(out, y[:n]).backward()
        model.zero_grad(set_to_none=True)
        return float(counter.get_total_flops())
    return steps * passes(round(fraction * len(y))) + passes(len(y))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    set_threads()
    cfg = dataclasses.replace(
        cell_config("quick", dataset="mnist", row="dfl_pcl", setting="adversarial training",
                    device="cpu"), precision="fp32")
    data = load_data(cfg, root=args.data_dir)
    n = cfg.batch_size
    x, y = data.x_train[:n], data.y_train[:n]
    eager = _our_epoch(cfg, data, x, y, fmt=torch.channels_last, device=torch.device("cpu"),
                       precision="fp32")
    contenders = {
        "engine, channels-last (the default)": eager,
        "engine, contiguous": _our_epoch(cfg, data, x, y, fmt=torch.contiguous_format,
                                         device=torch.device("cpu"), precision="fp32"),
        "textbook loop": _plain_epoch(cfg, data, x, y),
    }
    compiled = _our_epoch(cfg, data, x, y, fmt=torch.channels_last, device=torch.device("cpu"),
                          precision="fp32", compile_model=True)
    start = time.perf_counter()
    compiled()  # compiles: left out of the timing
    compile_s = time.perf_counter() - start
    contenders["engine, torch.compile (inductor)"] = compiled
    steps = alternate(contenders, repeats=args.repeats, device=torch.device("cpu"), memory=False)
    counted, _ = build_components(cfg, data)
    flops = step_flops(counted.train(), x.float().div(255), y, steps=cfg.attack_steps,
                       fraction=cfg.adv_fraction)
    gemm = sgemm_gflops()
    base = steps["engine, channels-last (the default)"]["median_s"]
    rows = [{"contender": name, "median_s": r["median_s"], "images_per_s": n / r["median_s"],
             "ratio_vs_default": base / r["median_s"],
             "gflops_per_s": flops / r["median_s"] / 1e9,
             "share_of_sgemm": flops / r["median_s"] / 1e9 / gemm} for name, r in steps.items()]
    # evaluation's forward passes (the clean and the judged predictions of every batch)
    from_epoch = _eval_model(cfg, data)
    xe = data.x_test[:500].float().div(255).contiguous(memory_format=torch.channels_last)

    def no_grad():
        with torch.no_grad():
            return from_epoch(xe)

    def inference():
        with torch.inference_mode():
            return from_epoch(xe)

    forward = alternate({"no_grad": no_grad, "inference_mode": inference},
                        repeats=args.repeats, device=torch.device("cpu"), memory=False)
    out = {"machine": platform.processor() or platform.machine(),
           "capability": torch.backends.cpu.get_cpu_capability(),
           "threads": torch.get_num_threads(), "torch": torch.__version__,
           "batch": n, "step_gflop": flops / 1e9, "sgemm_gflops_per_s": gemm,
           "compile_seconds": compile_s, "training_step": rows,
           "eval_forward_500": {k: v["median_s"] for k, v in forward.items()}}
    for row in rows:
        print(f"{row['contender']:<38} {row['images_per_s']:7.1f} images/s  "
              f"x{row['ratio_vs_default']:.2f}  {row['gflops_per_s']:6.1f} GFLOP/s "
              f"({row['share_of_sgemm']:.0%} of sgemm)")
    print(f"step {flops / 1e9:.1f} GFLOP per batch of {n}; sgemm {gemm:.0f} GFLOP/s; "
          f"compile {compile_s:.0f} s; eval forward of 500 images: "
          + ", ".join(f"{k} {v['median_s']:.3f} s" for k, v in forward.items()))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)
    return 0


def _eval_model(cfg, data):
    """The quick model in eval mode, channels-last, as the evaluation holds it."""
    model, _ = build_components(cfg, data)
    return model.eval().to(memory_format=torch.channels_last)


if __name__ == "__main__":
    raise SystemExit(main())
