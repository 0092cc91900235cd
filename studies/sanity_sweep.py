"""Sanity sweeps of the headline models (Carlini et al. 2019, "On Evaluating Adversarial
Robustness", Section 5): robust accuracy against the attack's eps up to where it must reach 0,
against PGD's iterations, and against random restarts, each as a curve on the same images.

What it measures. For each headline model of the profile at `--seeds` (default: the first; the
MNIST rows "resnet" and "dfl_pcl", PGD-trained and undefended, from a finished run or the
report's committed weights: never trained here), on `--n` images of the study's evaluation
subset at the model's seed, L-inf, the study's own PGD (random start, best iterate kept):
  - eps: PGD-20 at eps 0.05, 0.1, ..., 0.5 (pixel units), clean at 0. The accuracy must fall
    with eps and reach 0 well before eps 0.5 (where every MNIST digit can be turned into a
    grey image of any class), or the attack is failing, not the model holding;
  - iterations (PGD-trained models): PGD-k at the threat's eps 0.3 for k = 1, 2, 5, 10, 20, 50,
    100. It must not rise with k and should flatten: a model whose accuracy keeps falling at
    100 steps was not evaluated to convergence by PGD-10;
  - restarts (PGD-trained models): PGD-10 at eps 0.3 from 5 random starts, each seeded apart;
    the accuracy after r restarts counts an image robust only if it survived all r. A large
    gain from restarts is a sign of a loss surface that hides adversarial examples from one
    start (gradient masking).
Per model and point: accuracy (%) and the per-image mask (hex of the packed bits), so every
curve re-derives from the file. Checks per model, beside their numbers: reaches 0 (at most one
image at eps 0.5), falls with eps (no point above the one before by more than one image), does
not rise with iterations (same tolerance), and the drops from PGD-50 to PGD-100 and from 1 to 5
restarts.
  - escalation (a model whose eps curve fails "reaches 0" or "falls with eps"): the curve's tail,
    every eps from the first where PGD-20 leaves at most 5% correct, re-attacked with AutoAttack
    (standard: APGD-CE, APGD-T, FAB-T, Square-5000; torchattacks) on PGD-20's survivors, each
    point the worst case of the two. Carlini et al. ask for a stronger attack before a curve
    that does not reach 0 is read as robustness: if the worst case reaches 0 and falls, PGD-20
    was too weak there (a fault of the attack, not a defence); if not, the model masks.

    OMP_NUM_THREADS=1 python studies/sanity_sweep.py --runs-dir runs/quick \\
        --out reports/quick/sanity-sweep/sweep.json

The JSON is written (atomically) after every model and sweep; a rerun skips what it holds. Cost
on one AVX2 core: about 7 minutes per PGD-trained model at 500 images, 3.5 per undefended one.
Writes beside --out: README.md (the numbers and checks) and sweep.png (the three curves).
"""
from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "studies"))

from dfl_lib.errors import UsageError  # noqa: E402
from dfl_lib.evaluation.robust import eval_subset, robust_accuracy  # noqa: E402
from dfl_lib.runs import io as runio  # noqa: E402
from dfl_lib.study.plan import cell_config  # noqa: E402

import headline  # noqa: E402
from headline import DATASET, PGD  # noqa: E402

__all__ = ["EPS_GRID", "STEPS_GRID", "RESTARTS", "ESCALATED", "sweep_model", "tail", "escalate",
           "needs_escalation", "run", "checks", "markdown", "main"]

EPS, N = 0.3, 500
EPS_GRID = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
EPS_STEPS = 20
STEPS_GRID = (1, 2, 5, 10, 20, 50, 100)
RESTARTS, RESTART_STEPS = 5, 10
SWEEPS = ("eps", "steps", "restarts")
ESCALATED = "eps_autoattack"  # the eps curve's tail under AutoAttack on PGD-20's survivors
TAIL = 5.0  # %: a point of the eps curve at or below it is in the tail, where all should fall
PAGE_TITLE = "# Sanity sweeps of the headline models"
_SETTINGS = ("profile", "dataset", "n", "eps")


def _point(r: dict) -> dict:
    return {"mask": headline.hex_mask(r["correct"]), "accuracy": 100.0 * r["accuracy"],
            "n": r["n"], "max_linf": r["max_linf"]}


def sweep_model(model, x, y, *, sweep: str, seed: int, eps: float = EPS,
                eps_grid: Sequence[float] = EPS_GRID, steps_grid: Sequence[int] = STEPS_GRID,
                restarts: int = RESTARTS) -> dict:
    """One sweep of `model` (eval mode) on images x (N, C, H, W) in [0, 1], labels y (N,):
    "eps" -> {eps: point} (PGD-20 at each eps of `eps_grid`, "0" the clean input), "steps" ->
    {k: point} (PGD-k at `eps`), "restarts" -> {r: point} (PGD-10 at `eps`, robust after all
    of r seeded restarts). A point: {"mask" (hex), "accuracy" (%), "n", "max_linf"}.
    UsageError for an unknown sweep."""
    if sweep == "eps":
        out = {"0": _point(robust_accuracy(model, x, y, attack="clean"))}
        for e in eps_grid:
            out[f"{e:g}"] = _point(robust_accuracy(model, x, y, attack="pgd", eps=e,
                                                   steps=EPS_STEPS, seed=seed))
        return out
    if sweep == "steps":
        return {str(k): _point(robust_accuracy(model, x, y, attack="pgd", eps=eps, steps=k,
                                               seed=seed)) for k in steps_grid}
    if sweep == "restarts":
        out, alive = {}, None
        for r in range(1, restarts + 1):
            one = robust_accuracy(model, x, y, attack="pgd", eps=eps, steps=RESTART_STEPS,
                                  seed=1000 * seed + r)  # each restart from its own start
            alive = one["correct"] if alive is None else alive & one["correct"]
            out[str(r)] = {**_point({**one, "correct": alive,
                                     "accuracy": float(alive.float().mean())}),
                           "max_linf": one["max_linf"]}
        return out
    raise UsageError(f"sweep must be one of {', '.join(SWEEPS)}, got {sweep!r}")


def tail(points: dict, *, below: float = TAIL) -> list[str]:
    """The eps keys of an eps sweep's tail: every eps (not the clean "0") from the first whose
    accuracy is at most `below` % onward, in order of eps; [] when no point is that low."""
    keys = sorted((k for k in points if float(k) > 0), key=float)
    first = next((i for i, k in enumerate(keys) if points[k]["accuracy"] <= below), None)
    return [] if first is None else keys[first:]


def escalate(model, x, y, *, eps_points: dict, seed: int, below: float = TAIL) -> dict:
    """The tail of an eps sweep (`tail`) re-attacked with AutoAttack (standard version, L-inf,
    torchattacks, Square at 5,000 queries) on the images PGD-20 left correct: {eps: point},
    each point's mask PGD-20's AND AutoAttack's (the worst case of the two attacks), accuracy
    in %. x (N, C, H, W) in [0, 1], y (N,), the images `eps_points` was measured on; a point
    with no survivor is PGD's own. Source: Carlini et al. (2019), Section 5 (a curve that does
    not reach 0 calls for a stronger attack); Croce & Hein (2020) for AutoAttack."""
    out = {}
    for key in tail(eps_points, below=below):
        pgd = eps_points[key]
        alive = torch.from_numpy(headline.unhex(pgd["mask"], n=pgd["n"]).copy())
        idx = alive.nonzero().flatten()
        if len(idx):
            aa = robust_accuracy(model, x[idx], y[idx], attack="autoattack", eps=float(key),
                                 seed=seed)
            alive[idx] = aa["correct"]
        out[key] = {"mask": headline.hex_mask(alive), "accuracy": 100.0 * float(
            alive.float().mean()), "n": pgd["n"], "max_linf": pgd["max_linf"],
            "re_attacked": int(len(idx))}
    return out


def needs_escalation(entry: dict) -> bool:
    """Whether a model's eps curve fails "reaches 0" or "falls with eps" and has no escalated
    tail yet."""
    if ESCALATED in entry.get("sweeps", {}) or "eps" not in entry.get("sweeps", {}):
        return False
    return any(c["result"] != "holds" for c in checks(entry) if c["key"] in ("zero", "falls"))


def _key(m: tuple[str, str, int]) -> str:
    return f"{m[0]} | {m[1]} | s{m[2]}"


def run(profile: str, *, runs_root, out: Path, seeds: Sequence[int] | None = None, record=None,
        data_root=None, n: int = N, progress=print) -> dict:
    """Every sweep of every headline model of `profile` at `seeds` (None: each row's first):
    eps for all, iterations and restarts for the PGD-trained ones; `out` written (atomically)
    after each model's sweep, and one it holds skipped. UsageError for a model neither a
    finished run in `runs_root` nor weights in `record`, or an `out` made with other settings."""
    fixed = {"profile": profile, "dataset": DATASET, "n": n, "eps": EPS}
    report = (runio.read_json(out) if Path(out).is_file()
              else {"check": "sanity sweep", **fixed, "models": {}})
    differ = [k for k in _SETTINGS if report.get(k) != fixed[k]]
    if differ:
        raise UsageError(f"{out} was made with other settings ({', '.join(differ)}); write to "
                         "another file")
    report["grids"] = {"eps": list(EPS_GRID), "eps_steps": EPS_STEPS, "steps": list(STEPS_GRID),
                       "restarts": RESTARTS, "restart_steps": RESTART_STEPS}
    every = headline.models(profile, undefended="every seed")
    first = {r: min(s for rr, _, s in every if rr == r) for r, _, _ in every}
    wanted = [m for m in every if (m[2] in seeds if seeds is not None else m[2] == first[m[0]])]
    if not wanted:
        raise UsageError(f"no headline model of {profile} at seeds {list(seeds or [])}")
    for m in wanted:
        held = report["models"].get(_key(m), {"sweeps": {}})
        todo = [s for s in (SWEEPS if m[1] == PGD else ("eps",)) if s not in held["sweeps"]]
        if not todo and not needs_escalation(held):
            continue
        cfg = cell_config(profile, dataset=DATASET, row=m[0], setting=m[1], seed=m[2],
                          device="cpu")
        source = headline.model_source(cfg, runs_root=runs_root, record=record,
                                       data_root=data_root, profile=profile)
        model, data, name = headline.load(cfg, source=source, runs_root=runs_root,
                                          data_root=data_root)
        x, y = eval_subset(data, n=n, seed=m[2])
        entry = report["models"].setdefault(_key(m), {"row": m[0], "setting": m[1],
                                                      "seed": m[2], "run": name, "sweeps": {}})
        for s in todo:
            start = time.perf_counter()
            entry["sweeps"][s] = {"points": sweep_model(model, x, y, sweep=s, seed=m[2]),
                                  "seconds": time.perf_counter() - start,
                                  "git_commit": runio.git_state()["commit"]}
            report["provenance"] = runio.provenance(config=fixed, seed=0, device="cpu")
            runio.write_json(out, report)
            progress(f"{_key(m)} | {s}: {entry['sweeps'][s]['seconds']:.0f} s")
        if needs_escalation(entry):
            start = time.perf_counter()
            entry["sweeps"][ESCALATED] = {
                "points": escalate(model, x, y, eps_points=entry["sweeps"]["eps"]["points"],
                                   seed=m[2]),
                "seconds": time.perf_counter() - start,
                "git_commit": runio.git_state()["commit"]}
            runio.write_json(out, report)
            progress(f"{_key(m)} | {ESCALATED}: {entry['sweeps'][ESCALATED]['seconds']:.0f} s")
    return report


def _curve(entry: dict, sweep: str) -> list[tuple[float, float, int]]:
    """(x, accuracy %, n) of one sweep of a model, in order of x."""
    points = entry["sweeps"].get(sweep, {}).get("points", {})
    return sorted((float(k), p["accuracy"], p["n"]) for k, p in points.items())


def checks(entry: dict) -> list[dict]:
    """The sanity checks of one model's sweeps, each {"key", "check", "result" ("holds" / "does
    not hold"), "numbers"}; a sweep it has not run is left out. One image is the tolerance (plus a
    rounding margin: 91.2 - 91.0 is 0.2000000000000028 in floats)."""
    out = []
    eps = _curve(entry, "eps")
    if eps:
        tol = 100.0 / eps[0][2] + 1e-9
        last = eps[-1]
        out.append({"key": "zero", "check": f"reaches 0 by eps {last[0]:g}",
                    "result": "holds" if last[1] <= tol else "does not hold",
                    "numbers": f"{last[1]:.1f}% at eps {last[0]:g}"})
        rises = [(a, b) for a, b in zip(eps, eps[1:]) if b[1] > a[1] + tol]
        out.append({"key": "falls", "check": "falls with eps",
                    "result": "does not hold" if rises else "holds",
                    "numbers": "; ".join(f"{b[1]:.1f}% at {b[0]:g} above {a[1]:.1f}% at {a[0]:g}"
                                         for a, b in rises) or
                               " -> ".join(f"{p[1]:.1f}" for p in eps)})
    strong = _curve(entry, ESCALATED)
    if eps and strong:  # the same two checks on the worst case of PGD-20 and AutoAttack
        worst = dict((p[0], p) for p in eps) | dict((p[0], p) for p in strong)
        curve = sorted(worst.values())
        last = curve[-1]
        rises = [(a, b) for a, b in zip(curve, curve[1:]) if b[1] > a[1] + tol]
        out += [{"key": "zero_aa", "check": f"reaches 0 by eps {last[0]:g} under AutoAttack "
                                            "on PGD-20's survivors",
                 "result": "holds" if last[1] <= tol else "does not hold",
                 "numbers": f"{last[1]:.1f}% at eps {last[0]:g}"},
                {"key": "falls_aa", "check": "falls with eps under AutoAttack on PGD-20's "
                                             "survivors",
                 "result": "does not hold" if rises else "holds",
                 "numbers": "; ".join(f"{b[1]:.1f}% at {b[0]:g} above {a[1]:.1f}% at {a[0]:g}"
                                      for a, b in rises) or
                            " -> ".join(f"{p[1]:.1f}" for p in curve)}]
    steps = _curve(entry, "steps")
    if steps:
        tol = 100.0 / steps[0][2] + 1e-9
        rises = [(a, b) for a, b in zip(steps, steps[1:]) if b[1] > a[1] + tol]
        out.append({"key": "rise", "check": "does not rise with PGD's iterations",
                    "result": "does not hold" if rises else "holds",
                    "numbers": " -> ".join(f"{p[1]:.1f}" for p in steps)
                               + f" (k = {', '.join(f'{p[0]:g}' for p in steps)})"})
        out.append({"key": "converged", "check": "PGD converged by its longest run",
                    "result": "holds" if steps[-2][1] - steps[-1][1] <= tol else "does not hold",
                    "numbers": f"PGD-{steps[-2][0]:g} {steps[-2][1]:.1f}% -> PGD-{steps[-1][0]:g} "
                               f"{steps[-1][1]:.1f}%"})
    restarts = _curve(entry, "restarts")
    if restarts:
        drop = restarts[0][1] - restarts[-1][1]
        out.append({"key": "restarts", "check": "restarts gain little",
                    "result": "holds" if drop <= 1.0 + 1e-9 else "does not hold",
                    "numbers": f"{restarts[0][1]:.1f}% after 1 start, {restarts[-1][1]:.1f}% "
                               f"after {restarts[-1][0]:g} (-{drop:.1f} points; at most 1)"})
    return out


def _escalation_reading(entry: dict) -> str:
    """What the escalated checks say of a failing PGD-20 curve, in one sentence."""
    found = {c["key"]: c["result"] for c in checks(entry)}
    if found.get("zero_aa") == "holds" and found.get("falls_aa") == "holds":
        return ("the worst case reaches 0 and falls with eps, so PGD-20 was too weak at those "
                "eps (a fault of the attack there, not robustness)")
    return ("the worst case still does not reach 0 or still rises with eps: the model resists "
            "both attacks there, which at these eps marks gradient masking or an attack "
            "failure common to both, not robustness")


def seed_table(report: dict) -> list[str]:
    """Every model's checks side by side, one row per model (row, setting, seed), so the seeds
    of one configuration read together: each check's result, with PGD's last two points and the
    restarts' drop (points)."""
    columns = {"zero": "reaches 0", "falls": "falls with eps", "rise": "does not rise",
               "converged": "converged (PGD-50 -> 100)", "restarts": "restarts (1 -> 5)"}
    if any(ESCALATED in m["sweeps"] for m in report["models"].values()):
        columns["zero_aa"] = "reaches 0 and falls, AutoAttack on PGD's survivors"
    lines = ["| model | seed | " + " | ".join(columns.values()) + " |",
             "|---|---|" + "---|" * len(columns)]
    for m in sorted(report["models"].values(), key=lambda m: (m["row"], m["setting"], m["seed"])):
        found = {c["key"]: c for c in checks(m)}
        steps, restarts = _curve(m, "steps"), _curve(m, "restarts")
        extra = {"converged": f" ({steps[-2][1]:.1f} -> {steps[-1][1]:.1f})" if steps else "",
                 "restarts": f" ({restarts[0][1]:.1f} -> {restarts[-1][1]:.1f})" if restarts
                 else ""}
        if "zero_aa" in found:  # one column for the escalated pair: both must hold
            pair = (found["zero_aa"], found["falls_aa"])
            found["zero_aa"] = {"result": "holds" if all(c["result"] == "holds" for c in pair)
                                else "does not hold"}
        cells = ["-" if key not in found else
                 ("holds" if found[key]["result"] == "holds" else "**does not hold**")
                 + extra.get(key, "") for key in columns]
        lines.append(f"| {m['row']}, {m['setting']} | {m['seed']} | " + " | ".join(cells) + " |")
    return lines


def markdown(report: dict) -> str:
    """The page: what was run, every model's checks side by side (`seed_table`), then per model
    its curves' numbers and its checks."""
    g = report.get("grids", {})
    lines = [PAGE_TITLE, "",
             f"The {report['profile']} profile's headline models ({report['dataset']}, "
             f"{report['n']} test images of the study's evaluation subset at each model's seed; "
             "L-inf, the study's PGD with a random start and the best iterate kept): accuracy "
             f"against eps (PGD-{g.get('eps_steps', EPS_STEPS)}), against PGD's iterations at "
             f"eps {report['eps']:g} and against {g.get('restarts', RESTARTS)} random restarts "
             f"of PGD-{g.get('restart_steps', RESTART_STEPS)} (robust only if an image survives "
             "every one), the checks Carlini et al. (2019, Section 5) ask of a robustness "
             "claim. Every point's per-image mask is in `sweep.json`; `sweep.png` draws the "
             "curves. A model whose eps curve does not reach 0 or rises has that curve's tail (every "
             f"eps from the first where PGD-20 leaves at most {TAIL:g}%) re-attacked with "
             "AutoAttack (standard) on the images PGD-20 left correct, and the two checks "
             "judged again on the worst case. Made by `studies/sanity_sweep.py`.", "",
             "![Sanity sweeps: accuracy against eps, PGD iterations and restarts](sweep.png)",
             "", "## Every model's checks", "", *seed_table(report), ""]
    for key, entry in report["models"].items():
        lines += [f"## {key} (run `{entry['run']}`)", ""]
        for sweep, what in (("eps", "eps"), (ESCALATED, "eps, its tail's PGD-20 survivors "
                                                       "re-attacked with AutoAttack"),
                            ("steps", "PGD iterations"), ("restarts", "restarts")):
            curve = _curve(entry, sweep)
            if curve:
                lines.append(f"- accuracy (%) by {what}: " + ", ".join(
                    f"{x:g}: {a:.1f}" for x, a, _ in curve))
        lines += [f"- check: {c['check']}: **{c['result']}** ({c['numbers']})"
                  for c in checks(entry)]
        strong = entry["sweeps"].get(ESCALATED, {}).get("points", {})
        if strong:
            lines.append("- AutoAttack re-attacked PGD-20's survivors (" + ", ".join(
                f"{p['re_attacked']} images at eps {k}" for k, p in strong.items()) + "): "
                + _escalation_reading(entry))
        restarts = _curve(entry, "restarts")
        if restarts:  # what a random start alone moves, to read the single-run curves against
            lines.append(f"- a random start alone moves this model's PGD accuracy by up to "
                         f"{restarts[0][1] - restarts[-1][1]:.1f} points (1 start against "
                         f"{restarts[-1][0]:g}): each point of the eps and iteration curves is one "
                         "run from its own random start, so differences between them below "
                         "that are within random-start noise")
        commits = sorted({s.get("git_commit", "?")[:7] for s in entry["sweeps"].values()})
        seconds = sum(s["seconds"] for s in entry["sweeps"].values())
        lines += [f"- {seconds / 60:.1f} CPU min; at commit {', '.join(commits)}", ""]
    return "\n".join(lines)


def write_page(report: dict, *, out: Path) -> None:
    """README.md and sweep.png beside `out`."""
    from dfl_lib.figures.sanity import sweep_curves

    folder = Path(out).parent
    fig = sweep_curves(report)
    fig.savefig(folder / "sweep.png", dpi=120, bbox_inches="tight")
    (folder / "README.md").write_text(markdown(report) + "\n")


def main(argv=None) -> int:
    p = headline.parser(__doc__, record=True)
    p.set_defaults(n=N)
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: each row's "
                   "first)")
    args = p.parse_args(argv)
    try:
        headline.one_process_only(args)
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        report = run(args.profile, runs_root=headline.runs_dir(args), out=out, seeds=seeds,
                     record=args.record or ROOT / "reports" / args.profile,
                     data_root=args.data_dir, n=args.n)
        write_page(report, out=out)
    except headline.USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out} and its page")
    return 0


if __name__ == "__main__":
    sys.exit(main())
