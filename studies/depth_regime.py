"""Is every depth in the field's regime at the table cells' recipe? A pilot for the depth study
(Figures 1, 3 and 5; issue 39 item 1), before it is re-run there at 3 or more seeds.

Why. The committed depth study (reports/quick-full-depth) trained on 5,000 images for 6 epochs;
its ResNet-18 ends at 59-86% under the PGD-10 monitor, below the field's regime, so its verdicts
are "not testable here". The table cells' recipe (10,000 MNIST images x 6 epochs, lr 0.05, the
lr warm-up over the first epoch's 80 steps: `RECIPE`) puts the plain ResNet-18 in the regime
(88.2-89.7% under the standard AutoAttack on 1,000 images at every seed:
reports/quick/autoattack-check). Whether the deeper nets reach it there too, with and without
the DFL, decides whether that recipe can carry the depth claims. One seed answers that; it
gives no verdict (an effect needs 3 seeds).

What it measures. Each model: PGD-10 training (L-inf eps 0.3), MNIST, width 16, CE, the depth
study's config (`plan.depth_config` of quick-full-depth) at `RECIPE` -- for the plain
ResNet-18 exactly the quick profile's table cell, so its run (or quick's committed weights and
history) is used, never retrained. At the end, on the study's 500-image evaluation subset at
the model's seed, L-inf eps 0.3: clean, the study's PGD-10 and PGD-50 (random start, best
iterate), torchattacks' APGD-CE (100 steps, AutoAttack's first attack) and, with
`--attacks ...,apgd_t`, APGD-T (9 targets x 100 steps, its second); the worst case over them,
an upper bound on AutoAttack's accuracy. Per-image masks are kept (hex), so every number
re-derives from the JSON. Beside them, the paper's own quantities at the last epoch (training
loss and error on the adversarial batches, clean validation accuracy, the PGD-10 monitor) and
the figure of their curves per epoch.

    # train what is missing (one process per model: 1 thread each runs two side by side
    # faster than one process of two threads on a 2-core CPU), then evaluate and write the page
    OMP_NUM_THREADS=1 python studies/depth_regime.py --train --models resnet50 --seeds 0 \\
        --out reports/quick-full-depth/regime-pilot/pilot.json
    OMP_NUM_THREADS=1 python studies/depth_regime.py --models resnet50+dfl --seeds 0 --train ...
    python studies/depth_regime.py --models resnet18,resnet50,resnet50+dfl --seeds 0 \\
        --out reports/quick-full-depth/regime-pilot/pilot.json

--runs-dir (default runs/depth-regime) holds the deeper nets' runs; the plain ResNet-18 is read
from --quick-runs (default runs/quick), else from quick's committed record. The JSON is written
(atomically) after every model's attack, and what it holds is not run again. Cost on an AVX2
EPYC (fp32, one thread): ResNet-50's PGD-10 training about 40 minutes, with the DFL about 45;
PGD-50 and APGD-CE on 500 images a few minutes per model; APGD-T about 9 times APGD-CE.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "studies"))

from dfl_lib.errors import UsageError  # noqa: E402
from dfl_lib.evaluation.robust import eval_subset, robust_accuracy  # noqa: E402
from dfl_lib.runs import io as runio  # noqa: E402
from dfl_lib.study.plan import depth_config  # noqa: E402
from dfl_lib.study.records import DEPTH_LABELS, with_errors  # noqa: E402

import headline  # noqa: E402

__all__ = ["RECIPE", "ATTACKS", "MODELS", "config", "evaluate", "summary", "markdown", "run",
           "main"]

PROFILE = "quick-full-depth"  # whose depth config, at RECIPE
RECIPE = {"n_train": 10_000, "lr_warmup_epochs": 1.0}  # with the profile's 6 epochs, lr 0.05
EPS, N = 0.3, 500
# attack -> (robust_accuracy's settings, the page's name)
ATTACKS = {
    "pgd10": ({"attack": "pgd", "steps": 10}, "PGD-10"),
    "pgd50": ({"attack": "pgd", "steps": 50}, "PGD-50"),
    "apgd_ce": ({"attack": "apgd_ce"}, "APGD-CE"),
    "apgd_t": ({"attack": "apgd_t"}, "APGD-T"),
}
DEFAULT_ATTACKS = ("pgd10", "pgd50", "apgd_ce")
MODELS = ("resnet18", "resnet18+dfl", "resnet34", "resnet34+dfl", "resnet50", "resnet50+dfl")
# the last epoch's quantities the paper plots (history keys): training loss and error on the
# adversarial batches, clean validation accuracy, the PGD-10 monitor's accuracy
QUANTITIES = ("train_loss", "train_error", "val_acc", "val_adv_acc")
PAGE_TITLE = "# Is every depth in the regime at the table cells' recipe? (a pilot)"


def config(model: str, *, seed: int, device: str = "cpu"):
    """The run config of `model` ("resnet50" or "resnet50+dfl", a name of MODELS) at `seed`:
    the depth study's PGD-trained config at RECIPE. UsageError for another name."""
    if model not in MODELS:
        raise UsageError(f"--models must be among {', '.join(MODELS)}, got {model!r}")
    net, dfl = model.split("+")[0], model.endswith("+dfl")
    return depth_config(PROFILE, model=net, dfl=dfl, setting="adversarial training", seed=seed,
                        warmup=True, device=device).replace(**RECIPE)


def _source(cfg, *, runs_root, quick_runs, record, data_root):
    """Where `cfg`'s model is: its run in `runs_root`, else (the plain ResNet-18, which is
    quick's table cell) quick's run or committed weights. UsageError when none has it."""
    try:
        return headline.model_source(cfg, runs_root=runs_root, data_root=data_root,
                                     profile=PROFILE), runs_root
    except UsageError:
        if cfg.model != "resnet18" or cfg.dfl:
            raise
    return headline.model_source(cfg, runs_root=quick_runs, record=record,
                                 data_root=data_root, profile="quick"), quick_runs


def _history(source, *, record) -> list[dict]:
    """The run's per-epoch history: its run folder's, or the committed record's."""
    kind, where, _ = source
    folder = Path(where) if kind == "run" else Path(record) / "record" / "runs" / where.stem
    return with_errors(runio.read_json(folder / "history.json"))


def evaluate(model, x, y, *, attacks: Sequence[str], seed: int, done: dict | None = None,
             save=lambda: None, eps: float = EPS) -> dict:
    """`model` (eval mode) under each of `attacks` (keys of ATTACKS) on x (N, C, H, W) in
    [0, 1], y (N,), L-inf `eps`: {"clean" and each attack: {"mask" (hex), "accuracy" (%), "n",
    "seconds"}}, added to `done` (an attack it holds is not run again) and `save`d after each."""
    out = dict(done or {})
    if "clean" not in out:
        r = robust_accuracy(model, x, y, attack="clean")
        out["clean"] = {"mask": headline.hex_mask(r["correct"]),
                        "accuracy": 100.0 * r["accuracy"], "n": r["n"], "seconds": 0.0}
    for a in attacks:
        if a in out:
            continue
        start = time.perf_counter()
        r = robust_accuracy(model, x, y, eps=eps, seed=seed, **ATTACKS[a][0])
        out[a] = {"mask": headline.hex_mask(r["correct"]), "accuracy": 100.0 * r["accuracy"],
                  "n": r["n"], "seconds": time.perf_counter() - start,
                  "git_commit": runio.git_state()["commit"]}
        save(out)
    return out


def summary(entry: dict) -> dict:
    """A model's worst case over its attacks (a mask AND), as {"accuracy" (%), "n", "of"}."""
    masks = {a: headline.unhex(r["mask"], n=r["n"]) for a, r in entry["attacks"].items()
             if a != "clean"}
    if not masks:
        return {}
    worst = np.logical_and.reduce(list(masks.values()))
    return {"accuracy": 100.0 * float(worst.mean()), "n": int(len(worst)),
            "of": [ATTACKS[a][1] for a in masks]}


def run(*, models: Sequence[str], seeds: Sequence[int], out: Path, runs_root, quick_runs,
        record, data_root=None, attacks: Sequence[str] = DEFAULT_ATTACKS, train: bool = False,
        n: int = N, progress=print) -> dict:
    """Evaluate (and with `train`, first train) every model at every seed; `out` written after
    each attack. UsageError for a model neither trained nor `train`, an unknown attack, or an
    `out` made at another n or eps."""
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise UsageError(f"--attacks must be among {', '.join(ATTACKS)}, got {unknown[0]!r}")
    report = runio.read_json(out) if Path(out).is_file() else {
        "check": "depth regime pilot", "profile": PROFILE, "recipe": RECIPE, "n": n,
        "eps": EPS, "models": {}}
    # the machine that first wrote the report (a rerun elsewhere that adds models says so)
    machine = f"{os.cpu_count()} CPU cores, {torch.backends.cpu.get_cpu_capability()}"
    if machine not in report.setdefault("machine", machine):
        report["machine"] += f"; later also {machine}"
    if (report["n"], report["eps"]) != (n, EPS):
        raise UsageError(f"{out} was made at n={report['n']}, eps={report['eps']}; write to "
                         "another file")
    for seed in seeds:
        for name in models:
            cfg = config(name, seed=seed)
            try:  # a model already trained (or quick's ResNet-18) is found once, not twice
                source, root = _source(cfg, runs_root=runs_root, quick_runs=quick_runs,
                                       record=record, data_root=data_root)
            except UsageError:
                if not train:
                    raise
                from dfl_lib.experiments.run import train_run

                progress(f"{name} s{seed}: training")
                train_run(cfg, data_root=data_root, runs_root=runs_root, progress=False)
                source, root = _source(cfg, runs_root=runs_root, quick_runs=quick_runs,
                                       record=record, data_root=data_root)
            model, data, run_name = headline.load(cfg, source=source, runs_root=root,
                                                  data_root=data_root)
            key = f"{name} s{seed}"
            entry = report["models"].setdefault(key, {"model": name, "seed": seed,
                                                      "attacks": {}})
            history = _history(source, record=record)
            entry.update(run=run_name, source=source[0], precision=cfg.precision,
                         history=history, last={q: history[-1].get(q) for q in QUANTITIES},
                         train_minutes=sum(h.get("train_seconds", 0.0) for h in history) / 60)
            x, y = eval_subset(data, n=n, seed=seed)

            def save(done, entry=entry):
                entry["attacks"] = done
                report["provenance"] = runio.provenance(config={"check": report["check"]},
                                                        seed=0, device="cpu")
                runio.write_json(out, report)
            entry["attacks"] = evaluate(model, x, y, attacks=attacks, seed=seed,
                                        done=entry["attacks"], save=save)
            save(entry["attacks"])
            progress(f"{key}: " + ", ".join(f"{ATTACKS.get(a, (0, a))[1]} {r['accuracy']:.1f}%"
                                            for a, r in entry["attacks"].items()))
    return report


def _label(name: str) -> str:
    net = DEPTH_LABELS[name.split("+")[0]]
    return f"{net} + DFL" if name.endswith("+dfl") else net


def markdown(report: dict) -> str:
    """The page: what was run, one row per model (the last epoch's quantities, each attack, the
    worst case), what it shows and what it does not."""
    ran = [a for a in ATTACKS if any(a in m["attacks"] for m in report["models"].values())]
    lines = [PAGE_TITLE, "",
             f"PGD-10-trained MNIST networks (width 16, CE) at the table cells' recipe "
             f"({report['recipe']['n_train']:,} training images x 6 epochs, lr 0.05, the lr "
             "warm-up over the first epoch), each evaluated on the study's "
             f"{report['n']}-image evaluation subset at its seed, L-inf eps {report['eps']}; "
             "the worst case over the attacks bounds AutoAttack's accuracy from above. The "
             "plain ResNet-18 is the quick profile's table cell (under the standard AutoAttack "
             "on 1,000 images: 88.2 / 89.7 / 89.3% at seeds 0 / 1 / 2, "
             "[autoattack-check](../../quick/autoattack-check/README.md)). Made by "
             "`studies/depth_regime.py`; every mask is in `pilot.json`. Training minutes are "
             "each run's own (the sum of its epochs' training time, one thread; "
             f"{report.get('machine', 'machine not recorded')}).", "",
             "| model | seed | run | training loss | training error % | clean val % | "
             "PGD-10 monitor % | clean % | " + " | ".join(f"{ATTACKS[a][1]} %" for a in ran)
             + " | worst case % | training, min |", "|---|---|---|---|---|---|---|---|"
             + "---|" * len(ran) + "---|---|"]
    for key in sorted(report["models"], key=lambda k: (report["models"][k]["seed"],
                                                       MODELS.index(report["models"][k]
                                                                    ["model"]))):
        m = report["models"][key]
        last, worst = m["last"], summary(m)
        cells = [f"{m['attacks'][a]['accuracy']:.1f}" if a in m["attacks"] else "-"
                 for a in ran]
        lines.append(
            f"| {_label(m['model'])} | {m['seed']} | `{m['run']}` | {last['train_loss']:.3f} | "
            f"{100 * last['train_error']:.1f} | {100 * last['val_acc']:.1f} | "
            f"{100 * last['val_adv_acc']:.1f} | {m['attacks']['clean']['accuracy']:.1f} | "
            + " | ".join(cells) + f" | {worst.get('accuracy', float('nan')):.1f} | "
            f"{m.get('train_minutes', float('nan')):.0f} |")
    lines += ["", "![Training curves per epoch](curves.png)", "",
              "What it shows: whether each depth, with and without the DFL, trains into the "
              "regime at the recipe where the plain ResNet-18 does (about 98.5% clean and "
              "above 85% under AutoAttack on MNIST at eps 0.3). What it does not: any verdict. "
              "One seed per model; the depth claims need 3 or more (an effect's t interval), "
              "and the regime gate the standard AutoAttack, which this pilot bounds from above "
              "only.", ""]
    return "\n".join(lines)


def write_page(report: dict, *, out: Path) -> None:
    """README.md and curves.png beside `out`."""
    from dfl_lib.figures.curves import curve_grid

    folder = Path(out).parent
    records = [{"history": m["history"], "seed": m["seed"], "setting": "PGD-10 training",
                "depth": DEPTH_LABELS[m["model"].split("+")[0]],
                "variant": "with DFL" if m["model"].endswith("+dfl") else "without DFL"}
               for m in report["models"].values()]
    if records:
        fig = curve_grid(records, rows="setting", hue="depth", style="variant",
                         percent=("train_error", "val_adv_error"), log=("train_loss",),
                         metrics={"train_loss": "(a) training loss",
                                  "train_error": "(b) training error",
                                  "val_adv_error": "(c) val. error, PGD-10"},
                         title=f"Depth at the table cells' recipe (MNIST, PGD-10 training, "
                               f"{report['recipe']['n_train']:,} images x 6 epochs; training loss and error on the "
                               "adversarial batches, validation error under the PGD-10 monitor)")
        fig.savefig(folder / "curves.png", dpi=120, bbox_inches="tight")
    (folder / "README.md").write_text(markdown(report) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="resnet18,resnet50,resnet50+dfl",
                   help=f"comma-separated, among {', '.join(MODELS)}")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--attacks", default=",".join(DEFAULT_ATTACKS),
                   help=f"comma-separated, among {', '.join(ATTACKS)}")
    p.add_argument("--train", action="store_true", help="train the models not yet trained")
    p.add_argument("--runs-dir", default="runs/depth-regime")
    p.add_argument("--quick-runs", default="runs/quick")
    p.add_argument("--record", default=str(ROOT / "reports" / "quick"),
                   help="quick's report folder (its committed ResNet-18 weights and history)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--n", type=int, default=N)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    try:
        if not all(s.strip().isdigit() for s in args.seeds.split(",")):
            raise UsageError(f"--seeds must be comma-separated integers, got {args.seeds!r}")
        seeds = [int(s) for s in args.seeds.split(",")]
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        report = run(models=[m for m in args.models.split(",") if m], seeds=seeds, out=out,
                     runs_root=args.runs_dir, quick_runs=args.quick_runs, record=args.record,
                     data_root=args.data_dir, attacks=[a for a in args.attacks.split(",") if a],
                     train=args.train, n=args.n)
        write_page(report, out=out)
    except headline.USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out} and its page")
    return 0


if __name__ == "__main__":
    sys.exit(main())
