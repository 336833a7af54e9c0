"""The file and directory sinks, and ``-o -``'s.

A file is written to a temporary file beside the target, fsynced, renamed
over it (``pipeline.output_file.AtomicFile``), so a reader or a crash never
sees half a file. A file sink never replaces a *different* file unless told
to; the same bytes already there count as delivered. Write failures are
classed by ``pipeline.io_errors``' errno table (a full disk is retryable).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import DeliveryError, ErrorClass
from pipeline.io_errors import class_of_oserror
from pipeline.output_file import AtomicFile, file_sha256, pieces, sha256_of, size_of
from pipeline.sinks.delivery import Payload, Progress, Receipt
from pipeline.sinks.grammar import STDOUT
from pipeline.sinks.writable import holds


class FileSink:
    """A local file, replaced atomically; ``make_dirs`` for a directory sink."""

    def __init__(self, spec: str, path: Path, *, overwrite: bool = False,
                 make_dirs: bool = False):
        self.spec, self.path, self.overwrite, self.make_dirs = spec, path, overwrite, make_dirs

    def deliver(self, data: Payload, *, key: str, progress: Progress = lambda n: None,
                previous_sha256: str | None = None) -> Receipt:
        """Write ``data``. A file there is replaced only with ``overwrite``,
        or when it is this job's earlier delivery (``previous_sha256``), as
        after a retry filled in chunks that had failed."""
        receipt = Receipt(self.spec, str(self.path))
        if holds(self.path, size_of(data), sha256_of(data)):
            progress(size_of(data))
            return receipt
        replace = self.overwrite or bool(previous_sha256 and self.still_delivered(previous_sha256))
        refused = DeliveryError(
            f"{self.path} already exists and differs from this job's output; move it away "
            "or run again with --overwrite", error_class=ErrorClass.INVALID_INPUT)
        if self.path.exists() and not replace:
            raise refused
        try:
            if self.make_dirs:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, data, progress=progress, replace=replace,
                             tmp_name=f".{self.path.name}.{key[:12]}.part")
        except FileExistsError:
            raise refused from None  # it appeared while we wrote
        except OSError as exc:
            raise DeliveryError(f"cannot write {self.path}: {exc.strerror or exc}",
                                error_class=class_of_oserror(exc)) from exc
        return receipt

    def still_delivered(self, sha256: str | None) -> bool:
        """The file is there with the recorded content."""
        try:
            return file_sha256(self.path) == sha256
        except OSError:
            return False

    def close(self) -> None:
        pass


def write_atomically(path: Path, data: Payload, *, progress: Progress = lambda n: None,
                     replace: bool = True, tmp_name: str | None = None) -> None:
    """``data`` at ``path`` as an AtomicFile: temp file beside ``path``,
    fsync, rename (a hard link without ``replace``: FileExistsError if a
    file appeared there meanwhile), fsync the directory. The temp name is
    fixed per job (``tmp_name``), so a process killed mid-write leaves one
    stale file that its resumed job overwrites."""
    with AtomicFile(path, replace=replace, tmp_name=tmp_name) as f:
        for piece in pieces(data, progress):
            f.write(piece)


class StdoutSink:
    """``-o -``: nothing to send. The translation stays in the store (the
    job's output file); the ``translate`` that runs the job, or a later one
    of the same document, prints it. Delivered for as long as the store
    holds it (``service.delivered``)."""

    def deliver(self, data: Payload, *, key: str, progress: Progress = lambda n: None,
                previous_sha256: str | None = None) -> Receipt:
        progress(size_of(data))
        return Receipt(STDOUT, "-")

    def still_delivered(self, sha256: str | None) -> bool:
        return True

    def close(self) -> None:
        pass
