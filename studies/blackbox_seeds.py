r"""The paper's black-box claim at every seed: is DFL + PCL more robust than a plain ResNet
against attacks that never read its gradients?

The paper (Section 4.3): "... which proves that the proposed method is more robust against both
white- and black-box attacks" (its white-box half is the table claims'; the paper's evidence is
its "no defence" column, no black-box attack is reported). Here two black-box attacks, each a
reading per training setting, run on every MNIST headline model (the plain ResNet and DFL + PCL,
PGD-trained and undefended, at each of the profile's seeds; never trained here: a run folder,
else the report's committed weights, `headline.model_source`), on the study's 500-image
evaluation subset at the model's seed (`evaluation.robust.eval_subset`), L-inf eps 0.3:

  transfer  PGD-50 (the study's transfer row: 5 x its PGD-10 steps) crafted on an independently
            trained, undefended plain ResNet: the headline one of the next seed ((s + 1) mod k
            over the profile's k seeds), the same surrogate for both rows of a seed;
  square    Square (Andriushchenko et al. 2020, torchattacks 3.3.0 as the study pins it), 5,000
            queries, one restart, on the model's scores (AutoAttack's standard budget).

Verdict, per attack and setting: DFL + PCL's accuracy under the attack minus the plain ResNet's
(points), paired by seed, the claims' t interval over seeds with the image noise inside each seed
(`paper.intervals.effect_interval` on the per-image masks kept here), claimed > 0; "not testable
here" with fewer than 3 seeds or with the profile below the field's regime (its plain
PGD-trained ResNet under the standard AutoAttack: reports/<profile>/autoattack-check).

    python studies/blackbox_seeds.py --runs-dir runs/quick --attacks transfer \
        --out reports/quick/blackbox-seeds/blackbox.json

Square on the PGD-trained models costs an hour each (below); the independent re-check already
ran the same Square (torchattacks, 5,000 queries, one restart, eps 0.3) on each of them with its
per-image masks, on its own 200 unseen test images. `--square-from` takes those as the
PGD-trained models' Square (marked as such on the page, paired by seed as any other):

    python studies/blackbox_seeds.py --runs-dir runs/quick --attacks transfer,square \
        --square-from reports/quick/independent-check.json \
        --out reports/quick/blackbox-seeds/blackbox.json

Resumable: the report is written after every model and attack, and a model's attack already in
--out is not run again; --setting pgd|none gives a process one setting's models. Cost on one
thread of an AVX2 EPYC: transfer about 70 s per model (PGD-50 on the surrogate); Square 20-40 s
per undefended model, about an hour per PGD-trained one (most images survive all 5,000 queries:
its first 500 took 344 s on 500 images). The folder of --out gets its page (README.md) and
metrics.json with the verdicts, which the study report reads.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "studies"))

from dfl_lib.errors import UsageError  # noqa: E402
from dfl_lib.evaluation.robust import eval_subset, robust_accuracy  # noqa: E402
from dfl_lib.paper.claims import claims  # noqa: E402
from dfl_lib.paper.intervals import INTERVAL_METHOD, effect_interval, outcome  # noqa: E402
from dfl_lib.paper.verdicts import NOT_TESTABLE, equivalence, verdict_lines  # noqa: E402
from dfl_lib.runs import io as runio  # noqa: E402
from dfl_lib.study.plan import cell_config, cell_seeds  # noqa: E402

import headline  # noqa: E402
from feature_seeds import _regime  # noqa: E402
from headline import DATASET, PGD, UNDEFENDED  # noqa: E402

__all__ = ["CLAIM", "ATTACKS", "surrogate_seed", "measure", "run", "import_square", "verdicts",
           "markdown", "write_page", "main"]

CLAIM = "blackbox_robustness"
EPS, N, MIN_SEEDS = 0.3, 500, 3
# attack -> (robust_accuracy's attack name and settings, the name the page gives it)
ATTACKS = {
    "transfer": ({"attack": "transfer", "craft": "pgd", "steps": 50},
                 "PGD-50 transferred from an undefended plain ResNet of another seed"),
    "square": ({"attack": "square", "n_queries": 5000, "n_restarts": 1},
               "Square, 5,000 queries"),
}
PAGE_TITLE = "# Black-box attacks at every seed"
_SETTINGS = ("profile", "dataset", "n", "eps")


def surrogate_seed(seed: int, *, seeds: Sequence[int]) -> int:
    """The seed of the undefended plain ResNet that transfers to the models of `seed`: the next
    of the profile's `seeds` (cyclically), so never the model's own. UsageError with one seed."""
    seeds = sorted(seeds)
    if len(seeds) < 2 or seed not in seeds:
        raise UsageError(f"a transfer surrogate needs another seed of the undefended plain ResNet; "
                         f"the profile has {seeds}, the model seed {seed}")
    return seeds[(seeds.index(seed) + 1) % len(seeds)]


def measure(model, x, y, *, attack: str, seed: int, surrogate=None, eps: float = EPS,
            **overrides) -> dict:
    """`model` (eval mode) under black-box `attack` (a key of ATTACKS; settings overridable) on
    images x (N, C, H, W) in [0, 1], labels y (N,): {"mask" (hex of the per-image bool mask:
    correct clean and attacked), "accuracy" (%), "n", "max_linf", "seconds"}."""
    settings = {**ATTACKS[attack][0], **overrides}
    if attack == "transfer":
        settings["surrogate"] = surrogate
    start = time.perf_counter()
    r = robust_accuracy(model, x, y, eps=eps, seed=seed, **settings)
    return {"mask": headline.hex_mask(r["correct"]), "accuracy": 100.0 * r["accuracy"],
            "n": r["n"], "max_linf": r["max_linf"], "seconds": time.perf_counter() - start}


def _key(m: tuple[str, str, int]) -> str:
    return f"{m[0]} | {m[1]} | s{m[2]}"


def run(profile: str, *, runs_root, out: Path, attacks: Sequence[str], record=None,
        data_root=None, n: int = N, settings: Sequence[str] = (PGD, UNDEFENDED),
        progress=print) -> dict:
    """Each of `attacks` on every headline model of `profile` (both rows, every seed, in each
    of `settings`: PGD training and no defence), `n` images of the study's evaluation subset
    at the model's seed; `out` written (atomically) after each model's attack, and one already
    in it skipped. UsageError
    for an unknown attack, a model (or surrogate) neither a finished run in `runs_root` nor
    weights in `record` (a report folder), or an `out` made with other settings."""
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown or not attacks:
        raise UsageError(f"--attacks must be among {', '.join(ATTACKS)}, got "
                         f"{', '.join(attacks) or 'none'}")
    fixed = {"profile": profile, "dataset": DATASET, "n": n, "eps": EPS}
    report = runio.read_json(out) if Path(out).is_file() else {"check": "black-box",
                                                                **fixed, "models": {}}
    differ = [k for k in _SETTINGS if report.get(k) != fixed[k]]
    if differ:
        raise UsageError(f"{out} was made with other settings ({', '.join(differ)}); write to "
                         "another file")
    report["attacks"] = {a: {**s, "name": name} for a, (s, name) in ATTACKS.items()}
    seeds = cell_seeds(profile, row="resnet", setting=UNDEFENDED)

    def config(m):
        return cell_config(profile, dataset=DATASET, row=m[0], setting=m[1], seed=m[2],
                           device="cpu")

    def loaded(m):
        cfg = config(m)
        source = headline.model_source(cfg, runs_root=runs_root, record=record,
                                       data_root=data_root, profile=profile)
        return headline.load(cfg, source=source, runs_root=runs_root, data_root=data_root)

    for m in [m for m in headline.models(profile, undefended="every seed") if m[1] in settings]:
        todo = [a for a in attacks if a not in report["models"].get(_key(m), {}).get("attacks",
                                                                                     {})]
        if not todo:
            continue
        model, data, name = loaded(m)
        x, y = eval_subset(data, n=n, seed=m[2])
        entry = report["models"].setdefault(_key(m), {"row": m[0], "setting": m[1],
                                                      "seed": m[2], "run": name, "attacks": {}})
        surrogate = None
        if "transfer" in todo:
            s_model, _, s_name = loaded(("resnet", UNDEFENDED,
                                         surrogate_seed(m[2], seeds=seeds)))
            surrogate, entry["surrogate"] = s_model, s_name
        if "clean" not in entry:
            entry["clean"] = _clean(model, x, y)
        for a in todo:
            # the commit each attack ran at: a report resumed later names both
            entry["attacks"][a] = {**measure(model, x, y, attack=a, seed=m[2],
                                             surrogate=surrogate),
                                   "git_commit": runio.git_state()["commit"]}
            report["provenance"] = runio.provenance(config=fixed, seed=0, device="cpu")
            runio.write_json(out, report)
            progress(f"{_key(m)} | {a}: {entry['attacks'][a]['accuracy']:.1f}% "
                     f"(clean {entry['clean']['accuracy']:.1f}%, "
                     f"{entry['attacks'][a]['seconds']:.0f} s)")
    return report


def import_square(report: dict, *, independent: dict, source: str) -> dict:
    """Square on the PGD-trained models taken from the independent re-check
    (`studies/independent_check.py`, its JSON `independent`): per cell ("<row> s<seed>") its
    Square mask (torchattacks Square, 5,000 queries, one restart, L-inf eps 0.3), on that check's
    own unseen test images (the same for every model, so still paired by seed), saved as the
    model's "square" with its image count, the images it used and `source` (the file's path in
    the repository). A model's own Square already in `report` is kept. Square on a robust model
    spends every query on most images (an hour per model on 500 images of one AVX2 core); the
    check already paid for it on 200. UsageError where `independent` is of another profile, eps,
    setting or Square budget than this check's."""
    want = ATTACKS["square"][0]
    budget = independent.get("budgets", {}).get("n_queries")
    fields = {"profile": (independent.get("profile"), report["profile"]),
              "eps": (next(iter(independent.get("cells", {}).values()), {}).get("eps"),
                      report["eps"]),
              "setting": (independent.get("setting"), PGD),
              "Square's queries": (budget, want["n_queries"])}
    differ = [f"{k} {a!r} (this check: {b!r})" for k, (a, b) in fields.items() if a != b]
    if differ:
        raise UsageError(f"{source} does not match this check: {'; '.join(differ)}")
    name = f"Square-{want['n_queries']}"
    images = (f"the independent check's {independent['n']} unseen test images (index seed "
              f"{independent['index_seed']}, none of the study's evaluation subsets)")
    for cell in independent["cells"].values():
        m = (cell["row"], PGD, cell["model_seed"])
        entry = report["models"].setdefault(_key(m), {"row": m[0], "setting": m[1],
                                                      "seed": m[2], "run": cell["run"],
                                                      "attacks": {}})
        if "square" in entry["attacks"] or name not in cell["masks"]:
            continue
        got = cell["results"]["attacks"][name]
        entry["attacks"]["square"] = {
            "mask": cell["masks"][name], "accuracy": 100.0 * got["accuracy"], "n": got["n"],
            "max_linf": got["max_linf"], "seconds": got["seconds"], "images": images,
            "from": source, "git_commit": independent.get("provenance", {}).get("git_commit")}
    return report


def _clean(model, x, y) -> dict:
    r = robust_accuracy(model, x, y, attack="clean")
    return {"mask": headline.hex_mask(r["correct"]), "accuracy": 100.0 * r["accuracy"],
            "n": r["n"]}


def _masks(report: dict, *, attack: str, setting: str) -> dict:
    """{row: {seed: bool mask (n,)}} of `attack` in `setting`, for the models that ran it."""
    out: dict = {}
    for m in report["models"].values():
        done = m.get("attacks", {}).get(attack)
        if m["setting"] == setting and done:
            out.setdefault(m["row"], {})[m["seed"]] = headline.unhex(done["mask"], n=done["n"])
    return out


def verdicts(report: dict, *, regime: str = "", min_seeds: int = MIN_SEEDS) -> list[dict]:
    """One verdict per row of `paper_claims.csv` of claim CLAIM (its part: "<attack>,
    <setting>"): DFL + PCL's accuracy under the attack minus the plain ResNet's (points), paired
    by the seeds both rows ran, t interval over seeds with image noise; claimed > 0. "not
    testable here" with fewer than `min_seeds` seeds or a `regime` reason. Dicts as
    `paper.verdicts.claim_verdict` returns (the study report reads them)."""
    out = []
    for c in (c for c in claims() if c.claim_id == CLAIM):
        attack, setting = (p.strip() for p in c.part.split(",", 1))
        if attack not in ATTACKS or setting not in (PGD, UNDEFENDED):
            raise KeyError(f"{c.label} in paper_claims.csv: its part must be '<attack>, "
                           f"<setting>' with an attack among {', '.join(ATTACKS)}")
        v = {"claim": c.label, "claim_id": c.claim_id, "text": c.text, "where": c.where,
             "dataset": c.dataset, "claimed": 0.0, "paper_effect": None, "estimate": None,
             "low": None, "high": None, "seeds": 0, "n": 0, "rows": {}, "unit": "points",
             "quantity": attack}
        masks = _masks(report, attack=attack, setting=setting)
        seeds = sorted(set(masks.get("resnet", {})) & set(masks.get("dfl_pcl", {})))
        if not seeds:
            out.append({**v, "verdict": NOT_TESTABLE, "reason": (
                f"not run yet: no seed has both rows under {attack} ({setting}; "
                "studies/blackbox_seeds.py)")})
            continue
        samples = {r: {s: {attack: masks[r][s]} for s in seeds} for r in headline.ROWS}
        est, low, high = effect_interval(
            samples, effect=lambda acc: acc["dfl_pcl"][attack] - acc["resnet"][attack])
        n = len(samples["resnet"][seeds[0]][attack])
        means = {r: float(np.mean([100.0 * samples[r][s][attack].mean() for s in seeds]))
                 for r in headline.ROWS}
        few = f"{len(seeds)} of {min_seeds} seeds measured" if len(seeds) < min_seeds else ""
        reasons = "; ".join(r for r in (regime, few) if r)
        v.update(estimate=est, low=low, high=high, seeds=len(seeds), n=n,
                 interval=INTERVAL_METHOD, rows={r: {attack: means[r]} for r in headline.ROWS},
                 numbers=(f"{ATTACKS[attack][1]} (L-inf eps {report['eps']}, {setting}): DFL + "
                          f"PCL keeps {means['dfl_pcl']:.1f}%, the plain ResNet "
                          f"{means['resnet']:.1f}% (mean over seeds {seeds}, {n} images each); "
                          f"DFL + PCL minus the plain ResNet: {est:+.1f} points, 95% interval "
                          f"[{low:+.1f}, {high:+.1f}]; claimed > 0"
                          + ("" if reasons else equivalence(high=high, claimed=0.0))))
        out.append({**v, "verdict": NOT_TESTABLE if reasons else
                    outcome(low=low, high=high, claimed=0.0), "reason": reasons})
    return out


def markdown(report: dict, *, judged: list[dict]) -> str:
    """The report as a page: per model its clean and black-box accuracies; the verdicts."""
    ran = [a for a in ATTACKS if any(a in m.get("attacks", {})
                                     for m in report["models"].values())]
    lines = [f"{PAGE_TITLE}: is DFL + PCL more robust than a plain ResNet against attacks that "
             "never read its gradients?", "",
             f"MNIST headline models, {report['n']} test images each (the study's evaluation "
             f"subset at the model's seed), L-inf eps {report['eps']} "
             "(`studies/blackbox_seeds.py`). "
             + "; ".join(f"{a}: {ATTACKS[a][1]}" for a in ATTACKS) + ". The transfer "
             "surrogate of seed s is the undefended plain ResNet of the next seed, trained "
             "independently, the same for both rows. DFL + PCL minus the plain ResNet, paired by "
             "seed, t interval over seeds with the image noise inside each.", "",
             "What it does not show: a transfer attack is weaker than a white-box one on the "
             "same model (the tables' PGD and the AutoAttack check are the white-box half of the "
             "claim), and how well it transfers depends on how alike the surrogate and the "
             "target are; Square is the score-based attack of AutoAttack run alone on every "
             "image, not after the white-box stages.", "",
             "| row | training | seed | clean % | " + " | ".join(f"{a} %" for a in ran) + " |",
             "|---|---|---|---|" + "---|" * len(ran)]
    for m in sorted(report["models"].values(), key=lambda m: (m["setting"], m["row"],
                                                              m["seed"])):
        cells = [f"{m['attacks'][a]['accuracy']:.1f}" + (" *" if "from" in m["attacks"][a]
                                                          else "")
                 if a in m["attacks"] else "-" for a in ran]
        clean = f"{m['clean']['accuracy']:.1f}" if "clean" in m else "-"
        lines.append(f"| {m['row']} | {m['setting']} | {m['seed']} | {clean} | "
                     + " | ".join(cells) + " |")
    imported = {(a["from"], a["images"], a["n"]) for m in report["models"].values()
                for a in m["attacks"].values() if "from" in a}
    lines += [f"\n\\* from `{src}` (its Square-5000 row and per-image masks), on "
              f"{images}, paired by seed as here" for src, images, _ in sorted(imported)]
    lines += ["", "The paper's claim this study judges (the study report reads it from "
              "`metrics.json` here):", "", verdict_lines(judged)]
    return "\n".join(lines) + "\n"


def write_page(report: dict, *, folder: Path, regime: str = "") -> list[dict]:
    """`folder`/README.md and `folder`/metrics.json (the verdicts, with provenance:
    `headline.write_verdict_page`); returns the verdicts. UsageError where `folder` holds
    another page."""
    judged = verdicts(report, regime=regime)
    headline.write_verdict_page(folder, title=PAGE_TITLE, text=markdown(report, judged=judged),
                                judged=judged, profile=report["profile"],
                                script="studies/blackbox_seeds.py",
                                source_commit=report.get("provenance", {}).get("git_commit"),
                                example="reports/quick/blackbox-seeds/blackbox.json")
    return judged


def main(argv: Sequence[str] | None = None) -> int:
    p = headline.parser(__doc__, record=True)
    p.add_argument("--attacks", default=",".join(ATTACKS),
                   help=f"comma-separated, among {', '.join(ATTACKS)}")
    p.add_argument("--setting", default=None, choices=("pgd", "none"),
                   help="only the PGD-trained models (pgd) or only the undefended ones (none)")
    p.add_argument("--square-from", default=None,
                   help="an independent check's JSON (studies/independent_check.py) whose "
                        "Square masks stand for Square on the PGD-trained models, e.g. "
                        "reports/quick/independent-check.json")
    p.set_defaults(n=N)
    args = p.parse_args(argv)
    try:
        headline.one_process_only(args)
        out = Path(args.out)
        if args.square_from:  # before run(): a model whose Square is imported is not attacked
            src = Path(args.square_from)
            if not src.is_file():
                raise UsageError(f"--square-from: no file {src}")
            report = runio.read_json(out) if out.is_file() else None
            if report is None:
                raise UsageError(f"--square-from adds to an existing report; {out} is missing")
            import_square(report, independent=runio.read_json(src),
                          source=str(src.resolve().relative_to(ROOT)) if src.resolve()
                          .is_relative_to(ROOT) else str(src))
            runio.write_json(out, report)
        report = run(args.profile, runs_root=headline.runs_dir(args), out=out,
                     attacks=[a for a in args.attacks.split(",") if a],
                     record=args.record or ROOT / "reports" / args.profile,
                     data_root=args.data_dir, n=args.n,
                     settings={"pgd": (PGD,), "none": (UNDEFENDED,)}.get(args.setting,
                                                                       (PGD, UNDEFENDED)))
        for v in write_page(report, folder=out.parent, regime=_regime(ROOT, args.profile)):
            print(f"{v['claim']}: {v['verdict']}")
        return 0
    except headline.USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
