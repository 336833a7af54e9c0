"""Object storage and the other fsspec locations: URLs as inputs and as
destinations.

``s3://bucket/docs/manual.md`` (or ``gs://``, ``az://``, ``memory://``: any
protocol whose fsspec implementation is installed) is read and written
through ``fsspec``, the file-system layer pandas, pyarrow, Dask, Ray Data
and Hugging Face ``datasets`` share. A URL that ends with ``/`` is a
prefix: a destination that jobs deliver into, an input that ``submit``
expands like a directory.

Credentials never come from here and never enter a job: the
implementation finds them in its own chain (for S3: the environment, the
profile, the instance role; the endpoint from ``AWS_ENDPOINT_URL``). A URL
with a user name or password, a query or a fragment is refused. The
``[storage.PROTOCOL]`` tables of the config file give an implementation its
options (``[storage.s3] endpoint_url = ...``): ``pipeline.settings`` reads
them, and callers pass them in as ``storage``; this run's, never stored.

Failures are classed by the one table in ``pipeline.objects.errors``.
fsspec and the implementations are imported on first use, never by
``import pipeline``.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import BinaryIO

from pipeline.errors import InvalidInput

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
NOT_STORAGE = ("http", "https")  # an http(s) URL is the HTTP sink's (pipeline.sinks.http)

# The extra that installs a protocol's implementation, and its package.
EXTRAS = {"s3": ("s3", "s3fs"), "s3a": ("s3", "s3fs"),
          "gs": ("gcs", "gcsfs"), "gcs": ("gcs", "gcsfs"),
          "az": ("azure", "adlfs"), "abfs": ("azure", "adlfs"), "abfss": ("azure", "adlfs")}

# Stores whose single write (a PUT, or a multipart upload completed in one
# call) is atomic: a reader sees the old object or the whole new one, so the
# output goes straight to its key. Elsewhere it is written to a temporary
# key and renamed (moved: copied then deleted where the store cannot rename).
ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})

Storage = Mapping[str, Mapping]  # protocol -> fsspec storage options ([storage.PROTOCOL])
READ_PIECE = 1 << 20


def is_url(spec: object) -> bool:
    """A storage URL: ``PROTOCOL://...`` other than http(s)."""
    if not isinstance(spec, str):
        return False
    match = _SCHEME.match(spec)
    return bool(match) and match.group(1).lower() not in NOT_STORAGE


def protocol(url: str) -> str:
    return _SCHEME.match(url).group(1).lower()


def is_prefix(url: str) -> bool:
    return url.endswith("/")


def check_url(url: str, what: str = "--to") -> str:
    """The URL, if it can name an input or a destination: no credentials
    (they come from the implementation's own chain), no query, no fragment."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        raise InvalidInput(f"{what} is not a valid URL") from None
    if parts.username is not None or parts.password is not None:
        # Not echoed: the URL holds a secret.
        raise InvalidInput(f"{what} URL contains a user name or password; storage credentials "
                           "come from the environment, the profile or the instance role, and "
                           "are never stored")
    if parts.query or parts.fragment:
        raise InvalidInput(f"{what} {parts.scheme}:// URL takes no query or fragment "
                           "(credentials come from the environment, not the URL)")
    if not (parts.netloc or parts.path.strip("/")):
        raise InvalidInput(f"{what} {url!r} names no bucket or path")
    return url


def filesystem(url: str, storage: Storage | None = None):
    """(the fsspec file system, the path inside it) for ``url``; InvalidInput
    naming the extra to install when its implementation is missing."""
    import fsspec

    proto = protocol(url)
    try:
        cls = fsspec.get_filesystem_class(proto)
    except ImportError:
        extra, package = EXTRAS.get(proto, (None, None))
        hint = (f"pip install 'nllb-pipeline[{extra}]' (it installs {package})" if extra
                else "install the fsspec implementation for it")
        raise InvalidInput(f"{proto}:// URLs need their storage library: {hint}") from None
    except ValueError:
        raise InvalidInput(f"{proto}:// is not a storage protocol fsspec knows") from None
    options = dict((storage or {}).get(proto) or {})
    try:
        fs = cls(**options)
    except Exception as exc:  # an option the implementation rejects
        raise InvalidInput(f"cannot set up {proto}:// storage with the [storage.{proto}] "
                           f"options: {type(exc).__name__}: {exc}") from None
    return fs, cls._strip_protocol(url)


def local_path(url: str) -> PurePosixPath:
    """The object's path as a path (its name and suffix name the output)."""
    return PurePosixPath(_SCHEME.sub("", url, count=1) or "/")


def open_object(url: str, storage: Storage | None = None) -> BinaryIO:
    """The object for reading, seekable (what pyarrow reads Parquet from);
    a failure opening or reading it is a classified error
    (``pipeline.objects.errors``), never the implementation's own."""
    from pipeline.objects.errors import storage_error

    fs, path = filesystem(url, storage)
    try:
        return _Classified(fs.open(path, "rb"), url)
    except Exception as exc:
        raise storage_error(exc, f"cannot read {url}") from exc


class _Classified:
    """A file of an fsspec store whose reads and seeks raise classified
    errors: a reset in the middle of a read is a StorageError of class
    NETWORK that the stage reading it retries, not an OSError a format's
    parser would take for a damaged file."""

    def __init__(self, f, url: str):
        self._f, self._url = f, url

    def _mapped(self, call, *args):
        from pipeline.objects.errors import storage_error

        try:
            return call(*args)
        except Exception as exc:
            raise storage_error(exc, f"cannot read {self._url}") from exc

    def read(self, size: int = -1) -> bytes:
        return self._mapped(self._f.read, size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._mapped(self._f.seek, offset, whence)

    def __getattr__(self, name: str):
        return getattr(self._f, name)  # tell, size, closed, seekable, readable, close...

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()


def first_bytes(url: str, n: int, storage: Storage | None = None) -> bytes:
    """The object's first ``n`` bytes, in one ranged read (a file's magic),
    not the block an opened file would fetch."""
    from pipeline.objects.errors import storage_error

    fs, path = filesystem(url, storage)
    try:
        return fs.cat_file(path, start=0, end=n)
    except Exception as exc:
        raise storage_error(exc, f"cannot read {url}") from exc


def open_location(location: str, storage: Storage | None = None) -> BinaryIO:
    """A job's input for reading, wherever it is: a storage URL through
    fsspec, else a local path (what a format that reads its input again,
    after preprocess, should open)."""
    if is_url(location):
        return open_object(location, storage)
    return open(location, "rb")


def object_info(url: str, storage: Storage | None = None) -> dict | None:
    """What the store says about the object (size, ETag, ...); None if absent."""
    from pipeline.objects.errors import storage_error

    fs, path = filesystem(url, storage)
    try:
        return fs.info(path)
    except FileNotFoundError:
        return None
    except Exception as exc:
        raise storage_error(exc, f"cannot read {url}") from exc


def version_tag(info: Mapping | None) -> tuple | None:
    """What changes when the object does: size and ETag (or modification time)."""
    if info is None:
        return None
    return (info.get("size"), info.get("ETag") or info.get("etag")
            or str(info.get("LastModified") or info.get("mtime") or info.get("created") or ""))


def object_sha256(url: str, storage: Storage | None = None, *,
                  each_piece=lambda n: None) -> str:
    digest = hashlib.sha256()
    with open_object(url, storage) as f:
        while piece := f.read(READ_PIECE):
            digest.update(piece)
            each_piece(len(piece))
    return digest.hexdigest()


def list_prefix(url: str, glob: str = "*", storage: Storage | None = None) -> list[str]:
    """The objects under a prefix whose path under it matches ``glob`` (as a
    directory's files match ``rglob(glob)``), as URLs, sorted."""
    from pipeline.objects.errors import storage_error

    fs, root = filesystem(url, storage)
    root = root.rstrip("/")
    try:
        found = fs.find(root)
    except FileNotFoundError:
        return []
    except Exception as exc:
        raise storage_error(exc, f"cannot list {url}") from exc
    urls = []
    for key in sorted(found):
        rel = key[len(root):].lstrip("/")
        if rel and not rel.endswith("/") and PurePosixPath(rel).match(glob):
            urls.append(url.rstrip("/") + "/" + rel)  # the prefix as the user spelt it
    return urls


def relative_name(url: str, prefix: str) -> str:
    """The part of ``url`` under ``prefix`` (both as given or as listed)."""
    a, b = local_path(url).as_posix(), local_path(prefix).as_posix().rstrip("/")
    if not a.startswith(b + "/"):
        raise InvalidInput(f"input {url} is not under {prefix}")
    return a[len(b) + 1:]


__all__ = ["ATOMIC_PUT", "EXTRAS", "Storage", "check_url", "filesystem", "first_bytes",
           "is_prefix", "is_url", "list_prefix", "local_path", "object_info", "object_sha256",
           "open_location", "open_object", "protocol", "relative_name", "version_tag"]
