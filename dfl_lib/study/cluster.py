"""The plan on a cluster, through Dask distributed (an established engine, not ours): every
group of plan items (`workers.item_groups`) is one task on a Dask worker, its results written
to a runs folder every worker sees (a shared file system), the records sent back here.

    dask scheduler                                       # on one machine: tcp://host:8786
    dask worker tcp://host:8786 --nworkers 8 --nthreads 1 [--resources GPU=1]   # on each node
    python -m dfl_lib study --profile quick --cluster tcp://host:8786 --threads 2 \\
        --runs-dir /shared/runs/quick

On SLURM, dask-jobqueue starts the workers as jobs (`SLURMCluster(cores=..., memory=...,
processes=...)`, `cluster.scale(jobs=4)`) and its scheduler_address is the address to
give. Start workers with `--nthreads 1` (one task per process: a task sets its process's
torch threads to `--threads`) and, on GPU nodes, `--resources GPU=1` (a task on a CUDA device
asks for one). Without `--cluster` the plan runs on local processes (`workers.run_parallel`'s
own pool), the embedded default.

Dask reschedules a task whose worker died (its run resumes from its checkpoint, as locally) and
gives up after its `distributed.scheduler.allowed-failures`, raising KilledWorker.

`distributed` is an optional dependency (the `cluster` extra); it is imported only here, when a
cluster is asked for.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

from ..errors import UsageError

__all__ = ["dask_pool"]


def dask_pool(address, *, gpu: bool = False, timeout: float = 30) -> Callable[[], Executor]:
    """A pool factory for `workers.run_parallel(pool=...)`: a concurrent.futures Executor
    whose tasks run on the Dask cluster at `address` (a scheduler address such as
    "tcp://host:8786", or a `distributed` cluster object such as a LocalCluster or dask-jobqueue's
    SLURMCluster). gpu: each task asks for the worker resource GPU=1; timeout: seconds to wait
    for the scheduler. Raises UsageError when
    `distributed` is not installed or the scheduler cannot be reached."""
    try:
        # optional heavy dependency (the cluster extra): only a cluster run needs it
        from distributed import Client
    except ImportError:
        raise UsageError("--cluster needs Dask distributed: pip install 'dfl-study[cluster]' "
                         "(or: pip install distributed)") from None
    try:
        client = Client(address, timeout=timeout)
    except OSError as err:
        raise UsageError(f"no Dask scheduler at {address}: {err}") from None
    resources = {"GPU": 1} if gpu else None

    def pool() -> Executor:
        # pure=False: a group resubmitted after a failure is run again, never taken from cache
        return client.get_executor(pure=False, resources=resources)

    return pool
