"""An effect with an interval that holds seed and image noise, valid at the study's few seeds,
and the outcome it supports.

The study's effects are differences of accuracies (points) between rows of a table, e.g. DFL + PCL
minus the best baseline under PGD-10. Their noise has two sources: which training seed ran and
which test images were drawn; the first was 1.5-3x the second in our runs (issue 19). With 3
seeds a percentile bootstrap over seeds spans about [worst seed, best seed] and under-covers
(0.80-0.94 at seed spreads of 1-5 points, issue 39). So the interval is a Student t interval on
the per-seed effects (each seed's effect holds its own image noise), k - 1 degrees of freedom,
whose variance is never taken below the image noise measured inside the seeds (a paired
bootstrap of each seed's images, every row on the same draw): with 3 seeds it is about 3x wider
than the seeds' range when they disagree, and it cannot collapse to a point when 3 seeds happen to
agree. Its coverage is checked by simulation in tests/test_intervals.py (>= 0.93 for a nominal
0.95 at 2, 3 and 5 seeds, seed spreads 0-8 points). With one seed it holds image noise only
(a normal interval on the image bootstrap's variance); the caller says so.

    samples = {"dfl_pcl": {0: {"PGD-10": mask0}, 1: {...}}, "resnet": {...}}   # row -> seed -> cell
    est, low, high = effect_interval(samples, effect=lambda acc: acc["dfl_pcl"]["PGD-10"]
                                     - acc["resnet"]["PGD-10"])
    outcome(low=low, high=high, claimed=37.0)      # -> "not reproduced"

A sample is a bool array (n,) (True: the example counts as correct) or a (k, n) pair where only
the count is known (a run's validation accuracy): such a sample is redrawn as Binomial(n, k/n),
unpaired, which can only widen the interval. A float is a value measured in the effect's own
unit with no image noise to redraw (a run's training loss, nats): its noise is the seeds'.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
# scipy.special's quantiles, the same values as scipy.stats' t.ppf and norm.ppf (which call
# them), without importing scipy.stats: 1.5 s of every notebook kernel's start on a 2-core CPU
from scipy import special

from ..errors import UsageError

__all__ = ["OUTCOMES", "outcome", "effect_interval", "accuracies", "sample_value", "INTERVAL_METHOD"]

INTERVAL_METHOD = ("t interval on per-seed effects (k - 1 degrees of freedom), its variance at "
                   "least the image noise inside the seeds")

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

    A claim of direction only (claimed 0) is reached by a positive upper end: an interval with
    high <= 0 (e.g. [0, 0], two rows both at 0% on every image) excludes every positive effect
    and reads "not reproduced". Every interval gets exactly one. Raises UsageError for
    low > high, a NaN, or claimed < 0."""
    if any(v != v for v in (low, high, claimed)):
        raise UsageError(f"outcome needs numbers, got low={low}, high={high}, claimed={claimed}")
    if low > high:
        raise UsageError(f"interval has low {low} above high {high}")
    if claimed < 0:
        raise UsageError(f"the claimed effect is stated in the claim's direction (>= 0), "
                         f"got {claimed}")
    reaches = high > 0 if claimed == 0 else high >= claimed
    if low > 0:
        return "reproduced" if reaches else "direction only"
    return "inconclusive" if reaches else "not reproduced"


def accuracies(samples: Mapping) -> dict[str, dict]:
    """Mean accuracy (%; a float sample's value as it is) over seeds of every row and cell of
    `samples` (row -> seed -> cell -> sample), without resampling: the point estimate's
    inputs."""
    out: dict[str, dict] = {}
    for row, per_seed in samples.items():
        cells: dict = {}
        for per_cell in per_seed.values():
            for cell, s in per_cell.items():
                cells.setdefault(cell, []).append(sample_value(s))
        out[row] = {cell: float(np.mean(v)) for cell, v in cells.items()}
    return out


def sample_value(sample) -> float:
    """A sample's value: an accuracy in % (a mask, a count), or a float as it is."""
    if isinstance(sample, float):
        return sample
    if isinstance(sample, tuple):
        k, n = sample
        return 100.0 * k / n
    return 100.0 * float(np.mean(sample))


def _check(samples: Mapping) -> list:
    if not samples:
        raise UsageError("effect_interval needs at least one row of samples")
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


def _image_draws(samples: Mapping, seed_key, *, effect: Callable[[dict], float], n_boot: int,
                 rng: np.random.Generator) -> np.ndarray:
    """`effect` over `n_boot` paired bootstrap draws of one seed's images (every row and cell of
    the seed on the same draw; a (k, n) count redrawn as Binomial(n, k/n)). Shape (n_boot,)."""
    keys, masks, counts, values_fixed = [], [], [], {}
    for row in samples:
        for cell, sample in samples[row][seed_key].items():
            if isinstance(sample, float):
                values_fixed[(row, cell)] = sample
            elif isinstance(sample, tuple):
                counts.append(((row, cell), sample))
            else:
                keys.append((row, cell))
                masks.append(np.asarray(sample, dtype=np.float64))
    lengths = {len(m) for m in masks}
    if len(lengths) > 1:
        raise UsageError(f"seed {seed_key}: paired samples have different numbers of images "
                         f"{sorted(lengths)}; they must be measured on the same images")
    acc: dict = {}
    if masks:
        mat = np.stack(masks)                                           # (m, n)
        n = mat.shape[1]
        # Poisson(1) weights: the bootstrap's multinomial counts, drawn per image at once
        weights = rng.poisson(1.0, size=(n_boot, n)).astype(np.float64)  # (B, n)
        values = weights @ mat.T / np.maximum(weights.sum(1, keepdims=True), 1.0)  # (B, m)
        acc.update({k: values[:, i] for i, k in enumerate(keys)})
    for k, (hits, n) in counts:
        acc[k] = rng.binomial(n, hits / n, size=n_boot) / n
    draws = np.empty(n_boot)
    for b in range(n_boot):
        mean: dict[str, dict] = {row: {} for row in samples}
        for (row, cell), values in acc.items():
            mean[row][cell] = 100.0 * float(values[b])
        for (row, cell), value in values_fixed.items():
            mean[row][cell] = value
        draws[b] = effect(mean)
    return draws


def effect_interval(samples: Mapping, *, effect: Callable[[dict], float], n_boot: int = 200,
                    level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(estimate, low, high) in points: `effect` of the mean accuracies (%) over seeds, and its
    interval at `level`: estimate -/+ t(level, k - 1) * sqrt(v / k), where k is the number of
    seeds and v the larger of the per-seed effects' sample variance and the mean image variance
    of a seed's effect (`n_boot` paired bootstrap draws of its images). One seed: the normal
    interval on that seed's image variance (image noise only; the caller says so).

    samples: {row: {seed: {cell: bool array (n,) | (k, n) | float}}}; every row has the same seeds (the
    pairing), and the arrays of one seed have one length. effect: maps {row: {cell: accuracy
    %}} to the effect in points. Source: the t interval on cluster (seed) means, e.g. Cameron &
    Miller (2015), "A Practitioner's Guide to Cluster-Robust Inference", Section VI (few
    clusters). Raises UsageError on unpaired seeds, mismatched lengths or a level outside
    (0, 1)."""
    if not 0 < level < 1:
        raise UsageError(f"level must lie in (0, 1), got {level}")
    seeds = _check(samples)
    rng = np.random.default_rng(seed)
    estimate = float(effect(accuracies(samples)))
    per_seed = [{row: {s: samples[row][s]} for row in samples} for s in seeds]
    effects = np.array([effect(accuracies(one)) for one in per_seed], dtype=np.float64)
    image_var = float(np.mean([np.var(_image_draws(one, s, effect=effect, n_boot=n_boot,
                                                   rng=rng), ddof=1)
                               for one, s in zip(per_seed, seeds)]))
    k = len(seeds)
    if k == 1:
        half = float(special.ndtri(0.5 + level / 2)) * np.sqrt(image_var)
    else:
        var = max(float(np.var(effects, ddof=1)), image_var)
        half = float(special.stdtrit(k - 1, 0.5 + level / 2)) * np.sqrt(var / k)
    return estimate, estimate - half, estimate + half
