"""The threat model of a result: a norm and a radius, as one small value (RobustBench's
`ThreatModel` enum is the model: a closed set, not strings compared in many places).

    tm = ThreatModel("Linf", 0.3)
    row["threat_model"] == tm.to_dict()          # every evaluation row carries it (or None)
    ThreatModel.of(row)                          # back from a row; None for clean / unbounded
    str(tm)                                      # "Linf, eps 0.3"

eps is in pixel units on images in [0, 1]. A clean row and a minimum-norm attack run without a
budget have no threat model (None): they join no worst case.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError

__all__ = ["ThreatModel", "NORMS"]

NORMS = ("Linf", "L2")


@dataclass(frozen=True, order=True)
class ThreatModel:
    """norm: "Linf" or "L2"; eps: the radius, a finite number >= 0 in pixel units."""

    norm: str
    eps: float

    def __post_init__(self):
        if self.norm not in NORMS:
            raise UsageError(f"unknown norm {self.norm!r}; known: {', '.join(NORMS)}")
        if isinstance(self.eps, bool) or not isinstance(self.eps, (int, float)) \
                or not 0 <= self.eps < float("inf"):
            raise UsageError(f"eps must be a finite number >= 0, got {self.eps!r}")
        object.__setattr__(self, "eps", float(self.eps))

    def __str__(self) -> str:
        return f"{self.norm}, eps {self.eps:g}"

    def to_dict(self) -> dict:
        return {"norm": self.norm, "eps": self.eps}

    @classmethod
    def of(cls, row: dict) -> "ThreatModel | None":
        """The threat model a result row carries (None for clean and unbounded rows)."""
        value = row.get("threat_model")
        return None if value is None else cls(value["norm"], value["eps"])
