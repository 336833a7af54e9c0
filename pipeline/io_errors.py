"""Local I/O failures as error classes: the one place that knows errno and
SQLite's result codes.

Two tables, as ``pipeline.sinks.http_errors`` has for HTTP: ``ERRNO_CLASSES`` for an
``OSError`` from writing the output (the file sink) and ``SQLITE_CLASSES``
for what SQLite says about the job database. A test walks every row.

- A full disk (``ENOSPC``, or a quota: ``EDQUOT``) is ``DISK_FULL``:
  retryable, with few attempts and long waits (``RetryPolicy``), because
  someone has to free space; it is never the user's input that was wrong.
- A damaged database (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``) is bad input
  (exit 2) with a message that says so, not an internal error.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from pipeline.errors import ErrorClass, InvalidInput, PipelineError

ERRNO_CLASSES: Mapping[int, ErrorClass] = MappingProxyType({
    errno.ENOSPC: ErrorClass.DISK_FULL,
    errno.EDQUOT: ErrorClass.DISK_FULL,
    errno.EACCES: ErrorClass.INVALID_INPUT,  # permissions: choose another output
    errno.EPERM: ErrorClass.INVALID_INPUT,
    errno.EROFS: ErrorClass.INVALID_INPUT,
    errno.ENOENT: ErrorClass.INVALID_INPUT,  # the directory went away
    errno.ENOTDIR: ErrorClass.INVALID_INPUT,
    errno.EISDIR: ErrorClass.INVALID_INPUT,
    errno.ENAMETOOLONG: ErrorClass.INVALID_INPUT,
})
# An errno the table does not name: the output cannot be written as asked.
DEFAULT_ERRNO_CLASS = ErrorClass.INVALID_INPUT

# SQLite result codes (exc.sqlite_errorname, Python 3.11+), and for older
# Pythons the message SQLite gives for each.
SQLITE_CLASSES: Mapping[str, ErrorClass] = MappingProxyType({
    "SQLITE_CORRUPT": ErrorClass.INVALID_INPUT,
    "SQLITE_NOTADB": ErrorClass.INVALID_INPUT,
    "SQLITE_FULL": ErrorClass.DISK_FULL,
})
SQLITE_MESSAGES: Mapping[str, str] = MappingProxyType({
    "database disk image is malformed": "SQLITE_CORRUPT",
    "file is not a database": "SQLITE_NOTADB",
    "database or disk is full": "SQLITE_FULL",
})


class DiskFull(PipelineError):
    """No space left for the output or the job database. Retryable: free
    space, then run the same command again (a job resumes where it was)."""

    error_class = ErrorClass.DISK_FULL
    exit_code = 1


class DatabaseDamaged(InvalidInput):
    """The job database has damaged pages, or the file is not a database.
    Found when the store is opened (``StoreBase``), or by whatever read or
    write meets the damage first; nothing is written into it after."""


def class_of_oserror(exc: OSError) -> ErrorClass:
    return ERRNO_CLASSES.get(exc.errno, DEFAULT_ERRNO_CLASS)


def sqlite_code(exc: sqlite3.Error) -> str | None:
    name = getattr(exc, "sqlite_errorname", None)
    if name:
        # Extended codes (SQLITE_CORRUPT_VTAB, SQLITE_IOERR_...) share the primary's meaning.
        for primary in SQLITE_CLASSES:
            if name == primary or name.startswith(primary + "_"):
                return primary
        return name
    return SQLITE_MESSAGES.get(str(exc).strip().lower())


def database_error(exc: sqlite3.Error, path: str | Path) -> PipelineError | None:
    """Our error for an SQLite error on the job database at ``path``
    (``DatabaseDamaged`` or ``DiskFull``), or None when the tables do not
    name it (then it is a bug, and stays one)."""
    code = sqlite_code(exc)
    error_class = SQLITE_CLASSES.get(code or "")
    if error_class is ErrorClass.DISK_FULL:
        return DiskFull(f"disk full: cannot write the job database {path} ({exc}); free space, "
                        "then run the same command again to continue")
    if error_class is ErrorClass.INVALID_INPUT:
        return damaged(path, str(exc))
    return None


def damaged(path: str | Path, problem: str) -> DatabaseDamaged:
    """The one message every command gives for a damaged job database."""
    return DatabaseDamaged(f"database is damaged: {path}: {problem}; restore it from a backup, "
                           "or use another --db (its jobs are lost)")
