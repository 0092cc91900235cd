"""Does bf16 autocast training agree with fp32 under attack? (issue 11: bf16 on the CPU only if
it is faster here and agrees with fp32 under attack.)

Trains the quick profile's MNIST ResNet-18 with PGD-10 training with `precision="bf16"` for
each seed, loads the same configurations trained in fp32 (given by their run folders, or
trained here), and evaluates all IN FP32 with the same attacks on the same images: PGD-10 and
CW-inf-50 on 500 test images for every seed, AutoAttack (quick budgets) on the first 100 for the
first seed. Prints seconds per epoch, a table and mean +- std over seeds; writes --out (JSON).

    .venv/bin/python studies/bf16_agreement.py --seeds 0,1,2 [--fp32-runs DIR0,DIR1,DIR2]
        [--device cuda] --out reports/benchmarks/bf16-agreement.json
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from dfl_lib.runs import io as runio
from dfl_lib.device import resolve_device, set_threads
from dfl_lib.evaluation.robust import eval_subset, robust_accuracy
from dfl_lib.study.plan import cell_config
from dfl_lib.study.records import load_run
from dfl_lib.training.trainer import build_components

# name: (attack, settings, images, seeds it runs on)
ATTACKS = {"PGD-10": ("pgd", {"steps": 10}, 500, "all"),
           "CW-inf (PGD-50)": ("cw_pgd", {"steps": 50}, 500, "all"),
           "AutoAttack": ("autoattack", {"steps": 100, "n_queries": 1000}, 100, "first")}


def load_folder(folder: Path, cfg, data):
    """The model of a finished run folder (its checkpoint), in eval mode."""
    model, _ = build_components(cfg, data)
    state = runio.load_checkpoint(folder / "checkpoint.pt")
    model.load_state_dict(state["model"])
    history = json.loads((folder / "history.json").read_text())
    return model.eval(), history


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--fp32-runs", default="",
                        help="comma-separated finished fp32 run folders, one per seed, to reuse")
    parser.add_argument("--runs-dir", default="runs/quick")
    parser.add_argument("--out", default="reports/benchmarks/bf16-agreement.json")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (the check on a GPU)")
    args = parser.parse_args()
    set_threads()
    seeds = [int(s) for s in args.seeds.split(",")]
    folders = args.fp32_runs.split(",") if args.fp32_runs else [""] * len(seeds)
    out = {"seeds": seeds, "runs": {}, "rows": []}
    models = {}
    for seed, folder in zip(seeds, folders, strict=True):
        base = cell_config("quick", dataset="mnist", row="resnet", setting="adversarial training",
                           seed=seed, device=args.device)
        runs = {"bf16": load_run(base.replace(precision="bf16"), runs_root=args.runs_dir)}
        data = runs["bf16"]["data"]
        if folder:
            model, history = load_folder(Path(folder), base, data)
            runs["fp32"] = {"model": model, "history": history, "run_dir": Path(folder)}
        else:
            runs["fp32"] = load_run(base, runs_root=args.runs_dir)
        for precision, run in runs.items():
            secs = [h["train_seconds"] for h in run["history"]]
            out["runs"][f"{precision} s{seed}"] = {"run": Path(run["run_dir"]).name,
                                                   "train_seconds": secs}
            print(f"{precision} s{seed}: {Path(run['run_dir']).name}, seconds per epoch "
                  f"{', '.join(f'{s:.0f}' for s in secs)}", flush=True)
            models[(precision, seed)] = run["model"].eval()
        x, y = eval_subset(data, n=base.n_eval, seed=0)  # the same images for every seed
        x, y = x.to(resolve_device(args.device)), y.to(resolve_device(args.device))
    print(f"{'attack (evaluated in fp32)':<22} {'seed':>4} {'fp32-trained':>13} "
          f"{'bf16-trained':>13}")
    for name, (attack, kw, n, which) in ATTACKS.items():
        for seed in (seeds if which == "all" else seeds[:1]):
            accs = {}
            for precision in ("fp32", "bf16"):
                r = robust_accuracy(models[(precision, seed)], x[:n], y[:n], attack=attack,
                                    eps=0.3, batch_size=250, seed=0, **kw)
                accs[precision] = r["accuracy"]
            out["rows"].append({"attack": name, "seed": seed, "n": n, **accs})
            print(f"{name:<22} {seed:>4} {100 * accs['fp32']:>12.1f}% "
                  f"{100 * accs['bf16']:>12.1f}%", flush=True)
    for name in ATTACKS:
        rows = [r for r in out["rows"] if r["attack"] == name]
        if len(rows) > 1:
            summary = {p: (statistics.mean(r[p] for r in rows), statistics.stdev(r[p] for r in rows))
                       for p in ("fp32", "bf16")}
            out.setdefault("summary", {})[name] = summary
            print(f"{name}: fp32 {100 * summary['fp32'][0]:.1f} +- {100 * summary['fp32'][1]:.1f}"
                  f", bf16 {100 * summary['bf16'][0]:.1f} +- {100 * summary['bf16'][1]:.1f} "
                  f"(mean +- std over seeds {seeds})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1, default=str))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
