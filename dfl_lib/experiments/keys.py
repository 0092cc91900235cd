"""What the keys of stored results (evaluations, poison metrics, poisoned sets) hash of a
config: its fields, with the device named as `device.key_device` names it, so that a result
asked for with "cpu" and with "auto" on a CPU-only machine is one result, not two."""
from __future__ import annotations

from ..config import RunConfig, keyed_fields
from ..device import key_device, resolve_device

__all__ = ["key_config", "device_aliases"]


def key_config(cfg: RunConfig) -> dict:
    """`cfg.to_dict()` with its device by `key_device`. Raises UsageError for a device this
    machine does not have, as `resolve_device` does."""
    return {**keyed_fields(cfg.to_dict()), "device": key_device(cfg.device)}


def device_aliases(name: str) -> tuple[str, ...]:
    """Every device name that means the device `name` resolves to here: `name`, what it resolves
    to ("cpu", "cuda") and "auto" where "auto" resolves there too; a stored result keyed over
    any of them is the same computation."""
    resolved = resolve_device(name)
    names = [name, str(resolved)] + (["auto"] if resolved == resolve_device("auto") else [])
    return tuple(dict.fromkeys(names))
