"""The L2 threat model on the study's MNIST headline models: AutoAttack's two APGD parts at an L2
radius, on every seed the profile trains, with the DFL + PCL effect paired by seed.

What it measures. For the MNIST headline rows ("resnet" and "dfl_pcl") with PGD training (L-inf,
eps 0.3) at each of the profile's seeds, and without defence at its first seed, the finished run
(never trained here: a missing run is an error) is evaluated at L2 radius `--eps` (default: the
study's C&W-L2 budget, `cw_l2_budget`, 2.0 on MNIST) on `--n` test images, the study's
class-balanced evaluation subset of that size at the run's seed (`evaluation.robust.eval_subset`),
with the library's registered torchattacks attacks (`attacks/peers.py`):
  - APGD-CE under L2 (Croce & Hein 2020), 100 steps, 1 restart, on every image;
  - APGD-T under L2 (targeted DLR loss, the 9 likeliest other classes x 100 steps) on the images
    APGD-CE left correctly classified: AutoAttack's cascade, so the worst case (robust only if
    both fail) costs APGD-T on the survivors alone.
Per model: clean, APGD-CE and worst-case rows (accuracy, 95% Wilson interval), the per-example
worst-case mask (hex of the packed bits, so the effect below can be re-derived from the file),
and the seconds. Summary: each row's mean over seeds, and DFL + PCL minus the plain ResNet on the
worst case under PGD training, paired by seed, with the claims' t interval
(`paper.intervals.effect_interval`).

Why. The paper's C&W column is an L2 attack (C&W, c = 0.1, 10 steps) reported without a radius;
the study's tables use CW-inf (the C&W margin inside the L-inf ball) for that column, and no
headline model had been evaluated under an L2 threat model. A model trained against L-inf
perturbations is not thereby robust to L2 ones (Tramer & Boneh 2019; Schott et al. 2019 on
MNIST): this check says how the headline models fare there, and whether the DFL + PCL changes it.

    # one process per row (1 thread each), then joined with the summary:
    OMP_NUM_THREADS=1 python studies/l2_check.py --runs-dir runs/quick --rows resnet --out a.json &
    OMP_NUM_THREADS=1 python studies/l2_check.py --runs-dir runs/quick --rows dfl_pcl --out b.json
    wait; python studies/l2_check.py --merge a.json b.json --out reports/quick/l2-check.json

Each model's result is written (atomically) as soon as it is done; a rerun with the same
settings skips the models already in `--out`. Cost (AVX2 EPYC, one thread per process): about 10
CPU minutes per PGD-trained model at 500 images, nearly all of it APGD-T on the survivors; the
committed report (`reports/quick/l2-check.json`) used `--n 500`.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dfl_lib.errors import UsageError  # noqa: E402
from dfl_lib.evaluation.robust import eval_subset, robust_accuracy  # noqa: E402
from dfl_lib.runs import io as runio  # noqa: E402
from dfl_lib.study.plan import cell_config  # noqa: E402

sys.path.insert(0, str(ROOT / "studies"))
import headline  # noqa: E402
from headline import DATASET, ROWS, row as _row, unhex  # noqa: E402

__all__ = ["ROWS", "STEPS", "check_model", "models", "summarise", "main", "unhex"]

STEPS = 100  # AutoAttack's standard APGD budget (Croce & Hein 2020)
# the settings two reports of the check must share to be merged
_SETTINGS = ("profile", "dataset", "n", "eps_l2", "seed", "steps", "attacks")


def models(profile: str, *, rows: Sequence[str] = ROWS) -> list[tuple[str, str, int]]:
    """(row, setting, seed) of every model the check evaluates at `profile`: each headline row
    with PGD training at each of its seeds, and without defence at seed 0 (its first seed)."""
    return headline.models(profile, rows=rows, undefended="first seed")


def check_model(model, x: torch.Tensor, y: torch.Tensor, *, eps: float, seed: int = 0,
                steps: int = STEPS, batch_size: int = 250) -> dict:
    """Clean, APGD-CE (L2, on every image) and worst-case rows of `model` (eval mode) on x
    (N, C, H, W) in [0, 1], y (N,) at L2 radius eps (pixel units); APGD-T (L2) runs on the images
    APGD-CE left correct. Rows hold accuracy (%), its 95% Wilson interval, n, n_correct and
    seconds; "worst_mask" is the worst case's per-example mask as hex (`unhex`)."""
    start = time.perf_counter()
    clean = robust_accuracy(model, x, y, attack="clean", batch_size=batch_size)
    ce = robust_accuracy(model, x, y, attack="apgd_ce_l2", eps=eps, steps=steps, seed=seed,
                         batch_size=batch_size)
    worst = ce["correct"].clone()  # (N,) correct clean and under APGD-CE
    left = torch.nonzero(worst).flatten()
    targeted = None
    if len(left):
        targeted = robust_accuracy(model, x[left], y[left], attack="apgd_t_l2", eps=eps,
                                   steps=steps, seed=seed, batch_size=batch_size)
        worst[left] = targeted["correct"]
    return {
        "clean": _row(clean["correct"]),
        "apgd_ce": _row(ce["correct"], settings=ce["settings"], max_l2=ce["max_l2"],
                        seconds=ce["seconds"]),
        "apgd_t_on_survivors": None if targeted is None else {
            "n": targeted["n"], "n_correct": targeted["n_correct"],
            "settings": targeted["settings"], "max_l2": targeted["max_l2"],
            "seconds": targeted["seconds"]},
        "worst_case": _row(worst, threat_model={"norm": "L2", "eps": eps}),
        "worst_mask": headline.hex_mask(worst), "seconds": time.perf_counter() - start}


def run_check(profile: str, *, runs_root, out: Path, data_root=None, n: int = 1000,
              eps: float | None = None, seed: int = 0, steps: int = STEPS,
              rows: Sequence[str] = ROWS, progress=print) -> dict:
    """Evaluate every model of `models(profile, rows=rows)` not yet in `out` and write `out`
    after each. UsageError when a run is missing (never trained here) or `out` was made with
    other settings."""
    from dfl_lib.experiments.data import load_data
    from dfl_lib.runs.folder import run_path
    from dfl_lib.study.records import load_run

    todo = models(profile, rows=rows)
    configs = {m: cell_config(profile, dataset=DATASET, row=m[0], setting=m[1], seed=m[2],
                              device="cpu") for m in todo}
    eps = float(eps if eps is not None else configs[todo[0]].cw_l2_budget)
    settings = {"profile": profile, "dataset": DATASET, "n": n, "eps_l2": eps, "seed": seed,
                "steps": steps, "attacks": "APGD-CE (L2), then APGD-T (L2) on its survivors"}
    report = runio.read_json(out) if Path(out).is_file() else {"check": "l2", **settings,
                                                                 "models": {}}
    differ = [k for k, v in settings.items() if report.get(k) != v]
    if differ:
        raise UsageError(f"{out} was made with other settings ({', '.join(differ)}); "
                         "write to another file")
    for m, cfg in configs.items():  # refuse before any work when a run is missing
        rdir = run_path(cfg, load_data(cfg, root=data_root), runs_root=runs_root)
        if not runio.is_finished(rdir):
            raise UsageError(f"no finished {m} run at {rdir}; this check never trains: run the "
                             f"study first (python -m dfl_lib study --profile {profile})")
    for (row, setting, s), cfg in configs.items():
        key = f"{row} | {setting} | s{s}"
        if key in report["models"]:
            continue
        run = load_run(cfg, runs_root=runs_root, data_root=data_root)
        x, y = eval_subset(run["data"], n=n, seed=s)
        result = check_model(run["model"].cpu().float().eval(), x, y, eps=eps, seed=seed,
                             steps=steps)
        report["models"][key] = {"row": row, "setting": setting, "seed": s,
                                 "run": Path(run["run_dir"]).name, **result}
        report["provenance"] = runio.provenance(config=settings, seed=seed, device="cpu",
                                                wall_seconds=result["seconds"])
        runio.write_json(out, report)
        progress(f"{key}: clean {result['clean']['accuracy']:.1f}%, APGD-CE (L2) "
                 f"{result['apgd_ce']['accuracy']:.1f}%, worst case "
                 f"{result['worst_case']['accuracy']:.1f}% ({result['seconds']:.0f} s)")
    return report


def summarise(report: dict) -> dict:
    """Per (row, setting): the seeds and the mean clean / APGD-CE / worst-case accuracy (%);
    and DFL + PCL minus the plain ResNet on the worst case under PGD training (points, paired
    by seed, `effect_interval`), where both rows have the same seeds (None otherwise)."""
    means: dict = {}
    for m in report["models"].values():
        means.setdefault(f"{m['row']} | {m['setting']}", []).append(m)
    table = {k: {"seeds": sorted(m["seed"] for m in ms),
                 **{r: float(np.mean([m[r]["accuracy"] for m in ms]))
                    for r in ("clean", "apgd_ce", "worst_case")}}
             for k, ms in sorted(means.items())}
    masks = {r: {m["seed"]: unhex(m["worst_mask"], n=m["worst_case"]["n"])
                 for m in report["models"].values()
                 if m["row"] == r and m["setting"] == headline.PGD} for r in ROWS}
    effect = headline.paired_effect(
        masks, what="DFL + PCL minus the plain ResNet, both PGD-trained: worst-case accuracy (%) "
                    "under the L2 threat model, paired by seed")
    return {"table": table, "effect": effect}


def main(argv: Sequence[str] | None = None) -> int:
    p = headline.parser(__doc__)
    p.add_argument("--eps", type=float, default=None,
                   help="L2 radius (default: the profile's cw_l2_budget)")
    p.add_argument("--steps", type=int, default=STEPS, help="APGD iterations")
    args = p.parse_args(argv)
    try:
        if args.merge:
            report = headline.merge(args.merge, keys=_SETTINGS, summarise=summarise,
                                    out=args.out)
            runio.write_json(args.out, report)
            print(f"wrote {args.out}")
            return 0
        runs_root = headline.runs_dir(args)
        report = run_check(args.profile, runs_root=runs_root, out=Path(args.out),
                           data_root=args.data_dir, n=args.n, eps=args.eps, seed=args.seed,
                           steps=args.steps, rows=args.rows.split(","))
        if {m["row"] for m in report["models"].values()} == set(ROWS):
            report["summary"] = summarise(report)
            runio.write_json(args.out, report)
        return 0
    except headline.USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
