"""Multi-process training on torch.distributed (DistributedDataParallel), for runs that outgrow
one GPU. Launched by torchrun, the usual entry point trains as one process would on the same
global batch:

    torchrun --nproc_per_node 2 -m dfl_lib train --profile paper --set dataset=cifar10 ...

- every process draws the same shuffled order (same seed) and takes a strided shard of each
  global batch (positions rank, rank + W, ...), so the first k of the global batch, the ones
  a single process attacks, are exactly the first k / W of the shards together;
- each process attacks its own shard (eval mode: no communication);
- BatchNorm normalises with the statistics of the whole global batch (`GlobalBatchNorm`: two
  differentiable all-reduces, of the per-channel fp32 sums and count, then of the squared
  deviations from the global mean), so the forward pass equals one process's;
- DDP averages the gradients of the model AND the loss (the PCL's centroids stay in sync);
- rank 0 alone writes the run folder; the others read what it wrote.

With W processes on a CPU, give each OMP_NUM_THREADS = cores / W (gloo backend). What differs
from one process: the attack's random draws (PGD's random start; CIFAR-10's crops, by contrast,
are drawn for the global batch on every rank, so they match) come from each rank's own
generator: different draws of the same distribution. The test trains with an
attack that draws nothing (FGSM) and matches one process to float tolerance.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_reduce

from ..numerics import stat_dtype

__all__ = ["Shard", "current_shard", "init_from_env", "local_device", "GlobalBatchNorm", "use_global_batchnorm",
           "is_main", "barrier", "all_sum", "global_moments"]


@dataclass(frozen=True)
class Shard:
    """This process's place: rank in 0..world-1."""
    rank: int = 0
    world: int = 1

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        """The strided shard (positions rank, rank + world, ...) of a global batch's indices."""
        return idx[self.rank::self.world]


def init_from_env(device: torch.device) -> Shard:
    """The process group torchrun describes ($WORLD_SIZE > 1), started once: gloo on the CPU,
    nccl on CUDA (each rank on cuda:$LOCAL_RANK). One process: Shard(0, 1), nothing started."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Shard()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return current_shard()


def local_device(device: torch.device) -> torch.device:
    """Under torchrun on GPUs each process takes cuda:$LOCAL_RANK; a CPU stays the CPU."""
    if device.type != "cuda":
        return device
    local = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.cuda.set_device(local)
    return local


def current_shard() -> Shard:
    if not (dist.is_available() and dist.is_initialized()):
        return Shard()
    return Shard(rank=dist.get_rank(), world=dist.get_world_size())


def is_main() -> bool:
    return current_shard().rank == 0


def barrier() -> None:
    if current_shard().world > 1:
        dist.barrier()


def all_sum(values: list[float]) -> list[float]:
    """Element-wise sum of a list of numbers over every process (identity for one process)."""
    if current_shard().world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def global_moments(x: torch.Tensor, *,
                   reduce=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-channel mean (C,), biased variance (C,) and count (1,) of x (N, C, H, W) over the
    global batch, in `stat_dtype(x)` (fp32 under bf16 autocast), differentiable.

    `reduce` sums a tensor over every process (default: torch.distributed.nn.functional's
    differentiable all_reduce; pass `lambda t: t` for one process without a group). Two passes
    (Chan, Golub & LeVeque 1983, the two-pass algorithm; torch's SyncBatchNorm combines
    per-process means and variances to the same end) avoid the one-pass E[x^2] - E[x]^2, which
    cancels catastrophically once |mean| >> std (bf16, mean 3 or 8, std 1: the batch variance
    4-6% off on a (64, 4, 8, 8) batch): (1) all-reduce the sums and counts, giving the global
    mean; (2) all-reduce the sums of squared deviations from that global mean. The count
    travels in the same dtype: exact up to 2^24 values per channel in fp32 (a global batch of
    16384 32x32 maps).
    Raises ValueError when the global batch holds a single value per channel (no variance), as
    torch's BatchNorm does.
    """
    reduce = all_reduce if reduce is None else reduce
    c = x.shape[1]
    xs = x.to(stat_dtype(x))  # a no-op for fp32 input
    n = torch.full((1,), x.numel() / c, dtype=xs.dtype, device=x.device)
    first = reduce(torch.cat([xs.sum(dim=(0, 2, 3)), n]))  # (C + 1,): sums, count
    count = first[c:]
    # the global count only needs reading (a device sync) when this shard alone cannot show it
    if x.numel() // c <= 1 and float(count) <= 1:
        raise ValueError(f"expected more than 1 value per channel when training, got input "
                         f"{tuple(x.shape)} over the global batch")
    mean = first[:c] / count
    dev = xs - mean.view(1, c, 1, 1)
    var = reduce((dev * dev).sum(dim=(0, 2, 3))) / count  # biased, as BatchNorm normalises
    return mean, var, count


class GlobalBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are those of the global batch (all processes,
    `global_moments`: fp32 two-pass mean and variance, differentiably all-reduced), so forward
    and backward equal one process's BatchNorm over the whole batch, up to float rounding. The
    output has x's dtype, as torch's BatchNorm2d under autocast. Eval mode and one process:
    plain BatchNorm2d. x: (N, C, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or current_shard().world == 1:
            return super().forward(x)
        mean, var, count = global_moments(x)
        with torch.no_grad():
            self.num_batches_tracked += 1
            m = self.momentum
            # running_var takes the unbiased variance, as torch's BatchNorm does
            self.running_mean.mul_(1 - m).add_(m * mean.detach().to(self.running_mean.dtype))
            self.running_var.mul_(1 - m).add_(
                m * (var.detach() * count / (count - 1)).to(self.running_var.dtype))
        shape = (1, x.shape[1], 1, 1)
        xs = x.to(mean.dtype)
        scale = self.weight.view(shape) * torch.rsqrt(var.view(shape) + self.eps)
        return ((xs - mean.view(shape)) * scale + self.bias.view(shape)).to(x.dtype)


def use_global_batchnorm(model: nn.Module) -> nn.Module:
    """Every BatchNorm2d of `model` turned into a GlobalBatchNorm in place (same parameters and
    buffers); returns the model."""
    for module in model.modules():
        if type(module) is nn.BatchNorm2d:
            if module.momentum is None or not module.affine or not module.track_running_stats:
                raise ValueError("GlobalBatchNorm covers affine BatchNorm2d with a momentum and "
                                 "running statistics (the models here)")
            module.__class__ = GlobalBatchNorm
    return model
