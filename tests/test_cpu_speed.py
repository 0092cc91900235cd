"""This CPU against the reference CPU the estimates are calibrated on: the profiles train under
bf16 autocast, which a CPU without native bf16 (AVX2) ran 14x slower than fp32, and such a CPU
ran fp32 2x slower than the reference. The study measures the CPU first, estimates for it, and
warns where bf16 is slower than fp32."""
import pytest
import torch

from dfl_lib.experiments.configs import make_config
from dfl_lib.errors import UsageError
from dfl_lib.study.cpu_speed import (REFERENCE_CLEAN_BATCH_S, CpuSpeed, measure_cpu_speed,
                                     seconds_per_batch, speed_lines)
from dfl_lib.study.estimate import item_seconds
from dfl_lib.study.plan import study_plan

AVX2 = CpuSpeed(fp32_batch_s=2 * REFERENCE_CLEAN_BATCH_S,
                bf16_batch_s=20 * REFERENCE_CLEAN_BATCH_S, capability="AVX2", threads=2)


def _item(profile, role, precision):
    item = next(i for i in study_plan(profile) if i.role == role)
    return type(item)(item.key, item.cfg.replace(precision=precision), item.suite,
                      item.notebooks, item.role)


def test_an_fp32_item_scales_with_this_cpus_fp32_speed():
    item = _item("quick", "cell", "fp32")
    reference, _ = item_seconds(item, device="cpu")
    here, _ = item_seconds(item, device="cpu", cpu=AVX2)
    assert here == pytest.approx(2 * reference)


def test_a_bf16_training_item_counts_this_cpus_bf16_speed():
    """Training in bf16 on the AVX2 CPU: 2x (fp32) x 10x (bf16 slower than fp32) the reference
    fp32 time, where the reference estimate is its fp32 time / 1.45."""
    item = _item("quick-full", "depth", "bf16")  # training only
    fp32_reference, _ = item_seconds(_item("quick-full", "depth", "fp32"), device="cpu")
    assert item_seconds(item, device="cpu")[0] == pytest.approx(fp32_reference / 1.45)
    assert item_seconds(item, device="cpu", cpu=AVX2)[0] == pytest.approx(20 * fp32_reference)


def test_speed_lines_warn_only_where_bf16_is_slower_and_the_profile_uses_it():
    assert any(line.startswith("warning:") for line in speed_lines(AVX2, uses_bf16=True))
    assert not any(line.startswith("warning:") for line in speed_lines(AVX2, uses_bf16=False))
    fast = CpuSpeed(fp32_batch_s=0.14, bf16_batch_s=0.09, capability="AVX512", threads=2)
    lines = speed_lines(fast, uses_bf16=True)
    assert len(lines) == 1 and "AVX512" in lines[0] and "1.56x as fast" in lines[0]


def test_seconds_per_batch_names_the_images_it_needs():
    cfg = make_config("smoke", dataset="mnist")
    with pytest.raises(UsageError, match=f"needs {3 * cfg.batch_size} images"):
        seconds_per_batch(cfg, x=torch.rand(10, 1, 28, 28), y=torch.zeros(10, dtype=torch.long),
                          batches=2)


def test_measuring_this_cpu_times_both_precisions():
    speed = measure_cpu_speed(batches=1, batch_size=16)
    assert speed.fp32_batch_s > 0 and speed.bf16_batch_s > 0 and speed.capability
    assert speed.threads == torch.get_num_threads()
