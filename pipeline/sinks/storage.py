"""The storage sink: the output as an object at a storage URL (``s3://``,
``gs://``, ``memory://``, any fsspec protocol: ``pipeline.objects``).

Atomic, one of two ways (``pipeline.objects.ATOMIC_PUT`` says which store
gets which):

- on an object store (S3 and its compatibles, GCS, Azure) the output is
  written straight to its key: a single PUT, or above the implementation's
  part size a multipart upload, which the store makes visible only when it
  is completed. A reader sees the old object or the whole new one; a
  process killed mid-upload leaves no object (an S3 multipart upload it
  started stays invisible until a lifecycle rule aborts it);
- elsewhere it goes to ``.NAME.<key>.part`` beside the target first, then
  is moved over it (a rename where the file system has one, a copy and a
  delete where it has not: there a reader can see the temporary key, never
  a partial target).

Exactly once: before writing, an object already at the target with this
output's size and checksum counts as delivered (the ETag where it is the
MD5 of the content, the content itself otherwise), so a rerun after a kill
between the PUT and its record writes nothing. A *different* object there
is replaced only with ``--overwrite`` or when it is this job's earlier
delivery. Failures are classed by ``pipeline.objects.errors``.
"""

from __future__ import annotations

import hashlib
import re

from pipeline import objects
from pipeline.errors import DeliveryError, PipelineError
from pipeline.output_file import OutputFile, pieces, sha256_of, size_of
from pipeline.sinks.delivery import Payload, Progress, Receipt

_MD5_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})"?$')


class ObjectSink:
    """An object at a storage URL, written once and atomically."""

    def __init__(self, spec: str, url: str, *, overwrite: bool = False,
                 storage: objects.Storage | None = None):
        self.spec, self.url, self.overwrite, self.storage = spec, url, overwrite, storage

    def deliver(self, data: Payload, *, key: str, progress: Progress = lambda n: None,
                previous_sha256: str | None = None) -> Receipt:
        try:
            return self._deliver(data, key, progress, previous_sha256)
        except DeliveryError:
            raise
        except PipelineError as err:  # classed already (pipeline.objects.errors)
            raise DeliveryError(str(err), error_class=err.error_class) from err
        except Exception as exc:
            raise delivery_error(exc, f"cannot write {self.url}") from exc

    def _deliver(self, data: Payload, key: str, progress: Progress,
                 previous_sha256: str | None) -> Receipt:
        from pipeline.errors import ErrorClass

        fs, path = objects.filesystem(self.url, self.storage)
        info = _info(fs, path)
        if info is not None and object_holds(self.url, info, data, self.storage):
            progress(size_of(data))
            return Receipt(self.spec, self.url, None, _etag(info))
        if info is not None and not (self.overwrite or (
                previous_sha256 and self.still_delivered(previous_sha256))):
            raise DeliveryError(f"{self.url} already exists and differs from this job's output; "
                                "move it away or run again with --overwrite",
                                error_class=ErrorClass.INVALID_INPUT)
        if objects.protocol(self.url) in objects.ATOMIC_PUT:
            _write(fs, path, data)
        else:
            parent, _, name = path.rpartition("/")
            tmp = f"{parent}/.{name}.{key[:12]}.part"
            _write(fs, tmp, data)
            fs.mv(tmp, path)
        progress(size_of(data))
        return Receipt(self.spec, self.url, None, _etag(_info(fs, path) or {}))

    def still_delivered(self, sha256: str | None) -> bool:
        """The object is there with the recorded content (read and hashed)."""
        if sha256 is None:
            return False
        try:
            return objects.object_sha256(self.url, self.storage) == sha256
        except Exception:
            return False

    def close(self) -> None:
        pass


def object_holds(url: str, info: dict, data: Payload,
                 storage: objects.Storage | None = None) -> bool:
    """The object ``info`` describes holds exactly ``data``: the same size,
    and the same MD5 where its ETag is one (a single-part upload's), else
    the same SHA-256 of its content, read."""
    if info.get("size") is not None and info["size"] != size_of(data):
        return False
    match = _MD5_ETAG.match(_etag(info) or "")
    if match:
        return match.group(1).lower() == _md5(data)
    return objects.object_sha256(url, storage) == sha256_of(data)


def delivery_error(exc: BaseException, doing: str) -> DeliveryError:
    from pipeline.objects.errors import storage_error

    err = storage_error(exc, doing)
    return DeliveryError(str(err), error_class=err.error_class)


def _write(fs, path: str, data: Payload) -> None:
    if isinstance(data, OutputFile):
        fs.put_file(str(data.path), path)
    else:
        fs.pipe_file(path, data)


def _info(fs, path: str) -> dict | None:
    try:
        return fs.info(path)
    except FileNotFoundError:
        return None


def _etag(info: dict) -> str | None:
    etag = info.get("ETag") or info.get("etag")
    return str(etag) if etag else None


def _md5(data: Payload) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for piece in pieces(data):
        digest.update(piece)
    return digest.hexdigest()
