"""Documents as files written and read in pieces, never whole in memory.

- :class:`AtomicFile` writes a file as a stream and puts it in place at
  once: a temporary file beside it, fsync, rename (or a hard link, which
  refuses to replace a file that appeared meanwhile), fsync of the
  directory. A reader or a crash never sees half a file. Postprocess
  writes the job's output this way, and so does a file sink.
- :class:`OutputFile` is a finished document on disk with its size and
  checksum: what upload delivers, piece by piece, and what the API serves.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

PIECE_BYTES = 64 * 1024

Progress = Callable[[int], None]


@dataclass(frozen=True)
class OutputFile:
    """A finished document on disk, and what it must hold."""

    path: Path
    size: int
    sha256: str

    def pieces(self, progress: Progress = lambda n: None) -> Iterator[bytes]:
        """Its bytes, ``PIECE_BYTES`` at a time; ``progress(bytes so far)`` after each."""
        return pieces(self, progress)

    def intact(self, each_piece: Progress = lambda n: None) -> bool:
        """The file is there with the size and checksum recorded (read
        through once; ``each_piece`` as for ``file_sha256``)."""
        try:
            return (self.path.stat().st_size == self.size
                    and file_sha256(self.path, each_piece=each_piece) == self.sha256)
        except OSError:
            return False


class ChangedOutput(OSError):
    """The output file's bytes are not the ones recorded for it."""


def pieces(data: bytes | OutputFile, progress: Progress = lambda n: None) -> Iterator[bytes]:
    """The bytes of ``data`` in pieces. An OutputFile is read as it goes
    and checked against its size and checksum: ChangedOutput (an OSError)
    after the last piece if they differ, so nothing that reads it all
    finishes with other bytes than the recorded ones."""
    if isinstance(data, bytes):
        view = memoryview(data)
        for start in range(0, len(data), PIECE_BYTES):
            piece = bytes(view[start:start + PIECE_BYTES])
            yield piece
            progress(start + len(piece))
        return
    digest, done = hashlib.sha256(), 0
    with open(data.path, "rb") as f:
        while piece := f.read(PIECE_BYTES):
            digest.update(piece)
            done += len(piece)
            yield piece
            progress(done)
    if done != data.size or digest.hexdigest() != data.sha256:
        raise ChangedOutput(f"{data.path} changed since it was written")


def size_of(data: bytes | OutputFile) -> int:
    return len(data) if isinstance(data, bytes) else data.size


def sha256_of(data: bytes | OutputFile) -> str:
    return hashlib.sha256(data).hexdigest() if isinstance(data, bytes) else data.sha256


def file_sha256(path: str | os.PathLike, *, each_piece: Progress = lambda n: None,
                piece_bytes: int = PIECE_BYTES) -> str:
    """The SHA-256 of the file at ``path``, read in pieces; ``each_piece(bytes
    so far)`` after each (a progress report, a cancel check). OSError if it
    cannot be read."""
    digest, done = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while piece := f.read(piece_bytes):
            digest.update(piece)
            done += len(piece)
            each_piece(done)
    return digest.hexdigest()


class AtomicFile:
    """A file written as a stream, in place only once it is whole.

    ``with AtomicFile(path) as f: f.write(piece) ...``: the pieces go to a
    temporary file beside ``path``; leaving the block without an error
    fsyncs it, puts it at ``path`` and fsyncs the directory (the rename
    itself is durable); an error removes it. ``size`` and ``sha256`` are
    those of what was written.

    Without ``replace`` the temp file is hard-linked to ``path`` instead of
    renamed, which fails with FileExistsError if a file appeared there
    meanwhile (where hard links are not supported it falls back to rename).
    ``tmp_name``: the temp file's name; a fixed one per job means a process
    killed mid-write leaves one stale file, which its resumed job
    overwrites.
    """

    def __init__(self, path: Path, *, replace: bool = True, tmp_name: str | None = None):
        self.path, self.replace = Path(path), replace
        self.tmp = self.path.with_name(tmp_name or f".{self.path.name}.{os.getpid()}.part")
        self.size, self._digest, self._file = 0, hashlib.sha256(), None

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def write(self, piece: bytes) -> None:
        self._file.write(piece)
        self._digest.update(piece)
        self.size += len(piece)

    def __enter__(self) -> AtomicFile:
        self._file = open(self.tmp, "wb")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._file.flush()
                os.fsync(self._file.fileno())
            self._file.close()
            if exc_type is None:
                self._put_in_place()
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        if exc_type is not None:
            self.tmp.unlink(missing_ok=True)
            return
        _fsync_directory(self.path.parent)

    def _put_in_place(self) -> None:
        if self.replace:
            os.replace(self.tmp, self.path)
            return
        try:
            os.link(self.tmp, self.path)
        except FileExistsError:
            raise
        except OSError:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink()


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
