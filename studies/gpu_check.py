"""The GPU check (issue 37, item 6): one command of at most 8 minutes on one H100 that trains and
evaluates the CIFAR-10 cells the paper's Tables 2 and 4 compare, sized by a speed measurement
taken on that GPU, with the MNIST headline cells run beside them as a cross-check of the CPU
numbers on another device and precision.

What it runs.
  - CIFAR-10 (the JPEG copy), Tables 2 and 4: the plain ResNet, the DFL alone (Table 4) and
    DFL + PCL (Table 2), without and with PGD-10 training, seed 0, at the gpu profile's configs
    (`cell_config("gpu", ...)`) with ResNet-18 standing for ResNet-50, on all 49,000
    training images (1,000 held out for validation); each cell gets the "table" suite (clean,
    FGSM, PGD-10, CW-inf, the paper's C&W-L2, PGD-50, the adaptive attack) on 1,000 test
    images, and the two PGD-trained cells of Table 2 the "headline" suite (AutoAttack
    standard with Square at 5,000 queries, the
    masking checks, transfer) on the same 1,000. Mustafa et al. and Dynamic are left out: their
    runs cost 1.5-2x a PGD-trained ResNet's and would halve every cell's epochs.
  - The epochs: measured, not guessed. A 1-epoch PGD-10 training on 2,560 images of the
    PGD-trained DFL + PCL config is timed on the GPU (after a warm-up run), giving seconds per
    training FLOP (`study.estimate.train_flops`); every cell's training and evaluation is then
    predicted from its FLOP count, and the epochs are the most (1-40) that fit what is left of
    the budget with a 15% margin. The regime gate (the PGD-trained ResNet >= 40% under
    AutoAttack, >= 70% clean: `paper.regime`) then says whether the cells are testable.
  - MNIST: quick's seed-0 table cells and headline evaluations (`study_plan("quick")`), in a
    second process on the same GPU (their small networks leave it mostly idle), so their
    numbers can be set beside the CPU's 3-seed means in reports/quick.

    # here, on any machine with the data (writes gpu-check-data/, about 31 MiB; ignored by git)
    python studies/gpu_check.py pack --data-dir ../shared/data --out gpu-check-data
    # there: one command on the GPU machine, with gpu-check-data/ and .whl/ copied beside the
    # tree (.whl: the pinned torchattacks 3.3.0 wheel, where the machine's Python lacks it;
    # `pip download --no-deps -d .whl torchattacks==3.3.0`), given 9 minutes:
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \
        PYTHONPATH=/tmp/site python3 studies/gpu_check.py run --data gpu-check-data \
        --out $OUT --budget-s 450
    # back here: its files (at most 8) become reports/gpu-check/

Output of `run` (written as each cell finishes, so a command stopped at its limit still brings
back what ran): README.md (the tables in words), gpu-check.json ({"device", "gpu", "torch",
"budget_s", "wall_s", "sizing", "cells": [{"key", "dataset", "suite", "role", "config",
"seconds", "n_eval", "n_train", "table": [{"name", "accuracy", "n"}], "masking",
"history_last"} or {..., "not_run"}], "regime", "mnist_vs_cpu"}), runs.tar.gz (every run
folder's JSON records: configs, histories, metrics, per-example masks; no weights), log.txt and
log-mnist.txt.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # gpu_check_report beside it

from dfl_lib.errors import UsageError  # noqa: E402

CIFAR_ROWS = ("resnet", "dfl", "dfl_pcl")               # Table 2 (dfl_pcl) and Table 4 (dfl)
SETTINGS = ("no defence", "adversarial training")
CIFAR_HEADLINE = ("resnet", "dfl_pcl")                   # Table 2's PGD-trained pair
CIFAR_N_EVAL = 1000
CIFAR_MODEL = "resnet18"                                 # stands for the paper's ResNet-50
MAX_EPOCHS = 40                                          # the gpu profile's
MARGIN = 0.85                                            # share of the budget the plan may fill
CALIBRATION_IMAGES = 2560
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck")
# sizes for the CPU test of this code path (tests/test_gpu_check.py): seconds, not results
TINY = {"width": 4, "n_train": 64, "n_val": 32, "monitor_size": 8, "attack_steps": 2,
        "cw_steps": 2, "aa_steps": 3, "aa_queries": 10, "cw_l2_search_steps": 1,
        "cw_l2_steps": 3, "batch_size": 32, "precision": "fp32", "channels_last": False}
TINY_N_EVAL = 12


# --------------------------------------------------------------------------- pack (here)

def pack(*, data_dir: Path, out: Path, train_per_class: int = 5000,
         test_per_class: int = 1000, max_mib: float = 45.0) -> dict:
    """Copy MNIST's four raw files and pack the first `train_per_class` / `test_per_class`
    JPEG files of each CIFAR-10 class (the copy's own bytes, never re-encoded; by default all of
    them) into out/cifar10-jpeg.tar.gz: 60,000 files of about 0.9 KB compress to about 20 MiB,
    their JPEG headers being alike. Returns {"files", "mib", "cifar_train", "cifar_test"}.
    UsageError when the data is missing or the result exceeds `max_mib` (the GPU machine takes
    64 MiB in all, the project's tree included)."""
    mnist = sorted((data_dir / "MNIST" / "raw").glob("*.gz"))
    cifar = data_dir / "cifar10-jpeg"
    if len(mnist) != 4 or not (cifar / "train").is_dir():
        raise UsageError(f"expected MNIST/raw/*.gz (4 files) and cifar10-jpeg/{{train,test}} "
                         f"under {data_dir}")
    (out / "MNIST" / "raw").mkdir(parents=True, exist_ok=True)
    for f in mnist:
        shutil.copyfile(f, out / "MNIST" / "raw" / f.name)
    counts = {"train": 0, "test": 0}
    with tarfile.open(out / "cifar10-jpeg.tar.gz.part", "w:gz", compresslevel=6) as tar:
        for split, per_class in (("train", train_per_class), ("test", test_per_class)):
            for cls in CIFAR_CLASSES:
                # file NNNN.jpg is the class's NNNN-th image (../shared/data/README.md)
                files = [cifar / split / cls / f"{i:04d}.jpg" for i in range(per_class)]
                missing = [f for f in files if not f.is_file()]
                if missing:
                    raise UsageError(f"{missing[0]} does not exist: {cifar / split / cls} should "
                                     f"hold {per_class} files 0000.jpg, 0001.jpg, ...")
                for f in files:
                    tar.add(f, arcname=f"cifar10-jpeg/{split}/{cls}/{f.name}")
                counts[split] += len(files)
    os.replace(out / "cifar10-jpeg.tar.gz.part", out / "cifar10-jpeg.tar.gz")
    files = sorted(p for p in out.rglob("*") if p.is_file())
    mib = sum(p.stat().st_size for p in files) / 2**20
    if mib > max_mib:
        raise UsageError(f"the packed data is {mib:.1f} MiB, over the {max_mib:g} MiB allowed; "
                         "pass a smaller --train-per-class")
    return {"files": [str(p.relative_to(out)) for p in files], "mib": round(mib, 1),
            "cifar_train": counts["train"], "cifar_test": counts["test"]}


def unpack(*, data: Path, root: Path) -> Path:
    """The data root the library reads (`<root>/MNIST/raw`, `<root>/cifar10-jpeg/...`), made
    from `pack`'s folder. UsageError when `data` is not one."""
    if not (data / "cifar10-jpeg.tar.gz").is_file() or not (data / "MNIST" / "raw").is_dir():
        raise UsageError(f"{data} is not a packed GPU-check folder (expected cifar10-jpeg.tar.gz "
                         "and MNIST/raw/): run `python studies/gpu_check.py pack` first")
    shutil.copytree(data / "MNIST", root / "MNIST", dirs_exist_ok=True)
    with tarfile.open(data / "cifar10-jpeg.tar.gz") as tar:
        tar.extractall(root, filter="data")
    return root


# --------------------------------------------------------------------------- the cells

def cifar_items(*, device: str, epochs: int, tiny: bool = False) -> list:
    """The CIFAR-10 plan items: every (row, setting) of `CIFAR_ROWS` x `SETTINGS` with the table
    suite, then the headline suite for Table 2's PGD-trained pair; seed 0."""
    from dfl_lib.study.plan import PlanItem, cell_config

    items, headline = [], []
    for setting in SETTINGS:
        for row in CIFAR_ROWS:
            cfg = cell_config("gpu", dataset="cifar10_jpeg", row=row, setting=setting,
                              device=device).replace(model=CIFAR_MODEL, n_train=0,
                                                     epochs=epochs, n_eval=CIFAR_N_EVAL)
            if tiny:
                cfg = cfg.replace(**TINY, n_eval=TINY_N_EVAL)
            key = f"cifar10_jpeg | {row} | {setting} | s0"
            items.append(PlanItem(key=key, cfg=cfg, suite="table", notebooks=(), role="cell"))
            if setting == "adversarial training" and row in CIFAR_HEADLINE:
                headline.append(PlanItem(key=f"{key} | headline", cfg=cfg, suite="headline",
                                         notebooks=(), role="headline"))
    return items + headline


def mnist_items(*, device: str, tiny: bool = False) -> list:
    """quick's MNIST seed-0 table cells and headline evaluations, on `device`."""
    from dataclasses import replace

    from dfl_lib.study.plan import study_plan

    items = [i for i in study_plan("quick", device=device)
             if i.role in ("cell", "headline") and i.cfg.dataset == "mnist" and i.cfg.seed == 0]
    if tiny:
        items = [replace(i, cfg=i.cfg.replace(**TINY, epochs=1, n_eval=TINY_N_EVAL))
                 for i in items]
    return items


def predicted_seconds(item, *, seconds_per_flop: float, n_train: int) -> float:
    """An item's training (when its run is new) plus evaluation seconds, from its FLOP count
    (`study.estimate`) at the measured seconds per training FLOP."""
    from dfl_lib.study.estimate import eval_flops, train_flops

    flops = eval_flops(item.cfg, suite=item.suite, n_eval=item.cfg.n_eval)
    if item.role == "cell":
        flops += train_flops(item.cfg, n_train=n_train)
    return flops * seconds_per_flop


def calibrate(*, data_root: Path, scratch: Path, device: str, tiny: bool) -> float:
    """Seconds per training FLOP on this device: a warm-up run, then a 1-epoch PGD-10 training of
    the PGD-trained DFL + PCL config on `CALIBRATION_IMAGES` images, timed (into `scratch`)."""
    from dfl_lib.experiments.run import train_run
    from dfl_lib.study.estimate import train_flops

    base = next(i.cfg for i in cifar_items(device=device, epochs=1, tiny=tiny)
                if i.key == "cifar10_jpeg | dfl_pcl | adversarial training | s0")
    n = 64 if tiny else CALIBRATION_IMAGES
    cfg = base.replace(n_train=n, n_val=32, monitor_size=0, epochs=1)
    train_run(cfg.replace(seed=1, n_train=n // 4), data_root=data_root, runs_root=scratch,
              progress=False)  # warm-up: data decoded and cached, kernels chosen
    _sync(device)
    start = time.perf_counter()
    train_run(cfg, data_root=data_root, runs_root=scratch, progress=False)
    _sync(device)
    return (time.perf_counter() - start) / train_flops(cfg, n_train=n)


def size_epochs(*, seconds_per_flop: float, budget_s: float, n_train: int, device: str,
                tiny: bool) -> tuple[int, float]:
    """(epochs, predicted seconds): the most epochs (1 to `MAX_EPOCHS`; 1 at tiny sizes) whose
    predicted total for every CIFAR item stays within MARGIN x budget_s."""
    def total(epochs: int) -> float:
        return sum(predicted_seconds(i, seconds_per_flop=seconds_per_flop, n_train=n_train)
                   for i in cifar_items(device=device, epochs=epochs, tiny=tiny))
    # training is linear in the epochs and evaluation does not depend on them
    one, per_epoch = total(1), total(2) - total(1)
    most = 1 if tiny else MAX_EPOCHS
    epochs = max(1, min(most, 1 + int((MARGIN * budget_s - one) // per_epoch)))
    return epochs, one + (epochs - 1) * per_epoch


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


# --------------------------------------------------------------------------- run (there)

def run_items(items, *, data_root: Path, runs_root: Path, deadline: float, log) -> list[dict]:
    """Run plan items in order (`study.runner.run_item`) until `deadline` (perf_counter), one
    result record each; items past the deadline are recorded as not run."""
    from dfl_lib.runs import io as runio
    from dfl_lib.study.runner import run_item

    records = []
    for item in items:
        record = {"key": item.key, "dataset": item.cfg.dataset, "suite": item.suite,
                  "role": item.role, "config": item.cfg.to_dict()}
        if time.perf_counter() > deadline:
            records.append({**record, "not_run": "past the budget"})
            continue
        start = time.perf_counter()
        result = run_item(item, data_root=data_root, runs_root=runs_root)
        metrics = runio.read_json(result["metrics"])
        history = json.loads((Path(result["metrics"]).parent / "history.json").read_text()) \
            if (Path(result["metrics"]).parent / "history.json").exists() else []
        records.append({**record, "seconds": round(time.perf_counter() - start, 1),
                        "n_eval": metrics["n_eval"], "n_train": metrics["n_train"],
                        "table": [{k: r[k] for k in ("name", "accuracy", "n") if k in r}
                                  for r in metrics["table"]],
                        "masking": metrics.get("masking"),
                        "history_last": history[-1] if history else None})
        log(f"{item.key}: {time.perf_counter() - start:.0f} s, "
            + ", ".join(f"{r['name']} {100 * r['accuracy']:.1f}%" for r in records[-1]["table"]))
    return records


def mnist_main(args) -> int:
    """The MNIST cross-check, in its own process: records to args.json."""
    from dfl_lib.runs import io as runio

    deadline = time.perf_counter() + args.budget_s
    records = []
    for item in mnist_items(device=args.device, tiny=args.tiny):  # written after each item
        records += run_items([item], data_root=Path(args.data_root), runs_root=Path(args.runs),
                             deadline=deadline, log=lambda line: print(line, flush=True))
        runio.write_json(Path(args.json), records)
    return 0


def run(*, data: Path, out: Path, budget_s: float, device: str, work: Path,
        tiny: bool = False) -> dict:
    """The whole check on `device` within about budget_s seconds; writes `out`'s files."""
    import torch

    from dfl_lib.device import resolve_device
    from dfl_lib.runs import io as runio

    start = time.perf_counter()
    device = str(resolve_device(device))
    out.mkdir(parents=True, exist_ok=True)
    log_file = (out / "log.txt").open("a")

    def log(line: str) -> None:
        stamped = f"[{time.perf_counter() - start:6.0f} s] {line}"
        print(stamped, flush=True)
        log_file.write(stamped + "\n")
        log_file.flush()

    data_root = unpack(data=data, root=work / "data")
    runs_root = work / "runs"
    log(f"device {device} ({torch.cuda.get_device_name(device) if 'cuda' in device else 'CPU'})"
        f", torch {torch.__version__}, data unpacked")
    mnist = subprocess.Popen(
        [sys.executable, __file__, "mnist", "--data-root", str(data_root), "--runs",
         str(runs_root / "mnist"), "--json", str(work / "mnist.json"), "--device", device,
         "--budget-s", str(budget_s - (time.perf_counter() - start) - 30)]
        + (["--tiny"] if tiny else []),
        stdout=(out / "log-mnist.txt").open("w"), stderr=subprocess.STDOUT)
    try:
        report = _cifar(data_root=data_root, runs_root=runs_root, work=work, device=device,
                        tiny=tiny, start=start, budget_s=budget_s, out=out, log=log)
        mnist.wait(timeout=max(1.0, start + budget_s - time.perf_counter()))
    except subprocess.TimeoutExpired:
        log("MNIST cross-check stopped at the budget")
    finally:
        if mnist.poll() is None:
            mnist.kill()
    if (work / "mnist.json").exists():
        report["cells"] += runio.read_json(work / "mnist.json")
    report["wall_s"] = round(time.perf_counter() - start, 1)
    _write(out, report, runs_root=runs_root)
    log(f"done in {report['wall_s']:.0f} s")
    return report


def _cifar(*, data_root: Path, runs_root: Path, work: Path, device: str, tiny: bool,
           start: float, budget_s: float, out: Path, log) -> dict:
    """Measure, size and run the CIFAR-10 items; the report so far (written after each item)."""
    import torch

    from dfl_lib.study.estimate import RATES

    seconds_per_flop = calibrate(data_root=data_root, scratch=work / "calibration",
                                 device=device, tiny=tiny)
    n_train = len(_train_labels(data_root, tiny=tiny))
    left = budget_s - (time.perf_counter() - start)
    epochs, predicted = size_epochs(seconds_per_flop=seconds_per_flop, budget_s=left,
                                    n_train=n_train, device=device, tiny=tiny)
    sizing = {"seconds_per_train_flop": seconds_per_flop,
              "effective_tflops": round(1e-12 / seconds_per_flop, 3),
              "assumed_tflops": round(RATES["cuda"] / 1e12, 1),
              "n_train": n_train, "epochs": epochs, "predicted_s": round(predicted, 1),
              "budget_left_s": round(left, 1)}
    log(f"sizing: {sizing}")
    report = {"device": device, "torch": torch.__version__, "sizing": sizing, "cells": [],
              "budget_s": budget_s}
    if "cuda" in device:
        report["gpu"] = torch.cuda.get_device_name(device)
    deadline = start + budget_s - 20
    for item in cifar_items(device=device, epochs=epochs, tiny=tiny):
        report["cells"] += run_items([item], data_root=data_root, runs_root=runs_root / "cifar",
                                     deadline=deadline, log=log)
        _write(out, report, runs_root=runs_root)
    return report


def _train_labels(data_root: Path, *, tiny: bool):
    """The CIFAR-10 training labels the cells train on (their n_val held out)."""
    from dfl_lib.experiments.data import load_data

    cfg = cifar_items(device="cpu", epochs=1, tiny=tiny)[0].cfg
    return load_data(cfg.replace(device="cpu"), root=data_root).y_train


def _write(out: Path, report: dict, *, runs_root: Path) -> None:
    """gpu-check.json, README.md and runs.tar.gz (every JSON record of the run folders),
    each written whole (a command stopped at its limit leaves the last complete set)."""
    from dfl_lib.runs import io as runio

    from gpu_check_report import markdown, regime_and_cross_check

    report = {**report, **regime_and_cross_check(report, root=ROOT)}
    runio.write_json(out / "gpu-check.json", report)
    (out / "README.md.part").write_text(markdown(report))
    os.replace(out / "README.md.part", out / "README.md")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for f in sorted(runs_root.rglob("*.json")):
            tar.add(f, arcname=str(f.relative_to(runs_root)))
    (out / "runs.tar.gz.part").write_bytes(buffer.getvalue())
    os.replace(out / "runs.tar.gz.part", out / "runs.tar.gz")


# --------------------------------------------------------------------------- command line

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="copy MNIST and pack a CIFAR-10 subset for the GPU machine")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--train-per-class", type=int, default=5000)
    p.add_argument("--test-per-class", type=int, default=1000)
    r = sub.add_parser("run", help="the check, on the GPU machine")
    r.add_argument("--data", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--budget-s", type=float, default=450.0)
    r.add_argument("--device", default="auto")
    r.add_argument("--work", default="/tmp/gpu-check")
    r.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    m = sub.add_parser("mnist", help=argparse.SUPPRESS)
    for name in ("--data-root", "--runs", "--json", "--device"):
        m.add_argument(name, required=True)
    m.add_argument("--budget-s", type=float, required=True)
    m.add_argument("--tiny", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            print(json.dumps(pack(data_dir=Path(args.data_dir), out=Path(args.out),
                                  train_per_class=args.train_per_class,
                                  test_per_class=args.test_per_class)))
            return 0
        if args.command == "mnist":
            return mnist_main(args)
        run(data=Path(args.data), out=Path(args.out), budget_s=args.budget_s,
            device=args.device, work=Path(args.work), tiny=args.tiny)
        return 0
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
