"""Turning a request (input file + parameters) into a stored job."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import JobParams, idempotency_key
from pipeline.errors import InvalidInput, KeyReused
from pipeline.documents.formats import detect_format
from pipeline.documents.formats.slices import check_document
from pipeline.documents.inputs import InputFile
from pipeline.store.records import MODES
from pipeline.store import Job, Store


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
    canonical = params.canonical_json()
    if store.job_by_key(key or idempotency_key(params, source.sha256)) is None:
        # A file the format cannot parse is refused before a job exists for
        # it: parsed as preprocess will parse it, a slice at a time, keeping
        # nothing of the parse.
        check_document(source.lines(), params.fmt, jsonl_field=params.jsonl_field)
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
    return store.job_by_key(idempotency_key(params, source.sha256))
