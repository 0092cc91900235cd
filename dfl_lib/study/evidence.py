"""The evidence each claim's verdict reads, gathered from the plan's finished runs, and the
verdicts themselves (`dfl_lib.paper.verdicts.claim_verdict`).

    cells = cell_results("quick", runs_root="runs/quick")      # the tables' finished results
    verdicts = table_verdicts("quick", cells=cells)             # every "table" claim
    verdicts = depth_verdicts("quick", records=depth_records("quick", ...))

Per claim: for each row it compares, per seed, each cell's per-example results (the masks the
evaluation saved beside its metrics: True where the example survived the attack) or, for claims
on training curves, the validation accuracy as (correct, images); the rows' clean accuracy for
the regime's clean floor; for robustness claims, the regime of the profile's PGD-trained ResNet
(its AutoAttack accuracy in the headline evaluation).
"""
from __future__ import annotations

import dataclasses

from pathlib import Path

import numpy as np

from ..evaluation.robust import mask_file
from ..evaluation.selection import of_kind, strongest, worst_case
from ..errors import UsageError
from ..paper.claims import DEPTH_QUANTITIES, Claim, claims
from ..paper.comparison import PAPER_TO_SUITE_COLUMN, ROW_LABELS, accuracy, paper_dataset
from ..paper.regime import regime_reason
from ..paper.verdicts import claim_verdict, strong_attack_check
from ..profiles import PROFILES, get_profile
from .plan import cell_seeds, datasets, table_rows_of

__all__ = ["table_samples", "table_verdicts", "depth_sample", "depth_verdicts", "rise_verdicts",
           "strong_attack_checks", "adaptive_checks", "profile_regime", "row_mask",
           "metrics_seed"]

# Table 6's "ResNet" row is the proposed method on ResNet: our dfl_pcl cell
_OUR_ROW = {"resnet_dfl_pcl": "dfl_pcl"}
_ELSEWHERE = {"cifar10": "not run yet: this profile's plan has no CIFAR-10 cells (the gpu "
                         "profile and studies/gpu_check.py have them; CIFAR-10's regime needs a "
                         "GPU)",
              "mnist": "this profile's plan has no MNIST cells"}


def metrics_seed(metrics: dict) -> int:
    """The seed an evaluation's metrics were made at (their provenance)."""
    return int(metrics["provenance"]["seed"])


def row_mask(metrics: dict, name: str, *, suite: str = "table") -> np.ndarray:
    """The per-image bool mask (n,) of the row `name` of an evaluation's metrics, from the
    masks-<suite>/ folder beside its metrics file (a run folder's or a record's)."""
    folder = Path(metrics["path"]).parent / f"masks-{suite}"
    return np.load(mask_file(folder, name))


def table_samples(c: Claim, *, cells: dict) -> tuple[dict, dict]:
    """(samples, clean) of a "table" claim from `cells` (`records.cell_results`): per row, per
    seed, per cell "setting | column" the bool mask of the attack standing for that column;
    the rows' clean accuracy (%), mean over seeds and settings. A row any of whose settings
    is missing is left out (the verdict names it)."""
    samples, clean = {}, {}
    for row in c.rows:
        ours = _OUR_ROW.get(row, row)
        per_seed: dict[int, dict] = {}
        cleans = []
        for setting in c.settings:
            found = cells.get((c.dataset, ours, setting))
            if not found:
                per_seed = {}
                break
            for m in found["per_seed"]:
                for column in c.columns:
                    name = m["paper_columns"][PAPER_TO_SUITE_COLUMN[column]]
                    per_seed.setdefault(metrics_seed(m), {})[f"{setting} | {column}"] = row_mask(m, name)
                cleans.append(accuracy(m, "clean"))
        if per_seed:
            # only seeds present in every setting pair up
            complete = {s: v for s, v in per_seed.items() if len(v) == len(c.cells)}
            samples[row] = complete
            clean[row] = float(np.mean(cleans))
    return samples, clean


def profile_regime(dataset: str, *, cells: dict) -> str:
    """"" when the profile's PGD-trained ResNet on `dataset` is in the field's regime, else why
    not (`paper.regime.regime_reason`), from its headline evaluation's AutoAttack accuracy."""
    found = cells.get((dataset, "resnet", "adversarial training")) or {}
    head = found.get("headline")
    aa = accuracy(head, "AutoAttack") if head else None
    return regime_reason(dataset=dataset, baseline_autoattack=aa,
                         n=head["n_eval"] if head else 0)


def _left_to_others(profile: str, *, row: str, settings, dataset: str) -> str:
    """Why a claim's own cells are not at this profile when it leaves them to another (a row it
    does not run, or cells of a row it runs: `Profile.single_seed_cells`), naming the profiles
    that train them; "" where the profile trains them."""
    missing = [s for s in settings if row not in table_rows_of(profile)
               or not cell_seeds(profile, row=row, setting=s)]
    if not missing:
        return ""
    others = [name for name in PROFILES if name not in (profile, "smoke")
              and paper_dataset(dataset) in map(paper_dataset, datasets(name))
              and row in table_rows_of(name)
              and all(cell_seeds(name, row=row, setting=s) for s in missing)]
    several = len(others) > 1
    return (f"the {row} cells with {' and '.join(missing)} are not trained at {profile} (left "
            f"to other profiles by its time budget)"
            + (f"; the {' and '.join(others)} profile{'s' * several} train{'' if several else 's'}"
               f" them" if others else ""))


def table_verdicts(profile: str, *, cells: dict) -> list[dict]:
    """The verdict of every "table" claim of paper_claims.csv, in its order."""
    min_seeds = get_profile(profile).min_seeds
    out = []
    for c in claims():
        if c.kind != "table":
            continue
        # the profile's dataset standing for the claim's (the original, or a copy by choice)
        here = next((d for d in datasets(profile) if paper_dataset(d) == c.dataset), None)
        if here is None:
            out.append(claim_verdict(c, unavailable=_ELSEWHERE.get(c.dataset, "not run")))
            continue
        c = dataclasses.replace(c, dataset=here)
        left = _left_to_others(profile, row=c.ours, settings=c.settings, dataset=c.dataset)
        if left:
            out.append(claim_verdict(c, unavailable=left))
            continue
        samples, clean = table_samples(c, cells=cells)
        out.append(claim_verdict(c, samples=samples, clean=clean, min_seeds=min_seeds,
                                 regime=profile_regime(c.dataset, cells=cells)))
    return out


def _final_count(history: list[dict], *, n_val: int, epoch: int = -1) -> tuple[int, int]:
    return int(round(history[epoch]["val_acc"] * n_val)), n_val


def _autoattack_row(metrics: dict) -> str | None:
    """The name of the AutoAttack row of an end evaluation; None where it has none."""
    return next((r["name"] for r in metrics["table"] if r["attack"] == "autoattack"), None)


def depth_sample(record: dict, *, quantity: str):
    """One depth run's sample of `quantity` (`paper.claims.DEPTH_QUANTITIES`) at its last
    epoch, as `paper.intervals.effect_interval` takes it: a loss as a float (nats), an error or
    accuracy as a count over the images it was measured on ((k, n): the epoch's training images,
    or the PGD-10 monitor's `monitor_size` validation images, or the clean validation set); a
    gradient norm as the mean over every epoch of its log10 (a float). None where the run did not
    measure it (no end evaluation; a history from before gradient norms were recorded)."""
    if quantity == "autoattack":  # the end evaluation's per-example mask
        metrics = record.get("evaluation")
        name = _autoattack_row(metrics) if metrics else None
        return row_mask(metrics, name, suite="depth") if name else None
    history = record["history"]
    if DEPTH_QUANTITIES[quantity][1] == "log10":
        values = [h.get(quantity) for h in history]
        if not values or any(v is None or not v > 0 for v in values):
            return None
        return float(np.mean(np.log10(values)))
    last = history[-1]
    value = last[quantity]
    if DEPTH_QUANTITIES[quantity][1] == "nats":
        return float(value)
    n = {"train_error": record.get("n_train"), "final": record["n_val"]}.get(
        quantity, record.get("monitor_size"))
    if not n:
        raise UsageError(f"depth record {record.get('run')} lacks the image count of {quantity}")
    value = last["val_acc"] if quantity == "final" else value
    return int(round(value * n)), int(n)


def depth_verdicts(profile: str, *, records: list[dict], regime: str | None = None) -> list[dict]:
    """The "depth" claims (Figures 1, 3, 5) from `records.depth_records` (the PGD-trained runs
    with the lr warm-up, every seed), each on the quantity the paper plots (its `columns`:
    training loss or error on the adversarial batches, validation loss, error or accuracy under
    the PGD-10 monitor, at the last epoch; `depth_sample`).

    The regime's clean floor asks whether each configuration trains at this profile's lr and
    budget: it reads the configuration trained without attacks (the depth study's clean runs,
    where the profile has them), because a PGD-trained network that ends lower than a shallower
    one is the effect these claims are about, not a failure to train; without clean runs it
    reads the PGD-trained runs' own clean accuracy. `regime`: "" when the depth study is in the
    field's regime, else why not; None (the default) reads it from the records: the plain
    ResNet-18's AutoAttack accuracy at the end of PGD training (mean over seeds) against the
    field's floor (`paper.regime`), "not measured" where the runs have no end evaluation: every
    verdict is then "not testable here", its numbers shown. The claims on AutoAttack accuracy
    are "not run yet" without an end evaluation."""
    samples, finals, clean_runs, robust = {}, {}, {}, []
    quantities = {c.columns[0] for c in claims() if c.kind == "depth"}
    for r in records:
        if not r.get("warmup", True):
            continue
        row = r["model"] + ("+dfl" if r["dfl"] else "")
        final = 100.0 * r["history"][-1]["val_acc"]
        if r["setting"] == "PGD-10 training":
            for q in quantities:
                value = depth_sample(r, quantity=q)
                if value is not None:
                    samples.setdefault(q, {}).setdefault(row, {})[r["seed"]] = {q: value}
            finals.setdefault(row, []).append(final)
            if row == "resnet18" and r.get("evaluation"):
                aa = depth_sample(r, quantity="autoattack")
                if aa is not None:
                    robust.append(aa)
        else:
            clean_runs.setdefault(row, []).append(final)
    if regime is None and robust:  # the gate: the plain ResNet-18's AutoAttack accuracy
        regime = regime_reason(dataset="mnist", n=len(robust[0]),
                               baseline_autoattack=100.0 * float(np.mean([m.mean()
                                                                          for m in robust])))
    elif regime is None:
        regime = ("not measured: the depth study's PGD-trained ResNet-18 has no AutoAttack "
                  "evaluation, so whether its runs are in the field's regime is unknown (the "
                  "PGD-10 monitor on a few validation images is not the gate)")
    clean = {row: float(np.mean(clean_runs.get(row) or v)) for row, v in finals.items()}
    min_seeds = get_profile(profile).min_seeds
    out = []
    for c in claims():
        if c.kind != "depth":
            continue
        if c.columns[0] == "autoattack" and c.columns[0] not in samples:
            out.append(claim_verdict(c, unavailable="not run yet: the depth runs have no end "
                                                    "evaluation (PGD-50 and AutoAttack on test "
                                                    "images: Profile.depth_eval_n)"))
            continue
        if c.columns[0] not in samples:  # a quantity the runs' histories do not hold
            out.append(claim_verdict(c, unavailable=(
                f"not measured: the depth runs' histories hold no {c.columns[0]} (training "
                "records it at every epoch; these runs were made by code that did not): a "
                "re-run of the depth study measures it")))
            continue
        out.append(claim_verdict(c, samples=samples.get(c.columns[0], {}), clean=clean,
                                 min_seeds=min_seeds, regime=regime))
    return out


def worst_step(history: list[dict]) -> float | None:
    """The largest fall of the clean validation accuracy from one epoch to the next, as the
    lowest epoch-to-epoch change in points (positive where it rose at every epoch); None for a
    history of one epoch."""
    acc = [100.0 * h["val_acc"] for h in history]
    return min(b - a for a, b in zip(acc, acc[1:])) if len(acc) > 1 else None


def rise_verdicts(profile: str, *, records: list[dict]) -> list[dict]:
    """Figure 6a's claims from `records.component_records` on its dataset (every seed), on
    each run's clean validation accuracy: at the first and the last epoch, as (correct,
    images), and its worst epoch-to-epoch step (`worst_step`, points, no image noise)."""
    min_seeds = get_profile(profile).min_seeds
    out = []
    for c in claims():
        if c.kind != "rise":
            continue
        samples, clean, single = {}, {}, 0
        for r in records:
            if r["dataset"] != c.dataset or r["row"] not in c.rows:
                continue
            n = r["n_val"]
            sample = {"first": _final_count(r["history"], n_val=n, epoch=0),
                      "last": _final_count(r["history"], n_val=n),
                      "worst_step": worst_step(r["history"])}
            clean.setdefault(r["row"], []).append(100.0 * r["history"][-1]["val_acc"])
            if any(sample[cell] is None for cell in c.cells):  # one epoch: no step to judge
                single += 1
                continue
            samples.setdefault(r["row"], {})[r["seed"]] = sample
        if single and not samples:
            out.append(claim_verdict(c, unavailable="every run has one epoch: no "
                                                    "epoch-to-epoch step to judge"))
            continue
        out.append(claim_verdict(c, samples=samples,
                                 clean={k: float(np.mean(v)) for k, v in clean.items()},
                                 min_seeds=min_seeds))
    return out


def strong_attack_checks(cells: dict) -> list[dict]:
    """Our own checks on every headline cell with PGD training: does its PGD-10 accuracy hold
    under the strongest attacks of its headline evaluation (same images)?"""
    out = []
    for (dataset, row, setting), found in cells.items():
        head = found.get("headline")
        if not head or setting != "adversarial training":
            continue
        pgd = accuracy(head, head["paper_columns"]["PGD"])
        worst = worst_case(head["table"], norm="Linf")
        if pgd is None or worst is None:
            continue
        out.append(strong_attack_check(pgd10=pgd, strongest=100.0 * worst["accuracy"],
                                       n=head["n_eval"], dataset=dataset,
                                       name=f"{ROW_LABELS[row]}, PGD training, {dataset}"))
    return out


def adaptive_checks(cells: dict) -> list[dict]:
    """Our own check on every cell with an adaptive attack (PCL runs): is the adaptive attack
    at least as strong as PGD-50 on cross-entropy (issue 19: the first version was weaker than
    PGD-10)? Per seed, both on the same images; "holds" when its accuracy is at most PGD-50's
    on every seed (a tolerance of one image), "uninformative" when PGD-50 already leaves at
    most one image correct on every seed (any attack ties it there: a clean-trained model)."""
    out = []
    for (dataset, row, setting), found in cells.items():
        pairs = []
        for m in found["per_seed"]:
            adaptive = of_kind(m["table"], "adaptive")
            longer = strongest(m["table"], objective="ce", exclude=[m["paper_columns"]["PGD"]])
            if adaptive and longer:
                pairs.append((metrics_seed(m), 100.0 * adaptive[0]["accuracy"],
                              100.0 * longer["accuracy"], m["n_eval"], longer["name"]))
        if not pairs:
            continue
        holds = all(a <= p + 100.0 / n for _, a, p, n, _ in pairs)
        floor = all(p <= 100.0 / n for _, _, p, n, _ in pairs)
        out.append({"check": f"adaptive_attack_{dataset}_{row}_{setting.replace(' ', '_')}",
                    "dataset": dataset,
                    "text": f"{ROW_LABELS[row]}, {setting}, {dataset}: the adaptive attack is at "
                            f"least as strong as {pairs[0][4]}",
                    "result": ("uninformative" if floor and holds else
                               "holds" if holds else "does not hold"),
                    "numbers": "; ".join(f"seed {s}: adaptive {a:.1f}% vs {p:.1f}% (n={n})"
                                         for s, a, p, n, _ in pairs)})
    return out
