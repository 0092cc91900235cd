"""Plan-item runners the worker tests hand to `run_parallel` (importable by name in a spawned
worker): the study's own, and one that kills its worker the first time it meets a given item."""
from __future__ import annotations

import os
from pathlib import Path

from dfl_lib.study.runner import run_item


def run_or_die_once(item, *, die_on: str, marker: str, **kwargs):
    """`run_item`, except that the first time `item.key == die_on` the worker process dies (as
    a kill or an out-of-memory end would), after the item's run has begun: a marker file says
    it already died once."""
    if item.key == die_on and not Path(marker).exists():
        Path(marker).write_text("died once")
        os._exit(9)
    return run_item(item, **kwargs)


def run_and_log(item, *, log: str, **kwargs) -> dict:
    """A plan item that does no work but append its key to the file `log` (the order in which
    items run is what is watched)."""
    with open(log, "a") as f:
        f.write(item.key + "\n")
    return {}
