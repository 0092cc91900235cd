"""Data loading: every on-disk format read back exactly from small files written here, seeded
class-balanced subsets, the image-folder cache, read-only data roots, batch augmentation, and
(when ../shared/data exists) the real MNIST, Fashion-MNIST and CIFAR-10 JPEG copy."""
import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dfl_lib.data import formats as data_formats
from dfl_lib.data.augment import augment_batch
from dfl_lib.data.datasets import DATASETS, balanced_indices, load_dataset
from dfl_lib.errors import DataFileError

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]


# ----------------------------------------------------------------------------- writers

def snapshot(root: Path) -> dict:
    """Every file and folder under root with its size and mtime: equal before/after = no writes."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.stat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), root)] = (st.st_size, st.st_mtime_ns)
    return out


def write_idx(path: Path, arr: np.ndarray, *, gz: bool) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    payload = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(f"{path}.gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def write_mnist_like(root: Path, folder: str, *, gz: bool, seed: int = 0) -> dict:
    """IDX files with 7x5 (non-square, so H/W order is checked) images; returns what was written."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    arrays = {"x_train": rng.integers(0, 256, (30, 7, 5), dtype=np.uint8),
              "y_train": np.arange(30) % 10,
              "x_test": rng.integers(0, 256, (12, 7, 5), dtype=np.uint8),
              "y_test": (np.arange(12) * 3) % 10}
    for key, name in (("x_train", "train-images-idx3-ubyte"),
                      ("y_train", "train-labels-idx1-ubyte"),
                      ("x_test", "t10k-images-idx3-ubyte"),
                      ("y_test", "t10k-labels-idx1-ubyte")):
        write_idx(raw / name, arrays[key], gz=gz)
    return arrays


def write_cifar(root: Path, *, per_batch: int = 4, seed: int = 0) -> dict:
    """The real pickle format: dicts with bytes keys, data (N, 3072) uint8 channel-major."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    xs, ys = [], []
    for i in range(1, 7):
        x = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        y = list(rng.integers(0, 10, per_batch))
        name = f"data_batch_{i}" if i <= 5 else "test_batch"
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x.reshape(per_batch, 3072), b"labels": y,
                         b"batch_label": name.encode()}, f)
        xs.append(x)
        ys.append(np.array(y))
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CIFAR_CLASSES], b"num_vis": 3072}, f)
    return {"x_train": np.concatenate(xs[:5]), "y_train": np.concatenate(ys[:5]),
            "x_test": xs[5], "y_test": ys[5]}


def write_folder(root: Path, *, classes=("dog", "cat", "bird"), n_train=4, n_test=2, mode="RGB",
                 ext="png", seed: int = 0) -> dict:
    """Lossless (PNG or BMP) files under root/{train,test}/<class>/; returns the arrays in
    ImageFolder order."""
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        xs, ys = [], []
        for label, cls in enumerate(sorted(classes)):
            (root / split / cls).mkdir(parents=True)
            for j in range(n):
                img = rng.integers(0, 256, (6, 5, channels), dtype=np.uint8)
                Image.fromarray(img[..., 0] if mode == "L" else img, mode=mode).save(
                    root / split / cls / f"{j:03d}.{ext}")
                xs.append(img.transpose(2, 0, 1))
                ys.append(label)
        out[f"x_{split}"], out[f"y_{split}"] = np.stack(xs), np.array(ys)
    return out


def assert_matches(data, written: dict) -> None:
    """Loaded splits (no subsets, no val) equal the written arrays exactly."""
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        assert x.dtype == torch.uint8 and y.dtype == torch.int64
        assert np.array_equal(x.numpy(), written[f"x_{split}"])
        assert np.array_equal(y.numpy(), written[f"y_{split}"])
    assert len(data.y_val) == 0 and data.x_val.shape[1:] == data.x_train.shape[1:]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("DFL_CACHE_DIR", str(path))
    return path


# ----------------------------------------------------------------------------- formats

@pytest.mark.parametrize("name,folder,source", [("mnist", "MNIST", "MNIST"),
                                                ("fashion_mnist", "FashionMNIST", "Fashion-MNIST")])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_read_exactly(tmp_path, name, folder, source, gz):
    written = write_mnist_like(tmp_path, folder, gz=gz)
    before = snapshot(tmp_path)
    data = load_dataset(name, root=tmp_path)
    assert snapshot(tmp_path) == before
    assert data.x_train.shape == (30, 1, 7, 5) and data.x_test.shape == (12, 1, 7, 5)
    assert_matches(data, {k: v[:, None] if k.startswith("x") else v for k, v in written.items()})
    assert (data.source, data.num_classes, data.in_channels) == (source, 10, 1)
    assert data.image_size == (7, 5)
    assert data.augment is False


def test_idx_root_from_environment(tmp_path, monkeypatch):
    written = write_mnist_like(tmp_path, "MNIST", gz=True)
    monkeypatch.setenv("DFL_DATA_DIR", str(tmp_path))
    assert np.array_equal(load_dataset("mnist").y_test.numpy(), written["y_test"])


def test_download_goes_through_torchvision_only_when_asked(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    calls = []

    class FakeMNIST:  # stands in for the network: writes the files torchvision would
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            write_mnist_like(Path(root), "MNIST", gz=True)
    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    with pytest.raises(FileNotFoundError):
        load_dataset("mnist", root=tmp_path)  # download=False by default
    assert calls == []
    assert load_dataset("mnist", root=tmp_path, download=True).x_train.shape == (30, 1, 7, 5)
    assert calls == [(str(tmp_path), True, True)]
    load_dataset("mnist", root=tmp_path, download=True)  # files present: no second download
    assert len(calls) == 1


def test_cifar_pickles_read_exactly(tmp_path):
    written = write_cifar(tmp_path)
    before = snapshot(tmp_path)
    data = load_dataset("cifar10", root=tmp_path)
    assert snapshot(tmp_path) == before
    assert_matches(data, written)
    assert data.x_train.shape == (20, 3, 32, 32)
    assert data.classes == CIFAR_CLASSES and data.source == "CIFAR-10" and data.augment is True


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_image_folder_read_exactly(tmp_path, cache, mode):
    root = tmp_path / "folder"
    written = write_folder(root, mode=mode)
    before = snapshot(root)
    data = load_dataset("image_folder", path=root)
    assert snapshot(root) == before
    assert data.classes == ["bird", "cat", "dog"]  # sorted folder names, as ImageFolder
    assert data.x_train.shape == (12, 3 if mode == "RGB" else 1, 6, 5)
    assert_matches(data, written)
    assert len(list(cache.glob("*.npz"))) == 1  # whole folder decoded -> cached, outside the root


@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW"])
def test_npz_layouts_become_nchw(tmp_path, layout):
    rng = np.random.default_rng(1)
    x = {s: rng.integers(0, 256, (n, 3, 6, 5), dtype=np.uint8)
         for s, n in (("train", 9), ("test", 4))}
    if layout == "NHW":
        x = {s: v[:, :1] for s, v in x.items()}
    stored = {s: v[:, 0] if layout == "NHW" else v.transpose(0, 2, 3, 1) if layout == "NHWC" else v
              for s, v in x.items()}
    path = tmp_path / "d.npz"
    np.savez(path, x_train=stored["train"], y_train=np.arange(9) % 3, x_test=stored["test"],
             y_test=np.array([2, 0, 1, 2], dtype=np.int32))
    data = load_dataset("npz", path=path)
    assert_matches(data, {"x_train": x["train"], "y_train": np.arange(9) % 3, "x_test": x["test"],
                          "y_test": np.array([2, 0, 1, 2])})
    assert data.classes == ["0", "1", "2"] and data.source == "npz file d.npz"


def test_npz_rejects_float_images(tmp_path):
    path = tmp_path / "f.npz"
    np.savez(path, x_train=np.zeros((2, 4, 4)), y_train=np.zeros(2, int),
             x_test=np.zeros((1, 4, 4)), y_test=np.zeros(1, int))
    with pytest.raises(DataFileError, match="uint8") as err:  # the file is wrong, not the call
        load_dataset("npz", path=path)
    assert str(path) in str(err.value)


# ----------------------------------------------------------------------------- errors

def test_missing_files_error_names_every_path(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("mnist", root=tmp_path)
    msg = str(err.value)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        assert str(tmp_path / "MNIST" / "raw" / name) in msg
    assert str(tmp_path.resolve()) in msg and "DFL_DATA_DIR" in msg
    assert list(tmp_path.iterdir()) == []  # download=False never creates anything


def test_cifar10_missing_points_to_jpeg_copy(tmp_path):
    (tmp_path / "cifar10-jpeg" / "train").mkdir(parents=True)  # no silent fallback to it
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("cifar10", root=tmp_path)
    msg = str(err.value)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        assert str(tmp_path / "cifar-10-batches-py" / name) in msg
    assert "cifar10_jpeg" in msg


def test_bad_arguments(synthetic_npz):
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*cifar10_jpeg.*mnist"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="n_train must be an integer >= 0"):
        load_dataset("npz", path=synthetic_npz, n_train=-1)
    with pytest.raises(ValueError, match="n_train=400 is larger than the 320"):
        load_dataset("npz", path=synthetic_npz, n_train=400)
    with pytest.raises(ValueError, match="n_train=300 is larger than the 120 .*n_val=200"):
        load_dataset("npz", path=synthetic_npz, n_train=300, n_val=200)
    with pytest.raises(ValueError, match="n_test=81"):
        load_dataset("npz", path=synthetic_npz, n_test=81)
    with pytest.raises(ValueError, match="needs path="):
        load_dataset("npz")
    with pytest.raises(ValueError, match="download=True works for mnist, fashion_mnist, cifar10"):
        load_dataset("npz", path=synthetic_npz, download=True)
    assert set(DATASETS) == {"mnist", "fashion_mnist", "cifar10", "cifar10_jpeg", "image_folder",
                             "npz"}


# ----------------------------------------------------------------------------- subsets

@pytest.fixture
def numbered_npz(tmp_path) -> Path:
    """4 classes, uneven counts; pixels (0, 0) and (0, 1) of image i encode i, so splits can be
    traced back to their source rows."""
    y = np.array([0] * 30 + [1] * 25 + [2] * 40 + [3] * 12)
    np.random.default_rng(2).shuffle(y)
    x = np.zeros((len(y), 4, 4), dtype=np.uint8)
    x[:, 0, 0], x[:, 0, 1] = np.arange(len(y)) // 256, np.arange(len(y)) % 256
    path = tmp_path / "numbered.npz"
    np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y)
    return path


def ids(x: torch.Tensor) -> np.ndarray:
    return x[:, 0, 0, 0].long().numpy() * 256 + x[:, 0, 0, 1].long().numpy()


def test_subsets_balanced_seeded_disjoint(numbered_npz):
    source_y = np.load(numbered_npz)["y_train"]
    data = load_dataset("npz", path=numbered_npz, n_val=12, n_train=22, n_test=10, seed=3)
    assert data.y_val.bincount(minlength=4).tolist() == [3, 3, 3, 3]
    assert data.y_train.bincount(minlength=4).tolist() == [6, 6, 5, 5]  # remainder to the first
    assert data.y_test.bincount(minlength=4).tolist() == [3, 3, 2, 2]
    val, train = ids(data.x_val), ids(data.x_train)
    assert not set(val) & set(train)
    assert np.array_equal(source_y[train], data.y_train.numpy())  # labels follow their images
    again = load_dataset("npz", path=numbered_npz, n_val=12, n_train=22, n_test=10, seed=3)
    other = load_dataset("npz", path=numbered_npz, n_val=12, n_train=22, n_test=10, seed=4)
    assert again.fingerprint == data.fingerprint and np.array_equal(ids(again.x_train), train)
    assert other.fingerprint != data.fingerprint and not np.array_equal(ids(other.x_train), train)
    rest = load_dataset("npz", path=numbered_npz, n_val=12, seed=3)  # n_train=None: all the rest
    assert sorted(set(ids(rest.x_train)) | set(ids(rest.x_val))) == list(range(len(source_y)))


def test_balanced_indices_short_class_gives_all_it_has():
    labels = torch.tensor([0] * 10 + [1] * 2 + [2] * 10)
    idx = balanced_indices(labels, n=15, num_classes=3, generator=torch.Generator().manual_seed(0))
    assert labels[idx].bincount().tolist() == [7, 2, 6]
    assert idx.tolist() == sorted(set(idx.tolist()))


def test_statistics_and_fingerprint(synthetic_npz):
    data = load_dataset("npz", path=synthetic_npz, n_train=100)
    x = data.x_train.numpy() / 255.0
    assert data.mean == pytest.approx(tuple(x.mean(axis=(0, 2, 3))), abs=1e-9)
    assert data.std == pytest.approx(tuple(x.std(axis=(0, 2, 3))), abs=1e-9)
    f = data.to_float(data.x_test)
    assert f.dtype == torch.float32 and 0 <= float(f.min()) and float(f.max()) <= 1
    assert torch.equal((f * 255).round().to(torch.uint8), data.x_test)
    assert len(data.fingerprint) == 16 and int(data.fingerprint, 16) >= 0


# ----------------------------------------------------------------------------- image-folder cache

def test_cache_reused_then_invalidated(tmp_path, cache, monkeypatch):
    root = tmp_path / "folder"
    write_folder(root, ext="bmp")  # uncompressed: new pixels keep the file size, only mtime moves
    first = load_dataset("image_folder", path=root)
    (cached,) = cache.glob("*.npz")
    real_decode = data_formats.decode_images

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded although the cache is valid")
    monkeypatch.setattr(data_formats, "decode_images", no_decode)
    second = load_dataset("image_folder", path=root)
    assert second.fingerprint == first.fingerprint and torch.equal(second.x_train, first.x_train)

    # new pixels, same size: only the mtime tells (set explicitly: coarse clocks may not move)
    target = root / "train" / "cat" / "001.bmp"
    size, new = target.stat().st_size, np.full((6, 5, 3), 7, dtype=np.uint8)
    Image.fromarray(new).save(target)
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert st.st_size == size
    with pytest.raises(AssertionError, match="decoded although"):
        load_dataset("image_folder", path=root)
    monkeypatch.setattr(data_formats, "decode_images", real_decode)
    third = load_dataset("image_folder", path=root)
    assert np.array_equal(third.x_train[5].numpy(), new.transpose(2, 0, 1))  # bird 0-3, cat 4-7
    (recached,) = cache.glob("*.npz")  # the stale cache was replaced, not kept beside it
    assert recached != cached
    assert not list(cache.glob("*.tmp"))


def test_the_cache_is_named_by_each_files_path_relative_to_the_folder(tmp_path, cache):
    """The listing's signature names the cache: every file by its path relative to the folder
    (as os.path.relpath gives it), size and mtime; a nested sub-folder included. A change in
    how the relative path is computed must not move an existing cache."""
    import hashlib

    root = tmp_path / "folder"
    write_folder(root, n_train=2, n_test=1)
    nested = root / "train" / "cat" / "more"
    nested.mkdir()
    Image.fromarray(np.zeros((6, 5, 3), dtype=np.uint8)).save(nested / "x.png")
    load_dataset("image_folder", path=root)
    (cached,) = cache.glob("*.npz")
    folder = root.resolve()
    sig = hashlib.sha256(f"{data_formats._CACHE_VERSION}|{folder}".encode())
    for split in ("train", "test"):
        files, stats, _, _ = data_formats.list_image_folder(
            folder / split, classes=None if split == "train" else ["bird", "cat", "dog"])
        for f, st in zip(files, stats):
            rel = os.path.relpath(f, folder)
            sig.update(f"{split}|{rel}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    assert cached.name.endswith(f"-{sig.hexdigest()[:16]}.npz")
    assert any("more" in f for f in data_formats.list_image_folder(folder / "train")[0])


@pytest.fixture
def decoded(monkeypatch) -> list:
    """The files image folders decode from now on, in order."""
    files = []
    real_decode = data_formats.decode_images

    def counting(paths, **kwargs):
        files.extend(paths)
        return real_decode(paths, **kwargs)
    monkeypatch.setattr(data_formats, "decode_images", counting)
    return files


def test_small_subset_decodes_only_chosen_files(tmp_path, cache, decoded):
    root = tmp_path / "folder"
    write_folder(root, n_train=20, n_test=10)
    part = load_dataset("image_folder", path=root, n_val=3, n_train=6, n_test=3, seed=5)
    assert len(decoded) == 12 and not cache.exists()  # no cache written for a partial decode
    load_dataset("image_folder", path=root)  # full decode, cached
    from_cache = load_dataset("image_folder", path=root, n_val=3, n_train=6, n_test=3, seed=5)
    assert from_cache.fingerprint == part.fingerprint


def test_a_whole_split_decodes_the_folder_once_and_caches_it(tmp_path, cache, decoded):
    """A run evaluates on its whole test split: a few training images beside it still decode the
    whole folder once, cached, so the next run decodes nothing."""
    root = tmp_path / "folder"
    write_folder(root, n_train=40, n_test=4)
    # 3 classes: 120 training and 12 test images; 3 + 6 + 12 chosen (16%), the test split whole
    first = load_dataset("image_folder", path=root, n_val=3, n_train=6, seed=1, n_test=None)
    assert len(decoded) == 132 and len(list(cache.glob("*.npz"))) == 1
    again = load_dataset("image_folder", path=root, n_val=3, n_train=6, seed=1, n_test=None)
    assert len(decoded) == 132 and again.fingerprint == first.fingerprint


def test_cache_inside_data_root_refused(tmp_path, monkeypatch):
    root = tmp_path / "folder"
    write_folder(root)
    monkeypatch.setenv("DFL_CACHE_DIR", str(root / "cache"))
    with pytest.raises(ValueError, match="inside the data folder"):
        load_dataset("image_folder", path=root)


# ----------------------------------------------------------------------------- augmentation

def test_augment_shape_dtype_identity():
    g = torch.Generator().manual_seed(0)
    x8 = torch.randint(0, 256, (5, 3, 8, 6), dtype=torch.uint8, generator=g)
    for x in (x8, x8.float() / 255):
        out = augment_batch(x, generator=g)
        assert out.shape == x.shape and out.dtype == x.dtype
        assert torch.equal(augment_batch(x, pad=0, flip=False), x)


def test_augment_flip_only_mirrors():
    x = torch.randint(0, 256, (64, 2, 5, 7), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(1))
    out = augment_batch(x, generator=torch.Generator().manual_seed(2), pad=0, flip=True)
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(3)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 0 < int(mirrored.sum()) < 64


def test_augment_is_a_per_sample_shifted_crop_of_the_padded_image():
    pad, h, w = 4, 8, 6
    one = torch.randint(1, 256, (1, 3, h, w), dtype=torch.uint8,
                        generator=torch.Generator().manual_seed(3))
    x = one.repeat(32, 1, 1, 1)  # identical inputs: differences come from per-sample randomness
    out = augment_batch(x, generator=torch.Generator().manual_seed(4), pad=pad)
    padded = torch.nn.functional.pad(one[0], (pad, pad, pad, pad))
    windows = {}
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, dy:dy + h, dx:dx + w]
            windows[(dy, dx, False)], windows[(dy, dx, True)] = crop, crop.flip(2)
    found = [next((k for k, c in windows.items() if torch.equal(c, o)), None) for o in out]
    assert None not in found  # every output is some shifted (maybe mirrored) window
    # shifts differ between samples, with dy and dx drawn independently (at most 9 pairs if not)
    assert len({k[:2] for k in found}) > 2 * pad + 1 and len({k[2] for k in found}) == 2
    again = augment_batch(x, generator=torch.Generator().manual_seed(4), pad=pad)
    assert torch.equal(again, out)  # same generator seed, same augmentation


# ----------------------------------------------------------------------------- real data

def test_real_mnist(real_data_root):
    before = snapshot(real_data_root / "MNIST")
    data = load_dataset("mnist", root=real_data_root)
    assert snapshot(real_data_root / "MNIST") == before
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert data.y_train.bincount().tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265,
                                                5851, 5949]


def test_real_fashion_mnist(real_data_root):
    data = load_dataset("fashion_mnist", root=real_data_root, n_train=1000, n_test=500)
    assert data.x_train.shape == (1000, 1, 28, 28) and data.num_classes == 10
    assert data.y_train.bincount().tolist() == [100] * 10 and data.classes[9] == "Ankle boot"


def jpeg_root(real_data_root) -> Path:
    if not (real_data_root / "cifar10-jpeg" / "train").is_dir():
        pytest.skip(f"no CIFAR-10 JPEG copy at {real_data_root / 'cifar10-jpeg'}")
    return real_data_root


def test_real_cifar10_jpeg_subset(real_data_root, cache):
    root = jpeg_root(real_data_root)
    before = snapshot(root / "cifar10-jpeg")
    data = load_dataset("cifar10_jpeg", root=root, n_train=200, n_val=50, n_test=100)
    assert snapshot(root / "cifar10-jpeg") == before
    assert data.x_train.shape == (200, 3, 32, 32) and data.x_test.shape == (100, 3, 32, 32)
    assert data.classes == CIFAR_CLASSES and data.source == "CIFAR-10 (JPEG copy)"
    assert data.augment is True and data.y_val.bincount().tolist() == [5] * 10


@pytest.mark.slow
def test_real_cifar10_jpeg_full_decode_and_cache(real_data_root, cache):
    """Decodes all 60,000 JPEGs once (about 14 s on one core), then reads them from the cache."""
    root = jpeg_root(real_data_root)
    decoded_subset = load_dataset("cifar10_jpeg", root=root, n_train=200, n_val=50, n_test=100)
    assert not cache.exists()  # a small subset decodes only its own files
    full = load_dataset("cifar10_jpeg", root=root)
    assert full.x_train.shape == (50000, 3, 32, 32) and full.x_test.shape == (10000, 3, 32, 32)
    assert full.y_train.bincount().tolist() == [5000] * 10
    assert full.mean == pytest.approx((0.4914, 0.4822, 0.4465), abs=0.005)  # CIFAR-10's own values
    assert len(list(cache.glob("*.npz"))) == 1
    cached_subset = load_dataset("cifar10_jpeg", root=root, n_train=200, n_val=50, n_test=100)
    assert cached_subset.fingerprint == decoded_subset.fingerprint
