"""studies/gpu_check.py (issue 37, item 6): the data packed within the GPU machine's limit, the
epochs sized from a measured speed, and the whole check's code path run at tiny sizes on the CPU
(the GPU machine is lent only now and then: its one command must not be its first test)."""
import importlib.util
import json
import sys
import tarfile
from pathlib import Path

import pytest

from dfl_lib.errors import UsageError

STUDIES = Path(__file__).resolve().parents[1] / "studies"
sys.path.insert(0, str(STUDIES))
_spec = importlib.util.spec_from_file_location("gpu_check", STUDIES / "gpu_check.py")
gc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gc)


@pytest.fixture(scope="module")
def packed(real_data_root, tmp_path_factory):
    if not (real_data_root / "cifar10-jpeg" / "train").is_dir():
        pytest.skip(f"no CIFAR-10 JPEG copy at {real_data_root}")
    out = tmp_path_factory.mktemp("gpu-check") / "data"
    return out, gc.pack(data_dir=real_data_root, out=out, train_per_class=10, test_per_class=6)


def test_pack_carries_the_first_files_of_every_class_and_all_of_mnist(packed, real_data_root):
    out, summary = packed
    assert (summary["cifar_train"], summary["cifar_test"]) == (100, 60)
    with tarfile.open(out / "cifar10-jpeg.tar.gz") as tar:
        names = tar.getnames()
    for cls in gc.CIFAR_CLASSES:
        train = sorted(n for n in names if n.startswith(f"cifar10-jpeg/train/{cls}/"))
        first = sorted((real_data_root / "cifar10-jpeg" / "train" / cls).glob("*.jpg"))[:10]
        assert [Path(n).name for n in train] == [f.name for f in first]
    assert sorted(p.name for p in (out / "MNIST" / "raw").iterdir()) == sorted(
        p.name for p in (real_data_root / "MNIST" / "raw").glob("*.gz"))


def test_pack_refuses_more_than_the_machine_takes(real_data_root, tmp_path):
    if not (real_data_root / "cifar10-jpeg" / "train").is_dir():
        pytest.skip("no CIFAR-10 JPEG copy")
    with pytest.raises(UsageError, match=r"MiB, over the 1 MiB allowed"):
        gc.pack(data_dir=real_data_root, out=tmp_path, train_per_class=2, test_per_class=1,
                max_mib=1.0)


def test_unpack_names_what_a_packed_folder_holds(tmp_path):
    with pytest.raises(UsageError, match="not a packed GPU-check folder.*cifar10-jpeg.tar"):
        gc.unpack(data=tmp_path, root=tmp_path / "root")


def test_the_epochs_grow_with_the_budget_and_stay_within_it():
    fast = 1e-15  # seconds per FLOP: about 1 PFLOP/s
    sizes = [gc.size_epochs(seconds_per_flop=fast, budget_s=b, n_train=27_000, device="cpu",
                            tiny=False) for b in (60, 240, 960)]
    epochs = [e for e, _ in sizes]
    assert epochs == sorted(epochs) and epochs[0] < epochs[-1] <= gc.MAX_EPOCHS
    for (e, predicted), budget in zip(sizes, (60, 240, 960)):
        assert predicted <= gc.MARGIN * budget or e == 1


@pytest.mark.study
def test_the_check_runs_at_tiny_size_on_the_cpu(packed, tmp_path):
    data, _ = packed
    out = tmp_path / "out"
    report = gc.run(data=data, out=out, budget_s=600, device="cpu", work=tmp_path / "work",
                    tiny=True)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    # what the GPU machine sends back: at most 8 files of at most 16 MiB
    assert 1 <= len(files) <= 8 and all(f.stat().st_size < 16 * 2**20 for f in files)
    saved = json.loads((out / "gpu-check.json").read_text())
    keys = [c["key"] for c in saved["cells"]]
    cifar = [k for k in keys if k.startswith("cifar10_jpeg")]
    assert len(cifar) == 2 * len(gc.CIFAR_ROWS) + len(gc.CIFAR_HEADLINE)
    assert {k for k in keys if k.startswith("mnist")} == {i.key for i in gc.mnist_items(
        device="cpu")}
    assert all(c.get("table") for c in saved["cells"]), "a cell was not run"
    assert saved["sizing"]["epochs"] == 1 and report["wall_s"] > 0
    # the tiny models are far below CIFAR-10's regime, and the gate says so
    assert saved["regime"]["reason"].startswith("below regime")
    text = (out / "README.md").read_text()
    assert "not testable here" in text and "| dfl | adversarial training |" in text
    # the MNIST cells stand beside the committed CPU study's means
    assert {r["row"] for r in saved["mnist_vs_cpu"]} == {"resnet", "dfl_pcl"}
    with tarfile.open(out / "runs.tar.gz") as tar:
        assert any(n.endswith("metrics-headline.json") for n in tar.getnames())
