"""Turning a request (input file + parameters) into a stored job."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.config import JobParams, idempotency_key
from pipeline.errors import InvalidInput, JobConflict, KeyReused
from pipeline.documents.formats import detect_format
from pipeline.documents.formats.slices import check_document
from pipeline.documents.inputs import InputFile
from pipeline.memory.scope import MODES
from pipeline.store import Job, Store


def default_output(input_path: Path, tgt_lang: str) -> Path:
    """NAME.<tgt>.EXT next to the input: book.txt -> book.fra_Latn.txt."""
    return input_path.with_name(f"{input_path.stem}.{tgt_lang}{input_path.suffix}")


def resolve_output(output: str | None, source: InputFile, tgt_lang: str) -> Path:
    """The absolute output path, checked to be writable before any work."""
    path = Path(output).expanduser() if output else default_output(source.path, tgt_lang)
    path = path.resolve()
    if path.is_dir():
        raise InvalidInput(f"output path {path} is a directory; give a file name")
    if path == source.path:
        raise InvalidInput(f"output path {path} is the input file itself")
    parent = path.parent
    if not parent.is_dir():
        raise InvalidInput(f"cannot write output: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InvalidInput(f"cannot write output: {path} is not writable")
    from pipeline.sinks import check_writable

    check_writable(parent)
    return path


def resolve_format(fmt: str | None, path: Path, text: str | None = None) -> str:
    """The format asked for, or the one detected from the name and ``text``
    (the decoded input; read from ``path`` when not given)."""
    return fmt if fmt and fmt != "auto" else detect_format(path, text)


def submit(store: Store, params: JobParams, source: InputFile, *,
           priority: int = 0, key: str | None = None,
           memory: str | None = None) -> tuple[Job, bool]:
    """The job for this request, created if new. Returns (job, created).

    ``key`` is a caller's own idempotency key. Reused with the same
    parameters and input it returns the same job; reused with others it is
    refused (as payment APIs do) and nothing is written.

    ``memory`` is how the job uses the translation memory (``off``, ``read``,
    ``on``; None: ``on`` for a new job, unchanged for an existing one). It is
    not part of the key: reading from the memory gives what inference would
    (``pipeline.memory.scope``), so it changes how a job runs, not its output.
    """
    if memory is not None and memory not in MODES:
        raise InvalidInput(f"--tm is one of {', '.join(MODES)}, not {memory!r}")
    if not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
        raise InvalidInput(f"priority must be a whole number from {-MAX_PRIORITY:,} to "
                           f"{MAX_PRIORITY:,}, not {priority}")
    canonical = params.canonical_json()
    keyed = store.job_by_key(key or idempotency_key(params, source.sha256))
    # The same document and parameters are the same job, whatever key (or
    # none) the earlier request came with.
    same = None if keyed else store.job_by_request(source.sha256, canonical)
    if same is not None:
        job, created = same, False
    else:
        if keyed is None:
            # A file the format cannot parse is refused before a job exists
            # for it: parsed as preprocess will parse it, a slice at a time,
            # keeping nothing of the parse.
            check_document(source.lines(), params.fmt, jsonl_field=params.jsonl_field)
            refuse_shared_destination(store, params, source.sha256,
                                      key or idempotency_key(params, source.sha256))
        job, created = store.get_or_create_job(
            idem_key=key or idempotency_key(params, source.sha256), params=canonical,
            input_path=str(source.path), input_sha256=source.sha256, input_bytes=source.size,
            output_path=params.output, priority=priority, memory_mode=memory or "on",
        )
    if key and not created and (job.params != canonical or job.input_sha256 != source.sha256):
        raise KeyReused(
            f"idempotency key {key!r} was used for job {job.id} with different parameters or "
            "input; use a new key")
    if memory is not None and not created and store.memory_mode(job.id) != memory:
        store.set_memory_mode(job.id, memory)
    return job, created


def find_job(store: Store, params: JobParams, source: InputFile) -> Job | None:
    """The job of this request: by its key, or submitted under a caller's key."""
    return (store.job_by_key(idempotency_key(params, source.sha256))
            or store.job_by_request(source.sha256, params.canonical_json()))


MAX_PRIORITY = 1_000_000  # the queue's priorities: -MAX_PRIORITY .. MAX_PRIORITY


def refuse_shared_destination(store: Store, params: JobParams, input_sha256: str,
                              key: str) -> None:
    """JobConflict when another queued or running job delivers to the same
    file, directory entry or URL (an HTTP POST to a collecting endpoint
    excepted): two jobs would write one output, and the second would fail
    only after its whole inference. The same request made at the same
    moment by another process is no other job (the store's unique key
    makes it one)."""
    from pipeline.sinks import STDOUT, is_http

    if params.sink == STDOUT or not params.output or (
            is_http(params.sink) and (params.http_method or "PUT") == "POST"):
        return
    canonical = params.canonical_json()
    others = [job for job in store.live_jobs_to(params.output) if job.idem_key != key and not (
        job.input_sha256 == input_sha256 and job.params == canonical)]
    if others:
        other = others[0]
        raise JobConflict(f"job {other.id} ({Path(other.input_path).name}, {other.state}) "
                          f"already delivers to {params.output}; "
                          "wait for it, cancel it, or choose another output")
