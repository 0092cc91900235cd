r"""AutoAttack to the field's standard on the study's MNIST headline models: the standard version
(APGD-CE, APGD-T, FAB-T, Square at 5,000 queries) at L-inf eps 0.3 on 1,000 test images of every
seed, with the DFL + PCL effect paired by seed.

What it measures. For the headline rows ("resnet" and "dfl_pcl", `headline.py`) with PGD training
at each of the profile's seeds, and without defence at each seed (`--undefended`), the finished
model (never trained here: its run folder, else the report's committed weights) is evaluated
on `--n` test images, the
study's class-balanced evaluation subset of that size at the run's seed
(`evaluation.robust.eval_subset`), with AutoAttack's cascade as Croce & Hein (2020) run it: each
attack on the images every earlier one left correctly classified, robust only if all fail:
  clean -> APGD-CE (100 steps) -> APGD-T (9 targets x 100 steps) -> FAB-T (9 targets x 100
  steps) -> Square (5,000 queries), every part from the pinned torchattacks with AutoAttack's
  standard budgets (`dfl_lib/attacks/peers.py`), one restart each, the attacks' seed `--seed`.
Per model: the accuracy after each stage (%, 95% Wilson interval), the largest L-inf
perturbation each stage produced, the per-example mask after each stage (hex, `headline.unhex`),
wall and CPU seconds. Summary: each (row, setting)'s mean over its finished seeds, and DFL + PCL
minus the plain ResNet under AutoAttack with PGD training, paired by seed (`effect_interval`).

Why. The quick report's AutoAttack cells ran on seed 0 of two cells, on 250 images, with Square
at 1,000 queries (the quick profile's budget); the field's standard (RobustBench) is the
standard version, Square at 5,000 queries, on at least 1,000 images, and the verdicts are read
at 3 seeds. Reporting each stage says which part of the cascade does the work: on a masked model
the black-box Square takes what the gradient attacks missed.

Cost (AVX2 EPYC, one thread per process, CPU time): 12-13 minutes per 100 images of a PGD-trained
model, nearly all of it APGD-T, FAB-T and Square on the ~85-90% of images that survive APGD-CE:
about 2 CPU hours per PGD-trained model at 1,000 images, 12 for the 6 of the quick profile; an
undefended model costs minutes (APGD-CE takes every image). The work is saved after every chunk
of `--chunk` images (atomically), so the check stops and resumes at any point:

    # one process per row (1 thread each); rerun the same commands to resume
    OMP_NUM_THREADS=1 python studies/autoattack_check.py --runs-dir runs/quick --rows resnet \
        --out runs/quick/aa-resnet.json &
    OMP_NUM_THREADS=1 python studies/autoattack_check.py --runs-dir runs/quick --rows dfl_pcl \
        --out runs/quick/aa-dfl_pcl.json
    wait; python studies/autoattack_check.py --merge reports/quick/autoattack-check/check.json \
        runs/quick/aa-*.json --out reports/quick/autoattack-check/check.json

A merge keeps every model of the reports it is given (a model in two, the one further along);
writing over a report whose models or chunks no part holds is refused, so the committed report
goes into --merge with the new parts. On a fresh clone (no runs/, no per-row files) add
`--resume-from reports/quick/autoattack-check/check.json` to each process: it starts from the
committed report's finished chunks of its models. `--seeds 1` or `--setting pgd` give one
process a share of the models. A model missing from --runs-dir is loaded from the report's
committed weights (`--record`, default reports/<profile>: record/weights/<run>.pt, every seed
and setting of the headline rows), so a fresh clone resumes without training; otherwise
`python -m dfl_lib study --profile quick` trains the runs (bit-identical on one machine kind).
Each model's weights digest is kept beside its chunks, and a resumed model must have the same
digest and classify the images of its finished chunks as they were classified (clean): chunks
of two different models never mix.

The merged report's folder gets its page (README.md) and metrics.json with the verdict on the
paper's "new benchmark for the MNIST dataset with adversarial training" (`benchmark_verdict`),
which the study report (`python -m dfl_lib report`) reads as the quick part's.
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

from dfl_lib.errors import UsageError  # noqa: E402
from dfl_lib.evaluation.robust import eval_subset, robust_accuracy  # noqa: E402
from dfl_lib.paper.claims import claim  # noqa: E402
from dfl_lib.paper.intervals import INTERVAL_METHOD, effect_interval, outcome  # noqa: E402
from dfl_lib.paper.numbers import paper_value  # noqa: E402
from dfl_lib.paper.regime import REGIMES, regime_reason  # noqa: E402
from dfl_lib.paper.verdicts import NOT_TESTABLE, equivalence, verdict_lines  # noqa: E402
from dfl_lib.runs import io as runio  # noqa: E402
from dfl_lib.study.plan import cell_config  # noqa: E402

import headline  # noqa: E402
from headline import DATASET, PGD, ROWS, unhex  # noqa: E402

__all__ = ["STAGES", "EPS", "BEST_PUBLISHED", "attack_chunk", "assemble", "run_check",
           "weights_digest", "effect_text", "regime_text", "summarise",
           "benchmark_verdict", "merge", "markdown", "write_page", "main"]

# AutoAttack's standard cascade, in its order; each attack's budgets are its registry defaults
STAGES = ("apgd_ce", "apgd_t", "fab", "square")
EPS = 0.3  # MNIST's L-inf threat model (Madry et al. 2018), the paper's and the study's
_SETTINGS = ("profile", "dataset", "n", "chunk", "eps", "seed", "undefended", "attacks")
# the best MNIST model at L-inf eps 0.3 under AutoAttack on the AutoAttack leaderboard (Croce &
# Hein's fra31/auto-attack README, 2023): Gowal et al. 2020, 96.34% (99.26% clean); beside it
# TRADES 92.81% and Madry et al. 88.50% (../shared/FIELD.md, "Reference numbers")
BEST_PUBLISHED = ("Gowal et al. 2020", 96.34)
REFERENCES = "TRADES 92.81%, Madry et al. 88.50%"
BENCHMARK_CLAIM = "mnist_adversarial_benchmark"
MIN_SEEDS = 3  # the study's seeds for a verdict (`Profile.min_seeds` at quick)


def attack_chunk(model, x: torch.Tensor, y: torch.Tensor, *, eps: float = EPS, seed: int = 0,
                 stages: Sequence[str] = STAGES, overrides: dict | None = None) -> dict:
    """AutoAttack's cascade on one chunk: x (N, C, H, W) in [0, 1], y (N,), `model` in eval mode,
    L-inf eps in pixel units. Each stage attacks only the images still correctly classified.

    Returns {"masks": {"clean"|stage: hex of the bool mask (N,) robust after that stage},
    "max_linf": {stage: largest perturbation}, "settings": {stage: the attack's settings},
    "seconds": {stage: wall s}, "cpu_seconds": process CPU s of the chunk}. `overrides` give a
    stage's attack other settings (tests use small budgets); the report records them."""
    cpu = time.process_time()
    overrides = overrides or {}
    clean = robust_accuracy(model, x, y, attack="clean", batch_size=len(y))
    alive = clean["correct"].clone()  # (N,) robust so far
    out = {"masks": {"clean": headline.hex_mask(alive)}, "max_linf": {}, "settings": {},
           "seconds": {"clean": clean["seconds"]}}
    for stage in stages:
        left = torch.nonzero(alive).flatten()
        if len(left):
            r = robust_accuracy(model, x[left], y[left], attack=stage, eps=eps, seed=seed,
                                batch_size=len(y), **overrides.get(stage, {}))
            alive[left] = r["correct"]
            out["max_linf"][stage], out["settings"][stage] = r["max_linf"], r["settings"]
            out["seconds"][stage] = r["seconds"]
        else:  # nothing left to attack: the stage costs nothing and changes nothing
            out["max_linf"][stage], out["settings"][stage], out["seconds"][stage] = 0.0, None, 0.0
        out["masks"][stage] = headline.hex_mask(alive)
    out["cpu_seconds"] = time.process_time() - cpu
    return out


def assemble(chunks: list[dict], *, sizes: Sequence[int], eps: float = EPS) -> dict:
    """One model's rows from its chunks (in order, of `sizes` images): per stage ("clean" first)
    the accuracy after it (`headline.row`) and the concatenated mask (hex); "autoattack" is the
    last stage's row with its threat model; wall and CPU seconds summed."""
    stages = list(chunks[0]["masks"])
    masks = {s: np.concatenate([unhex(c["masks"][s], n=k) for c, k in zip(chunks, sizes)])
             for s in stages}
    rows = {s: headline.row(torch.from_numpy(masks[s]),
                            max_linf=max((c["max_linf"].get(s, 0.0) for c in chunks), default=0.0))
            for s in stages}
    rows["autoattack"] = headline.row(torch.from_numpy(masks[stages[-1]]),
                                      threat_model={"norm": "Linf", "eps": eps})
    return {"rows": rows, "masks": {s: headline.hex_mask(m) for s, m in masks.items()},
            "seconds": sum(sum(c["seconds"].values()) for c in chunks),
            "cpu_seconds": sum(c["cpu_seconds"] for c in chunks)}


def _chunks(n: int, chunk: int) -> list[slice]:
    return [slice(i, min(i + chunk, n)) for i in range(0, n, chunk)]


def run_check(profile: str, *, runs_root, out: Path, data_root=None, n: int = 1000,
              chunk: int = 100, eps: float = EPS, seed: int = 0, rows: Sequence[str] = ROWS,
              undefended: str = "every seed", overrides: dict | None = None,
              resume_from: Path | None = None, record=None, seeds: Sequence[int] | None = None,
              settings_only: Sequence[str] | None = None, progress=print) -> dict:
    """Run the cascade on every model of `headline.models(profile, rows=rows,
    undefended=undefended)`, chunk by chunk, skipping chunks already in `out` and writing `out`
    (atomically) after each; only the models of `seeds` and `settings_only` where given. Where
    `out` does not exist yet, `resume_from` (a merged report, e.g. the committed one) gives the
    chunks already done for these models. Each model comes from its
    finished run in `runs_root`, else from `record` (a report folder: its record/weights/), see
    `headline.model_source`. UsageError when a model is in neither (never trained here), the report
    resumed was made with other settings, or a resumed model is not the one its finished
    chunks were attacked with (`_same_model`)."""
    if chunk < 1 or n < 1:
        raise UsageError(f"n and chunk must be positive, got n={n}, chunk={chunk}")
    todo = headline.models(profile, rows=rows, undefended=undefended)
    if seeds is not None:  # e.g. one process per seed, or the seeds whose models exist so far
        unknown = sorted(set(seeds) - {m[2] for m in todo})
        if unknown:
            raise UsageError(f"seeds {unknown} are not among the profile's "
                             f"{sorted({m[2] for m in todo})}")
        todo = [m for m in todo if m[2] in seeds]
    if settings_only is not None:  # e.g. the PGD-trained models while the others still train
        todo = [m for m in todo if m[1] in settings_only]
    # the undefended models first: minutes each (APGD-CE takes every image), so they finish
    # before a PGD-trained model's hours
    todo = sorted(todo, key=lambda m: m[1] != headline.UNDEFENDED)
    configs = {m: cell_config(profile, dataset=DATASET, row=m[0], setting=m[1], seed=m[2],
                              device="cpu") for m in todo}
    settings = {"profile": profile, "dataset": DATASET, "n": n, "chunk": chunk, "eps": eps,
                "seed": seed, "undefended": undefended,
                "attacks": "AutoAttack standard, L-inf: " + " -> ".join(STAGES) +
                           (f" (overrides {overrides})" if overrides else "")}
    if Path(out).is_file():
        report, source = runio.read_json(out), out
        if resume_from is not None:
            progress(f"resuming from {out}; --resume-from {resume_from} is read only for a new "
                     "--out")
    elif resume_from is not None:  # e.g. the committed merged report: this process's rows of it
        report, source = runio.read_json(resume_from), resume_from
        report["models"] = {k: m for k, m in report["models"].items()
                            if (m["row"], m["setting"], m["seed"]) in todo}
        report.pop("summary", None)
    else:
        report, source = {"check": "autoattack", **settings, "models": {}}, out
    differ = [k for k in _SETTINGS if report.get(k) != settings[k]]
    if differ:
        raise UsageError(f"{source} was made with other settings ({', '.join(differ)}); "
                         "write to another file")
    parts = _chunks(n, chunk)
    sources = {}  # refuse before any work when a model is missing
    for m, cfg in configs.items():
        entry = report["models"].get(f"{m[0]} | {m[1]} | s{m[2]}", {})
        if len(entry.get("chunks", [])) < len(parts):
            sources[m] = headline.model_source(cfg, runs_root=runs_root, record=record,
                                      data_root=data_root, profile=profile)
    for (row, setting, s), cfg in configs.items():
        key = f"{row} | {setting} | s{s}"
        entry = report["models"].setdefault(key, {"row": row, "setting": setting, "seed": s,
                                                  "chunks": []})
        if len(entry["chunks"]) == len(parts):
            continue
        model, data, entry["run"] = headline.load(cfg, source=sources[(row, setting, s)],
                                                  runs_root=runs_root, data_root=data_root)
        x, y = eval_subset(data, n=n, seed=s)
        _same_model(entry, model=model, x=x, y=y, parts=parts, key=key)
        for i in range(len(entry["chunks"]), len(parts)):
            part = parts[i]
            entry["chunks"].append(attack_chunk(model, x[part], y[part], eps=eps, seed=seed,
                                                overrides=overrides))
            if len(entry["chunks"]) == len(parts):
                entry.update(assemble(entry["chunks"], sizes=[p.stop - p.start for p in parts],
                                      eps=eps))
            report["provenance"] = runio.provenance(  # wall: every chunk of every model so far
                config=settings, seed=seed, device="cpu",
                wall_seconds=sum(sum(c["seconds"].values()) for m in report["models"].values()
                                 for c in m["chunks"]))
            runio.write_json(out, report)
            done = entry["chunks"][-1]
            progress(f"{key}: chunk {i + 1}/{len(parts)}, robust "
                     f"{unhex(done['masks'][STAGES[-1]], n=part.stop - part.start).sum()}/"
                     f"{part.stop - part.start} ({done['cpu_seconds']:.0f} CPU s)")
    return report


def weights_digest(model) -> str:
    """sha256 (hex) over a model's parameters and buffers: names, dtypes, shapes and values in
    the standard memory layout (the same weights give the same digest whatever their memory
    format or file)."""
    import hashlib

    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def _same_model(entry: dict, *, model, x, y, parts, key: str) -> None:
    """Refuse (UsageError) to add chunks to `entry` from a model other than the one its finished
    chunks were attacked with: a different weights digest, or (for chunks saved before digests
    were kept) a different clean classification of their images. Records the digest."""
    digest = weights_digest(model)
    if entry.get("weights_sha256", digest) != digest:
        raise UsageError(f"{key}: the model found now (weights sha256 {digest[:12]}) is not the "
                         f"one its {len(entry['chunks'])} finished chunks were attacked with "
                         f"({entry['weights_sha256'][:12]}); write to another file")
    for i, done in enumerate(entry["chunks"]):
        part = parts[i]
        clean = robust_accuracy(model, x[part], y[part], attack="clean",
                                batch_size=part.stop - part.start)["correct"]
        if headline.hex_mask(clean) != done["masks"]["clean"]:
            raise UsageError(f"{key}: the model found now classifies the images of finished "
                             f"chunk {i + 1} differently from the model that chunk was attacked "
                             "with; write to another file")
    entry["weights_sha256"] = digest


def summarise(report: dict) -> dict:
    """Per (row, setting): the finished seeds and the mean accuracy (%) after each stage; and DFL
    + PCL minus the plain ResNet under AutoAttack with PGD training, paired by seed
    (`headline.paired_effect`) over the seeds both rows finished (None if none)."""
    done = [m for m in report["models"].values() if "rows" in m]
    by_cell: dict = {}
    for m in done:
        by_cell.setdefault(f"{m['row']} | {m['setting']}", []).append(m)
    table = {k: {"seeds": sorted(m["seed"] for m in ms),
                 **{r: float(np.mean([m["rows"][r]["accuracy"] for m in ms]))
                    for r in ms[0]["rows"]}}
             for k, ms in sorted(by_cell.items())}
    masks = {r: {m["seed"]: unhex(m["masks"][STAGES[-1]], n=m["rows"]["autoattack"]["n"])
                 for m in done if m["row"] == r and m["setting"] == PGD} for r in ROWS}
    both = set(masks["resnet"]) & set(masks["dfl_pcl"])
    masks = {r: {s: v for s, v in by_seed.items() if s in both} for r, by_seed in masks.items()}
    effect = headline.paired_effect(
        masks, what="DFL + PCL minus the plain ResNet, both PGD-trained: accuracy (%) under "
                    "AutoAttack (standard, L-inf eps 0.3), paired by seed")
    chunks = -(-report["n"] // report["chunk"])
    pending = {k: f"{len(m['chunks'])} of {chunks} chunks"
               for k, m in report["models"].items() if "rows" not in m}
    if "profile" in report:  # the models not started yet, of the rows the report holds
        rows = sorted({m["row"] for m in report["models"].values()}, key=ROWS.index)
        for r, setting, s in headline.models(report["profile"], rows=rows,
                                             undefended=report["undefended"]):
            pending.setdefault(f"{r} | {setting} | s{s}", f"0 of {chunks} chunks")
        pending = {k: v for k, v in pending.items() if "rows" not in report["models"].get(k, {})}
    return {"table": table, "effect": effect, "pending": pending}


def benchmark_verdict(report: dict, *, min_seeds: int = MIN_SEEDS) -> dict:
    """The verdict on the paper's "new benchmark for the MNIST dataset with adversarial training"
    (Section 4.3, `paper_claims.csv`: mnist_adversarial_benchmark), from the finished models of
    `report`: our PGD-trained DFL + PCL under AutoAttack (standard) minus the best published
    AutoAttack accuracy at eps 0.3 (`BEST_PUBLISHED`), in points, with the claims' t interval
    over seeds (image noise inside each seed); claimed > 0 (above it). "not testable here"
    with fewer than `min_seeds` finished seeds (the numbers still given) or when the plain
    PGD-trained ResNet is below the field's regime (`paper.regime`). A dict as
    `paper.verdicts.claim_verdict` returns (the study report reads it)."""
    c = claim(BENCHMARK_CLAIM)
    name, best = BEST_PUBLISHED
    printed = paper_value(table="Table 1", setting=PGD, row="dfl_pcl", column="PGD-10")
    context = (f"the paper prints {printed:g}% under PGD-10 (Table 1), above every model on the "
               f"AutoAttack leaderboard (the best: {name}, {best}%)")
    v = {"claim": c.label, "claim_id": c.claim_id, "text": c.text, "where": c.where,
         "dataset": c.dataset, "claimed": 0.0, "paper_effect": None, "estimate": None,
         "low": None, "high": None, "seeds": 0, "n": 0, "rows": {}}
    done = [m for m in report["models"].values() if "rows" in m and m["setting"] == PGD]
    ours = {m["seed"]: unhex(m["masks"][STAGES[-1]], n=m["rows"]["autoattack"]["n"])
            for m in done if m["row"] == "dfl_pcl"}
    plain = [m["rows"]["autoattack"] for m in done if m["row"] == "resnet"]
    if not ours:
        return {**v, "verdict": NOT_TESTABLE, "reason": "not run yet: no PGD-trained DFL + PCL "
                f"seed has finished AutoAttack (studies/autoattack_check.py); {context}"}
    est, low, high = effect_interval({"dfl_pcl": {s: {"aa": m} for s, m in ours.items()}},
                                     effect=lambda acc: acc["dfl_pcl"]["aa"] - best)
    n = len(next(iter(ours.values())))
    v.update(estimate=est, low=low, high=high, seeds=len(ours), n=n, interval=INTERVAL_METHOD,
             rows={"dfl_pcl": {"AutoAttack": est + best},
                   **({"resnet": {"AutoAttack": float(np.mean([r["accuracy"] for r in plain]))}}
                      if plain else {})})
    v["numbers"] = (f"our PGD-trained DFL + PCL at the {report.get('profile', '?')} profile's "
                    f"budget under AutoAttack (standard, L-inf eps {report['eps']}) minus the "
                    f"best published model's ({name}: {best}%; {REFERENCES}): {est:+.1f} "
                    f"points, 95% interval [{low:+.1f}, {high:+.1f}] ({_count(len(ours), 'seed')}"
                    f" x {n} images); claimed > 0" + equivalence(high=high, claimed=0.0))
    regime = regime_reason(dataset=DATASET, baseline_autoattack=(
        float(np.mean([r["accuracy"] for r in plain])) if plain else None),
        n=plain[0]["n"] if plain else 0)
    noise = ("the interval holds image noise only" if len(ours) == 1 else
             "too few seeds for the interval to state an effect")
    few = (f"AutoAttack (standard) has finished on {len(ours)} of {min_seeds} seeds of the "
           f"PGD-trained DFL + PCL (seed(s) {', '.join(map(str, sorted(ours)))}; {noise})"
           if len(ours) < min_seeds else "")
    reasons = "; ".join(r for r in (regime, few) if r)
    reasons = f"{reasons}; {context}" if reasons else ""
    verdict = NOT_TESTABLE if reasons else outcome(low=low, high=high, claimed=0.0)
    return {**v, "verdict": verdict, "reason": reasons}


def effect_text(effect: dict | None, *, min_seeds: int = MIN_SEEDS) -> str:
    """The paired effect (`summarise`'s "effect") in words, saying when its seeds are too few
    for the interval to hold seed-to-seed spread."""
    if not effect:
        return "not yet: no seed is finished for both rows."
    few = len(effect["seeds"]) < min_seeds
    method = (f"t interval over the seeds {effect['seeds']}, image noise inside each seed" if
              len(effect["seeds"]) > 1 else f"a normal interval on seed {effect['seeds'][0]}'s "
              "image noise")
    return (f"{effect['effect']:+.1f} points, 95% interval [{effect['low']:+.1f}, "
            f"{effect['high']:+.1f}] ({method}: `paper.intervals.effect_interval`)" +
            (f"; {_count(len(effect['seeds']), 'seed')} of {min_seeds}: too few seeds to "
             "state an effect" if few else "") + ".")


def regime_text(report: dict) -> str:
    """Each finished seed of the plain PGD-trained ResNet against the field's regime floor
    (`paper.regime`: >= 85% under AutoAttack at eps 0.3), in words: the table verdicts' gate read
    at this check's size."""
    plain = sorted((m for m in report["models"].values() if "rows" in m
                    and m["row"] == "resnet" and m["setting"] == PGD), key=lambda m: m["seed"])
    head = ("**Regime** (the plain PGD-trained ResNet under AutoAttack against the field's floor, "
            f"{REGIMES[DATASET].robust_floor:g}%: {REGIMES[DATASET].source}): ")
    if not plain:
        return head + "no seed finished yet."
    seeds = []
    for m in plain:
        r = m["rows"]["autoattack"]
        below = regime_reason(dataset=DATASET, baseline_autoattack=r["accuracy"], n=r["n"])
        seeds.append(f"seed {m['seed']} {r['accuracy']:.1f}% [{r['ci_low']:.1f}, "
                     f"{r['ci_high']:.1f}]: " + ("below" if below else "in the regime"))
    return head + "; ".join(seeds) + "."


def _count(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"


PAGE_TITLE = "# AutoAttack (standard)"
_LABELS = {"clean": "clean", "apgd_ce": "+ APGD-CE", "apgd_t": "+ APGD-T", "fab": "+ FAB-T",
           "square": "+ Square = AutoAttack"}


def markdown(report: dict, *, summary: dict) -> str:
    """The report as a page: per model, the accuracy (%) after each stage of the cascade and
    its CPU minutes; the paired effect; the models still pending."""
    lines = [f"{PAGE_TITLE} on the {report['dataset'].upper()} headline models",
             "", f"L-inf eps {report['eps']}, {report['n']:,} test images per model (the study's "
             "class-balanced evaluation subset at each run's seed), AutoAttack's standard "
             "cascade: each attack on the images every earlier one left correctly classified "
             "(APGD-CE 100 steps; APGD-T and FAB-T 9 target classes x 100 steps; Square 5,000 "
             "queries; one restart each; torchattacks 3.3.0; `studies/autoattack_check.py`). "
             "Accuracy in % after each stage; CPU minutes of one thread.", "",
             "| row | training | seed | " + " | ".join(_LABELS.values()) + " | CPU min |",
             "|---|---|---|" + "---|" * (len(_LABELS) + 1)]
    for m in sorted(report["models"].values(), key=lambda m: (m["setting"], m["row"],
                                                              m["seed"])):
        if "rows" not in m:
            continue
        cells = [f"{m['rows'][s]['accuracy']:.1f}" for s in _LABELS]
        lines.append(f"| {m['row']} | {m['setting']} | {m['seed']} | " + " | ".join(cells)
                     + f" | {m['cpu_seconds'] / 60:.0f} |")
    lines += ["", "**DFL + PCL minus the plain ResNet under AutoAttack, PGD-trained**: " +
              effect_text(summary["effect"]), "", regime_text(report)]
    if summary["pending"]:
        lines += ["", "Pending (the check resumes where it stopped; where chunks are done, the "
                  "images still robust after every stage so far): " + "; ".join(
                      f"{k}: {v}"
                      f"{_interim(report['models'].get(k), n=report['n'], chunk=report['chunk'])}"
                      for k, v in summary["pending"].items()) + "."]
    lines += ["", "The paper's claim this check judges (the study report reads it from "
              "`metrics.json` here):", "", verdict_lines([benchmark_verdict(report)])]
    return "\n".join(lines) + "\n"


def _interim(model: dict | None, *, n: int, chunk: int) -> str:
    """' (robust k of m so far)' for a model with finished chunks (of `chunk` images, the last of
    what is left of `n`), else ''."""
    done = (model or {}).get("chunks") or []
    sizes = [p.stop - p.start for p in _chunks(n, chunk)][:len(done)]
    if not done:
        return ""
    kept = sum(int(unhex(c["masks"][STAGES[-1]], n=k).sum()) for c, k in zip(done, sizes))
    return f" (robust {kept} of {sum(sizes)} so far)"


def write_page(report: dict, *, folder: Path) -> None:
    """`folder`/README.md (`markdown`) and `folder`/metrics.json (the benchmark verdict, with
    provenance: this commit and the report's), beside the report in `folder`."""
    page = folder / "README.md"
    if page.exists() and not page.read_text().startswith(PAGE_TITLE):
        raise UsageError(f"{page} is not this check's page; give --out a folder of its own, e.g. "
                         "reports/quick/autoattack-check/check.json")
    git = runio.git_state()
    verdict = benchmark_verdict(report)
    runio.write_json(folder / "metrics.json", {
        "notebook": folder.name, "profile": report["profile"], "verdicts": [verdict],
        "provenance": {"git_commit": git["commit"], "git_dirty": git["dirty"],
                       "script": "studies/autoattack_check.py",
                       "source_commit": report.get("provenance", {}).get("git_commit")}})
    (folder / "README.md").write_text(markdown(report, summary=report["summary"]))


def merge(paths: Sequence[str], *, out=None) -> dict:
    """One report from reports of the same check (one per row, seed or setting), with its
    summary (`headline.merge`). UsageError when their settings differ, two disagree on a model,
    or writing `out` would lose work it holds."""
    return headline.merge(paths, keys=_SETTINGS, summarise=summarise, out=out)


def _seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--seeds takes seeds separated by commas, e.g. 0,1; got {text!r}") \
            from None


def main(argv: Sequence[str] | None = None) -> int:
    p = headline.parser(__doc__, record=True)
    p.add_argument("--chunk", type=int, default=100, help="images per saved step")
    p.add_argument("--undefended", default="every seed", choices=("every seed", "first seed"))
    p.add_argument("--resume-from", metavar="JSON", default=None,
                   help="where --out does not exist yet: a merged report (e.g. the committed "
                        "reports/quick/autoattack-check/check.json) whose finished chunks of "
                        "these rows are kept")
    p.add_argument("--seeds", default=None,
                   help="only these seeds' models, e.g. 0 or 1,2 (default: every seed)")
    p.add_argument("--setting", default=None, choices=("pgd", "none"),
                   help="only the PGD-trained models (pgd) or only the undefended ones (none)")
    args = p.parse_args(argv)
    try:
        if args.merge:
            report = merge(args.merge, out=args.out)
            runio.write_json(args.out, report)
            write_page(report, folder=Path(args.out).parent)
            print(f"wrote {args.out}, README.md and metrics.json beside it")
            return 0
        report = run_check(args.profile, runs_root=headline.runs_dir(args), out=Path(args.out),
                           data_root=args.data_dir, n=args.n, chunk=args.chunk, seed=args.seed,
                           rows=args.rows.split(","), undefended=args.undefended,
                           resume_from=args.resume_from, seeds=_seeds(args.seeds),
                           settings_only=None if args.setting is None else
                           [{"pgd": PGD, "none": headline.UNDEFENDED}[args.setting]],
                           record=args.record or ROOT / "reports" / args.profile)
        report["summary"] = summarise(report)
        runio.write_json(args.out, report)
        return 0
    except headline.USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
