"""Data hygiene: what lies in a data folder but is not data is skipped with a warning naming it
(never a class), and every missing, truncated or corrupt data file ends in one line of the right
type (`MissingDataError` / `DataFileError`) naming the path and how to get or rebuild it.

All files are tiny and written here (PNG images of 6x5 pixels, IDX files of a few hundred bytes);
the decoded-image cache goes to tmp_path."""
import gzip
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfl_lib.data.datasets import load_dataset
from dfl_lib.data.formats import DataWarning
from dfl_lib.errors import DataFileError, MissingDataError


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """Decoded-image cache in tmp_path; no data root from the environment."""
    path = tmp_path / "cache"
    monkeypatch.setenv("DFL_CACHE_DIR", str(path))
    monkeypatch.delenv("DFL_DATA_DIR", raising=False)
    return path


def png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(path)
    return path


def make_folder(root: Path, *, train=(("cat", 2), ("dog", 2)), test=(("cat", 1), ("dog", 1))
                ) -> Path:
    """root/{train,test}/<class>/NNN.png; returns root."""
    for split, counts in (("train", train), ("test", test)):
        for name, n in counts:
            for j in range(n):
                png(root / split / name / f"{j:03d}.png", seed=j)
    return root


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg, msg
    return msg


def warned(record, *parts: str) -> str:
    """The DataWarning message holding every one of `parts` (fails if none does)."""
    msgs = [str(w.message) for w in record if issubclass(w.category, DataWarning)]
    hits = [m for m in msgs if all(p in m for p in parts)]
    assert hits, f"no DataWarning naming {parts}; got {msgs}"
    return hits[0]


# ----------------------------------------------------------------------------- image folders

def test_ipynb_checkpoints_is_not_a_class(tmp_path):
    root = make_folder(tmp_path / "pets")
    write(root / "train" / ".ipynb_checkpoints" / "explore-checkpoint.ipynb", b"{}")
    with pytest.warns(DataWarning) as record:
        data = load_dataset("image_folder", path=root)
    assert data.classes == ["cat", "dog"] and data.num_classes == 2
    assert set(data.y_train.tolist()) | set(data.y_test.tolist()) <= {0, 1}
    assert len(data.y_train) == 4 and len(data.y_test) == 2
    warned(record, str(root.resolve() / "train"), ".ipynb_checkpoints")


# (entry written, its bytes or "png" for a valid image, what the warning names)
APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(64)
NOT_DATA = {
    "hidden_file_split_level": ("train/.DS_Store", b"\x00\x00\x00\x01Bud1", ".DS_Store"),
    "hidden_file_test_split": ("test/.DS_Store", b"\x00\x00\x00\x01Bud1", ".DS_Store"),
    "thumbs_db": ("train/Thumbs.db", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "Thumbs.db"),
    "desktop_ini": ("train/desktop.ini", b"[.ShellClassInfo]\r\n", "desktop.ini"),
    "macosx_folder": ("train/__MACOSX/cat/._000.png", APPLE_DOUBLE, "__MACOSX/"),
    "apple_double_image": ("train/cat/._000.png", APPLE_DOUBLE, "cat/._000.png"),
    "hidden_folder_in_class": ("train/cat/.thumbs/000.png", "png", "cat/.thumbs/"),
    "thumbs_db_in_class": ("train/cat/Thumbs.db", b"\xd0\xcf\x11\xe0", "cat/Thumbs.db"),
    "stray_file_split_level": ("train/README.txt", b"cats and dogs\n", "README.txt"),
    "non_image_in_class": ("train/cat/notes.txt", b"a note\n", "cat/notes.txt"),
}


@pytest.mark.parametrize("case", sorted(NOT_DATA))
def test_not_data_entries_are_skipped_with_a_warning(tmp_path, case):
    entry, content, named = NOT_DATA[case]
    root = make_folder(tmp_path / "pets")
    if content == "png":
        png(root / entry, seed=9)
    else:
        write(root / entry, content)
    with pytest.warns(DataWarning) as record:
        data = load_dataset("image_folder", path=root)
    assert data.classes == ["cat", "dog"]
    assert data.y_train.tolist() == [0, 0, 1, 1] and data.y_test.tolist() == [0, 1]
    split = entry.split("/")[0]
    warned(record, str(root.resolve() / split), named)


def test_empty_class_folder_refused(tmp_path):
    root = make_folder(tmp_path / "pets")
    (root / "train" / "bird").mkdir()
    with pytest.raises(DataFileError) as err:
        load_dataset("image_folder", path=root)
    msg = one_line(err)
    assert str(root.resolve() / "train" / "bird") in msg and "no images" in msg


def test_class_folder_of_only_non_images_refused(tmp_path):
    root = make_folder(tmp_path / "pets")
    write(root / "train" / "bird" / "notes.txt", b"to do: photograph birds\n")
    write(root / "train" / "bird" / "sources.csv", b"url\n")
    with pytest.raises(DataFileError) as err:
        load_dataset("image_folder", path=root)
    msg = one_line(err)
    assert str(root.resolve() / "train" / "bird") in msg
    assert "notes.txt" in msg and ".png" in msg  # what it found, and what was expected


def test_split_of_loose_images_refused(tmp_path):
    """Images straight in train/ (no class folders): not data we can label."""
    root = make_folder(tmp_path / "pets", train=())
    for j in range(3):
        png(root / "train" / f"{j:03d}.png", seed=j)
    with pytest.raises(DataFileError) as err:
        load_dataset("image_folder", path=root)
    msg = one_line(err)
    assert str(root.resolve() / "train") in msg and "no class folders" in msg
    assert "<class>" in msg


def test_class_missing_from_test_refused(tmp_path):
    root = make_folder(tmp_path / "pets", train=(("bird", 2), ("cat", 2), ("dog", 2)))
    with pytest.raises(MissingDataError) as err:
        load_dataset("image_folder", path=root)
    msg = one_line(err)
    assert "'bird'" in msg and str(root.resolve() / "test" / "bird") in msg


def test_class_empty_in_test_refused(tmp_path):
    root = make_folder(tmp_path / "pets")
    (root / "test" / "cat" / "000.png").unlink()
    with pytest.raises(DataFileError) as err:
        load_dataset("image_folder", path=root)
    assert str(root.resolve() / "test" / "cat") in one_line(err)


def test_class_only_in_test_refused(tmp_path):
    root = make_folder(tmp_path / "pets", test=(("bird", 1), ("cat", 1), ("dog", 1)))
    with pytest.raises(DataFileError) as err:
        load_dataset("image_folder", path=root)
    msg = one_line(err)
    assert "bird" in msg and str(root.resolve() / "test") in msg


@pytest.mark.parametrize("damage", ["text", "truncated"])
def test_file_that_is_not_an_image_refused(tmp_path, damage):
    root = make_folder(tmp_path / "pets")
    bad = root / "train" / "dog" / "001.png"  # not the first file: found by the decoder
    if damage == "text":
        bad.write_bytes(b"this is no PNG\n")
    else:
        bad.write_bytes(bad.read_bytes()[:60])
    with pytest.raises(DataFileError) as err:
        load_dataset("image_folder", path=root)
    assert str(bad) in one_line(err)


def test_first_file_not_an_image_refused(tmp_path):
    root = make_folder(tmp_path / "pets")
    bad = write(root / "train" / "cat" / "000.png", b"GIF89a but not really")
    with pytest.raises(DataFileError) as err:
        load_dataset("image_folder", path=root)
    assert str(bad) in one_line(err)


def test_broken_link_refused(tmp_path):
    root = make_folder(tmp_path / "pets")
    link = root / "train" / "cat" / "009.png"
    link.symlink_to(tmp_path / "gone.png")
    with pytest.raises(DataFileError) as err:
        load_dataset("image_folder", path=root)
    assert str(link) in one_line(err)


def test_link_loop_read_once(tmp_path):
    root = make_folder(tmp_path / "pets")
    (root / "train" / "cat" / "again").symlink_to(root / "train" / "cat")
    with pytest.warns(DataWarning) as record:
        data = load_dataset("image_folder", path=root)
    assert data.y_train.tolist() == [0, 0, 1, 1]  # the cat images once, not once per loop
    warned(record, "cat/again/")


@pytest.mark.parametrize("layout", ["missing", "no_test", "a_file"])
def test_missing_image_folder_named(tmp_path, layout):
    path = tmp_path / "pets"
    if layout == "no_test":
        make_folder(path, test=())
    elif layout == "a_file":
        write(path, b"not a folder")
    kind = DataFileError if layout == "a_file" else MissingDataError
    with pytest.raises(kind) as err:
        load_dataset("image_folder", path=path)
    msg = one_line(err)
    assert str(path.resolve()) in msg and "<class>" in msg
    assert kind is DataFileError or isinstance(err.value, FileNotFoundError)


# ----------------------------------------------------------------------------- data root, IDX

def write_idx(path: Path, arr: np.ndarray, *, gz: bool = False) -> Path:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    payload = header + arr.astype(np.uint8).tobytes()
    return write(path, gzip.compress(payload) if gz else payload)


IDX_NAMES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def write_mnist(root: Path, *, gz: bool = False, y_train=None) -> dict[str, Path]:
    """MNIST/raw with 30 train / 12 test images of 7x5; returns the four paths."""
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (30, 7, 5)),
              "x_test": rng.integers(0, 256, (12, 7, 5)),
              "y_train": np.arange(30) % 10 if y_train is None else y_train,
              "y_test": np.arange(12) % 10}
    raw = root / "MNIST" / "raw"
    return {k: write_idx(raw / (name + (".gz" if gz else "")), arrays[k], gz=gz)
            for k, name in IDX_NAMES.items()}


@pytest.mark.parametrize("via", ["argument", "environment"])
def test_missing_data_root_named(tmp_path, monkeypatch, via):
    nowhere = tmp_path / "no" / "data"
    if via == "environment":
        monkeypatch.setenv("DFL_DATA_DIR", str(nowhere))
    with pytest.raises(MissingDataError) as err:
        load_dataset("mnist", root=nowhere if via == "argument" else None)
    msg = one_line(err)
    assert str(nowhere) in msg and "does not exist" in msg
    assert "DFL_DATA_DIR" in msg and "download=True" in msg
    assert not nowhere.exists()


def test_missing_dataset_folder_one_line(tmp_path):
    (tmp_path / "cifar10-jpeg").mkdir()  # the root exists, the dataset's folders do not
    with pytest.raises(MissingDataError) as err:
        load_dataset("cifar10_jpeg", root=tmp_path)
    msg = one_line(err)
    assert str(tmp_path / "cifar10-jpeg" / "train") in msg and "DFL_DATA_DIR" in msg
    with pytest.raises(MissingDataError) as err:
        load_dataset("mnist", root=tmp_path)
    msg = one_line(err)
    assert str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte") in msg
    assert "download=True" in msg


def test_missing_one_idx_file_named_alone(tmp_path):
    paths = write_mnist(tmp_path)
    paths["y_test"].unlink()
    with pytest.raises(MissingDataError) as err:
        load_dataset("mnist", root=tmp_path)
    msg = one_line(err)
    assert str(paths["y_test"]) in msg and "train-images" not in msg


def test_truncated_idx_file(tmp_path):
    paths = write_mnist(tmp_path)
    full = paths["x_train"].read_bytes()  # 16-byte header + 30 * 7 * 5 = 1066 bytes
    paths["x_train"].write_bytes(full[:516])
    with pytest.raises(DataFileError) as err:
        load_dataset("mnist", root=tmp_path)
    msg = one_line(err)
    assert str(paths["x_train"]) in msg and "truncated" in msg
    assert "1066" in msg and "516" in msg  # declared by the header vs found
    assert "download=True" in msg and "*-ubyte.gz" in msg


def test_truncated_idx_gz_file(tmp_path):
    paths = write_mnist(tmp_path, gz=True)
    packed = paths["x_train"].read_bytes()
    paths["x_train"].write_bytes(packed[:len(packed) // 2])
    with pytest.raises(DataFileError) as err:
        load_dataset("mnist", root=tmp_path)
    msg = one_line(err)
    assert str(paths["x_train"]) in msg and "truncated" in msg and "1066" in msg
    assert "download=True" in msg


def test_idx_wrong_magic_number(tmp_path):
    paths = write_mnist(tmp_path)
    raw = bytearray(paths["y_train"].read_bytes())
    raw[:4] = b"\x89PNG"
    paths["y_train"].write_bytes(bytes(raw))
    with pytest.raises(DataFileError) as err:
        load_dataset("mnist", root=tmp_path)
    msg = one_line(err)
    assert str(paths["y_train"]) in msg and "magic number" in msg


def test_idx_gz_that_is_not_gzip(tmp_path):
    paths = write_mnist(tmp_path, gz=True)
    paths["y_test"].write_bytes(b"<html>404 Not Found</html>")  # a failed download saved as .gz
    with pytest.raises(DataFileError) as err:
        load_dataset("mnist", root=tmp_path)
    assert str(paths["y_test"]) in one_line(err)


def test_idx_files_swapped(tmp_path):
    paths = write_mnist(tmp_path)
    images, labels = paths["x_test"].read_bytes(), paths["y_test"].read_bytes()
    paths["x_test"].write_bytes(labels)
    paths["y_test"].write_bytes(images)
    with pytest.raises(DataFileError) as err:
        load_dataset("mnist", root=tmp_path)
    msg = one_line(err)
    assert str(paths["x_test"]) in msg and "dimensions" in msg


def test_idx_label_out_of_range(tmp_path):
    paths = write_mnist(tmp_path, y_train=np.full(30, 12))
    with pytest.raises(DataFileError) as err:
        load_dataset("mnist", root=tmp_path)
    msg = one_line(err)
    assert str(paths["y_train"]) in msg and "12" in msg


def test_download_failure_named(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")

    class Offline:
        def __init__(self, root, train, download):
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried mirrors")
    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    with pytest.raises(DataFileError) as err:
        load_dataset("mnist", root=tmp_path, download=True)
    msg = one_line(err)
    assert str(tmp_path) in msg and "DFL_DATA_DIR" in msg


# ----------------------------------------------------------------------------- CIFAR, npz

def write_cifar(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8),
                         b"labels": [1, 2]}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f)
    return folder


@pytest.mark.parametrize("name", ["data_batch_3", "batches.meta"])
def test_truncated_cifar_pickle(tmp_path, name):
    path = write_cifar(tmp_path) / name
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataFileError) as err:
        load_dataset("cifar10", root=tmp_path)
    msg = one_line(err)
    assert str(path) in msg and "download=True" in msg


def test_cifar_batch_of_wrong_shape(tmp_path):
    path = write_cifar(tmp_path) / "test_batch"
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(DataFileError) as err:
        load_dataset("cifar10", root=tmp_path)
    assert str(path) in one_line(err)


def write_npz(path: Path) -> Path:
    np.savez(path, x_train=np.zeros((4, 5, 5), np.uint8), y_train=np.arange(4) % 2,
             x_test=np.zeros((2, 5, 5), np.uint8), y_test=np.arange(2))
    return path


@pytest.mark.parametrize("damage", ["truncated", "text", "bit_flip", "lacks_arrays"])
def test_broken_npz(tmp_path, damage):
    path = write_npz(tmp_path / "d.npz")
    raw = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(raw[:len(raw) // 2])
    elif damage == "text":
        path.write_bytes(b"x_train,y_train\n1,2\n")
    elif damage == "bit_flip":  # inside x_train's data: only its CRC tells
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("x_train.npy")
        at = info.header_offset + 30 + len(info.filename) + len(info.extra) + 140
        path.write_bytes(raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1:])
    else:
        np.savez(path, x_train=np.zeros((4, 5, 5), np.uint8))
    with pytest.raises(DataFileError) as err:
        load_dataset("npz", path=path)
    assert str(path) in one_line(err)


def test_missing_npz_named(tmp_path):
    with pytest.raises(MissingDataError) as err:
        load_dataset("npz", path=tmp_path / "nothing.npz")
    assert str(tmp_path / "nothing.npz") in one_line(err)


# ----------------------------------------------------------------------------- decoded cache

def test_damaged_cache_deleted_and_rebuilt(tmp_path, cache):
    root = make_folder(tmp_path / "pets", train=(("cat", 6), ("dog", 6)),
                       test=(("cat", 2), ("dog", 2)))
    clean = load_dataset("image_folder", path=root)
    (cached,) = cache.glob("*.npz")
    cached.write_bytes(cached.read_bytes()[:300])  # a copy cut short
    with pytest.warns(DataWarning) as record:  # a small subset: decoded without the cache
        part = load_dataset("image_folder", path=root, n_train=2, n_test=1)
    warned(record, str(cached), "damaged")
    assert not cached.exists()  # not kept (nor warned about at every later load)
    assert part.x_train.shape == (2, 3, 6, 5)
    again = load_dataset("image_folder", path=root)
    assert again.fingerprint == clean.fingerprint and cached.is_file()  # rebuilt


def test_cache_with_foreign_arrays_not_trusted(tmp_path, cache):
    root = make_folder(tmp_path / "pets")
    clean = load_dataset("image_folder", path=root)
    (cached,) = cache.glob("*.npz")
    with np.load(cached) as f:
        stored = dict(f)
    stored["x_train"] = np.zeros((4, 3, 2, 2), np.uint8)  # the right count, not these images
    np.savez(cached, **stored)
    with pytest.warns(DataWarning) as record:
        data = load_dataset("image_folder", path=root)
    warned(record, str(cached))
    assert data.fingerprint == clean.fingerprint


def test_unwritable_cache_skipped_with_warning(tmp_path, monkeypatch):
    blocker = write(tmp_path / "not-a-folder", b"")
    monkeypatch.setenv("DFL_CACHE_DIR", str(blocker / "cache"))
    root = make_folder(tmp_path / "pets")
    with pytest.warns(DataWarning) as record:
        data = load_dataset("image_folder", path=root)
    warned(record, str(blocker / "cache"), "DFL_CACHE_DIR")
    assert data.x_train.shape == (4, 3, 6, 5)
