"""Datasets as in-memory uint8 tensors, read straight from their standard on-disk formats.

    data = load_dataset("mnist", n_train=1000, n_val=200, seed=0)
    x = data.to_float(data.x_train[:64])          # float32 (64, 1, 28, 28) in [0, 1]

Names (the `DATASETS` registry):
- "mnist", "fashion_mnist": IDX files `<root>/MNIST/raw/train-images-idx3-ubyte[.gz]` etc.
  (torchvision's layout; `.gz` or extracted).
- "cifar10": the python pickles `<root>/cifar-10-batches-py/{data_batch_1..5, test_batch,
  batches.meta}`.
- "cifar10_jpeg": the image folder `<root>/cifar10-jpeg/{train,test}/<class>/*.jpg`, a JPEG copy of
  CIFAR-10 (its numbers are not the published CIFAR-10's; reports say "CIFAR-10 (JPEG copy)").
- "image_folder": any `<path>/{train,test}/<class>/*` tree (class index = sorted folder names).
- "npz": any `.npz` at `path` with x_train, y_train, x_test, y_test (see `formats.read_npz`).

The data root is `root`, else $DFL_DATA_DIR, else ./data; nothing is ever written under it.
torchvision is used only to download MNIST / Fashion-MNIST / CIFAR-10 when `download=True`.
Image folders are decoded once into a cache under $DFL_CACHE_DIR (else <repo>/.cache/dfl_lib).

Errors (`dfl_lib.errors`, one line each): `UsageError` for an argument that cannot be meant,
`MissingDataError` for a missing data root, folder or file (naming it, $DFL_DATA_DIR and how to
get the data), `DataFileError` for a truncated, corrupt or malformed one (naming the file and how
to get or rebuild it). Entries of an image folder that are not data (hidden folders such as
`.ipynb_checkpoints`, OS metadata, stray files) are skipped with a `formats.DataWarning`.
"""
from __future__ import annotations

import hashlib
import operator
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import DataFileError, MissingDataError, UsageError, UsageTypeError
from ..validation import check_known
from .formats import (CACHE_ENV, DATA_ENV, FASHION_CLASSES, RawDataset, idx_reader,
                      read_cifar10, read_cifar10_jpeg, read_image_folder, read_npz_dataset)

__all__ = ["Dataset", "DatasetSpec", "DATASETS", "load_dataset", "balanced_indices", "data_root",
           "cache_dir", "to_float", "batch_indices", "data_status", "STUDY_DATASETS",
           "DOWNLOADABLE"]


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, C, H, W) in 0..255 -> float32 in [0, 1]; float input passes through."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


@dataclass
class Dataset:
    """Train / validation / test splits in memory.

    Images are uint8 tensors (N, C, H, W) in 0..255, labels int64 (N,), in the same order.
    `mean`, `std`: per-channel statistics of x_train in [0, 1] units, for the model's own
    normalisation layer (inputs and attack budgets stay in pixel units).
    `fingerprint`: first 16 hex digits of a sha256 over the six arrays' shapes and bytes.
    """

    name: str
    source: str
    classes: list[str]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool
    fingerprint: str
    # training-set poisoning applied to x_train / y_train (dfl_lib.experiments.poisoned): the
    # PoisonedSet saying which indices changed and how; None for the data as published
    poisoned: object = None

    @classmethod
    def from_arrays(cls, *, name: str, source: str, classes: list[str], x_train, y_train, x_val,
                    y_val, x_test, y_test, augment: bool = False) -> Dataset:
        """Build from uint8 image arrays (N, C, H, W) and integer labels (N,) (tensors or numpy);
        computes mean, std and fingerprint. UsageError for arrays of another dtype or shape."""
        arrays = {k: torch.as_tensor(v) for k, v in dict(
            x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val, x_test=x_test,
            y_test=y_test).items()}
        for split in ("train", "val", "test"):
            x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
            if x.dtype != torch.uint8 or x.dim() != 4:
                raise UsageError(f"x_{split} must be uint8 (N, C, H, W), got {x.dtype} "
                                 f"{tuple(x.shape)}")
            if y.dim() != 1 or len(y) != len(x):
                raise UsageError(f"y_{split} must have shape ({len(x)},), got {tuple(y.shape)}")
            arrays[f"y_{split}"] = y.long()
        mean, std = _channel_stats(arrays["x_train"])
        return cls(name=name, source=source, classes=list(classes), **arrays, mean=mean, std=std,
                   augment=augment, fingerprint=_fingerprint(arrays))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) in pixels."""
        return int(self.x_train.shape[2]), int(self.x_train.shape[3])

    @staticmethod
    def to_float(x: torch.Tensor) -> torch.Tensor:
        """uint8 images (N, C, H, W) in 0..255 -> float32 in [0, 1] (`dfl_lib.data.datasets.to_float`)."""
        return to_float(x)

    def __repr__(self) -> str:  # the default would print six whole tensors
        return (f"Dataset({self.name!r}, source={self.source!r}, {self.num_classes} classes, "
                f"images {self.in_channels}x{self.image_size[0]}x{self.image_size[1]}, "
                f"train/val/test {len(self.y_train)}/{len(self.y_val)}/{len(self.y_test)}, "
                f"fingerprint {self.fingerprint})")


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images (N, C, H, W), in [0, 1] units.

    Exact from a 256-bin histogram per channel, so 50,000 CIFAR images never become a float copy.
    A constant channel gets std 1.0 so the model's normalisation never divides by zero.
    """
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[1]):
        hist = torch.bincount(x[:, c].reshape(-1), minlength=256).double()
        m = float((hist * levels).sum() / hist.sum())
        s = float(((hist * (levels - m) ** 2).sum() / hist.sum()).sqrt())
        means.append(m)
        stds.append(s if s > 0 else 1.0)
    return tuple(means), tuple(stds)


def _fingerprint(arrays: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        t = arrays[key].contiguous()
        h.update(f"{key}{tuple(t.shape)}{t.dtype};".encode())
        h.update(t.numpy().data)
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------- locations

def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: `root`, else $DFL_DATA_DIR, else ./data (relative to the working folder)."""
    return Path(root if root is not None else os.environ.get(DATA_ENV) or "data").expanduser()


def _root_origin(root) -> str:
    return "the root argument" if root is not None else (
        f"${DATA_ENV}" if os.environ.get(DATA_ENV) else f"the default ./data (${DATA_ENV} unset)")


def cache_dir() -> Path:
    """Where decoded image folders are cached: $DFL_CACHE_DIR, else <repo>/.cache/dfl_lib."""
    env = os.environ.get(CACHE_ENV)
    repo = Path(__file__).resolve().parents[2]  # the folder holding the dfl_lib package
    return Path(env).expanduser() if env else repo / ".cache" / "dfl_lib"


# ----------------------------------------------------------------------------- registry + API

@dataclass(frozen=True)
class DatasetSpec:
    """How a dataset name is read: its reader, report label, default augmentation, needs path=."""

    reader: Callable[..., RawDataset]
    source: str
    augment: bool = False
    needs_path: bool = False
    num_classes: int | None = None  # fixed by the dataset; None: read from the files


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(idx_reader("MNIST", [str(i) for i in range(10)], "MNIST", "MNIST"),
                         source="MNIST", num_classes=10),
    "fashion_mnist": DatasetSpec(idx_reader("FashionMNIST", FASHION_CLASSES, "Fashion-MNIST",
                                             "FashionMNIST"), source="Fashion-MNIST", num_classes=10),
    "cifar10": DatasetSpec(read_cifar10, source="CIFAR-10", augment=True, num_classes=10),
    "cifar10_jpeg": DatasetSpec(read_cifar10_jpeg, source="CIFAR-10 (JPEG copy)", augment=True,
                                num_classes=10),
    "image_folder": DatasetSpec(read_image_folder, source="image folder", needs_path=True),
    "npz": DatasetSpec(read_npz_dataset, source="npz file", needs_path=True),
}
DOWNLOADABLE = ("mnist", "fashion_mnist", "cifar10")


# the datasets the study's profiles read; each is fetched by `data_status(download=True)` where
# torchvision can fetch it (the JPEG copy of CIFAR-10 exists only where it was made)
STUDY_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar10_jpeg")


def data_status(root=None, *, download: bool = False) -> list[dict]:
    """What the data root holds of each of `STUDY_DATASETS`: {"dataset", "source", "present",
    "train", "test" (counts, when present), "detail" (where it was looked for, when missing)};
    with download=True torchvision first fetches each downloadable one that is missing into the
    root (MNIST, Fashion-MNIST, the original CIFAR-10; the JPEG copy cannot be fetched and is
    never substituted for it). Reads the files' listings and labels; decodes no images."""
    base = data_root(root)
    out = []
    for name in STUDY_DATASETS:
        spec = DATASETS[name]
        row = {"dataset": name, "source": spec.source}
        try:
            raw = spec.reader(root=base, origin=_root_origin(root),
                              download=download and name in DOWNLOADABLE, cache=cache_dir(),
                              path=None)
        except MissingDataError as err:
            note = "" if name in DOWNLOADABLE else (
                " (not downloadable: a JPEG copy made where the original batches were not at "
                "hand; the original is 'cifar10')")
            out.append({**row, "present": False, "detail": str(err).split(". ")[0] + note})
            continue
        out.append({**row, "present": True, "train": len(raw.labels["train"]),
                    "test": len(raw.labels["test"])})
    return out


def batch_indices(n: int, *, batch_size: int, generator: torch.Generator | None = None,
                  shuffle: bool = True) -> Iterator[torch.Tensor]:
    """Index tensors covering range(n) in batches; shuffled with `generator` when asked."""
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from order.split(batch_size)


def balanced_indices(labels: torch.Tensor, *, n: int, num_classes: int,
                     generator: torch.Generator) -> torch.Tensor:
    """n indices into `labels` (int64 (N,)), as class-balanced as the data allows, sorted.

    Each class gets floor(n / k) with the remainder going to the first classes; a class with too
    few examples gives all it has and its shortfall is shared the same way among the others.
    Which examples of a class are taken is a seeded random permutation.
    """
    per_class = [torch.nonzero(labels == c).flatten() for c in range(num_classes)]
    avail = [len(i) for i in per_class]
    if n > sum(avail):
        raise UsageError(f"asked for {n} examples, only {sum(avail)} available")
    quota, left = [0] * num_classes, n
    active = [c for c in range(num_classes) if avail[c] > 0]
    while left > 0:  # fill; a class that runs short is capped and leaves the round
        share, extra = divmod(left, len(active))
        want = {c: share + (r < extra) for r, c in enumerate(active)}
        short = [c for c in active if avail[c] - quota[c] < want[c]]
        if not short:
            for c in active:
                quota[c] += want[c]
            break
        for c in short:
            left -= avail[c] - quota[c]
            quota[c] = avail[c]
        active = [c for c in active if c not in short]
    picked = [idx[torch.randperm(len(idx), generator=generator)[:q]]
              for idx, q in zip(per_class, quota) if q]
    return torch.cat(picked).sort().values if picked else torch.zeros(0, dtype=torch.long)


def _check_count(value, *, name: str, allow_none: bool) -> int | None:
    if value is None and allow_none:
        return None
    try:
        n = operator.index(value)
    except TypeError:
        raise UsageTypeError(f"{name} must be an integer{' or None' if allow_none else ''}, got "
                             f"{value!r}") from None
    if isinstance(value, bool) or n < 0:
        raise UsageError(f"{name} must be an integer >= 0, got {value!r}")
    return n


def _pick(pool: torch.Tensor, labels: torch.Tensor, n: int | None, *, name: str, what: str,
          num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """n balanced indices from `pool` (indices into labels), or the whole pool for n=None."""
    if n is None:
        return pool
    if n > len(pool):
        raise UsageError(f"{name}={n} is larger than the {len(pool)} {what}")
    if n == 0:
        return pool[:0]
    return pool[balanced_indices(labels[pool], n=n, num_classes=num_classes, generator=generator)]


def load_dataset(name: str, *, root: str | os.PathLike | None = None,
                 path: str | os.PathLike | None = None, n_train: int | None = None,
                 n_val: int = 0, n_test: int | None = None, seed: int = 0,
                 download: bool = False) -> Dataset:
    """Load a dataset from `DATASETS` as in-memory uint8 tensors, with seeded balanced subsets.

    root: data root (else $DFL_DATA_DIR, else ./data); path: the file/folder for "npz" and
    "image_folder". n_val examples are held out of the training set first, then n_train are drawn
    from the rest and n_test from the test set, each class-balanced (see `balanced_indices`) with
    torch.Generator().manual_seed(seed); None = all remaining, in file order. Subsets keep file
    order. download=True lets torchvision fetch MNIST / Fashion-MNIST / CIFAR-10 into root when
    missing; otherwise nothing is written under root.

    Raises UsageError (a ValueError) for arguments it cannot mean; MissingDataError when the root,
    the dataset's folder or a file is missing; DataFileError when a file is truncated, corrupt or
    malformed (IDX, pickle, .npz, an image), or an image folder holds an empty or missing class;
    each naming the path and how to get or rebuild it. Warns (`formats.DataWarning`) naming
    what it skips in an image folder (hidden entries, OS metadata, non-image files).
    """
    check_known(name, DATASETS, kind="dataset")
    spec = DATASETS[name]
    n_train = _check_count(n_train, name="n_train", allow_none=True)
    n_val = _check_count(n_val, name="n_val", allow_none=False)
    n_test = _check_count(n_test, name="n_test", allow_none=True)
    if n_train == 0:
        raise UsageError("n_train must be >= 1 (the model's normalisation uses the training "
                         "set's statistics)")
    if spec.needs_path and path is None:
        raise UsageError(f"dataset {name!r} needs path= (the {spec.source} to read)")
    if not spec.needs_path and path is not None:
        raise UsageError(f"path= is only for 'npz' and 'image_folder'; {name!r} reads from root")
    if download and name not in DOWNLOADABLE:
        raise UsageError(f"download=True works for {', '.join(DOWNLOADABLE)}, not {name!r}")

    base = data_root(root)
    raw = spec.reader(root=base, origin=_root_origin(root), download=download, cache=cache_dir(),
                      path=Path(path).expanduser() if path is not None else None)
    k = len(raw.classes)
    y_train, y_test = (torch.from_numpy(raw.labels[s]) for s in ("train", "test"))
    for s, y in (("train", y_train), ("test", y_test)):
        if len(y) and int(y.max()) >= k:  # the readers check their files; this guards new ones
            raise DataFileError(f"{raw.source}: {s} labels go up to {int(y.max())} but there are "
                                f"{k} classes")
    gen = torch.Generator().manual_seed(seed)
    every_train = torch.arange(len(y_train))
    val = _pick(every_train, y_train, n_val, name="n_val", what=f"{name} training examples",
                num_classes=k, generator=gen)
    rest = every_train[~torch.isin(every_train, val)]
    train = _pick(rest, y_train, n_train, name="n_train", num_classes=k, generator=gen,
                  what=f"{name} training examples left after holding out n_val={n_val}")
    if len(train) == 0:
        raise UsageError(f"no training examples left after holding out n_val={n_val} of "
                         f"{len(y_train)}; the model's normalisation needs some")
    test = _pick(torch.arange(len(y_test)), y_test, n_test, name="n_test", num_classes=k,
                 what=f"{name} test examples", generator=gen)
    picks = {"val": ("train", val.numpy()), "train": ("train", train.numpy()),
             "test": ("test", test.numpy())}
    x = raw.images(picks)
    return Dataset.from_arrays(
        name=name, source=raw.source, classes=raw.classes, augment=spec.augment,
        x_train=torch.from_numpy(x["train"]), y_train=y_train[train],
        x_val=torch.from_numpy(x["val"]), y_val=y_train[val],
        x_test=torch.from_numpy(x["test"]), y_test=y_test[test])
