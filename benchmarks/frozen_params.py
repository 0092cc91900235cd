"""torchattacks' FAB-T (or all of AutoAttack) with the model's parameters requiring gradients
(as before issue 11) and frozen (what `dfl_lib.attacks.frozen` does now), alternating, on the
robust quick-profile model: seconds and whether the per-example results agree. FAB calls
.backward(), which computes every weight's gradient unless the parameters are frozen.

    .venv/bin/python benchmarks/frozen_params.py [--attack fab|autoattack] [--n 40] [--repeats 2]
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--attack", default="fab", choices=("fab", "autoattack"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    model, data, cfg = robust_model(device=torch.device("cpu"), runs_dir="runs/quick",
                                    data_dir=None)
    model.to(memory_format=torch.channels_last)
    x, y = eval_subset(data, n=args.n, seed=0)
    run = REGISTRY[args.attack].run  # the registry's runner, without the evaluation's frozen()
    settings = ({"steps": cfg.aa_steps, "n_restarts": 1, "multi_targeted": True}
                if args.attack == "fab" else {"steps": cfg.aa_steps, "n_queries": cfg.aa_queries})
    results = {}
    for r in range(args.repeats):
        for frozen in ((False, True) if r % 2 == 0 else (True, False)):
            for p in model.parameters():
                p.requires_grad_(not frozen)
            start = time.perf_counter()
            x_adv = run(model, x, y, generator=None, seed=0, eps=cfg.eps, n_classes=10,
                        **settings)
            seconds = time.perf_counter() - start
            with torch.no_grad():
                correct = model(x_adv).argmax(1) == y
            results.setdefault(frozen, []).append((seconds, correct))
            print(f"{'frozen' if frozen else 'requires_grad'}: {seconds:.1f} s, robust "
                  f"{int(correct.sum())}/{len(y)}", flush=True)
    same = all(torch.equal(a[1], b[1]) for a, b in zip(results[False], results[True]))
    print(f"per-example results identical: {same}")


if __name__ == "__main__":
    main()
