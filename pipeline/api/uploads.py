"""Uploaded documents: reading the form, keeping the file, queueing the job.

Where files live (``FILES`` is ``--files-dir``, by default the directory of
the job database):

- an upload is kept at ``FILES/uploads/<sha256[:2]>/<sha256>/<name>``:
  content-addressed, so the same document uploaded again is the same file,
  and the job's input path (what its worker reads) never changes under it;
- its translation is delivered to
  ``FILES/outputs/<request>/<stem>.<tgt>.<ext>``, where ``<request>`` is a
  hash of the document, its name and the options: the same request always
  names the same output (so it is the same job), and two requests that
  differ never deliver onto each other's file. ``GET /api/jobs/{id}/output``
  serves the store's copy, so a download works wherever the file went.

Accepting a request is race-free: the file is written (to a temporary name,
then renamed) and the job created under one lock, so eight identical
requests at once make one file and one job; a request the store refuses
(a reused idempotency key, a document its format cannot parse) removes the
file it had written, so nothing of a refused request stays behind.

An upload is never whole in memory: the request body goes through the
multipart parser as it arrives (the file part spooled to disk past 1 MB),
is copied in pieces to a temporary file beside its place, hashed as it
goes, and checked there a block at a time (``pipeline.documents.inputs.scan_input``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import BinaryIO

from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from pipeline import service
from pipeline.api.errors import ApiError
from pipeline.config import FORMAT_DEFAULTS
from pipeline.errors import InvalidInput, PipelineError
from pipeline.documents.inputs import scan_input
from pipeline.output_file import PIECE_BYTES
from pipeline.service import JobOptions, Submitted
from pipeline import objects
from pipeline.sinks import is_http, redact_url
from pipeline.store import Store

try:
    import fcntl
except ImportError:  # Windows: one server process per files directory
    fcntl = None

MAX_NAME_BYTES = 200  # leaves room for .<tgt> within a file system's 255

# Form field -> (JobOptions field, type). Every option the CLI's submit
# takes, except the destination on this machine: the server delivers into
# its own directory (an http(s) URL is allowed).
FORM_FIELDS: dict[str, tuple[str, type]] = {
    "src": ("src", str), "tgt": ("tgt", str), "model": ("model", str),
    "format": ("fmt", str), "jsonl_field": ("jsonl_field", str), "beams": ("beams", int),
    "max_chunk_tokens": ("max_chunk_tokens", int), "length_ratio": ("length_ratio", float),
    "length_offset": ("length_offset", int), "missing": ("missing", str),
    "quality": ("quality", str),  # repair, flag or off (the CLI's --quality)
    "to": ("to", str), "http_method": ("http_method", str),
    "tm": ("memory", str),  # the translation memory: off, read or on (the CLI's --tm)
    # Format options (the CLI's --columns, --in-place, --overwrite-translated, --no-fuzzy)
    "columns": ("columns", str), "delimiter": ("delimiter", str), "in_place": ("in_place", bool),
    "overwrite_translated": ("overwrite_translated", bool), "fuzzy": ("fuzzy", bool),
    "wrap": ("wrap", str),  # markdown, html: keep or reflow (the CLI's --wrap)
}
EXTRA_FIELDS = ("file", "priority")


@dataclass(frozen=True)
class Form:
    name: str  # the uploaded file's name, made safe (no directories)
    file: BinaryIO  # its content, spooled (on disk past 1 MB); ``close()`` when done
    fields: dict[str, str]

    def close(self) -> None:
        self.file.close()


async def read_form(request: Request, limit: int) -> Form:
    """The multipart form of a POST /api/jobs, at most ``limit`` bytes in
    all (413 past it: declared, before anything is parsed, or as it
    arrives)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(400, "invalid_input", "send the document as multipart/form-data with a "
                                             "'file' field")
    received = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal received
        async for piece in request.stream():
            received += len(piece)
            if received > limit:
                raise _too_large(limit)
            yield piece

    parser = MultiPartParser(request.headers, counted(), max_files=1, max_fields=64,
                             max_part_size=64 * 1024)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(400, "invalid_input", f"bad multipart form: {exc.message}") from None
    upload, values = None, {}
    for key, value in form.multi_items():
        if key == "file" and not isinstance(value, str):
            upload = value
        elif isinstance(value, str):
            if key in values:
                raise ApiError(400, "invalid_input", f"form field {key!r} given twice")
            values[key] = value
    if upload is None:
        raise ApiError(400, "invalid_input", "the form has no 'file' (the document to translate)")
    return Form(safe_name(upload.filename), upload.file, values)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large",
                    f"the request is over the {limit / 2**20:g} MB limit (--max-upload-mb)")


def safe_name(name: str | None) -> str:
    """The file name alone: no directories, no control characters, at most
    MAX_NAME_BYTES of UTF-8 (the suffix kept). Anything else a file name
    may hold is kept as written, ``<`` and ``>`` too: the page shows it as
    text."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if name in ("", ".", ".."):
        return "document.txt"
    stem, dot, suffix = name.rpartition(".")
    if not dot or len(suffix) > 16:
        stem, dot, suffix = name, "", ""
    while len((stem + dot + suffix).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + dot + suffix


def form_options(values: dict[str, str], *, default_model: str | None) -> tuple[JobOptions, int]:
    """JobOptions and priority from the form's fields; empty fields count as
    not given. Unknown fields and values of the wrong type are 400."""
    unknown = sorted(set(values) - set(FORM_FIELDS) - set(EXTRA_FIELDS))
    if unknown:
        raise InvalidInput(f"unknown form field(s) {', '.join(map(repr, unknown))}; known: "
                           f"{', '.join(sorted([*FORM_FIELDS, 'priority']))}")
    given = {k: v.strip() for k, v in values.items() if v.strip()}
    kwargs = {}
    for key, (attr, kind) in FORM_FIELDS.items():
        if key in given:
            kwargs[attr] = _typed(key, given[key], kind)
    for key in ("src", "tgt"):
        if key not in kwargs:
            raise InvalidInput(f"the form needs '{key}' (a FLORES-200 code such as eng_Latn)")
    if "to" in kwargs and not (is_http(kwargs["to"]) or objects.is_url(kwargs["to"])):
        raise InvalidInput("'to' takes an http(s):// URL or a storage URL (s3://bucket/out/); "
                           "the server delivers files into its own directory otherwise "
                           "(download them with GET /api/jobs/{id}/output)")
    if "to" in kwargs and is_http(kwargs["to"]) and redact_url(kwargs["to"]) != kwargs["to"]:
        raise InvalidInput("'to' is a presigned URL: its signature is never stored, so the "
                           "server's workers could not deliver to it; give a URL without one "
                           "(credentials from the server's environment), or run nllb-pipeline "
                           "translate --to URL")
    if "http_method" in kwargs:
        kwargs["http_method"] = kwargs["http_method"].upper()
    if "model" not in kwargs and default_model:
        kwargs["model"] = default_model
    priority = _typed("priority", given["priority"], int) if "priority" in given else 0
    return JobOptions(**kwargs), priority


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")


def _typed(key: str, text: str, kind: type):
    if kind is bool:
        if text.strip().lower() in _TRUE + _FALSE:
            return text.strip().lower() in _TRUE
        raise InvalidInput(f"{key} must be true or false, not {text!r}")
    try:
        return kind(text)
    except ValueError:
        what = {int: "a whole number", float: "a number"}.get(kind, kind.__name__)
        raise InvalidInput(f"{key} must be {what}, not {text!r}") from None


class Uploads:
    """The server's files directory: uploads in, translations out."""

    def __init__(self, root: Path, storage=None):
        self.root = Path(root).resolve()
        self.storage = storage  # options for storage URLs ([storage.PROTOCOL], pipeline.objects)
        self._lock = threading.Lock()

    def input_path(self, sha256: str, name: str) -> Path:
        return self.root / "uploads" / sha256[:2] / sha256 / name

    def output_dir(self, sha256: str, name: str, options: JobOptions) -> Path:
        """One folder per request; how the job uses the translation memory
        does not change its output, so it does not name another folder."""
        # Format options at their defaults are left out, as from a job's key
        # (config.JobParams.canonical_json): a folder named before they existed stays its own.
        what = {k: v for k, v in asdict(options).items() if k != "memory"
                and not (k in FORMAT_DEFAULTS and v == FORMAT_DEFAULTS[k])}
        request = json.dumps([sha256, name, what], sort_keys=True)
        return self.root / "outputs" / hashlib.sha256(request.encode()).hexdigest()[:20]

    def submit(self, store: Store, form: Form, options: JobOptions, *, priority: int = 0,
               key: str | None = None) -> Submitted:
        """Keep the document and queue its job (``service.submit``): the same
        document and options again give the same job."""
        staging = self.root / "uploads" / f".{uuid.uuid4().hex}.part"
        try:
            staged, sha256 = self._stage(form, staging / form.name)
            # binary, not UTF-8, empty, bad languages or options: 400, nothing kept
            source = scan_input(staged)
            if not options.to:
                options = replace(options, to=f"dir:{self.output_dir(sha256, form.name, options)}")
            service.job_params(options, source, self.storage)
            path = self.input_path(sha256, form.name)
            with self._locked():
                created = self._keep(staged, path)
                try:
                    return service.submit(store, replace(source, path=path), options,
                                          priority=priority, key=key, storage=self.storage)
                except BaseException:
                    if created:
                        self._remove(path)
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _stage(self, form: Form, staged: Path) -> tuple[Path, str]:
        """The upload copied to ``staged`` in pieces, synced; its SHA-256."""
        digest = hashlib.sha256()
        try:
            staged.parent.mkdir(parents=True)
            form.file.seek(0)
            with open(staged, "wb") as f:
                while piece := form.file.read(PIECE_BYTES):
                    digest.update(piece)
                    f.write(piece)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise PipelineError(f"cannot keep the upload in {self.root / 'uploads'}: "
                                f"{exc.strerror or exc}") from exc
        return staged, digest.hexdigest()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One request at a time between writing the file and creating the
        job: in this process (a thread lock) and across processes that
        share the directory (an advisory file lock)."""
        with self._lock:
            if fcntl is None:
                yield
                return
            self.root.mkdir(parents=True, exist_ok=True)
            with open(self.root / ".lock", "a") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)

    def _keep(self, staged: Path, path: Path) -> bool:
        """Put the staged upload at ``path`` unless it is there already. True
        if put there now."""
        if path.is_file() and path.stat().st_size == staged.stat().st_size:
            return False  # content-addressed: same name, same hash, same bytes
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, path)
        except OSError as exc:
            raise PipelineError(f"cannot keep the upload in {path.parent}: "
                                f"{exc.strerror or exc}") from exc
        return True

    def _remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        for parent in (path.parent, path.parent.parent):
            with contextlib.suppress(OSError):
                parent.rmdir()  # only if empty


def known_fields() -> list[str]:
    """Every form field POST /api/jobs takes (for the OpenAPI description)."""
    return sorted([*FORM_FIELDS, *EXTRA_FIELDS])

