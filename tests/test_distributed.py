"""Multi-process training: `torchrun --nproc_per_node 2 -m dfl_lib train ...` (gloo, 2 processes
of 1 thread, so together they stay within 2 cores) trains the same model as one process on the
same data and global batch, up to float tolerance: strided shards, each process attacking its
own, BatchNorm over the global batch, gradients of model and PCL centroids averaged, rank 0
writing the run folder."""
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from dfl_lib.runs import io as runio
from dfl_lib.training.distributed import GlobalBatchNorm, Shard, use_global_batchnorm

# FGSM without random start draws nothing at random inside the batch: the two runs can match
ARGS = ["--profile", "smoke", "--set", "epochs=2", "--set", "batch_size=32", "--set", "width=4",
        "--set", "dfl=true", "--set", "loss=pcl", "--set", "train_attack=fgsm",
        "--set", "eps=0.1", "--set", "channels_last=false", "--set", "n_eval=40", "--quiet"]


def test_strided_shards_cover_the_batch_and_the_attacked_part():
    idx = torch.arange(64)
    shards = [Shard(rank=r, world=2).take(idx) for r in range(2)]
    assert sorted(torch.cat(shards).tolist()) == list(range(64))
    # the first half of each shard is exactly the first half of the global batch
    assert sorted(torch.cat([s[:16] for s in shards]).tolist()) == list(range(32))


def test_global_batchnorm_is_batchnorm_in_one_process():
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    converted = use_global_batchnorm(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)))
    converted.load_state_dict(plain.state_dict())
    assert isinstance(converted[1], GlobalBatchNorm)
    x = torch.randn(16, 3, 10, 10)
    assert torch.equal(plain(x), converted(x))


def _train(tmp_path, npz, *, processes: int):
    """The run `train` makes: one process is the entry point called here, on one thread (a
    subprocess of its own imported torch again); two are torchrun's."""
    runs = tmp_path / f"runs{processes}"
    args = ["train", *ARGS, "--set", "dataset=npz", "--set", f"data_path={npz}", "--runs-dir",
            str(runs)]
    if processes == 1:
        from dfl_lib.__main__ import main

        threads, saved = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
        try:
            os.environ["OMP_NUM_THREADS"] = "1"  # main() sets torch's threads from it
            assert main(args) == 0
        finally:
            if saved is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = saved
            torch.set_num_threads(threads)
    else:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                              f"--nproc_per_node={processes}", "-m", "dfl_lib", *args],
                             env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (folder,) = [p for p in runs.iterdir() if p.is_dir()]
    assert (folder / "done.json").exists()
    return runio.load_checkpoint(folder / runio.CHECKPOINT_NAME)


@pytest.mark.slow
def test_two_processes_train_what_one_process_trains(tmp_path, synthetic_npz):
    one = _train(tmp_path, synthetic_npz, processes=1)
    two = _train(tmp_path, synthetic_npz, processes=2)
    for part in ("model", "loss"):  # weights, BatchNorm statistics, the PCL's centroids
        assert one[part].keys() == two[part].keys()
        for name, value in one[part].items():
            if value.is_floating_point():
                # float rounding differs (two processes sum in another order; GlobalBatchNorm
                # all-reduces fp32 sums, then the squared deviations from the global mean)
                scale = max(1.0, float(value.abs().max()))
                assert torch.allclose(value, two[part][name], rtol=1e-3, atol=1e-4 * scale), name
    for a, b in zip(one["history"], two["history"], strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["val_acc"] == pytest.approx(a["val_acc"], abs=1e-6)
