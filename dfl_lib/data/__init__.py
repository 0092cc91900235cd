"""Data: the datasets as in-memory uint8 tensors with seeded, class-balanced subsets.

    datasets.py   `load_dataset(name, root=...)`, the `Dataset` object, `DATASETS`, subsets,
                  `to_float`, `batch_indices`, the data root and decoded-cache folders
    formats.py    the on-disk readers (MNIST's IDX, CIFAR-10's pickles, image folders, .npz):
                  what is not data is skipped with a `DataWarning`, what would make a wrong
                  dataset is a `DataFileError` naming the path
    augment.py    random crop and flip, per sample, from a seeded generator

May import: the core modules (errors, validation) only; data knows nothing of models, losses,
attacks, training, evaluation or the study.
"""
from .augment import augment_batch
from .datasets import (DATASETS, Dataset, balanced_indices, batch_indices, load_dataset,
                       to_float)
from .formats import DataWarning

__all__ = ["DATASETS", "Dataset", "load_dataset", "balanced_indices", "batch_indices",
           "to_float", "augment_batch", "DataWarning"]
