"""The library's error types: what a user got wrong, told in one line.

Two kinds, so the command line can answer like a tool (`python -m dfl_lib`: exit 2 for a usage
error, 1 for a data or file error, the traceback only with --debug) and a notebook gets an
exception whose type says which kind it is and whose message names the problem, the value given
and what is expected:

- `UsageError` (a ValueError): a value, name or shape the caller gave that the library cannot
  mean: an unknown model, eps outside [0, 1], a batch size of 0, a 3-class model given to an
  attack that needs 4 classes. `UsageTypeError` is its TypeError twin (a string where a number
  belongs). Both subclass the built-in types, so `except ValueError` still catches them.
- `DataFileError` (an OSError): a file or folder the library reads is missing, truncated or not
  what it should be (MNIST's IDX files, an image folder, a checkpoint); the message names the
  path and how to get or rebuild it. `MissingDataError` is the FileNotFoundError among them.
"""
from __future__ import annotations

__all__ = ["UsageError", "UsageTypeError", "DataFileError", "MissingDataError"]


class UsageError(ValueError):
    """A value given by the caller that the library cannot mean (exit code 2)."""


class UsageTypeError(UsageError, TypeError):
    """A value of the wrong type (exit code 2)."""


class DataFileError(OSError):
    """A data, checkpoint or run file that is missing, truncated or unreadable (exit code 1)."""


class MissingDataError(DataFileError, FileNotFoundError):
    """A file or folder that should exist does not (exit code 1)."""
