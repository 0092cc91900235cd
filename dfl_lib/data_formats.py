"""Reading datasets from their on-disk formats into numpy arrays.

Images are uint8 (N, C, H, W) in 0..255, labels int64 (N,). Formats:
- IDX (MNIST, Fashion-MNIST): big-endian header + raw bytes, optionally gzip-compressed.
- CIFAR-10 python pickles (`cifar-10-batches-py`): dicts with b"data" (N, 3072) uint8 in
  channel-major order (1024 red, 1024 green, 1024 blue, rows top to bottom) and b"labels".
- `.npz` with x_train, y_train, x_test, y_test (and optionally classes).
- image folders `<split>/<class>/<file>`, classes = sorted folder names (as torchvision's
  ImageFolder).

The first half holds the plain format readers; the second, one reader per dataset name
(`RawDataset` sources used by `dfl_lib.data`), with the missing-file errors and the decoded-image
cache of image folders. The cache is the only thing written, and never under the data folder.
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import os
import pickle
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "read_cifar_batches", "read_cifar_label_names", "to_nchw", "read_npz",
           "list_image_folder", "probe_image", "decode_images", "IMG_EXTENSIONS", "RawDataset",
           "idx_reader", "read_cifar10", "read_cifar10_jpeg", "read_image_folder",
           "read_npz_dataset", "image_folder"]

log = logging.getLogger(__name__)

DATA_ENV, CACHE_ENV = "DFL_DATA_DIR", "DFL_CACHE_DIR"
# Same extensions torchvision's ImageFolder accepts, so both see the same files.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_CACHE_VERSION = "imagefolder-v1"  # bump when decoding changes, so old caches are not reused
# Decode only the chosen images (and write no cache) when they are under this share of the folder:
# a 500-image smoke run should not pay for decoding 60,000 JPEGs.
_PARTIAL_DECODE_SHARE = 0.25
_IDX_UINT8 = 0x08  # IDX type code for unsigned bytes, the only one MNIST-style files use


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (`.gz` or raw) -> uint8 array with the shape its header declares."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    if raw[2] != _IDX_UINT8:
        raise ValueError(f"{path}: IDX element type 0x{raw[2]:02x} is not uint8 (0x08)")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise ValueError(f"{path}: header declares shape {dims} but holds {len(raw) - offset} "
                         "bytes")
    # bytearray: a writable buffer, so torch.from_numpy later needs no copy and gives no warning
    return np.frombuffer(bytearray(raw), dtype=np.uint8, offset=offset).reshape(dims)


def _str_keys(d: dict) -> dict:
    # The original CIFAR pickles were written by Python 2: with encoding="bytes" their keys are
    # bytes; files re-pickled by Python 3 may use str keys. Accept both.
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


def read_cifar_batches(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 batch pickles -> (images uint8 (N, 3, 32, 32), labels int64 (N,)), concatenated.

    Pickles can run code when loaded: only read batch files from a source you trust (the official
    archive, or torchvision's download of it).
    """
    xs, ys = [], []
    for path in paths:
        with open(path, "rb") as f:
            batch = _str_keys(pickle.load(f, encoding="bytes"))
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
            raise ValueError(f"{path}: expected data (N, 3072) and N labels, got data "
                             f"{data.shape} and {labels.shape} labels")
        xs.append(data.reshape(-1, 3, 32, 32))  # row layout is channel-major: already NCHW
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


def read_cifar_label_names(path: Path) -> list[str]:
    """`batches.meta` -> the class names in label order."""
    with open(path, "rb") as f:
        meta = _str_keys(pickle.load(f, encoding="bytes"))
    return [n.decode() if isinstance(n, bytes) else str(n) for n in meta["label_names"]]


def to_nchw(x: np.ndarray, *, name: str) -> np.ndarray:
    """uint8 images (N, H, W), (N, H, W, C) or (N, C, H, W) with C in {1, 3} -> (N, C, H, W).

    A 4-D array whose last axis is 1 or 3 is read as (N, H, W, C) (numpy/PIL convention);
    otherwise axis 1 must be 1 or 3 and it is read as (N, C, H, W).
    """
    if x.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 images in 0..255, got dtype {x.dtype} "
                         "(convert with (x * 255).round().astype(np.uint8) if it is in [0, 1])")
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[3] in (1, 3):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return x
    raise ValueError(f"{name} must have shape (N, H, W), (N, H, W, C) or (N, C, H, W) with "
                     f"C in {{1, 3}}, got {x.shape}")


def read_npz(path: Path) -> dict:
    """An `.npz` with x_train, y_train, x_test, y_test (optional `classes`, names in label order).

    Returns {"x_train", "y_train", "x_test", "y_test", "classes"}: images uint8 (N, C, H, W),
    labels int64 (N,), classes list[str] ("0".."K-1" when the file has none, K = max label + 1).
    """
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in f.files]
        if missing:
            raise ValueError(f"{path} lacks arrays {missing}; it holds {sorted(f.files)}")
        out = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        names = [str(c) for c in f["classes"]] if "classes" in f.files else None
    for split in ("train", "test"):
        x, y = to_nchw(out[f"x_{split}"], name=f"x_{split}"), out[f"y_{split}"]
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or len(y) != len(x):
            raise ValueError(f"y_{split} must hold {len(x)} integer labels (N,), got "
                             f"{y.dtype} {y.shape}")
        if len(y) and y.min() < 0:
            raise ValueError(f"y_{split} holds negative labels (min {y.min()})")
        out[f"x_{split}"], out[f"y_{split}"] = x, y.astype(np.int64)
    if out["x_train"].shape[1:] != out["x_test"].shape[1:]:
        raise ValueError(f"train images {out['x_train'].shape[1:]} and test images "
                         f"{out['x_test'].shape[1:]} differ in (C, H, W)")
    k = int(max(out["y_train"].max(initial=-1), out["y_test"].max(initial=-1))) + 1
    if names is not None and len(names) < k:
        raise ValueError(f"{path}: `classes` names {len(names)} classes but labels go up to "
                         f"{k - 1}")
    out["classes"] = names if names is not None else [str(i) for i in range(k)]
    return out


def list_image_folder(split_dir: Path, *, classes: list[str] | None = None
                      ) -> tuple[list[str], list[os.stat_result], np.ndarray, list[str]]:
    """Walk `split_dir/<class>/**` -> (files, their stat results, labels int64 (N,), classes).

    Classes are the sorted sub-folder names unless given (the test split uses the train split's,
    so labels agree); files are sorted within each class, as torchvision's ImageFolder does.
    """
    found = sorted(e.name for e in os.scandir(split_dir) if e.is_dir())
    if classes is None:
        classes = found
    extra = sorted(set(found) - set(classes))
    if extra:
        raise ValueError(f"{split_dir} has class folders {extra} that the train split lacks")
    files, stats, labels = [], [], []
    for label, name in enumerate(classes):
        class_dir = split_dir / name
        if not class_dir.is_dir():
            continue  # a class absent from this split: zero examples of it
        for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
            dirnames.sort()  # deterministic order across file systems
            for fname in sorted(filenames):
                if fname.lower().endswith(IMG_EXTENSIONS):
                    path = os.path.join(dirpath, fname)
                    files.append(path)
                    stats.append(os.stat(path))
                    labels.append(label)
    return files, stats, np.asarray(labels, dtype=np.int64), classes


def probe_image(path: str) -> tuple[str, tuple[int, int]]:
    """From one file: the PIL mode ("L" or "RGB") all images of its folder become, and (H, W).

    Grayscale ("1", "L") folders stay 1-channel; anything else becomes 3-channel RGB (alpha
    dropped).
    """
    from PIL import Image

    with Image.open(path) as im:
        return ("L" if im.mode in ("1", "L") else "RGB"), (im.height, im.width)


def decode_images(files: list[str], *, mode: str, size: tuple[int, int]) -> np.ndarray:
    """Decode image files -> uint8 (N, C, H, W), converted to `mode`; all must be `size` (H, W)."""
    from PIL import Image

    channels = 1 if mode == "L" else 3
    out = np.empty((len(files), size[0], size[1], channels), dtype=np.uint8)  # NHWC, as PIL gives
    for i, path in enumerate(files):
        with Image.open(path) as im:
            if (im.height, im.width) != size:
                raise ValueError(f"{path} is {im.height}x{im.width}, but the folder's images are "
                                 f"{size[0]}x{size[1]}; resize them first")
            if mode == "L" and im.mode not in ("1", "L"):
                raise ValueError(f"{path} has mode {im.mode} in a grayscale folder")
            out[i] = np.asarray(im.convert(mode)).reshape(size[0], size[1], channels)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


# ----------------------------------------------------------------------------- dataset sources

def missing_error(what: str, expected: list[str], *, root: Path, origin: str,
                  extra: str = "") -> FileNotFoundError:
    """One error naming every expected file, the root searched and how to point elsewhere."""
    lines = "\n".join(f"  {p}" for p in expected)
    return FileNotFoundError(
        f"{what} not found. Searched data root {root.resolve()} (from {origin}); "
        f"expected:\n{lines}\n"
        f"Set the root with load_dataset(..., root=...) or the environment variable "
        f"{DATA_ENV}=/path/to/data.{extra}")

@dataclass
class RawDataset:
    """What a reader returns: class names, labels per stored split, and a way to get images.

    `images(picks)` maps {"val"|"train"|"test": (stored split, indices)} -> uint8 (n, C, H, W),
    so image folders can decode only the chosen files.
    """

    classes: list[str]
    labels: dict[str, np.ndarray]  # "train" / "test" -> int64 (N,)
    images: Callable[[dict[str, tuple[str, np.ndarray]]], dict[str, np.ndarray]]
    source: str


def _in_memory(x: dict[str, np.ndarray], y: dict[str, np.ndarray], classes, source) -> RawDataset:
    def images(picks):
        # a full, sorted selection is the whole array: no 180 MB copy for all of CIFAR-10
        return {k: x[s] if len(i) == len(x[s]) else x[s][i] for k, (s, i) in picks.items()}
    return RawDataset(classes=list(classes), labels=y, images=images, source=source)


_IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
              "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]


def idx_reader(folder: str, classes: list[str], source: str, tv_name: str):
    """A reader for `<root>/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`;
    `tv_name` is the torchvision dataset class that downloads it."""
    def read(*, root: Path, origin: str, path, download: bool, cache: Path) -> RawDataset:
        raw_dir = root / folder / "raw"

        def find():  # each file either extracted or as .gz; the extracted one reads faster
            return {k: next((p for p in (raw_dir / f, raw_dir / f"{f}.gz") if p.is_file()), None)
                    for k, f in _IDX_FILES.items()}
        found = find()
        if None in found.values() and download:
            _download(tv_name, root)
            found = find()
        if None in found.values():
            raise missing_error(source, [f"{raw_dir / f}[.gz]" for f in _IDX_FILES.values()],
                                root=root, origin=origin,
                                extra=" Or pass download=True to fetch it with torchvision.")
        arr = {k: read_idx(p) for k, p in found.items()}
        x = {s: arr[f"x_{s}"][:, None] for s in ("train", "test")}  # (N, H, W) -> (N, 1, H, W)
        y = {s: arr[f"y_{s}"].astype(np.int64) for s in ("train", "test")}
        for s in ("train", "test"):
            if len(x[s]) != len(y[s]):
                raise ValueError(f"{source} {s}: {len(x[s])} images but {len(y[s])} labels")
        return _in_memory(x, y, classes, source)
    return read


_CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def read_cifar10(*, root: Path, origin: str, path, download: bool, cache: Path) -> RawDataset:
    """`<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}`."""
    folder = root / "cifar-10-batches-py"
    names = _CIFAR_TRAIN + ["test_batch", "batches.meta"]
    if download and not all((folder / n).is_file() for n in names):
        _download("CIFAR10", root)
    if not all((folder / n).is_file() for n in names):
        raise missing_error(
            "CIFAR-10 (python pickles)", [str(folder / n) for n in names], root=root, origin=origin,
            extra=(" Or pass download=True to fetch it with torchvision. If you only have the JPEG "
                   "copy (<root>/cifar10-jpeg/{train,test}/<class>/*.jpg), use the dataset "
                   "'cifar10_jpeg' instead."))
    x_train, y_train = read_cifar_batches([folder / n for n in _CIFAR_TRAIN])
    x_test, y_test = read_cifar_batches([folder / "test_batch"])
    classes = read_cifar_label_names(folder / "batches.meta")
    return _in_memory({"train": x_train, "test": x_test}, {"train": y_train, "test": y_test},
                      classes, "CIFAR-10")


def read_npz_dataset(*, root: Path, origin: str, path: Path, download: bool,
                     cache: Path) -> RawDataset:
    """The `.npz` file at `path` (see `read_npz`)."""
    if not path.is_file():
        raise FileNotFoundError(f"npz dataset file not found: {path.resolve()}")
    d = read_npz(path)
    return _in_memory({"train": d["x_train"], "test": d["x_test"]},
                      {"train": d["y_train"], "test": d["y_test"]}, d["classes"],
                      f"npz file {path.name}")


def read_cifar10_jpeg(*, root: Path, origin: str, path, download: bool, cache: Path) -> RawDataset:
    """The image folder `<root>/cifar10-jpeg/{train,test}/<class>/*.jpg`."""
    folder = root / "cifar10-jpeg"
    if not ((folder / "train").is_dir() and (folder / "test").is_dir()):
        raise missing_error(
            "CIFAR-10 (JPEG copy)", [str(folder / "train" / "<class>" / "*.jpg"),
                                     str(folder / "test" / "<class>" / "*.jpg")],
            root=root, origin=origin,
            extra=" For the original CIFAR-10 pickles (cifar-10-batches-py) use 'cifar10'.")
    return image_folder(folder, source="CIFAR-10 (JPEG copy)", cache=cache, protect=root)


def read_image_folder(*, root: Path, origin: str, path: Path, download: bool,
                      cache: Path) -> RawDataset:
    """The image folder `<path>/{train,test}/<class>/*`."""
    if not ((path / "train").is_dir() and (path / "test").is_dir()):
        raise FileNotFoundError(f"image folder needs {path.resolve() / 'train' / '<class>'}/* and "
                                f"{path.resolve() / 'test' / '<class>'}/*")
    return image_folder(path, source=f"image folder {path.resolve()}", cache=cache)


def _download(tv_name: str, root: Path) -> None:
    """Fetch with torchvision into `root` (only ever called with download=True)."""
    import torchvision

    log.info("downloading %s into %s with torchvision", tv_name, root)
    getattr(torchvision.datasets, tv_name)(str(root), train=True, download=True)


# ----------------------------------------------------------------------------- image folders

def image_folder(folder: Path, *, source: str, cache: Path,
                 protect: Path | None = None) -> RawDataset:
    """`folder/{train,test}/<class>/*` with its decoded images cached in the folder `cache`.

    The listing (names, sizes, mtimes) is read now; images are decoded when asked for: from the
    cache `cache/imagefolder-<path hash>-<listing hash>.npz` if present, else only the chosen
    files when they are few, else all files, which are then cached. `protect` (the data root) and
    `folder` must not contain `cache`.
    """
    folder = folder.resolve()
    files, stats, labels = {}, {}, {}
    files["train"], stats["train"], labels["train"], classes = list_image_folder(folder / "train")
    files["test"], stats["test"], labels["test"], _ = list_image_folder(folder / "test",
                                                                        classes=classes)
    if not files["train"]:
        raise ValueError(f"{folder / 'train'} holds no images ({', '.join(IMG_EXTENSIONS)})")
    mode, size = probe_image(files["train"][0])
    # Cheap signature of the listing: any added, removed, resized or touched file changes it.
    sig = hashlib.sha256(f"{_CACHE_VERSION}|{folder}".encode())
    for split in ("train", "test"):
        for f, st in zip(files[split], stats[split]):
            rel = os.path.relpath(f, folder)
            sig.update(f"{split}|{rel}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    cdir = Path(cache).resolve()
    for guarded in (folder, *([Path(protect).resolve()] if protect is not None else [])):
        if cdir == guarded or guarded in cdir.parents:
            raise ValueError(f"cache folder {cdir} lies inside the data folder {guarded}; set "
                             f"{CACHE_ENV} elsewhere (the data root is never written to)")
    prefix = f"imagefolder-{hashlib.sha256(str(folder).encode()).hexdigest()[:12]}-"
    cache_file = cdir / f"{prefix}{sig.hexdigest()[:16]}.npz"
    total = len(files["train"]) + len(files["test"])

    def images(picks):
        full = _load_cache(cache_file, labels=labels, classes=classes)
        chosen = sum(len(i) for _, i in picks.values())
        if full is None and chosen < _PARTIAL_DECODE_SHARE * total:
            return {k: decode_images([files[s][j] for j in i], mode=mode, size=size)
                    for k, (s, i) in picks.items()}
        if full is None:
            start = time.perf_counter()
            full = {s: decode_images(files[s], mode=mode, size=size) for s in ("train", "test")}
            log.info("decoded %d images of %s in %.1f s; caching them in %s", total, folder,
                     time.perf_counter() - start, cache_file)
            _save_cache(cache_file, prefix=prefix, classes=np.asarray(classes),
                        x_train=full["train"], y_train=labels["train"], x_test=full["test"],
                        y_test=labels["test"])
        return {k: full[s] if len(i) == len(full[s]) else full[s][i] for k, (s, i) in picks.items()}
    return RawDataset(classes=classes, labels=labels, images=images, source=source)


def _load_cache(path: Path, *, labels, classes) -> dict[str, np.ndarray] | None:
    """The cached decoded folder, or None when absent, unreadable or not matching the listing."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            out = {"train": f["x_train"], "test": f["x_test"]}
            ok = (list(f["classes"]) == list(classes)
                  and all(np.array_equal(f[f"y_{s}"], labels[s]) and len(out[s]) == len(labels[s])
                          for s in ("train", "test")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        log.warning("ignoring unreadable cache %s (%s); decoding again", path, err)
        return None
    return out if ok else None


def _save_cache(path: Path, *, prefix: str, **arrays) -> None:
    """Write atomically (temporary file + os.replace), then drop older caches of the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private (0600); give the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for old in path.parent.glob(f"{prefix}*.npz"):
        if old != path:
            old.unlink(missing_ok=True)
