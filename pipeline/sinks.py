"""Sinks: where a finished translation goes, and how it gets there once.

``--to`` picks one of three:

- ``file:PATH`` (the default: ``-o PATH``, or NAME.<tgt>.EXT next to the
  input): written to a temporary file beside the target, fsynced, renamed
  over it, so a reader or a crash never sees half a file
  (``pipeline.output_file.AtomicFile``);
- ``dir:DIR``: the same at DIR/NAME.<tgt>.EXT, or, given a base
  (``--relative-to``; a batch passes its working directory), at
  DIR/<the input's directory relative to the base>/NAME.<tgt>.EXT;
- an ``http://`` or ``https://`` URL: PUT (or POST) of the document,
  streamed in 64 KiB pieces, with the job's idempotency key in an
  ``Idempotency-Key`` header so that the receiver can drop the repeats that
  retries and resumes send.

What a sink delivers is bytes, or the job's output file
(``pipeline.output_file.OutputFile``), which it reads a piece at a time, so
a document is never whole in memory. A file sink never replaces a
*different* file unless told to (the same bytes already there count as
delivered). A sink makes one attempt per ``deliver``
call and raises ``DeliveryError`` with its class; the upload stage owns the
retries. What a sink *is* (target, method) is part of the job and its
idempotency key; how this run reaches it (headers, timeout, overwrite) is
``DeliveryOptions``, which is never stored: headers carry credentials.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.errors import DeliveryError, ErrorClass, InvalidInput
from pipeline.documents.inputs import InputFile
from pipeline.output_file import (PIECE_BYTES, AtomicFile, OutputFile, file_sha256, pieces,
                                  sha256_of, size_of)

CHUNK_BYTES = PIECE_BYTES
HTTP_METHODS = ("PUT", "POST")
CONTENT_TYPES = {
    "text": "text/plain; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "lines": "text/plain; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "po": "text/x-gettext-translation; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
# Set by the sink itself; a --header cannot replace them.
RESERVED_HEADERS = frozenset(
    {"content-digest", "content-length", "host", "idempotency-key", "transfer-encoding"})

Progress = Callable[[int], None]
Payload = bytes | OutputFile  # what a sink delivers


STDOUT = "stdout:"  # the sink of -o -: the command that ran the job prints the translation


def is_http(spec: str | None) -> bool:
    return bool(spec) and spec.startswith(("http://", "https://"))


# -- run options ------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryOptions:
    """How this run delivers; never stored, never part of the job."""

    # (name, value) pairs; the values are secrets, so repr leaves them out
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    timeout_s: float = 30.0  # connect, read and write timeout of one HTTP attempt
    overwrite: bool = False  # a file sink may replace a different existing file

    def __post_init__(self) -> None:
        if not (self.timeout_s > 0 and self.timeout_s != float("inf")):
            raise InvalidInput(f"--http-timeout must be a finite number > 0, not {self.timeout_s}")

    @property
    def header_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.headers)


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_ENV_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def parse_headers(specs: Sequence[str],
                  environ: Mapping[str, str] = os.environ) -> tuple[tuple[str, str], ...]:
    """``--header 'Name: value'`` options, with ``$VAR`` and ``${VAR}`` in
    values taken from the environment. Errors name the header and the
    variable, never the value."""
    headers = []
    for spec in specs:
        name, sep, value = spec.partition(":")
        name = name.strip()
        if not sep or not _HEADER_NAME.match(name):
            raise InvalidInput("--header must look like 'Name: value' (a header name, a colon, "
                               "then the value)")
        if name.lower() in RESERVED_HEADERS:
            raise InvalidInput(f"--header {name}: nllb-pipeline sets this header itself")

        def expand(match: re.Match, name=name) -> str:
            var = match.group(1) or match.group(2)
            if var not in environ:
                raise InvalidInput(f"--header {name}: environment variable ${var} is not set")
            return environ[var]

        value = _ENV_VAR.sub(expand, value.strip())
        if "\r" in value or "\n" in value:
            raise InvalidInput(f"--header {name}: the value contains a line break")
        headers.append((name, value))
    return tuple(headers)


# -- targets (submit time) ----------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a job delivers, as stored in its parameters."""

    sink: str  # "file:/abs/path", "dir:/abs/dir" or the URL
    output: str  # the file to write, or the URL
    http_method: str = ""  # PUT or POST for a URL, "" otherwise


def resolve_target(to: str | None, output: str | None, source: InputFile, tgt_lang: str, *,
                   http_method: str | None = None,
                   relative_to: str | os.PathLike | None = None) -> Target:
    """The job's target from ``--to``/``-o``, checked before any work."""
    from pipeline.jobs import resolve_output

    if to and output:
        raise InvalidInput("give either -o or --to, not both")
    if output == "-":
        return Target(STDOUT, "-")
    if http_method and not is_http(to):
        raise InvalidInput("--http-method applies only to an http(s):// --to")
    if relative_to is not None and not (to or "").startswith("dir:"):
        raise InvalidInput("--relative-to applies only to --to dir:DIR")
    if to is None or to.startswith("file:"):
        path = resolve_output(to[len("file:"):] if to else output, source, tgt_lang)
        return Target(f"file:{path}", str(path))
    if to.startswith("dir:"):
        if not to[len("dir:"):]:
            raise InvalidInput("--to dir: needs a directory, e.g. dir:translated")
        root = Path(to[len("dir:"):]).expanduser().resolve()
        path = dir_output(root, source.path, tgt_lang, relative_to)
        _check_creatable(path, source.path)
        return Target(f"dir:{root}", str(path))
    if is_http(to):
        url = check_url(to)
        method = (http_method or "PUT").upper()
        if method not in HTTP_METHODS:
            raise InvalidInput(f"--http-method must be PUT or POST, not {http_method!r}")
        return Target(url, url, method)
    raise InvalidInput(f"unknown --to {to!r}: use file:PATH, dir:DIR or an http(s):// URL")


def dir_output(root: Path, input_path: Path, tgt_lang: str,
               relative_to: str | os.PathLike | None = None) -> Path:
    """DIR/NAME.<tgt>.EXT; with a base, the input's directory under it is kept."""
    from pipeline.jobs import default_output

    name = default_output(input_path, tgt_lang).name
    if relative_to is None:
        return root / name
    base = Path(relative_to).expanduser().resolve()
    try:
        rel = input_path.parent.relative_to(base)
    except ValueError:
        raise InvalidInput(f"input {input_path} is not under --relative-to {base}") from None
    return root / rel / name


def _check_creatable(path: Path, input_path: Path) -> None:
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


def check_url(url: str) -> str:
    """The URL, if it can be a sink; credentials belong in --header, not here."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidInput("--to is not a valid URL") from None
    if parts.username is not None or parts.password is not None:
        # Not echoed: the URL holds a password.
        raise InvalidInput("--to URL contains a user name or password; pass credentials with "
                           "--header 'Authorization: ...' instead (they are never stored)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"--to {url!r} is not an http(s) URL with a host")
    return urllib.parse.urlunsplit(parts._replace(fragment=""))


def check_target_free(sink: str, output: str, ours: Payload | None, *,
                      overwrite: bool) -> None:
    """Submit time: refuse a file target that already holds something else.

    ``ours`` is this job's output when the store has it already (a resumed
    job): a file with exactly those bytes is fine. A new job's output is not
    known yet, so any existing file is refused without ``overwrite``.
    """
    if is_http(sink) or sink == STDOUT or overwrite:
        return
    path = Path(output)
    if path.is_file() and ours is not None and _holds(path, size_of(ours), sha256_of(ours)):
        return
    if path.exists():
        raise InvalidInput(f"output file {path} already exists; pass --overwrite to replace it, "
                           "or choose another output (-o or --to)")


def _holds(path: Path, size: int, sha256: str) -> bool:
    """The file at ``path`` has exactly this size and checksum (read in pieces)."""
    try:
        return path.stat().st_size == size and file_sha256(path) == sha256
    except OSError:
        return False


# -- deliveries -------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    """What one successful delivery left behind."""

    sink: str
    target: str  # the file written, or the URL
    status: int | None = None  # HTTP status; None for a file
    response_id: str | None = None  # the response's JSON "id", Location or ETag

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, data: str | bytes | None, *, sink: str, target: str) -> Receipt:
        fields = json.loads(data) if data else {}
        return cls(**{"sink": sink, "target": target, **fields})


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
        if _holds(self.path, size_of(data), sha256_of(data)):
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
            from pipeline.io_errors import class_of_oserror

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


class HttpSink:
    """PUT or POST to a URL; one request per ``deliver``, no redirects."""

    def __init__(self, url: str, method: str, options: DeliveryOptions, *, content_type: str,
                 clock: Callable[[], float] = time.time, transport=None):
        self.url, self.method, self.options = url, method, options
        self.content_type, self.clock, self.transport = content_type, clock, transport
        self._client = None

    def deliver(self, data: Payload, *, key: str, progress: Progress = lambda n: None,
                previous_sha256: str | None = None) -> Receipt:
        import httpx

        from pipeline.http_errors import EXCEPTION_CLASSES, exception_error, status_error

        digest = base64.b64encode(bytes.fromhex(sha256_of(data))).decode()
        headers = {"Content-Type": self.content_type, **dict(self.options.headers),
                   "Content-Length": str(size_of(data)), "Content-Digest": f"sha-256=:{digest}:",
                   "Idempotency-Key": key}
        if self._client is None:
            self._client = httpx.Client(timeout=self.options.timeout_s, follow_redirects=False,
                                        transport=self.transport)
        try:
            response = self._client.request(self.method, self.url, headers=headers,
                                            content=pieces(data, progress))
        except tuple(t for t, _ in EXCEPTION_CLASSES) as exc:
            raise exception_error(exc, self.method, self.url, self.options.timeout_s) from exc
        error = status_error(response, self.url, now=self.clock())
        if error is not None:
            if error.error_class is ErrorClass.AUTH:
                names = ", ".join(self.options.header_names)
                raise DeliveryError(
                    f"{error}; check the credentials "
                    + (f"(headers sent: {names})" if names else "(no --header given)"),
                    error_class=ErrorClass.AUTH)
            raise error
        return Receipt(self.url, self.url, response.status_code, _response_id(response))

    def still_delivered(self, sha256: str | None) -> bool:
        return sha256 is not None  # a recorded HTTP delivery cannot be checked from here

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _response_id(response) -> str | None:
    if "json" in response.headers.get("Content-Type", ""):
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("id") is not None:
            return str(body["id"])[:200]
    return response.headers.get("Location") or response.headers.get("ETag")


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


def sink_for(params, options: DeliveryOptions = DeliveryOptions(), *,
             clock: Callable[[], float] = time.time) -> FileSink | HttpSink | StdoutSink:
    """The sink a job's parameters name, reached with this run's options."""
    if params.sink == STDOUT:
        return StdoutSink()
    if is_http(params.sink):
        return HttpSink(params.sink, params.http_method or "PUT", options,
                        content_type=CONTENT_TYPES.get(params.fmt, "application/octet-stream"),
                        clock=clock)
    return FileSink(params.sink, Path(params.output), overwrite=options.overwrite,
                    make_dirs=params.sink.startswith("dir:"))
