r"""The DFL's feature-space claim at every seed: does an attack move DFL + PCL's features less,
relative to its class gaps, than a plain ResNet's?

The paper (Section 1): "a Defensive Feature Layer (DFL), which neutralizes the impact of the
perturbations added in the feature space". Notebook 05 measures it on seed 0 only (UMAP panels
and `evaluation.featurespace.clustering_metrics`); a verdict needs every seed. Here, for the
MNIST headline rows ("resnet", "dfl_pcl") with and without PGD training at each of the
profile's seeds, the finished model (never trained here: a run folder, else the report's
committed weights, `headline.model_source`) is evaluated on the study's 500-image evaluation
subset at its seed (`evaluation.robust.eval_subset`) and on the PGD-10 versions of those images
(L-inf eps 0.3, the study's attack, random start seeded with the model's seed), and its
penultimate features give:

  displacement: mean L2 distance between an image's clean and adversarial features, in % of
                the mean distance between two clean class means (100 = moved one class gap);
  centroid hit: % of adversarial features whose nearest clean class mean is their class.

The verdict, per training setting: the plain ResNet's displacement minus DFL + PCL's (points
of a class gap; positive where DFL + PCL's features move less), paired by seed, with the
claims' t interval over seeds. A second claim is read from the same features, the PCL's "a
regularization term that improves the decision boundaries between the learned classes": the
silhouette of the clean features by class (x 100), DFL + PCL minus the plain ResNet (the DFL
and the PCL together; the PCL-only row is not among the headline models). Both use the
claims' t interval (`paper.intervals.effect_interval`, each seed's displacement a
value whose noise is the seeds'), claimed > 0; "not testable here" with fewer than 3 seeds or
with the profile below the field's regime (its plain PGD-trained ResNet under the standard
AutoAttack, reports/<profile>/autoattack-check/check.json).

The attack is PGD on the cross-entropy of the logits, the study's; it reads what the standard
attack does to the features, not the strongest attack on them (an attack on the features
themselves may move them further).

    python studies/feature_seeds.py --runs-dir runs/quick \
        --out reports/quick/feature-space-seeds/features.json

Cost (AVX2 EPYC, one thread): 15-25 s per model, 4 minutes for the 12. Resumable: the report is
written after every model, and a model already in --out is not measured again. The folder of --out
gets its page (README.md) and metrics.json with the verdicts, which the study report reads.
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
sys.path.insert(0, str(ROOT / "studies"))

from dfl_lib.attacks.pgd import pgd  # noqa: E402
from dfl_lib.errors import UsageError  # noqa: E402
from dfl_lib.evaluation.featurespace import clustering_metrics, penultimate_features  # noqa: E402
from dfl_lib.evaluation.robust import eval_subset  # noqa: E402
from dfl_lib.paper.claims import claims  # noqa: E402
from dfl_lib.paper.intervals import effect_interval, outcome  # noqa: E402
from dfl_lib.paper.regime import regime_reason  # noqa: E402
from dfl_lib.paper.verdicts import NOT_TESTABLE, equivalence, verdict_lines  # noqa: E402
from dfl_lib.runs import io as runio  # noqa: E402
from dfl_lib.study.plan import cell_config  # noqa: E402

import headline  # noqa: E402
from headline import DATASET, PGD, UNDEFENDED  # noqa: E402

__all__ = ["CLAIM", "READINGS", "measure", "run", "verdicts", "markdown", "write_page", "main"]

CLAIM = "dfl_features_together"
EPS, STEPS, N = 0.3, 10, 500  # the study's PGD-10 at MNIST's eps, on its evaluation subset
MIN_SEEDS = 3
PAGE_TITLE = "# Feature space at every seed"
_SETTINGS = ("profile", "dataset", "n", "eps", "steps")


def measure(model, x: torch.Tensor, y: torch.Tensor, *, eps: float = EPS, steps: int = STEPS,
            seed: int = 0) -> dict:
    """Clean and PGD-`steps` (L-inf `eps`, pixel units) penultimate features of images x
    (N, C, H, W) in [0, 1] with labels y (N,), `model` in eval mode: {"displacement" (% of the
    mean clean class gap), "centroid_hit_clean", "centroid_hit_adversarial" (%),
    "silhouette_clean", "silhouette_adversarial", "accuracy_clean", "accuracy_adversarial" (%),
    "n", "seconds"} (`evaluation.featurespace.clustering_metrics`)."""
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    x_adv = pgd(model, x, y, eps=eps, steps=steps, generator=generator)
    clean, adversarial = penultimate_features(model, x), penultimate_features(model, x_adv)
    m = clustering_metrics(clean, adversarial, y)
    with torch.no_grad():
        acc = [100.0 * float((model(v).argmax(1) == y).float().mean()) for v in (x, x_adv)]
    return {"displacement": 100.0 * m["displacement_ratio"],
            "centroid_hit_clean": m["centroid_hit_rate_clean"],
            "centroid_hit_adversarial": m["centroid_hit_rate_perturbed"],
            "silhouette_clean": m["silhouette_clean"],
            "silhouette_adversarial": m["silhouette_perturbed"],
            "accuracy_clean": acc[0], "accuracy_adversarial": acc[1], "n": len(y),
            "max_linf": float((x_adv - x).abs().max()), "seconds": time.perf_counter() - start}


def run(profile: str, *, runs_root, out: Path, record=None, data_root=None, n: int = N,
        progress=print) -> dict:
    """`measure` on every headline model of `profile` (both rows, PGD training and none, every
    seed), on `n` images of the study's evaluation subset at the model's seed; `out` written
    (atomically) after each model, and a model already in it skipped. UsageError when a model
    is neither a finished run in `runs_root` nor weights in `record` (a report folder), or
    `out` was made with other settings."""
    settings = {"profile": profile, "dataset": DATASET, "n": n, "eps": EPS, "steps": STEPS}
    report = runio.read_json(out) if Path(out).is_file() else {"check": "feature-space",
                                                                **settings, "models": {}}
    differ = [k for k in _SETTINGS if report.get(k) != settings[k]]
    if differ:
        raise UsageError(f"{out} was made with other settings ({', '.join(differ)}); write to "
                         "another file")
    todo = headline.models(profile, undefended="every seed")
    configs = {m: cell_config(profile, dataset=DATASET, row=m[0], setting=m[1], seed=m[2],
                              device="cpu") for m in todo}
    sources = {m: headline.model_source(cfg, runs_root=runs_root, record=record,
                                        data_root=data_root, profile=profile)
               for m, cfg in configs.items() if _key(m) not in report["models"]}
    for m, source in sources.items():
        model, data, name = headline.load(configs[m], source=source, runs_root=runs_root,
                                          data_root=data_root)
        x, y = eval_subset(data, n=n, seed=m[2])
        report["models"][_key(m)] = {"row": m[0], "setting": m[1], "seed": m[2], "run": name,
                                     **measure(model, x, y, seed=m[2])}
        report["provenance"] = runio.provenance(config=settings, seed=0, device="cpu",
                                                wall_seconds=sum(v["seconds"] for v in
                                                                 report["models"].values()))
        runio.write_json(out, report)
        r = report["models"][_key(m)]
        progress(f"{_key(m)}: displacement {r['displacement']:.1f}% of a class gap, centroid "
                 f"hit {r['centroid_hit_adversarial']:.1f}% ({r['seconds']:.0f} s)")
    return report


def _key(m: tuple[str, str, int]) -> str:
    return f"{m[0]} | {m[1]} | s{m[2]}"


def _regime(root: Path, profile: str) -> str:
    """The profile's regime gate read from its standard AutoAttack check (`regime_reason`):
    the mean over the finished seeds of the plain PGD-trained ResNet."""
    path = root / "reports" / profile / "autoattack-check" / "check.json"
    done = [m["rows"]["autoattack"] for m in (runio.read_json(path)["models"].values()
                                              if path.is_file() else [])
            if "rows" in m and m["row"] == "resnet" and m["setting"] == PGD]
    return regime_reason(dataset=DATASET, n=sum(r["n"] for r in done), baseline_autoattack=(
        float(np.mean([r["accuracy"] for r in done])) if done else None))


# claim id -> (the measure, its sign: +1 where DFL + PCL's larger value is the claim's
# direction, its name, how the numbers read it)
READINGS = {
    CLAIM: ("displacement", -1, "displacement",
            "PGD-10 (eps {eps}) moves the plain ResNet's penultimate features {resnet:.1f}% of a "
            "class gap and DFL + PCL's {dfl_pcl:.1f}%"),
    "pcl_separates_classes": ("silhouette_clean", +1, "silhouette",
                              "the silhouette of the clean penultimate features by class (x 100) "
                              "is {dfl_pcl:.1f} for DFL + PCL and {resnet:.1f} for the plain "
                              "ResNet (the DFL and the PCL together against neither; the "
                              "PCL-only row is the quick-full parts')"),
}
_SCALE = {"displacement": 1.0, "silhouette_clean": 100.0}
# each seed's measure is one number (no per-image draw of it is kept): `effect_interval` with
# float samples has no image-noise floor, so its interval holds the seeds' spread only
SEED_INTERVAL = ("t interval on per-seed effects (k - 1 degrees of freedom), seed noise only: "
                 "each seed's measure is one value over its images")


def verdicts(report: dict, *, regime: str = "", min_seeds: int = MIN_SEEDS) -> list[dict]:
    """One verdict per row of `paper_claims.csv` of each claim in `READINGS` (one row per
    training setting): DFL + PCL against the plain ResNet on the reading's measure, positive in
    the claim's direction (the plain ResNet's displacement minus DFL + PCL's, in points of a
    class gap; DFL + PCL's silhouette minus the plain ResNet's, x 100), paired by the seeds both
    rows have, t interval over seeds; claimed > 0. "not testable here" with fewer than
    `min_seeds` seeds or a `regime` reason (`paper.regime.regime_reason`). Dicts as
    `paper.verdicts.claim_verdict` returns (the study report reads them)."""
    out = []
    for c in (c for c in claims() if c.claim_id in READINGS):
        key, sign, quantity, words = READINGS[c.claim_id]
        setting = PGD if c.part.endswith(PGD) else UNDEFENDED
        by_row = {r: {m["seed"]: m for m in report["models"].values()
                      if m["row"] == r and m["setting"] == setting} for r in headline.ROWS}
        seeds = sorted(set(by_row["resnet"]) & set(by_row["dfl_pcl"]))
        v = {"claim": c.label, "claim_id": c.claim_id, "text": c.text, "where": c.where,
             "dataset": c.dataset, "claimed": 0.0, "paper_effect": None, "estimate": None,
             "low": None, "high": None, "seeds": len(seeds), "n": 0, "rows": {},
             "unit": "points", "quantity": quantity}
        if not seeds:
            out.append({**v, "verdict": NOT_TESTABLE, "reason": "not run yet: no seed has both "
                        "rows measured (studies/feature_seeds.py)"})
            continue
        samples = {r: {s: {"q": _SCALE[key] * float(by_row[r][s][key])} for s in seeds}
                   for r in headline.ROWS}
        est, low, high = effect_interval(samples, effect=lambda a: sign * (
            a["dfl_pcl"]["q"] - a["resnet"]["q"]))
        n = by_row["resnet"][seeds[0]]["n"]
        means = {r: float(np.mean([samples[r][s]["q"] for s in seeds])) for r in headline.ROWS}
        v.update(estimate=est, low=low, high=high, n=n, interval=SEED_INTERVAL,
                 rows={r: {quantity: means[r]} for r in headline.ROWS})
        first, second = ("the plain ResNet", "DFL + PCL") if sign < 0 else ("DFL + PCL",
                                                                            "the plain ResNet")
        v["numbers"] = (words.format(eps=report["eps"], **means) + f" ({setting}, mean over "
                        f"seeds {seeds}, {n} images each); {first} minus {second}: {est:+.1f} "
                        f"points, 95% interval [{low:+.1f}, {high:+.1f}]; claimed > 0" +
                        equivalence(high=high, claimed=0.0))
        few = (f"{len(seeds)} of {min_seeds} seeds measured" if len(seeds) < min_seeds else "")
        reasons = "; ".join(r for r in (regime, few) if r)
        out.append({**v, "verdict": NOT_TESTABLE if reasons else
                    outcome(low=low, high=high, claimed=0.0), "reason": reasons})
    return out


def markdown(report: dict, *, judged: list[dict]) -> str:
    """The report as a page: per model its measures; the verdicts."""
    lines = [f"{PAGE_TITLE}: does an attack move DFL + PCL's features less, are its classes "
             "further apart?", "",
             f"MNIST headline models, {report['n']} test images each (the study's evaluation "
             f"subset at the model's seed), PGD-{report['steps']} at L-inf eps {report['eps']} "
             "(the study's attack, on the cross-entropy of the logits), penultimate features "
             "(`studies/feature_seeds.py`). Displacement: the mean L2 distance between an "
             "image's clean and adversarial features in % of the mean distance between two "
             "clean class means; centroid hit: % of features nearest their own clean class "
             "mean; silhouette: of the features by their true class (scikit-learn, euclidean). "
             "DFL + PCL, the paper's proposal and the study's headline row, stands for the "
             "DFL and for the PCL here (the DFL-only and PCL-only rows are the quick-full "
             "parts', not measured here); an "
             "interval over 3 seeds is wide where the seeds disagree (a t interval with 2 "
             "degrees of freedom, on the seeds' spread only).", "",
             "What it does not show: the attack is PGD on the logits' cross-entropy, not an "
             "attack on the features, so a defence that only pushes features back would meet a "
             "stronger attack there. Without adversarial training every model is at 0% under "
             "PGD-10, and the attack keeps pushing an image past its first wrong class: "
             "displacements above 100% measure that overshoot, not resistance, and that "
             "reading says little. The silhouette reading of the PCL's claim compares features "
             "the PCL itself acts on (its centroid pull and push are on these features) with a "
             "plain network's; a higher silhouette shows the loss did what it optimises, and it "
             "comes with no robustness gain (the tables: 91.7% vs 91.8% under PGD-10). The two "
             "networks' penultimate features differ in kind (the plain ResNet's pooled last "
             "stage; DFL + PCL's pooled concatenation of the DFL's stage outputs with the last "
             "stage); both measures are ratios within one network.", "",
             "| row | training | seed | clean acc. % | PGD-10 acc. % | displacement % | "
             "centroid hit clean % | centroid hit adversarial % | silhouette clean | "
             "silhouette adversarial |", "|---|---|---|---|---|---|---|---|---|---|"]
    for m in sorted(report["models"].values(), key=lambda m: (m["setting"], m["row"],
                                                              m["seed"])):
        lines.append(f"| {m['row']} | {m['setting']} | {m['seed']} | {m['accuracy_clean']:.1f} "
                     f"| {m['accuracy_adversarial']:.1f} | {m['displacement']:.1f} | "
                     f"{m['centroid_hit_clean']:.1f} | {m['centroid_hit_adversarial']:.1f} | "
                     f"{m['silhouette_clean']:.2f} | {m['silhouette_adversarial']:.2f} |")
    lines += ["", "The paper's claims this study judges (the study report reads them from "
              "`metrics.json` here):", "", verdict_lines(judged)]
    return "\n".join(lines) + "\n"


def write_page(report: dict, *, folder: Path, regime: str = "") -> list[dict]:
    """`folder`/README.md and `folder`/metrics.json (the verdicts, with provenance:
    `headline.write_verdict_page`); returns the verdicts. UsageError where `folder` holds
    another page."""
    judged = verdicts(report, regime=regime)
    headline.write_verdict_page(folder, title=PAGE_TITLE, text=markdown(report, judged=judged),
                                judged=judged, profile=report["profile"],
                                script="studies/feature_seeds.py",
                                source_commit=report.get("provenance", {}).get("git_commit"),
                                example="reports/quick/feature-space-seeds/features.json")
    return judged


def main(argv: Sequence[str] | None = None) -> int:
    p = headline.parser(__doc__, record=True)
    p.set_defaults(n=N)
    args = p.parse_args(argv)
    try:
        headline.one_process_only(args)
        out = Path(args.out)
        report = run(args.profile, runs_root=headline.runs_dir(args), out=out,
                     record=args.record or ROOT / "reports" / args.profile,
                     data_root=args.data_dir, n=args.n)
        for v in write_page(report, folder=out.parent, regime=_regime(ROOT, args.profile)):
            print(f"{v['claim']}: {v['verdict']}")
        return 0
    except headline.USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
