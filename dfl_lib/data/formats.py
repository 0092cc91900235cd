"""Reading datasets from their on-disk formats into numpy arrays.

Images are uint8 (N, C, H, W) in 0..255, labels int64 (N,). Formats:
- IDX (MNIST, Fashion-MNIST): big-endian header + raw bytes, optionally gzip-compressed.
- CIFAR-10 python pickles (`cifar-10-batches-py`): dicts with b"data" (N, 3072) uint8 in
  channel-major order (1024 red, 1024 green, 1024 blue, rows top to bottom) and b"labels".
- `.npz` with x_train, y_train, x_test, y_test (and optionally classes).
- image folders `<split>/<class>/<file>`, classes = sorted folder names (as torchvision's
  ImageFolder).

The first half holds the plain format readers; the second, one reader per dataset name
(`RawDataset` sources used by `dfl_lib.data.datasets`), with the missing-file errors and the decoded-image
cache of image folders. The cache is the only thing written, and never under the data folder.

Errors (`dfl_lib.errors`), each one line naming the file and how to get or rebuild it:
`MissingDataError` for a missing root, folder or file; `DataFileError` for one that is truncated,
corrupt or not in its format (an IDX file shorter than its header declares, a damaged pickle or
`.npz`, a file in an image folder that is not an image, an empty class folder). What lies in an
image folder but is not data (hidden entries such as `.ipynb_checkpoints`, OS metadata, stray
files, non-image files) is skipped with a `DataWarning` naming it, never made a class.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import pickle
import tempfile
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataFileError, MissingDataError, UsageError


__all__ = ["read_idx", "read_cifar_batches", "read_cifar_label_names", "to_nchw", "read_npz",
           "list_image_folder", "probe_image", "decode_images", "IMG_EXTENSIONS", "RawDataset",
           "idx_reader", "read_cifar10", "read_cifar10_jpeg", "read_image_folder",
           "read_npz_dataset", "image_folder", "DataWarning"]

log = logging.getLogger(__name__)

DATA_ENV, CACHE_ENV = "DFL_DATA_DIR", "DFL_CACHE_DIR"
# Same extensions torchvision's ImageFolder accepts, so both see the same files.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_CACHE_VERSION = "imagefolder-v1"  # bump when decoding changes, so old caches are not reused
# Decode only the chosen images (and write no cache) when they are under this share of the folder
# and no split is asked for whole: a 500-image smoke run should not pay for decoding 60,000 JPEGs,
# but a run that evaluates on its whole test split (every training run does) asks for it again
# next time, so the folder is decoded once and cached (a smoke CIFAR-10 run spent 6 of its 9 s
# decoding the 10,000 test JPEGs, again for every run)
_PARTIAL_DECODE_SHARE = 0.25
_IDX_UINT8 = 0x08  # IDX type code for unsigned bytes, the only one MNIST-style files use
# Entries that operating systems, archivers and tools leave in folders: never classes or images.
# Hidden names (".ipynb_checkpoints", ".DS_Store", AppleDouble "._x.png") are caught by the dot.
_NOT_DATA = {"__macosx", "thumbs.db", "ehthumbs.db", "desktop.ini", "$recycle.bin",
             "system volume information", "lost+found", "__pycache__"}


class DataWarning(UserWarning):
    """Something in a data folder was skipped, or a damaged cache dropped; the message names it."""


def _first_line(err: BaseException) -> str:
    """`Type: first line of the message`, to quote a library's error inside ours."""
    text = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


# gunzipped IDX files by (path, inode, size, mtime, ctime): a notebook or a plan loads MNIST
# many times in one process (one run after another), and gunzipping its 47 MB of images took
# 0.27 s each time on a 2-core AVX2 CPU, more than loading the run's checkpoint. A few files
# (MNIST's and Fashion-MNIST's four each); a file changed or replaced on disk has another key.
_GUNZIPPED: dict[tuple, bytes] = {}
_GUNZIPPED_MAX = 8


def _read_bytes(path: Path, *, fix: str) -> tuple[bytes, bool]:
    """The file's bytes, gunzipped when its name ends in .gz, and whether its gzip stream ended.

    A truncated .gz gives the bytes decompressed before the cut (so the caller can say how many
    of the declared bytes arrived) and False; unreadable or non-gzip data raises DataFileError.
    A whole .gz stream is kept in memory for the next read of the same unchanged file.
    """
    key = None
    if str(path).endswith(".gz"):
        try:
            st = Path(path).stat()
            key = (str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns,
                   st.st_ctime_ns)
        except OSError:
            key = None  # the read below says what is wrong
        if key in _GUNZIPPED:
            return _GUNZIPPED[key], True
    raw, ended = _read_file(path, fix=fix)
    if key is not None and ended:
        while len(_GUNZIPPED) >= _GUNZIPPED_MAX:
            _GUNZIPPED.pop(next(iter(_GUNZIPPED)))  # the oldest first
        _GUNZIPPED[key] = raw
    return raw, ended


def _read_file(path: Path, *, fix: str) -> tuple[bytes, bool]:
    """`_read_bytes` without the memory: the file read and gunzipped now."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError as err:
        raise MissingDataError(f"{path} not found; {fix}") from err
    except OSError as err:
        raise DataFileError(f"cannot read {path} ({err.strerror or err}); {fix}") from err
    if not str(path).endswith(".gz"):
        return raw, True
    out = []
    try:
        while raw:  # several gzip members are one stream, as for gzip.open
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out.append(d.decompress(raw))
            if not d.eof:
                return b"".join(out), False
            raw = d.unused_data.lstrip(b"\0")  # gzip.open also ignores trailing zero padding
    except zlib.error as err:  # not gzip at all, or damaged (bad deflate data or checksum)
        raise DataFileError(f"{path} is not valid gzip data ({err}): the file is corrupt; "
                            f"{fix}") from err
    return b"".join(out), True


def read_idx(path: Path, *, ndim: int | None = None,
             fix: str = "re-download it or copy it again from the original") -> np.ndarray:
    """An IDX file (`.gz` or raw) -> uint8 array with the shape its header declares.

    Raises DataFileError naming the file and `fix` (how to get it again) when it is unreadable,
    not gzip data although named .gz, has a wrong magic number or element type, has not `ndim`
    dimensions, or is truncated (the size its header declares vs the bytes found) or too long.
    """
    raw, ended = _read_bytes(path, fix=fix)
    gz = " (decompressed)" if str(path).endswith(".gz") else ""
    if len(raw) < 4 and not ended:
        raise DataFileError(f"{path} is truncated: its gzip stream ends before the IDX header "
                            f"({len(raw)} bytes decompressed); {fix}")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        hint = " (it is gzip data: name it .gz)" if raw[:2] == b"\x1f\x8b" else ""
        raise DataFileError(f"{path} is not an IDX file: magic number {raw[:4].hex() or 'absent'}"
                            f"{gz}, expected 0000080N (N = dimensions){hint}; {fix}")
    if raw[2] != _IDX_UINT8:
        raise DataFileError(f"{path}: IDX element type 0x{raw[2]:02x} is not uint8 (0x08); {fix}")
    if ndim is not None and raw[3] != ndim:
        raise DataFileError(f"{path}: IDX header declares {raw[3]} dimensions, expected {ndim} "
                            f"(images are 3-D, labels 1-D: files swapped?); {fix}")
    offset = 4 + 4 * raw[3]
    if len(raw) < offset:
        raise DataFileError(f"{path} is truncated inside its IDX header ({len(raw)} of {offset} "
                            f"header bytes found{gz}); {fix}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(raw[3]))
    expected = offset + math.prod(dims)  # exact: header dims may be garbage
    if len(raw) < expected or not ended:
        raise DataFileError(f"{path} is truncated: its IDX header declares shape {dims}, "
                            f"{expected} bytes, but {len(raw)} bytes were found{gz}; {fix}")
    if len(raw) > expected:
        raise DataFileError(f"{path} holds {len(raw)} bytes{gz}, but its IDX header declares "
                            f"shape {dims}, {expected} bytes: not the file its header describes; "
                            f"{fix}")
    # bytearray: a writable buffer, so torch.from_numpy later needs no copy and gives no warning
    return np.frombuffer(bytearray(raw), dtype=np.uint8, offset=offset).reshape(dims)


def _str_keys(d: dict) -> dict:
    # The original CIFAR pickles were written by Python 2: with encoding="bytes" their keys are
    # bytes; files re-pickled by Python 3 may use str keys. Accept both.
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


_CIFAR_FIX = ("extract cifar-10-python.tar.gz again, or delete the folder and load 'cifar10' with "
              "download=True")


def _load_pickle_dict(path: Path, *, fix: str) -> dict:
    """A pickled dict (str keys) from `path`; DataFileError naming it when it does not load."""
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="bytes")
    except Exception as err:  # truncated or foreign data: UnpicklingError, EOFError, ValueError...
        raise DataFileError(f"{path} is not a readable pickle, truncated or corrupt "
                            f"({_first_line(err)}); {fix}") from err
    if not isinstance(obj, dict):
        raise DataFileError(f"{path} holds a pickled {type(obj).__name__}, not a dict; {fix}")
    return _str_keys(obj)


def read_cifar_batches(paths: list[Path], *, fix: str = _CIFAR_FIX
                       ) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 batch pickles -> (images uint8 (N, 3, 32, 32), labels int64 (N,)), concatenated.

    Pickles can run code when loaded: only read batch files from a source you trust (the official
    archive, or torchvision's download of it). A file that does not load or lacks data (N, 3072)
    and N labels raises DataFileError naming it and `fix`.
    """
    xs, ys = [], []
    for path in paths:
        batch = _load_pickle_dict(path, fix=fix)
        labels = batch.get("labels", batch.get("fine_labels"))
        try:
            data = np.asarray(batch["data"], dtype=np.uint8)
            labels = np.asarray(labels, dtype=np.int64)
        except (KeyError, TypeError, ValueError) as err:
            raise DataFileError(f"{path} is not a CIFAR batch: no uint8 b'data' and integer "
                                f"b'labels' ({_first_line(err)}); {fix}") from err
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (len(data),):
            raise DataFileError(f"{path}: expected data (N, 3072) and N labels, got data "
                                f"{data.shape} and labels {labels.shape}; {fix}")
        xs.append(data.reshape(-1, 3, 32, 32))  # row layout is channel-major: already NCHW
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


def read_cifar_label_names(path: Path, *, fix: str = _CIFAR_FIX) -> list[str]:
    """`batches.meta` -> the class names in label order (DataFileError naming it if unreadable)."""
    meta = _load_pickle_dict(path, fix=fix)
    if "label_names" not in meta:
        raise DataFileError(f"{path} has no b'label_names' (keys: {sorted(meta)}); {fix}")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in meta["label_names"]]


def to_nchw(x: np.ndarray, *, name: str) -> np.ndarray:
    """uint8 images (N, H, W), (N, H, W, C) or (N, C, H, W) with C in {1, 3} -> (N, C, H, W).

    A 4-D array whose last axis is 1 or 3 is read as (N, H, W, C) (numpy/PIL convention);
    otherwise axis 1 must be 1 or 3 and it is read as (N, C, H, W). UsageError otherwise.
    """
    if x.dtype != np.uint8:
        raise UsageError(f"{name} must be uint8 images in 0..255, got dtype {x.dtype} "
                         "(convert with (x * 255).round().astype(np.uint8) if it is in [0, 1])")
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[3] in (1, 3):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    if x.ndim == 4 and x.shape[1] in (1, 3):
        return x
    raise UsageError(f"{name} must have shape (N, H, W), (N, H, W, C) or (N, C, H, W) with "
                     f"C in {{1, 3}}, got {x.shape}")


_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _npz_arrays(path: Path) -> tuple[dict, list[str] | None]:
    """The four arrays and the optional class names of an .npz, DataFileError if it won't read."""
    try:  # opened here: np.load leaves its own handle open when the file is no zip
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:
            missing = [k for k in _NPZ_KEYS if k not in f.files]
            held = sorted(f.files)
            out = {} if missing else {k: f[k] for k in _NPZ_KEYS}
            names = [str(c) for c in f["classes"]] if "classes" in f.files else None
    except FileNotFoundError as err:
        raise MissingDataError(f"npz file {path} not found") from err
    # truncated or damaged zips raise BadZipFile (or zlib.error when compressed); files that are
    # no zip at all ValueError; object arrays (pickles) ValueError; unreadable files OSError
    except (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataFileError(f"cannot read {path} as an .npz: truncated, corrupt or another format "
                            f"({_first_line(err)}); write it again with np.savez") from err
    if missing:
        raise DataFileError(f"{path} lacks arrays {missing}; it holds {held} (expected "
                            f"{', '.join(_NPZ_KEYS)})")
    return out, names


def read_npz(path: Path) -> dict:
    """An `.npz` with x_train, y_train, x_test, y_test (optional `classes`, names in label order).

    Returns {"x_train", "y_train", "x_test", "y_test", "classes"}: images uint8 (N, C, H, W),
    labels int64 (N,), classes list[str] ("0".."K-1" when the file has none, K = max label + 1).
    DataFileError naming the file when it does not load or its arrays are not these.
    """
    out, names = _npz_arrays(path)
    for split in ("train", "test"):
        try:
            x = to_nchw(out[f"x_{split}"], name=f"x_{split}")
        except UsageError as err:
            raise DataFileError(f"{path}: {err}") from err
        y = out[f"y_{split}"]
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or len(y) != len(x):
            raise DataFileError(f"{path}: y_{split} must hold {len(x)} integer labels (N,), got "
                                f"{y.dtype} {y.shape}")
        if len(y) and y.min() < 0:
            raise DataFileError(f"{path}: y_{split} holds negative labels (min {y.min()})")
        out[f"x_{split}"], out[f"y_{split}"] = x, y.astype(np.int64)
    if not len(out["x_train"]):
        raise DataFileError(f"{path}: x_train holds no images")
    if out["x_train"].shape[1:] != out["x_test"].shape[1:]:
        raise DataFileError(f"{path}: train images {out['x_train'].shape[1:]} and test images "
                            f"{out['x_test'].shape[1:]} differ in (C, H, W)")
    k = int(max(out["y_train"].max(initial=-1), out["y_test"].max(initial=-1))) + 1
    if names is not None and len(names) < k:
        raise DataFileError(f"{path}: `classes` names {len(names)} classes but labels go up to "
                            f"{k - 1}")
    out["classes"] = names if names is not None else [str(i) for i in range(k)]
    return out


def _not_data(name: str) -> bool:
    """Hidden entries (".ipynb_checkpoints", ".DS_Store", AppleDouble "._x.png") and OS metadata
    (__MACOSX, Thumbs.db, desktop.ini, ...): never a class and never an image."""
    return name.startswith(".") or name.lower() in _NOT_DATA


def _listing(names: list[str], limit: int = 5) -> str:
    """'a, b, c and 4 more': a list that keeps a message on one line."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _folder_entries(folder: Path) -> list[os.DirEntry]:
    """The entries of `folder` sorted by name; DataFileError naming it when it cannot be read."""
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as err:
        raise DataFileError(f"cannot read folder {folder} ({err.strerror or err})") from err


def _class_images(class_dir: Path, *, base: Path) -> tuple[list[str], list[str]]:
    """(image files under `class_dir`, sub-folders included, in ImageFolder's order; every other
    entry, relative to `base`). Links are followed, but each folder is read once: a link back up
    the tree would otherwise list its images again under new paths."""
    files, skipped, seen = [], [], set()

    def unreadable(err: OSError):  # os.walk would skip an unreadable folder without a word
        raise DataFileError(f"cannot read folder {err.filename} ({err.strerror or err})") from err

    for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True, onerror=unreadable):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            skipped.append(f"{os.path.relpath(dirpath, base)}/ (a link to a folder already read)")
            dirnames.clear()
            continue
        seen.add((st.st_dev, st.st_ino))
        skipped += [f"{os.path.relpath(os.path.join(dirpath, d), base)}/"
                    for d in sorted(dirnames) if _not_data(d)]
        dirnames[:] = sorted(d for d in dirnames if not _not_data(d))  # same order everywhere
        for fname in sorted(filenames):
            path = os.path.join(dirpath, fname)
            if _not_data(fname) or not fname.lower().endswith(IMG_EXTENSIONS):
                skipped.append(os.path.relpath(path, base))
            else:
                files.append(path)
    return files, skipped


def list_image_folder(split_dir: Path, *, classes: list[str] | None = None
                      ) -> tuple[list[str], list[os.stat_result], np.ndarray, list[str]]:
    """Walk `split_dir/<class>/**` -> (files, their stat results, labels int64 (N,), classes).

    Classes are the sorted sub-folder names unless given (the test split uses the train split's,
    so labels agree); files are sorted within each class, as torchvision's ImageFolder does.

    Skipped, with one DataWarning per split naming them (never a class, never an image): hidden
    entries (".ipynb_checkpoints", ".DS_Store", AppleDouble "._*" files), OS metadata (__MACOSX,
    Thumbs.db, desktop.ini, ...), files beside the class folders (README.txt), and files in class
    folders without an image extension (notes.txt; ImageFolder skips those too, silently).
    Refused, naming the path: a missing split folder (MissingDataError); an unreadable one, one
    with no class folders, a class folder with no images (a class nobody can learn, or scored on
    zero test images), a class folder that `classes` lacks (DataFileError); a class of `classes`
    with no folder here (MissingDataError: a test split must hold every train class, or its
    accuracy would silently leave the class out).
    """
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        kind = DataFileError if split_dir.exists() else MissingDataError
        raise kind(f"image folder split {split_dir} is missing or not a folder; expected "
                   f"{split_dir / '<class>' / '<image>'}, one folder per class")
    skipped, found = [], []
    for e in _folder_entries(split_dir):
        if _not_data(e.name) or not e.is_dir():
            skipped.append(e.name + ("/" if e.is_dir() else ""))
        else:
            found.append(e.name)
    if classes is None:
        classes = found
    if not found:
        held = f" (it holds only {_listing(skipped)})" if skipped else " (it is empty)"
        raise DataFileError(f"{split_dir} holds no class folders{held}; expected "
                            f"{split_dir / '<class>' / '<image>'}, one folder per class")
    extra = sorted(set(found) - set(classes))
    if extra:
        raise DataFileError(f"{split_dir} has class folders {extra} that the train split lacks; "
                            "add them to train or remove them")
    files, stats, labels = [], [], []
    for label, name in enumerate(classes):
        class_dir = split_dir / name
        if name not in found:
            raise MissingDataError(f"class {name!r} has no folder {class_dir}: every class of "
                                   "the train split needs images in this split too (add some, "
                                   "or remove the class from train)")
        class_files, class_skipped = _class_images(class_dir, base=split_dir)
        skipped += class_skipped
        if not class_files:
            held = f" (only {_listing(class_skipped)})" if class_skipped else " (it is empty)"
            raise DataFileError(f"class folder {class_dir} holds no images{held}; expected "
                                f"image files ({', '.join(IMG_EXTENSIONS)}): add some, or delete "
                                "the folder if it is no class")
        for path in class_files:
            try:
                stats.append(os.stat(path))
            except OSError as err:  # a link to a file that is gone
                raise DataFileError(f"cannot read {path} ({err.strerror or err}); a broken link? "
                                    "replace or remove it") from err
            files.append(path)
            labels.append(label)
    if skipped:
        warnings.warn(f"{split_dir}: skipped {len(skipped)} entries that are not class folders "
                      f"or images: {_listing(skipped)}", DataWarning, stacklevel=2)
    return files, stats, np.asarray(labels, dtype=np.int64), classes


def _unreadable_image(path: str, err: Exception) -> DataFileError:
    return DataFileError(f"{path} is not a readable image, damaged or another format "
                         f"({_first_line(err)}); replace it or move it out of the data folder")


def probe_image(path: str) -> tuple[str, tuple[int, int]]:
    """From one file: the PIL mode ("L" or "RGB") all images of its folder become, and (H, W).

    Grayscale ("1", "L") folders stay 1-channel; anything else becomes 3-channel RGB (alpha
    dropped). DataFileError naming the file when it is not a readable image.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            return ("L" if im.mode in ("1", "L") else "RGB"), (im.height, im.width)
    except Exception as err:  # PIL raises OSError, ValueError, SyntaxError... for damaged files
        raise _unreadable_image(path, err) from err


def _decode_one(path: str, *, mode: str, size: tuple[int, int]) -> np.ndarray:
    """One image file -> uint8 (H, W, C) in `mode`; DataFileError naming it if it cannot be."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            found, found_mode = (im.height, im.width), im.mode
            if found == size and not (mode == "L" and found_mode not in ("1", "L")):
                return np.asarray(im.convert(mode)).reshape(*size, 1 if mode == "L" else 3)
    except Exception as err:  # PIL raises OSError, ValueError, SyntaxError... for damaged files
        raise _unreadable_image(path, err) from err
    if found != size:
        raise DataFileError(f"{path} is {found[0]}x{found[1]}, but the folder's images are "
                            f"{size[0]}x{size[1]}; resize them all to one size first")
    raise DataFileError(f"{path} has mode {found_mode} in a grayscale folder; convert the folder's "
                        "images to one mode first")


def decode_images(files: list[str], *, mode: str, size: tuple[int, int]) -> np.ndarray:
    """Decode image files -> uint8 (N, C, H, W), converted to `mode`; all must be `size` (H, W).

    DataFileError naming the first file that is not a readable image, not `size`, or (in a
    grayscale folder) not grayscale.
    """
    channels = 1 if mode == "L" else 3
    out = np.empty((len(files), size[0], size[1], channels), dtype=np.uint8)  # NHWC, as PIL gives
    for i, path in enumerate(files):
        out[i] = _decode_one(path, mode=mode, size=size)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


# ----------------------------------------------------------------------------- dataset sources

def missing_error(what: str, expected: list[str], *, root: Path, origin: str,
                  extra: str = "") -> MissingDataError:
    """One error, one line, naming the missing files, the root searched (and whether it exists at
    all) and how to point elsewhere."""
    where = f"data root {root.resolve()} (from {origin})"
    if not root.is_dir():
        where += ", which is not a folder" if root.exists() else ", which does not exist"
    return MissingDataError(
        f"{what} not found in {where}: expected {', '.join(expected)}. Set the root with "
        f"load_dataset(..., root=...) or the environment variable {DATA_ENV}=/path/to/data."
        f"{extra}")


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
            raise missing_error(source, [f"{raw_dir / f}[.gz]" for k, f in _IDX_FILES.items()
                                         if found[k] is None], root=root, origin=origin,
                                extra=" Or pass download=True to fetch it with torchvision.")
        # A damaged file is not re-downloaded while it is there (download=True fetches only
        # what is missing), hence "delete it".
        fix = (f"delete it and load {source} with download=True, or copy the four original "
               f"*-ubyte.gz files into {raw_dir} again")
        arr = {k: read_idx(p, ndim=3 if k.startswith("x") else 1, fix=fix)
               for k, p in found.items()}
        x = {s: arr[f"x_{s}"][:, None] for s in ("train", "test")}  # (N, H, W) -> (N, 1, H, W)
        y = {s: arr[f"y_{s}"].astype(np.int64) for s in ("train", "test")}
        for s in ("train", "test"):
            if len(x[s]) != len(y[s]):
                raise DataFileError(f"{found[f'x_{s}']} holds {len(x[s])} images but "
                                    f"{found[f'y_{s}']} {len(y[s])} labels; {fix}")
            if len(y[s]) and int(y[s].max()) >= len(classes):
                raise DataFileError(f"{found[f'y_{s}']} holds label {int(y[s].max())}, but "
                                    f"{source} has {len(classes)} classes; {fix}")
        if x["train"].shape[2:] != x["test"].shape[2:]:
            raise DataFileError(f"{found['x_train']} holds {x['train'].shape[2:]} images but "
                                f"{found['x_test']} {x['test'].shape[2:]}; {fix}")
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
            "CIFAR-10 (python pickles)", [str(folder / n) for n in names
                                          if not (folder / n).is_file()], root=root, origin=origin,
            extra=(" Or pass download=True to fetch it with torchvision. If you only have the JPEG "
                   "copy (<root>/cifar10-jpeg/{train,test}/<class>/*.jpg), use the dataset "
                   "'cifar10_jpeg' instead."))
    x_train, y_train = read_cifar_batches([folder / n for n in _CIFAR_TRAIN])
    x_test, y_test = read_cifar_batches([folder / "test_batch"])
    classes = read_cifar_label_names(folder / "batches.meta")
    top = int(max(y_train.max(initial=-1), y_test.max(initial=-1)))
    if top >= len(classes):
        raise DataFileError(f"{folder}: labels go up to {top} but batches.meta names "
                            f"{len(classes)} classes; {_CIFAR_FIX}")
    return _in_memory({"train": x_train, "test": x_test}, {"train": y_train, "test": y_test},
                      classes, "CIFAR-10")


def read_npz_dataset(*, root: Path, origin: str, path: Path, download: bool,
                     cache: Path) -> RawDataset:
    """The `.npz` file at `path` (see `read_npz`)."""
    if not path.exists():
        raise MissingDataError(f"npz dataset file not found: {path.resolve()}; expected an .npz "
                               "with x_train, y_train, x_test, y_test (np.savez)")
    if not path.is_file():
        raise DataFileError(f"npz dataset {path.resolve()} is not a file; expected an .npz with "
                            "x_train, y_train, x_test, y_test (an image folder is 'image_folder')")
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
    path = path.resolve()
    expected = f"expected {path / 'train' / '<class>'}/* and {path / 'test' / '<class>'}/*"
    if not path.exists():
        raise MissingDataError(f"image folder {path} does not exist; {expected}")
    if not path.is_dir():
        raise DataFileError(f"image folder {path} is a file, not a folder; {expected} (an .npz is "
                            "dataset 'npz')")
    lacking = [s for s in ("train", "test") if not (path / s).is_dir()]
    if lacking:
        raise MissingDataError(f"image folder {path} has no {' or '.join(lacking)} folder; "
                               f"{expected}")
    return image_folder(path, source=f"image folder {path.resolve()}", cache=cache)


def _download(tv_name: str, root: Path) -> None:
    """Fetch with torchvision into `root` (only ever called with download=True)."""
    import torchvision

    log.info("downloading %s into %s with torchvision", tv_name, root)
    try:
        getattr(torchvision.datasets, tv_name)(str(root), train=True, download=True)
    except Exception as err:  # offline, read-only root, a bad checksum: URLError, OSError, ...
        raise DataFileError(f"downloading {tv_name} into {root} with torchvision failed "
                            f"({_first_line(err)}); copy its files there by hand, or set "
                            f"{DATA_ENV} to a folder that holds them") from err


# ----------------------------------------------------------------------------- image folders

def image_folder(folder: Path, *, source: str, cache: Path,
                 protect: Path | None = None) -> RawDataset:
    """`folder/{train,test}/<class>/*` with its decoded images cached in the folder `cache`.

    The listing (names, sizes, mtimes) is read now; images are decoded when asked for: from the
    cache `cache/imagefolder-<path hash>-<listing hash>.npz` if present, else only the chosen
    files when they are few (under a quarter of the folder, no split asked for whole), else all
    files, which are then cached. `protect` (the data root) and
    `folder` must not contain `cache` (UsageError). A damaged cache is deleted with a DataWarning
    and decoded again; a cache that cannot be written is skipped with a DataWarning. Listing and
    decoding errors: see `list_image_folder` and `decode_images`.
    """
    folder = folder.resolve()
    files, stats, labels = {}, {}, {}
    files["train"], stats["train"], labels["train"], classes = list_image_folder(folder / "train")
    files["test"], stats["test"], labels["test"], _ = list_image_folder(folder / "test",
                                                                        classes=classes)
    mode, size = probe_image(files["train"][0])
    # Cheap signature of the listing: any added, removed, resized or touched file changes it.
    sig = hashlib.sha256(f"{_CACHE_VERSION}|{folder}".encode())
    inside = os.path.join(str(folder), "")  # every listed file starts with it (os.walk joins)
    for split in ("train", "test"):
        for f, st in zip(files[split], stats[split]):
            # a slice, not os.path.relpath: relpath made every load of CIFAR-10's 60,000 files
            # (cached or not) 2 s slower; the same string for the paths the listing builds
            rel = f[len(inside):] if f.startswith(inside) else os.path.relpath(f, folder)
            sig.update(f"{split}|{rel}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    cdir = Path(cache).resolve()
    for guarded in (folder, *([Path(protect).resolve()] if protect is not None else [])):
        if cdir == guarded or guarded in cdir.parents:
            raise UsageError(f"cache folder {cdir} lies inside the data folder {guarded}; set "
                             f"{CACHE_ENV} elsewhere (the data root is never written to)")
    prefix = f"imagefolder-{hashlib.sha256(str(folder).encode()).hexdigest()[:12]}-"
    cache_file = cdir / f"{prefix}{sig.hexdigest()[:16]}.npz"
    total = len(files["train"]) + len(files["test"])

    def images(picks):
        full = _load_cache(cache_file, labels=labels, classes=classes,
                           shape=(1 if mode == "L" else 3, *size))
        chosen = sum(len(i) for _, i in picks.values())
        whole_split = any(len(i) == len(files[s]) for s, i in picks.values())
        if full is None and chosen < _PARTIAL_DECODE_SHARE * total and not whole_split:
            return {k: decode_images([files[s][j] for j in i], mode=mode, size=size)
                    for k, (s, i) in picks.items()}
        if full is None:
            start = time.perf_counter()
            full = {s: decode_images(files[s], mode=mode, size=size) for s in ("train", "test")}
            log.info("decoded %d images of %s in %.1f s; caching them in %s", total, folder,
                     time.perf_counter() - start, cache_file)
            try:
                _save_cache(cache_file, prefix=prefix, classes=np.asarray(classes),
                            x_train=full["train"], y_train=labels["train"], x_test=full["test"],
                            y_test=labels["test"])
            except OSError as err:  # the images are decoded already: a cache is only a speed-up
                warnings.warn(f"could not write the decoded cache {cache_file} "
                              f"({err.strerror or err}); continuing without it (set {CACHE_ENV} "
                              "to a writable folder to keep it)", DataWarning, stacklevel=2)
        return {k: full[s] if len(i) == len(full[s]) else full[s][i] for k, (s, i) in picks.items()}
    return RawDataset(classes=classes, labels=labels, images=images, source=source)


def _load_cache(path: Path, *, labels, classes, shape: tuple[int, int, int]
                ) -> dict[str, np.ndarray] | None:
    """The cached decoded folder {"train", "test"} -> uint8 (N, C, H, W), or None when absent.

    Its name holds a hash of the listing, so a cache that is there but cannot be read, or whose
    arrays do not match the listing (classes, labels, N and `shape` (C, H, W), dtype), is damaged
    (a full disk, a killed process, a copy cut short): it is deleted with a DataWarning and None
    is returned, so the images are decoded again (and re-cached by the next full load).
    """
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:
            out = {"train": f["x_train"], "test": f["x_test"]}
            ok = (list(f["classes"]) == list(classes)
                  and all(np.array_equal(f[f"y_{s}"], labels[s])
                          and out[s].dtype == np.uint8
                          and out[s].shape == (len(labels[s]), *shape) for s in ("train", "test")))
        problem = None if ok else "its arrays do not match the image folder"
    # truncated zips raise BadZipFile, damaged members BadZipFile/ValueError/EOFError, a 0-d
    # "classes" TypeError: whatever it is, the cache is rebuilt rather than trusted
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile,
            zlib.error) as err:
        problem = _first_line(err)
    if problem is None:
        return out
    try:
        path.unlink()
        done = "deleted it; decoding the images again"
    except OSError:
        done = f"delete it by hand (rm {path}); decoding the images again meanwhile"
    warnings.warn(f"the decoded cache {path} is damaged ({problem}); {done}", DataWarning,
                  stacklevel=3)
    return None


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
