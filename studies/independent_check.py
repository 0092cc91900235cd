"""An independent re-check of the headline robust numbers: other attack implementations, on test
images the study's evaluation never uses.

What it checks. For the MNIST headline cells with PGD training ("resnet" and "dfl_pcl", at the
model seeds asked for, `plan.cell_config`), the finished run is loaded, else the report's
committed weights (never trained: a missing model is an error), and attacked, at the run's
eps, by three attacks that are not the study's own code:
  - APGD on the DLR loss (Croce & Hein 2020), torchattacks, 100 steps, 1 restart: the untargeted
    DLR loss is scale-invariant, so it is not fooled by logits that saturate cross-entropy;
  - PGD (Madry et al. 2018), torchattacks, 40 steps of 2.5 eps / 40, 3 random restarts (three
    runs with different torch seeds; an example is robust only if it survives all three);
  - Square (Andriushchenko et al. 2020), torchattacks, 5,000 queries: score-based, no gradients,
    so gradient masking cannot hide an example from it.
The images are `unseen_indices`: a class-balanced set of test images disjoint from every
evaluation subset the study draws (`eval_subset_indices` at each of its seeds and n_eval sizes),
so the check cannot have been tuned on them. The attacks run on the model itself (not the
BatchNorm-folded copy the study attacks), through `attacks.LogitsOnly` inside `attacks.frozen`,
as `attacks/peers.py` prepares a model for torchattacks.

Why. A robustness number is a claim about every attack within the budget, and the field has
learnt (Carlini et al. 2019, "On Evaluating Adversarial Robustness"; Athalye et al. 2018) that
numbers holding only for the authors' own attacks, code or images are not results. If the
per-example worst case here falls clearly below the study's AutoAttack number, the study's
evaluation is too weak (or its images unrepresentative) and the headline does not stand.

    python studies/independent_check.py --profile quick --runs-dir runs/quick \
        --record reports/quick --model-seeds 0,1,2 --n 200 \
        --out reports/quick/independent-check.json
    # or one cell per process (1 thread each), then joined:
    OMP_NUM_THREADS=1 python studies/independent_check.py ... --rows resnet --model-seeds 1 \
        --out a.json &
    OMP_NUM_THREADS=1 python studies/independent_check.py ... --rows dfl_pcl --model-seeds 1 \
        --out b.json; wait
    python studies/independent_check.py --merge a.json b.json ... --out reports/quick/...json

Output (one JSON file, written atomically): {"check", "profile", "dataset", "setting", "n",
"index_seed", "excluded": {"seeds", "n_eval"}, "indices": [test-set indices], "budgets",
"cells": {"<row> s<model seed>": {"row", "model_seed", "run", "source", "eps", "n_indices",
"results", "masks", "study", "comparison"}}, "effect", "provenance"}. "results" is
`independent_check`'s dict without its masks: "clean", "attacks" {name: row}, "worst_case", each
row {"accuracy", "ci_low", "ci_high" (95% Wilson), "n", "n_correct", "seconds", ...}; "masks"
holds them per example (hex, `headline.hex_mask`), so the effect re-derives from the file.
"study": the study's own clean, PGD-10, AutoAttack and worst-case rows from the run's
metrics-<headline suite>.json and metrics-table.json where they exist (its run folder, else the
report's record; on the study's own subsets, so a comparison across image sets: expect
agreement within the intervals); "comparison": the independent worst case beside the study's
AutoAttack accuracy where it ran one, else beside its worst case. "effect": DFL + PCL minus the
plain ResNet (points, paired by model seed, t interval).
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "studies"))

from dfl_lib.attacks import LogitsOnly, frozen, logits_of  # noqa: E402
from dfl_lib.data.datasets import balanced_indices, to_float  # noqa: E402
from dfl_lib.errors import DataFileError, UsageError  # noqa: E402
from dfl_lib.evaluation.robust import eval_subset_indices, wilson_interval  # noqa: E402
from dfl_lib.profiles import get_profile  # noqa: E402
from dfl_lib.runs import io as runio  # noqa: E402
from dfl_lib.study.plan import cell_config  # noqa: E402
from dfl_lib.validation import (  # noqa: E402
    check_images,
    check_labels,
    check_nonnegative,
    check_num_classes,
    require_eval,
)

import headline  # noqa: E402

__all__ = [
    "APGD_STEPS",
    "PGD_RESTARTS",
    "PGD_STEPS",
    "SQUARE_QUERIES",
    "UNSEEN_SEED",
    "cell_key",
    "check_cells",
    "counts",
    "independent_check",
    "merge_reports",
    "paired_effect",
    "study_n_evals",
    "unseen_indices",
    "without_masks",
]

UNSEEN_SEED = 12345       # the generator seed of the unseen subset (none of the study's seeds)
APGD_STEPS = 100          # AutoAttack's standard APGD budget (Croce & Hein 2020)
PGD_STEPS = 40            # Madry et al. 2018's MNIST evaluation: 40 steps ...
PGD_RESTARTS = 3          # ... here with 3 random restarts
SQUARE_QUERIES = 5000     # Square's standard budget (the quick profile's AutoAttack uses 1,000)
HEADLINE_CELLS = ("resnet", "dfl_pcl")
SETTING = "adversarial training"
DATASET = "mnist"
# the untargeted DLR loss divides by z_(1) - z_(3), the sorted logits
_DLR_WHY = "the DLR loss reads the third-largest logit (Croce & Hein 2020, Eq. 5)"


# --------------------------------------------------------------------------- the unseen images

def study_n_evals(profile: str, *, dataset: str = DATASET) -> tuple[int, ...]:
    """The test-subset sizes the study evaluates `dataset` on at `profile`: every cell's n_eval
    and the headline evaluation's (`Profile.headline_n_eval`; 0 there means the cell's). A 0
    (the whole test set) is kept: then no test image is unseen."""
    cell_n = cell_config(profile, dataset=dataset, row="resnet", setting=SETTING).n_eval
    head_n = get_profile(profile).headline_n_eval or cell_n
    return tuple(sorted({cell_n, head_n}))


def unseen_indices(y_test: torch.Tensor, *, n: int, profile: str,
                   seeds: Sequence[int] = (0, 1, 2), dataset: str = DATASET,
                   seed: int = UNSEEN_SEED) -> torch.Tensor:
    """Sorted indices (n,) into the test labels y_test (N,), class-balanced where the data allows
    (`balanced_indices`), drawn with torch.Generator().manual_seed(seed) from the test images
    outside every evaluation subset of the study: `eval_subset_indices(y_test, n=N, seed=s)` for
    each s in `seeds` and each N in `study_n_evals(profile)`. The same arguments always give the
    same indices. UsageError when the study uses the whole test set or too few images are left."""
    y = torch.as_tensor(y_test).cpu().long()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"n must be a positive int, got {n!r}")
    used = torch.zeros(len(y), dtype=torch.bool)  # (N,)
    for size in study_n_evals(profile, dataset=dataset):
        if size == 0 or size >= len(y):
            raise UsageError(f"profile {profile!r} evaluates on the whole test set "
                             f"(n_eval {size}): no test image is unseen")
        for s in seeds:
            used[eval_subset_indices(y, n=size, seed=s)] = True
    free = torch.nonzero(~used).flatten()  # (M,) indices never evaluated on
    if n > len(free):
        raise UsageError(f"asked for {n} unseen test images; only {len(free)} of {len(y)} are "
                         "outside the study's evaluation subsets")
    pick = balanced_indices(y[free], n=n, num_classes=int(y.max()) + 1,
                            generator=torch.Generator().manual_seed(seed))
    return free[pick].sort().values


# --------------------------------------------------------------------------- the attacks

# an attack: (wrapped model, x (B, C, H, W), y (B,)) -> candidate adversarial batches; an example
# is robust to the attack only if every candidate leaves it correctly classified
Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], list[torch.Tensor]]


def _attacks(*, eps: float, seed: int, steps: int, pgd_steps: int, pgd_restarts: int,
             pgd_alpha: float, n_queries: int) -> dict[str, tuple[Attack, dict]]:
    """{row name: (attack, its settings)}, every one from the pinned torchattacks."""
    import torchattacks  # the peer library, imported when used (as attacks/peers.py does)

    def apgd_dlr(model, x, y):
        return [torchattacks.APGD(model, norm="Linf", eps=eps, steps=steps, loss="dlr",
                                  n_restarts=1, seed=seed)(x, y)]

    restart_seeds = [seed * pgd_restarts + r for r in range(pgd_restarts)]

    def pgd_restarts_(model, x, y):
        atk = torchattacks.PGD(model, eps=eps, alpha=pgd_alpha, steps=pgd_steps,
                               random_start=True)
        out = []
        for s in restart_seeds:  # PGD draws its random start from torch's global generator
            torch.manual_seed(s)
            out.append(atk(x, y))
        return out

    def square(model, x, y):
        return [torchattacks.Square(model, norm="Linf", eps=eps, n_queries=n_queries,
                                    n_restarts=1, seed=seed)(x, y)]

    version = torchattacks.__version__
    return {
        f"APGD-DLR-{steps}": (apgd_dlr, {"implementation": f"torchattacks {version} APGD",
                                         "loss": "dlr", "steps": steps, "n_restarts": 1,
                                         "seed": seed}),
        f"PGD-{pgd_steps} x{pgd_restarts} restarts": (
            pgd_restarts_, {"implementation": f"torchattacks {version} PGD", "loss": "ce",
                            "steps": pgd_steps, "alpha": pgd_alpha, "restarts": pgd_restarts,
                            "restart_seeds": restart_seeds}),
        f"Square-{n_queries}": (square, {"implementation": f"torchattacks {version} Square",
                                         "loss": "margin", "n_queries": n_queries,
                                         "n_restarts": 1, "seed": seed}),
    }


def _row(correct: torch.Tensor, **fields) -> dict:
    n, k = len(correct), int(correct.sum())
    lo, hi = wilson_interval(k, n)
    return {"accuracy": k / n if n else float("nan"), "ci_low": lo, "ci_high": hi, "n": n,
            "n_correct": k, **fields}


def independent_check(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                      seed: int = 0, steps: int = APGD_STEPS, pgd_steps: int = PGD_STEPS,
                      pgd_restarts: int = PGD_RESTARTS, pgd_alpha: float | None = None,
                      n_queries: int = SQUARE_QUERIES, batch_size: int = 250) -> dict:
    """Clean accuracy and robust accuracy of `model` (eval mode) on x (N, C, H, W) in [0, 1],
    y (N,) at L-inf radius eps (pixel units) under torchattacks' APGD-DLR, PGD with restarts
    and Square, and their per-example worst case.

    steps: APGD's iterations; pgd_steps, pgd_restarts, pgd_alpha (default 2.5 eps / pgd_steps,
    Madry et al.'s rule): PGD's; n_queries: Square's. seed seeds APGD's and Square's starts; PGD's
    restarts use torch seeds seed * pgd_restarts + r. The defaults are the field's budgets; tests
    pass smaller ones.

    Returns {"eps", "seed", "n", "n_classes", "clean": row, "attacks": {name: row},
    "worst_case": row, "masks": {"clean" | name | "worst_case": bool (N,) on the CPU}}; a row is
    {"accuracy", "ci_low", "ci_high", "n", "n_correct", "seconds", ...}; an attack's row adds
    "settings", "max_linf" and "nan_count". As AutoAttack counts: an example is robust to an
    attack only if it is classified correctly clean and after it; the worst case only if it
    survives every attack. The model is attacked through `LogitsOnly` inside `frozen`: its modes,
    parameters and the global RNG are left as they were. UsageError before any attack runs when
    any submodule is in train mode (`validation.require_eval`) or a label is not an output.
    """
    require_eval(model, what="the independent check")
    check_images(x, name="x")
    check_labels(y, n=x.shape[0], name="y")
    check_nonnegative(eps, name="eps")
    alpha = 2.5 * eps / pgd_steps if pgd_alpha is None else pgd_alpha
    attacks = _attacks(eps=eps, seed=seed, steps=steps, pgd_steps=pgd_steps,
                       pgd_restarts=pgd_restarts, pgd_alpha=alpha, n_queries=n_queries)
    y = y.to(x.device).long()
    batches = torch.arange(len(y)).split(batch_size)
    with frozen(model):
        with torch.no_grad():
            n_classes = int(logits_of(model, x[:1]).shape[1])
        if len(y) and int(y.max()) >= n_classes:
            raise UsageError(f"label {int(y.max())} is not an output of this model "
                             f"({n_classes} classes)")
        check_num_classes(n_classes, attack="APGD-DLR", minimum=3, why=_DLR_WHY)
        start = time.perf_counter()
        with torch.no_grad():
            clean = torch.cat([(logits_of(model, x[i]).argmax(1) == y[i]).cpu() for i in batches])
        masks = {"clean": clean}
        rows = {}
        clean_row = _row(clean, seconds=time.perf_counter() - start)
        wrapped = LogitsOnly(model)  # torchattacks needs plain logits
        for name, (attack, settings) in attacks.items():
            masks[name], rows[name] = _run(attack, model, wrapped, x, y, batches, eps=eps,
                                           name=name, settings=settings)
    worst = torch.stack(list(masks.values())).all(0)  # (N,): clean and every attack
    masks["worst_case"] = worst
    worst_row = _row(worst, of=list(rows), seconds=sum(r["seconds"] for r in rows.values()))
    return {"eps": float(eps), "seed": seed, "n": len(y), "n_classes": n_classes,
            "clean": clean_row, "attacks": rows, "worst_case": worst_row, "masks": masks}


def _run(attack: Attack, model, wrapped, x, y, batches, *, eps, name, settings):
    """(robust mask (N,), row) of one attack over the batches; NaN images count as the clean
    input (the attack failed), and a perturbation beyond eps is warned about, as
    `robust_accuracy` does."""
    start = time.perf_counter()
    correct, max_linf, nan_count = [], 0.0, 0
    for i in batches:
        xb, yb = x[i], y[i]
        with torch.no_grad():
            ok = logits_of(model, xb).argmax(1) == yb  # (B,)
        for x_adv in attack(wrapped, xb, yb):
            x_adv = x_adv.detach().to(xb.device, xb.dtype)
            bad = torch.isnan(x_adv).flatten(1).any(1)  # (B,)
            nan_count += int(bad.sum())
            x_adv = torch.where(bad[:, None, None, None], xb, x_adv)
            max_linf = max(max_linf, float((x_adv - xb).abs().amax()))
            with torch.no_grad():
                ok &= logits_of(model, x_adv).argmax(1) == yb
        correct.append(ok.cpu())
    if max_linf > eps + 1e-6:
        warnings.warn(f"{name}: largest L-inf perturbation {max_linf:.6g} exceeds eps {eps}",
                      RuntimeWarning, stacklevel=3)
    mask = torch.cat(correct)
    return mask, _row(mask, settings=settings, max_linf=max_linf, nan_count=nan_count,
                      seconds=time.perf_counter() - start)


def without_masks(result: dict) -> dict:
    """`independent_check`'s result without its tensors, ready for JSON."""
    return {k: v for k, v in result.items() if k != "masks"}


# --------------------------------------------------------------------------- the headline cells

def _study_numbers(rdirs: Sequence[Path], cfg, profile: str) -> dict:
    """{suite: {"file", "n_eval", "eval_key", "computations", "rows": {name: numbers}}} of the
    run's own metrics files that exist, read from the first of `rdirs` (its run folder, then the
    report's record of it) that holds each: clean, PGD-10 (the paper's PGD column), AutoAttack
    and the worst-case rows."""
    from dfl_lib.experiments.run import paper_column_rows
    from dfl_lib.study.plan import headline_suite

    pgd_name = paper_column_rows(cfg)["PGD"]
    out = {}
    for suite in dict.fromkeys((headline_suite(profile), "table")):
        path = next((d / f"metrics-{suite}.json" for d in rdirs
                     if (d / f"metrics-{suite}.json").is_file()), None)
        if path is None:
            continue
        saved = runio.read_json(path)
        rows = {r["name"]: {k: r.get(k) for k in ("attack", "accuracy", "ci_low", "ci_high", "n",
                                                   "n_correct")}
                for r in saved.get("table", [])
                if r.get("attack") in ("clean", "autoattack", "worst case")
                or r.get("name") == pgd_name}
        out[suite] = {"file": path.name, "n_eval": saved.get("n_eval"),
                      "eval_key": saved.get("eval_key"),
                      "computations": saved.get("provenance", {}).get("computations"),
                      "rows": rows}
    return out


def _comparison(result: dict, study: dict) -> dict | None:
    """The independent worst case beside the study's strongest number for the run: its
    AutoAttack row where it ran one (the headline suite first), else its own worst case."""
    for kind in ("autoattack", "worst case"):
        for suite in study.values():
            row = next((r for r in suite["rows"].values() if r["attack"] == kind), None)
            if row is None:
                continue
            ours = result["worst_case"]
            return {"study_file": suite["file"], "study_row": kind,
                    "study_accuracy": row["accuracy"], "study_ci": [row["ci_low"], row["ci_high"]],
                    "independent_worst_case": ours["accuracy"],
                    "independent_ci": [ours["ci_low"], ours["ci_high"]],
                    "difference": ours["accuracy"] - row["accuracy"],
                    "intervals_overlap": ours["ci_high"] >= row["ci_low"]
                    and row["ci_high"] >= ours["ci_low"]}
    return None


def cell_key(row: str, model_seed: int) -> str:
    """A cell's key in the report: the headline row and the seed of its model, e.g. "resnet s1"."""
    return f"{row} s{model_seed}"


def check_cells(profile: str, *, runs_root, data_root=None, n: int = 200, seed: int = 0,
                device: str = "auto", budgets: dict | None = None,
                rows: Sequence[str] = HEADLINE_CELLS, model_seeds: Sequence[int] = (0,),
                record=None) -> dict:
    """The report of the independent check for the profile's MNIST headline cells with PGD
    training, one cell per row in `rows` and model seed in `model_seeds` (each cell's check is
    independent of the others: processes may check some each, `merge_reports` joins them).
    Each model is the finished run in `runs_root`, else the committed weights in `record` (a
    report folder, e.g. reports/quick: record/weights/<run>.pt), as `headline.model_source`
    finds it; a missing one is a UsageError before any attack, never trained here. seed: the
    attacks' seed. budgets: `independent_check`'s keyword arguments (steps, pgd_steps,
    pgd_restarts, n_queries, batch_size).

    Each cell: {"row", "model_seed", "run", "source" ("run" | "weights"), "eps", "n_indices",
    "results" (`independent_check` without masks), "masks" {name: hex of the bool mask (N,),
    `headline.hex_mask`}, "study", "comparison"}; "effect": DFL + PCL minus the plain ResNet's
    worst case (points) paired by model seed with the claims' t interval
    (`headline.paired_effect`), when both rows were checked at the same seeds (else None)."""
    unknown = [r for r in rows if r not in HEADLINE_CELLS]
    if unknown or not rows:
        raise UsageError(f"rows must be among {', '.join(HEADLINE_CELLS)}, got {list(rows)}")
    if not model_seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0
                              for s in model_seeds):
        raise UsageError(f"model seeds must be non-negative ints, got {list(model_seeds)}")
    from dfl_lib.device import resolve_device

    budgets = dict(budgets or {})
    start = time.perf_counter()
    dev = resolve_device(device)
    seeds = tuple(sorted(set(get_profile(profile).seeds) | {0, 1, 2}))
    configs = {(row, s): cell_config(profile, dataset=DATASET, row=row, setting=SETTING, seed=s,
                                     device=device)
               for row in HEADLINE_CELLS if row in rows for s in sorted(set(model_seeds))}
    report = {"check": "independent re-check of the headline robust numbers",
              "profile": profile, "dataset": DATASET, "setting": SETTING, "n": n,
              "index_seed": UNSEEN_SEED,
              "excluded": {"seeds": list(seeds), "n_eval": list(study_n_evals(profile))},
              "budgets": budgets, "cells": {}}
    # refuse before any work when a model is missing
    sources = {key: headline.model_source(cfg, runs_root=runs_root, record=record,
                                          data_root=data_root, profile=profile)
               for key, cfg in configs.items()}
    for (row, s), cfg in configs.items():
        model, data, name = headline.load(cfg, source=sources[(row, s)], runs_root=runs_root,
                                          data_root=data_root)
        idx = unseen_indices(data.y_test, n=n, profile=profile, seeds=seeds)
        report["indices"] = idx.tolist()  # the same images for every cell
        x = to_float(data.x_test[idx]).to(dev)
        y = torch.as_tensor(data.y_test)[idx].long().to(dev)
        result = independent_check(model.to(dev).eval(), x, y, eps=cfg.eps, seed=seed,
                                   **budgets)
        rdirs = [Path(runs_root) / name] + ([Path(record) / "record" / "runs" / name]
                                            if record else [])
        study = _study_numbers(rdirs, cfg, profile)
        report["cells"][cell_key(row, s)] = {
            "row": row, "model_seed": s, "run": name, "source": sources[(row, s)][0],
            "eps": cfg.eps, "n_indices": len(idx), "results": without_masks(result),
            "masks": {k: headline.hex_mask(m) for k, m in result["masks"].items()},
            "study": study, "comparison": _comparison(result, study)}
    report["effect"] = paired_effect(report["cells"])
    report["provenance"] = runio.provenance(
        config={"profile": profile, "n": n, "budgets": budgets,
                "cells": {cell_key(*key): cfg.to_dict() for key, cfg in configs.items()}},
        seed=seed, device=str(dev), wall_seconds=time.perf_counter() - start)
    return report


def paired_effect(cells: dict) -> dict | None:
    """DFL + PCL minus the plain ResNet under the independent worst case (points), paired by
    model seed, with the claims' t interval, from a report's cells (`headline.paired_effect`);
    None unless both rows were checked at the same seeds."""
    masks: dict[str, dict[int, np.ndarray]] = {}
    for cell in cells.values():
        if "masks" not in cell:  # a report written before masks were kept
            return None
        masks.setdefault(cell["row"], {})[cell["model_seed"]] = headline.unhex(
            cell["masks"]["worst_case"], n=cell["n_indices"])
    return headline.paired_effect(
        masks, what="independent worst case (APGD-DLR, PGD with restarts, Square) on unseen "
        "images")


def counts(report: dict, *, from_masks: bool) -> dict:
    """What `verify_pages` re-derives: {"cells": {key: {"clean" | attack | "worst_case":
    n_correct}}, "effect"} read from each cell's masks (`from_masks=True`) or from its rows as
    written; the effect recomputed from the masks or as written. None for a report written
    before masks were kept."""
    if any("masks" not in c for c in report["cells"].values()):
        return None
    cells = {}
    for key, cell in report["cells"].items():
        res = cell["results"]
        rows = {"clean": res["clean"], **res["attacks"], "worst_case": res["worst_case"]}
        cells[key] = {name: int(headline.unhex(cell["masks"][name], n=cell["n_indices"]).sum())
                      if from_masks else row["n_correct"] for name, row in rows.items()}
    effect = paired_effect(report["cells"]) if from_masks else report.get("effect")
    return {"cells": cells, "effect": effect}


def _order(key: str) -> tuple:
    row, _, s = key.rpartition(" s")
    return (HEADLINE_CELLS.index(row), int(s))


def merge_reports(reports: Sequence[dict]) -> dict:
    """One report from reports of the same check on other cells (`check_cells(rows=...,
    model_seeds=...)`): the cells joined in row then seed order, the paired effect recomputed,
    the wall time the longest of theirs. UsageError when they differ in anything but their
    cells, effect and provenance, or check a cell twice."""
    first = reports[0]
    own = ("cells", "effect", "provenance")
    same = {k: v for k, v in first.items() if k not in own}
    cells: dict = {}
    for r in reports:
        if {k: v for k, v in r.items() if k not in own} != same:
            raise UsageError("the reports to merge differ beyond their cells (profile, images, "
                             "budgets or seeds)")
        twice = set(cells) & set(r["cells"])
        if twice:
            raise UsageError(f"cell {sorted(twice)[0]!r} is in two of the reports to merge")
        cells.update(r["cells"])
    provenance = dict(first["provenance"])
    provenance["config"] = {**provenance["config"], "cells": {
        key: cfg for r in reports for key, cfg in r["provenance"]["config"]["cells"].items()}}
    provenance["wall_seconds"] = max(r["provenance"]["wall_seconds"] for r in reports)
    cells = {key: cells[key] for key in sorted(cells, key=_order)}
    return {**same, "cells": cells, "effect": paired_effect(cells), "provenance": provenance}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="quick")
    p.add_argument("--runs-dir", help="the profile's runs root, e.g. runs/quick (needed "
                   "unless --merge)")
    p.add_argument("--data-dir", default=None, help="data root (default: $DFL_DATA_DIR, ./data)")
    p.add_argument("--n", type=int, default=200, help="unseen test images")
    p.add_argument("--out", required=True, help="the JSON report to write")
    p.add_argument("--seed", type=int, default=0, help="the attacks' seed")
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=APGD_STEPS, help="APGD-DLR iterations")
    p.add_argument("--pgd-steps", type=int, default=PGD_STEPS)
    p.add_argument("--pgd-restarts", type=int, default=PGD_RESTARTS)
    p.add_argument("--n-queries", type=int, default=SQUARE_QUERIES, help="Square's queries")
    p.add_argument("--rows", default=",".join(HEADLINE_CELLS),
                   help="the headline rows to check (comma-separated; default: both)")
    p.add_argument("--model-seeds", default="0",
                   help="the seeds of the models to check (comma-separated, e.g. 0,1,2)")
    p.add_argument("--record", default=None, help="a report folder whose committed weights "
                   "(record/weights) stand in for runs missing from --runs-dir, e.g. "
                   "reports/quick")
    p.add_argument("--merge", nargs="+", metavar="JSON", help="join reports of the same check "
                   "on other rows into --out, and check nothing")
    args = p.parse_args(argv)
    if args.merge:
        try:
            merged = merge_reports([runio.read_json(path) for path in args.merge])
        except (UsageError, DataFileError) as err:
            print(f"independent_check: {err}", file=sys.stderr)
            return 2
        runio.write_json(args.out, merged)
        print(f"wrote {args.out} ({', '.join(merged['cells'])})")
        return 0

    if not args.runs_dir:
        p.error("--runs-dir is required (unless --merge)")
    budgets = {"steps": args.steps, "pgd_steps": args.pgd_steps,
               "pgd_restarts": args.pgd_restarts, "n_queries": args.n_queries}
    try:
        model_seeds = tuple(int(s) for s in args.model_seeds.split(",") if s.strip())
    except ValueError:
        print(f"independent_check: --model-seeds must be comma-separated ints, got "
              f"{args.model_seeds!r}", file=sys.stderr)
        return 2
    try:
        report = check_cells(args.profile, runs_root=args.runs_dir, data_root=args.data_dir,
                             n=args.n, seed=args.seed, device=args.device, budgets=budgets,
                             rows=tuple(r for r in args.rows.split(",") if r),
                             model_seeds=model_seeds, record=args.record)
    except (UsageError, DataFileError) as err:  # a user's mistake: one line, no traceback
        print(f"independent_check: {err}", file=sys.stderr)
        return 2
    runio.write_json(args.out, report)
    for row, cell in report["cells"].items():
        res, cmp = cell["results"], cell["comparison"]
        study = f"; study {cmp['study_row']} {cmp['study_accuracy']:.3f}" if cmp else ""
        print(f"{row}: clean {res['clean']['accuracy']:.3f}, worst case "
              f"{res['worst_case']['accuracy']:.3f} on {res['n']} unseen images{study}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from dfl_lib.device import set_threads

    set_threads()  # $OMP_NUM_THREADS, else every core (here, not in main: tests call main)
    sys.exit(main())
