"""MNIST's gunzipped files are kept in memory between loads in one process (a notebook loads
MNIST once per run it reads: 0.27 s of zlib each time), but never served for a file that has
changed on disk since."""
import gzip

import numpy as np
import pytest

from dfl_lib.data import formats
from dfl_lib.errors import DataFileError


def _write(path, arr):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big")
                                                      for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_a_second_read_is_not_gunzipped_again_and_gives_its_own_array(tmp_path, monkeypatch):
    path = tmp_path / "images-idx3-ubyte.gz"
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write(path, arr)
    calls = []
    read = formats._read_file
    monkeypatch.setattr(formats, "_read_file", lambda p, **kw: calls.append(p) or read(p, **kw))
    first = formats.read_idx(path, ndim=3)
    second = formats.read_idx(path, ndim=3)
    assert len(calls) == 1 and np.array_equal(first, arr) and np.array_equal(second, arr)
    first[0, 0, 0] = 99  # a caller's change stays in its own array
    assert formats.read_idx(path, ndim=3)[0, 0, 0] == 0


def test_a_file_changed_on_disk_is_read_again(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    _write(path, np.arange(5, dtype=np.uint8))
    assert formats.read_idx(path, ndim=1).tolist() == [0, 1, 2, 3, 4]
    _write(path, np.arange(7, dtype=np.uint8))
    assert formats.read_idx(path, ndim=1).tolist() == [0, 1, 2, 3, 4, 5, 6]
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # truncated in place
    with pytest.raises(DataFileError, match="truncated"):
        formats.read_idx(path, ndim=1)
