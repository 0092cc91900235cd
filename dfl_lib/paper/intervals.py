"""An effect with an interval that holds seed and image noise, and the outcome it supports.

The study's effects are differences of accuracies (points) between rows of a table, e.g. DFL + PCL
minus the best baseline under PGD-10. Their noise has two sources: which test images were drawn
and which training seed ran; the second was 1.5-3x the first in our runs (issue 19). So the
interval is a two-level bootstrap (Davison & Hinkley 1997, Section 3.8; the "cases" resampling of
hierarchical data): draw the seeds with replacement, then within each drawn seed the images with
replacement; every row measured on the same images of a seed is resampled with the same draw
(paired), so an effect between two models on the same images loses the images' shared difficulty.

    samples = {"dfl_pcl": {0: {"PGD-10": mask0}, 1: {...}}, "resnet": {...}}   # row -> seed -> cell
    est, low, high = bootstrap_effect(samples, effect=lambda acc: acc["dfl_pcl"]["PGD-10"]
                                      - acc["resnet"]["PGD-10"])
    outcome(low=low, high=high, claimed=37.0)      # -> "not reproduced"

A sample is a bool array (n,) (True: the example counts as correct) or a (k, n) pair where only
the count is known (a run's validation accuracy): such a sample is redrawn as Binomial(n, k/n),
unpaired, which can only widen the interval.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ..errors import UsageError

__all__ = ["OUTCOMES", "outcome", "bootstrap_effect", "accuracies"]

# a partition of where an interval [low, high] lies against zero and the claimed effect T >= 0
OUTCOMES = ("reproduced", "inconclusive", "direction only", "not reproduced", "not testable here")


def outcome(*, low: float, high: float, claimed: float) -> str:
    """Where the interval [low, high] of our effect (points, positive in the claim's direction)
    lies against zero and the claimed effect `claimed` (points, >= 0; 0 for a claim of
    direction only):

        reproduced      low > 0 and high >= claimed (it excludes zero and reaches the claim)
        direction only  low > 0 and high <  claimed (right direction, below the claimed size)
        inconclusive    low <= 0 and high >= claimed (it covers both zero and the claim)
        not reproduced  low <= 0 and high <  claimed (below the claim and not excluding zero,
                        or pointing the other way)

    Every interval gets exactly one. Raises UsageError for low > high, a NaN, or claimed < 0."""
    if any(v != v for v in (low, high, claimed)):
        raise UsageError(f"outcome needs numbers, got low={low}, high={high}, claimed={claimed}")
    if low > high:
        raise UsageError(f"interval has low {low} above high {high}")
    if claimed < 0:
        raise UsageError(f"the claimed effect is stated in the claim's direction (>= 0), "
                         f"got {claimed}")
    if low > 0:
        return "reproduced" if high >= claimed else "direction only"
    return "inconclusive" if high >= claimed else "not reproduced"


def accuracies(samples: Mapping) -> dict[str, dict]:
    """Mean accuracy (%) over seeds of every row and cell of `samples` (row -> seed -> cell ->
    sample), without resampling: the point estimate's inputs."""
    out: dict[str, dict] = {}
    for row, per_seed in samples.items():
        cells: dict = {}
        for per_cell in per_seed.values():
            for cell, s in per_cell.items():
                cells.setdefault(cell, []).append(_fraction(s))
        out[row] = {cell: 100.0 * float(np.mean(v)) for cell, v in cells.items()}
    return out


def _fraction(sample) -> float:
    if isinstance(sample, tuple):
        k, n = sample
        return k / n
    return float(np.mean(sample))


def _check(samples: Mapping) -> list:
    if not samples:
        raise UsageError("bootstrap_effect needs at least one row of samples")
    seeds = None
    for row, per_seed in samples.items():
        if not per_seed:
            raise UsageError(f"row {row!r} has no seeds")
        these = sorted(per_seed)
        if seeds is not None and these != seeds:
            raise UsageError(f"rows are paired by seed: row {row!r} has seeds {these}, another "
                             f"row has {seeds}")
        seeds = these
    return seeds


def bootstrap_effect(samples: Mapping, *, effect: Callable[[dict], float], n_boot: int = 2000,
                     level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(estimate, low, high) in points: `effect` of the mean accuracies (%) and its percentile
    interval at `level` over `n_boot` two-level bootstrap draws (seeds, then images within each
    seed, the same image draw for every row and cell of a seed).

    samples: {row: {seed: {cell: bool array (n,) | (k, n)}}}; every row has the same seeds (the
    pairing), and the arrays of one seed have one length. effect: maps {row: {cell: accuracy
    %}} to the effect in points. With one seed the interval holds image noise only (the caller
    says so). Raises UsageError on unpaired seeds or mismatched lengths."""
    seeds = _check(samples)
    rng = np.random.default_rng(seed)
    rows = list(samples)
    # per seed: the paired masks as one matrix (m, n) and where each (row, cell) sits in it
    per_seed = []
    for s in seeds:
        keys, masks, counts = [], [], []
        for row in rows:
            for cell, sample in samples[row][s].items():
                if isinstance(sample, tuple):
                    counts.append(((row, cell), sample))
                else:
                    keys.append((row, cell))
                    masks.append(np.asarray(sample, dtype=np.float64))
        lengths = {len(m) for m in masks}
        if len(lengths) > 1:
            raise UsageError(f"seed {s}: paired samples have different numbers of images "
                             f"{sorted(lengths)}; they must be measured on the same images")
        per_seed.append((keys, np.stack(masks) if masks else None, counts))
    draws = np.empty(n_boot)
    picks = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
    # resampled accuracies: for each draw, each seed slot, each (row, cell)
    cache = []
    for keys, mat, counts in per_seed:
        acc = {}
        if mat is not None:
            n = mat.shape[1]
            weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)  # (B, n)
            values = weights @ mat.T / n                                      # (B, m)
            acc.update({k: values[:, i] for i, k in enumerate(keys)})
        for k, (hits, n) in counts:
            acc[k] = rng.binomial(n, hits / n, size=n_boot) / n
        cache.append(acc)
    for b in range(n_boot):
        mean: dict[str, dict] = {row: {} for row in rows}
        chosen = picks[b]
        for (row, cell) in cache[0]:
            mean[row][cell] = 100.0 * float(np.mean([cache[j][(row, cell)][b] for j in chosen]))
        draws[b] = effect(mean)
    estimate = float(effect(accuracies(samples)))
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    return estimate, float(low), float(high)
