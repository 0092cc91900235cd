"""`python -m dfl_lib data` (issue 38, item 5): what a data root holds of the study's datasets,
and --download asking torchvision for exactly the ones it can fetch (never the JPEG copy)."""
import pytest

from dfl_lib.__main__ import main
from dfl_lib.data import datasets
from dfl_lib.data.datasets import DOWNLOADABLE, STUDY_DATASETS, data_status
from dfl_lib.errors import MissingDataError


def test_an_empty_root_names_where_each_dataset_was_looked_for(tmp_path):
    rows = {r["dataset"]: r for r in data_status(tmp_path)}
    assert set(rows) == set(STUDY_DATASETS) and not any(r["present"] for r in rows.values())
    assert all(str(tmp_path) in r["detail"] for r in rows.values())
    assert "not downloadable" in rows["cifar10_jpeg"]["detail"]
    assert "not downloadable" not in rows["mnist"]["detail"]


def test_download_is_asked_only_of_what_torchvision_can_fetch(tmp_path, monkeypatch, capsys):
    asked = {}

    def fake(name):
        def reader(*, root, origin, download, cache, path):
            asked[name] = download
            raise MissingDataError(f"{name} not found in {root}. more")
        return reader

    for name in STUDY_DATASETS:
        monkeypatch.setitem(datasets.DATASETS, name,
                            datasets.DatasetSpec(fake(name), source=name))
    assert main(["data", "--data-dir", str(tmp_path), "--download"]) == 1  # still missing
    assert asked == {name: name in DOWNLOADABLE for name in STUDY_DATASETS}
    assert asked["cifar10_jpeg"] is False and asked["cifar10"] is True
    assert main(["data", "--data-dir", str(tmp_path)]) == 0  # a status, not a failure
    out = capsys.readouterr().out
    assert out.count("missing:") == 2 * len(STUDY_DATASETS)


def test_the_real_root_holds_mnist_whole(real_data_root):
    rows = {r["dataset"]: r for r in data_status(real_data_root)}
    assert rows["mnist"]["present"] and (rows["mnist"]["train"], rows["mnist"]["test"]) == (
        60_000, 10_000)
