"""Submit-time checks that a file target can be written, and is free.

They run before any work: a document is never translated for an hour only
for its write to fail, or to replace a file that was not ours.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pipeline import objects
from pipeline.errors import InvalidInput
from pipeline.output_file import OutputFile, file_sha256, sha256_of, size_of


def check_writable(directory: Path) -> None:
    """Create and remove a file in ``directory``, as the delivery will.

    ``os.access`` is not enough: it says yes to root on /proc, a read-only
    mount or a full quota, and the whole document would be translated before
    the write failed."""
    try:
        fd, name = tempfile.mkstemp(prefix=".nllb-pipeline-", suffix=".probe", dir=directory)
    except OSError as exc:
        raise InvalidInput(f"cannot write output: {directory} is not writable "
                           f"({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(name)


def check_creatable(path: Path, input_path: Path) -> None:
    """``path`` (in a ``dir:`` target) can be created, with its directories."""
    if path == input_path:
        raise InvalidInput(f"output path {path} is the input file itself")
    if path.is_dir():
        raise InvalidInput(f"output path {path} is a directory")
    existing = path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InvalidInput(f"cannot create directory {path.parent}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InvalidInput(f"cannot write output: {existing} is not writable")
    check_writable(existing)


def check_bucket(url: str, storage: objects.Storage | None = None) -> None:
    """A storage target's bucket exists and can be read (a store without
    buckets: its nearest existing parent is no file). Nothing is written: a
    probe object could set off whatever listens to the bucket."""
    from pipeline.objects.errors import storage_error

    fs, path = objects.filesystem(url, storage)
    if objects.protocol(url) in objects.ATOMIC_PUT:
        bucket = path.split("/", 1)[0]
        try:
            found = fs.exists(bucket)
            if found:
                fs.ls(bucket, detail=False)  # refused here when access is denied
        except Exception as exc:
            raise InvalidInput(str(storage_error(exc, f"cannot reach {url}"))) from None
        if not found:
            raise InvalidInput(f"cannot write {url}: bucket {bucket!r} does not exist (or is "
                               "not visible with these credentials)")
        return
    parent = path.rsplit("/", 1)[0]
    while parent and not fs.exists(parent):
        parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
    if parent and fs.isfile(parent):
        raise InvalidInput(f"cannot write {url}: {parent} is an object, not a prefix")


def check_target_free(sink: str, output: str, ours: bytes | OutputFile | None, *,
                      overwrite: bool, storage: objects.Storage | None = None) -> None:
    """Submit time: refuse a file target that already holds something else.

    ``ours`` is this job's output when the store has it already (a resumed
    job): a file with exactly those bytes is fine. A new job's output is not
    known yet, so any existing file is refused without ``overwrite``.
    """
    if overwrite:
        return
    if objects.is_url(output):
        _check_object_free(output, ours, storage)
        return
    if not sink.startswith(("file:", "dir:")):
        return
    path = Path(output)
    if path.is_file() and ours is not None and holds(path, size_of(ours), sha256_of(ours)):
        return
    if path.exists():
        raise InvalidInput(f"output file {path} already exists; pass --overwrite to replace it, "
                           "or choose another output (-o or --to)")


def holds(path: Path, size: int, sha256: str) -> bool:
    """The file at ``path`` has exactly this size and checksum (read in pieces)."""
    try:
        return path.stat().st_size == size and file_sha256(path) == sha256
    except OSError:
        return False


def _check_object_free(url: str, ours: bytes | OutputFile | None,
                       storage: objects.Storage | None) -> None:
    from pipeline.sinks.storage import object_holds

    info = objects.object_info(url, storage)
    if info is None or (ours is not None and object_holds(url, info, ours, storage)):
        return
    raise InvalidInput(f"output object {url} already exists; pass --overwrite to replace it, "
                       "or choose another --to")
