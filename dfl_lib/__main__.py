"""Command line: `python -m dfl_lib {train,evaluate,study,demo} ...` (see dfl_lib/cli.py)."""
from __future__ import annotations

import sys
import time

from .cli import build_parser, config_from_args
from .device import set_threads


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_threads()  # once, for every command
    if args.command == "study":
        from .study_main import run_study

        return run_study(args)
    if args.command == "demo":
        from .demo import format_demo, run_demo

        start = time.perf_counter()
        results = run_demo(profile=args.profile, data_root=args.data_dir, runs_root=args.runs_dir,
                           seed=args.seed, progress=not args.quiet)
        print(format_demo(results, profile=args.profile))
        print(f"wall time {time.perf_counter() - start:.0f} s")
        return 0

    from .experiment import evaluate_run, train_run
    from .tables import format_accuracy_table

    cfg = config_from_args(args)
    if args.command == "train":
        result = train_run(cfg, data_root=args.data_dir, runs_root=args.runs_dir,
                           progress=not args.quiet)
        last = result["history"][-1]
        print(f"run {result['run_dir']}: {len(result['history'])} epochs, "
              f"val acc {last.get('val_acc', float('nan')):.4f}, "
              f"val PGD acc {last.get('val_adv_acc', float('nan')):.4f}")
    else:
        metrics = evaluate_run(cfg, data_root=args.data_dir, runs_root=args.runs_dir,
                               suite=args.suite, progress=not args.quiet)
        print(format_accuracy_table({metrics["run"]: metrics["table"]}))
        for flag in metrics["masking"]:
            print(f"  masking check {flag['check']:<32} {'ok' if flag['passed'] else 'FLAGGED'}")
        print(f"metrics written to {metrics['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
