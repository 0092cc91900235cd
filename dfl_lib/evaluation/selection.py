"""Picking rows out of an evaluation table by what they are, never by parsing their names: the
threat model a row carries (`ThreatModel`) and what the attack registry says of its attack.

    worst_case(table, norm="Linf")           # the per-example worst case of that norm, or None
    strongest(table, objective="ce")         # the costliest white-box row on cross-entropy
    of_kind(table, "adaptive")               # the rows of adaptive attacks

`table` is a list of row dicts (an `EvalTable`, or the "table" of a metrics file).
"""
from __future__ import annotations

from collections.abc import Iterable

from ..attacks import REGISTRY
from .robust import WORST_CASE
from .threat import ThreatModel

__all__ = ["worst_case", "strongest", "of_kind"]


def worst_case(table: Iterable[dict], *, norm: str = "Linf") -> dict | None:
    """The worst-case row of the (first) threat model of `norm` in `table`, or None."""
    for row in table:
        threat = ThreatModel.of(row) if row["attack"] == WORST_CASE else None
        if threat is not None and threat.norm == norm:
            return row
    return None


def strongest(table: Iterable[dict], *, objective: str = "ce", kind: str = "white-box",
              exclude: Iterable[str] = ()) -> dict | None:
    """The row whose attack (of registry `kind`, maximising `objective`) costs the most passes
    per image, rows named in `exclude` left out; None when there is none."""
    skip = set(exclude)
    found = [(REGISTRY[r["attack"]].cost(r.get("settings", {}), 1.0), i, r)
             for i, r in enumerate(table) if r["attack"] in REGISTRY and r["name"] not in skip
             and REGISTRY[r["attack"]].kind == kind
             and REGISTRY[r["attack"]].objective == objective]
    return max(found, key=lambda t: (t[0], -t[1]))[2] if found else None


def of_kind(table: Iterable[dict], kind: str) -> list[dict]:
    """The rows whose attack has registry kind `kind` ("adaptive", "transfer", ...)."""
    return [r for r in table if r["attack"] in REGISTRY and REGISTRY[r["attack"]].kind == kind]
