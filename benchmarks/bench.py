"""`make bench`: the study's speed, measured side by side in one process, threads fixed.

  1. attacks: our fgsm / pgd (10 steps) / cw vs torchattacks' on the same model, batch, threads
     and device (images/s, ratio ours / theirs);
  2. adversarial training: our `train_epoch` (PGD-10, the quick profile's ResNet-18 and -50 with
     DFL + PCL) vs the textbook loop of `plain_loop.py` (images/s, ratio);
  3. evaluation: AutoAttack and each component (APGD-CE, APGD-T, FAB-T, Square) and the quick
     study's cheaper strong attacks on a robust quick-profile MNIST model (images/s), each in
     the evaluation's default memory format and in the alternative, with the per-example result
     of both compared;
  4. peak memory of each (timing.PeakMemory);
  5. on paper (FLOP count): one paper-profile epoch on one H100.

Contenders alternate (A B, B A, ...) and medians are taken over repeats. Prints a table and
writes benchmarks/results-<machine>.json.  Run:  .venv/bin/python benchmarks/bench.py
[--sections attacks,train,eval] [--repeats 5] [--n-eval 100] [--threads 2] [--device cpu]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_cases import attack_cases, estimate_cases, eval_cases, training_cases  # noqa: E402

SECTIONS = {"attacks": attack_cases, "train": training_cases, "eval": eval_cases,
            "estimate": estimate_cases}


def machine_name(device: torch.device) -> str:
    """'cpu-2core' or the GPU's name as a slug ('nvidia-h100-80gb-hbm3')."""
    if device.type == "cuda":
        return re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip("-")
    return f"cpu-{os.cpu_count()}core"


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'section':<8} {'case':<44} {'ours img/s':>11} {'ref img/s':>10} {'ratio':>6} "
             f"{'ours MB':>8} {'ref MB':>7}  reference"]
    for r in rows:
        ref = r.get("reference_ips")
        ref_ips = f"{ref:.1f}" if ref else "-"
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") else "-"
        ours_mb = "-" if r["ours_peak_mb"] is None else f"{r['ours_peak_mb']:.0f}"
        ref_mb = "-" if r.get("reference_peak_mb") is None else f"{r['reference_peak_mb']:.0f}"
        lines.append(f"{r['section']:<8} {r['case']:<44} {r['ours_ips']:>11.1f} {ref_ips:>10} "
                     f"{ratio:>6} {ours_mb:>8} {ref_mb:>7}  {r.get('reference', '')}")
        if r.get("note"):
            lines.append(f"{'':<8} {'':<44} {r['note']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default="attacks,train,eval,estimate")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-eval", type=int, default=100, help="images for section 3")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs-dir", default=str(HERE.parent / "runs" / "quick"),
                        help="the quick study's runs (the robust model is trained if missing)")
    parser.add_argument("--data-dir", default=os.environ.get("DFL_DATA_DIR", ""))
    parser.add_argument("--out", default="", help="JSON path (default results-<machine>.json)")
    args = parser.parse_args(argv)
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    header = {"machine": machine_name(device), "device": str(device), "threads": args.threads,
              "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
              "repeats": args.repeats, "command": " ".join(["benchmarks/bench.py", *sys.argv[1:]]),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(", ".join(f"{k} {v}" for k, v in header.items()))
    rows = []
    for section in args.sections.split(","):
        start = time.perf_counter()
        rows += SECTIONS[section](device=device, repeats=args.repeats, n_eval=args.n_eval,
                                  runs_dir=args.runs_dir, data_dir=args.data_dir or None)
        print(f"[{section}: {time.perf_counter() - start:.0f} s]", flush=True)
    print(format_rows(rows))
    out = Path(args.out or HERE / f"results-{header['machine']}.json")
    out.write_text(json.dumps({**header, "rows": rows}, indent=1))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
