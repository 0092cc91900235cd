"""Does folding BatchNorm into the convolutions pay for evaluation here? AutoAttack (or one of
its parts) on the robust quick-profile model as trained and on its BatchNorm-folded copy
(`dfl_lib.evaluation.fold.fold_batchnorm`, what `evaluate.robust_accuracy` attacks since issue 11),
alternating: seconds, and whether the per-example results agree (judged by the model as
trained, as the evaluation judges).

With --pre11 the baseline is the evaluation path before issue 11 (parameters requiring
gradients, nothing folded) and the contender today's (frozen parameters, folded): like for like
on one model, in one process.

    .venv/bin/python benchmarks/fold_bn.py [--attack autoattack|apgd_ce|apgd_t|fab|square]
                                           [--n 100] [--repeats 2] [--pre11]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cases import robust_model  # noqa: E402
from dfl_lib.attacks import REGISTRY  # noqa: E402
from dfl_lib.evaluation.robust import eval_subset  # noqa: E402
from dfl_lib.evaluation.fold import count_batchnorm, fold_batchnorm  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--attack", default="autoattack",
                        choices=("autoattack", "apgd_ce", "apgd_t", "fab", "square"))
    parser.add_argument("--pre11", action="store_true",
                        help="baseline: parameters requiring gradients (the path before issue 11)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model, data, cfg = robust_model(device=torch.device("cpu"), runs_dir="runs/quick",
                                    data_dir=None)
    model.to(memory_format=torch.channels_last)
    folded = fold_batchnorm(model)
    x, y = eval_subset(data, n=args.n, seed=0)
    with torch.no_grad():
        gap = (model(x) - folded(x)).abs().max().item()
    print(f"BatchNorm layers {count_batchnorm(model)} -> {count_batchnorm(folded)}; largest logit "
          f"difference on {args.n} images: {gap:.2e}")
    base = "before issue 11" if args.pre11 else "as trained"
    entry = REGISTRY[args.attack]
    settings = {"steps": cfg.aa_steps, "n_queries": cfg.aa_queries, "n_restarts": 1,
                "multi_targeted": True}
    settings = {k: v for k, v in settings.items() if k in entry.defaults}
    results = {}
    for r in range(args.repeats):
        for name in ((base, "folded") if r % 2 == 0 else ("folded", base)):
            net = folded if name == "folded" else model
            model.requires_grad_(name == base and args.pre11)
            start = time.perf_counter()
            x_adv = entry.run(net, x, y, generator=None, seed=0, eps=cfg.eps, n_classes=10,
                              **settings)
            seconds = time.perf_counter() - start
            with torch.no_grad():
                correct = (model(x).argmax(1) == y) & (model(x_adv).argmax(1) == y)
            results.setdefault(name, []).append((seconds, correct))
            print(f"{name}: {seconds:.1f} s, robust {int(correct.sum())}/{len(y)}", flush=True)
    same = all(torch.equal(a[1], b[1]) for a, b in zip(results[base], results["folded"]))
    median = {k: sorted(s for s, _ in v)[len(v) // 2] for k, v in results.items()}
    print(f"per-example results identical: {same}; {base} / folded: "
          f"{median[base] / median['folded']:.2f}x (upper medians)")


if __name__ == "__main__":
    main()
