"""Fidelity study for the depth notebooks: does adversarial training work at every depth at the
quick profile's settings, what makes ResNet-50 train at all, and what does the form of PCL change?

Grid (MNIST, eps 0.3, PGD-10 training, one seed): ResNet-18 and ResNet-50, without and with the
DFL; cross-entropy, the legacy PCL (raw distances, N(0, 1) centroids) and the study's PCL (unit
sphere); with and without the remedy (a linear lr warm-up over the first ~80 optimiser steps).
Runs go through the library's engine (keyed, checkpointed, resumable, reused when finished);
histories, configs and provenance are copied into the report folder with the figure and a table.

    .venv/bin/python studies/pcl_depth.py --out reports/fidelity-pcl-depth      # runs, then plots
    .venv/bin/python studies/pcl_depth.py --out reports/fidelity-pcl-depth --plot-only
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from dfl_lib.runs import io as runio
from dfl_lib.experiments.configs import make_config, profile_deviations
from dfl_lib.figures.curves import curve_grid
from dfl_lib.runs.folder import run_path
from dfl_lib.experiments.data import load_data
from dfl_lib.training.trainer import build_components, train

LOSSES = {"ce": "CE", "pcl": "PCL (unit sphere)", "pcl_legacy": "PCL (legacy, raw)"}
METRICS = {"train_ce": "train CE", "train_regulariser": "train PCL regulariser",
           "train_acc": "train acc", "val_acc": "val clean acc",
           "val_adv_acc": "val PGD-10 acc"}


def grid(*, stop_without_remedy: int) -> list[dict]:
    """Every run of the study, the most needed first. Runs without the remedy stop after
    `stop_without_remedy` epochs (their configs, schedule included, are the full runs')."""
    runs = []
    for remedy in (True, False):
        for model in ("resnet18", "resnet50"):
            for dfl in (True, False):
                for loss in LOSSES:
                    runs.append({"model": model, "dfl": dfl, "loss": loss, "remedy": remedy,
                                 "stop_after": None if remedy else stop_without_remedy})
    # what the depth notebook needs most comes first: the remedy at both depths with the DFL,
    # the failure without it, then ResNet-50 without the DFL (the costliest runs) last
    def rank(r):
        if r["remedy"]:
            return 0 if r["model"] == "resnet18" else (1 if r["dfl"] else 4)
        return 2 if r["model"] == "resnet50" else 3

    return sorted(runs, key=rank)


def config(run: dict, *, n_train: int, epochs: int, warmup_epochs: float):
    return make_config("quick", dataset="mnist", model=run["model"], dfl=run["dfl"],
                       loss=run["loss"], train_attack="pgd", n_train=n_train, epochs=epochs,
                       lr_warmup_epochs=warmup_epochs if run["remedy"] else 0.0)


class _Stop(Exception):
    """Ends a run after its last wanted epoch (its checkpoint and history are written)."""


def _train(cfg, *, data, runs_root, stop_after: int | None) -> None:
    model, loss = build_components(cfg, data)

    def stop(epoch: int, run_dir) -> None:
        if stop_after is not None and epoch + 1 >= stop_after:
            raise _Stop

    try:
        train(model, loss, data, cfg, runs_root=runs_root, progress=False, on_epoch_end=stop)
    except _Stop:
        pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="reports/fidelity-pcl-depth")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--n-train", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--warmup-epochs", type=float, default=2.0)
    p.add_argument("--stop-without-remedy", type=int, default=1)
    p.add_argument("--plot-only", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(2)
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    runs = grid(stop_without_remedy=args.stop_without_remedy)
    data = None
    for i, run in enumerate(runs):
        cfg = config(run, n_train=args.n_train, epochs=args.epochs,
                     warmup_epochs=args.warmup_epochs)
        data = data if data is not None else load_data(cfg)
        rdir = run_path(cfg, data, runs_root=args.runs_dir)
        wanted = run["stop_after"] or cfg.epochs
        if not args.plot_only and _epochs_done(rdir) < wanted:
            start = time.perf_counter()
            print(f"[{i + 1}/{len(runs)}] {rdir.name}", flush=True)
            _train(cfg, data=data, runs_root=args.runs_dir, stop_after=run["stop_after"])
            print(f"    {time.perf_counter() - start:.0f} s", flush=True)
        if _epochs_done(rdir) >= wanted:
            keep = out / "runs" / rdir.name
            keep.mkdir(exist_ok=True)
            for name in ("history.json", "config.json", runio.DONE_NAME):
                if (rdir / name).exists():
                    shutil.copy2(rdir / name, keep / name)
    write_report(out, runs=runs, args=args)


def _epochs_done(rdir: Path) -> int:
    path = rdir / "history.json"
    return len(json.loads(path.read_text())) if path.exists() else 0


def _records(out: Path) -> list[dict]:
    records = []
    for folder in sorted((out / "runs").iterdir()):
        cfg = json.loads((folder / "config.json").read_text())
        history = json.loads((folder / "history.json").read_text())
        for h in history:  # the regulariser: every weighted term but CE (0 for CE runs)
            h["train_regulariser"] = sum(v for k, v in h.items() if k.startswith("train_")
                                         and k not in ("train_ce", "train_loss", "train_acc",
                                                       "train_error", "train_seconds"))
        depth = {"resnet18": "ResNet-18", "resnet50": "ResNet-50"}[cfg["model"]]
        records.append({"history": history, "config": cfg, "folder": folder.name,
                        "seed": cfg["seed"],
                        "panel": f"{depth}{' + DFL' if cfg['dfl'] else ''}",
                        "loss": LOSSES[cfg["loss"]],
                        "remedy": "warm-up" if cfg["lr_warmup_epochs"] else "no warm-up",
                        "stopped": not (folder / runio.DONE_NAME).exists()})
    order = ["ResNet-18", "ResNet-18 + DFL", "ResNet-50", "ResNet-50 + DFL"]
    return sorted(records, key=lambda r: (order.index(r["panel"]), r["loss"], r["remedy"]))


def write_report(out: Path, *, runs: list[dict], args) -> None:
    records = _records(out)
    if not records:
        print("no finished runs yet")
        return
    fig = curve_grid(records, rows="panel", hue="loss", style="remedy", metrics=METRICS,
                     percent=("train_acc", "val_acc", "val_adv_acc"),
                     title=f"MNIST, eps 0.3, PGD-10 adversarial training ({args.n_train:,} "
                           "images, quick profile otherwise): curves by depth, DFL, loss and lr "
                           "warm-up (runs without warm-up stopped early)")
    fig.savefig(out / "curves.png", dpi=110)
    fig.savefig(out / "curves.pdf")
    lines = ["| model | loss | lr warm-up | epochs | train CE | regulariser | train acc | "
             "val clean | val PGD-10 | train s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        last = r["history"][-1]
        secs = sum(h["train_seconds"] for h in r["history"])
        lines.append(
            f"| {r['panel']} | {r['loss']} | {r['remedy']} | {len(r['history'])}"
            f"{' (stopped)' if r['stopped'] else ''} | "
            f"{last['train_ce'] if 'train_ce' in last else last.get('train_loss', 0):.3f} | "
            f"{last['train_regulariser']:.3f} | {100 * last['train_acc']:.1f} | "
            f"{100 * last['val_acc']:.1f} | {100 * last['val_adv_acc']:.1f} | {secs:.0f} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"{len(records)} of {len(runs)} runs finished; deviations of the quick profile: "
          f"{'; '.join(profile_deviations('quick'))}")


if __name__ == "__main__":
    main()
