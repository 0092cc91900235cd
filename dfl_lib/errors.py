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

The operating system's own errors that a user can cause (a folder they cannot write, a file
where a folder is expected, a full disk, a path too long) are told in one line too:
`os_error_line` names the path and what to do; any other OSError is a bug and keeps its
traceback.
"""
from __future__ import annotations

import errno

__all__ = ["UsageError", "UsageTypeError", "DataFileError", "MissingDataError", "os_error_line"]


class UsageError(ValueError):
    """A value given by the caller that the library cannot mean (exit code 2)."""


class UsageTypeError(UsageError, TypeError):
    """A value of the wrong type (exit code 2)."""


class DataFileError(OSError):
    """A data, checkpoint or run file that is missing, truncated or unreadable (exit code 1)."""


class MissingDataError(DataFileError, FileNotFoundError):
    """A file or folder that should exist does not (exit code 1)."""


_WRITABLE = "choose a folder you can write (e.g. --runs-dir, --out-dir)"
_A_FILE = "a file stands where a folder is expected: move the file away or choose another folder"
_FULL = ("free some space or choose a folder on another disk (e.g. --runs-dir), then run the "
         "command again (finished work is kept)")
# errno -> what to do about it; every entry a condition of the user's files or machine
_OS_ADVICE = {
    errno.EACCES: f"permission denied: {_WRITABLE} or change its permissions",
    errno.EPERM: f"operation not permitted: {_WRITABLE}",
    errno.EROFS: f"read-only file system: {_WRITABLE}",
    errno.ENOTDIR: _A_FILE,
    errno.EEXIST: _A_FILE,
    errno.EISDIR: "a folder stands where a file is expected: move the folder away",
    errno.ENOSPC: f"no space left on the device: {_FULL}",
    errno.EDQUOT: f"disk quota exceeded: {_FULL}",
    errno.ENAMETOOLONG: "path too long for the file system: choose a shorter folder",
    errno.ENOENT: "no such file or folder: check the path",
}


def os_error_line(err: OSError) -> str | None:
    """One line for an OSError a user can cause: '<what to do> (<path>)', the path the system
    named (both, for a rename); None for any other OSError (a bug: keep its traceback)."""
    advice = _OS_ADVICE.get(err.errno)
    if advice is None:
        return None
    paths = [str(p) for p in (err.filename, err.filename2) if p is not None]
    where = " -> ".join(paths) if paths else "path not given by the system"
    return f"{advice} ({where})"
