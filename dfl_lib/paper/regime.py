"""The regime gate: a cell enters a verdict only when its model trained, and a robustness claim
only when the plain PGD-trained baseline of the same profile is in the field's regime.

    REGIMES["mnist"].clean_floor      # 90.0 (%): below it a run did not train
    regime_reason(dataset="mnist", baseline_autoattack=47.0, n=100)
    # -> "below regime: the PGD-trained ResNet keeps 47.0% under AutoAttack (n=100); the field's
    #     regime at eps 0.3 is >= 85% (Madry et al. 2018: 88.5%)"

Floors (sources in `../shared/FIELD.md`, "Reference numbers"):
- MNIST, L-inf eps 0.3: Madry et al.'s PGD-trained network has 98.53% clean and 88.50% under
  AutoAttack (Croce & Hein 2020); the gate asks >= 85% of our PGD-trained ResNet. A clean floor of
  90% separates a network that trained from one that did not (a constant classifier has 10%, a
  linear model about 92%).
- CIFAR-10, L-inf eps 8/255 (the paper's 0.03): a PGD-trained ResNet-18 reaches about 80-84% clean
  and 43-47% under AutoAttack; the gate asks >= 40% under AutoAttack and 70% clean.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError

__all__ = ["Regime", "REGIMES", "regime_reason", "untrained_reason", "clean_floor"]


@dataclass(frozen=True)
class Regime:
    clean_floor: float      # %, every row of a verdict
    robust_floor: float     # %, the PGD-trained baseline under AutoAttack
    threat: str             # the threat model the floor is stated at
    source: str
    # what a row below the clean floor is: on MNIST the floor is below a linear model's 92%
    # (such a run did not train); on CIFAR-10 a run at 37% did train, below the regime
    below_clean: str = "did not train"


REGIMES = {
    "mnist": Regime(clean_floor=90.0, robust_floor=85.0, threat="L-inf, eps 0.3",
                    source="Madry et al. 2018: 88.5% under AutoAttack at 98.5% clean"),
    "cifar10_jpeg": Regime(clean_floor=70.0, robust_floor=40.0, threat="L-inf, eps 8/255",
                           source="PGD-trained ResNet-18: 80-84% clean, 43-47% under "
                                  "AutoAttack", below_clean="below regime"),
}
REGIMES["cifar10"] = REGIMES["cifar10_jpeg"]


def _regime(dataset: str) -> Regime:
    if dataset not in REGIMES:
        raise UsageError(f"no regime is stated for dataset {dataset!r}; known: "
                         f"{', '.join(REGIMES)}")
    return REGIMES[dataset]


def clean_floor(dataset: str) -> float:
    """The clean accuracy (%) below which a run on `dataset` did not train."""
    return _regime(dataset).clean_floor


def untrained_reason(*, dataset: str, clean: dict[str, float]) -> str:
    """"" when every row's clean accuracy (%) reaches the dataset's floor, else a reason naming
    each row below it ("did not train: resnet50+dfl 29.4% clean (floor 90%)"; on CIFAR-10
    "below regime: dfl 37.3% clean (floor 70%)": such a run trained, below the regime)."""
    r = _regime(dataset)
    low = [f"{row} {acc:.1f}% clean" for row, acc in clean.items() if not acc >= r.clean_floor]
    return f"{r.below_clean}: {', '.join(low)} (floor {r.clean_floor:g}%)" if low else ""


def regime_reason(*, dataset: str, baseline_autoattack: float | None, n: int = 0) -> str:
    """"" when the profile's plain PGD-trained ResNet is in the field's regime on `dataset`
    (AutoAttack accuracy, %, on n images), else why not (not measured, or below the floor)."""
    r = _regime(dataset)
    if baseline_autoattack is None:
        return ("not measured: the PGD-trained ResNet's AutoAttack accuracy is needed to place "
                "this profile in the field's regime")
    if baseline_autoattack < r.robust_floor:
        return (f"below regime: the PGD-trained ResNet keeps {baseline_autoattack:.1f}% under "
                f"AutoAttack (n={n}); the field's regime at {r.threat} is >= "
                f"{r.robust_floor:g}% ({r.source})")
    return ""
