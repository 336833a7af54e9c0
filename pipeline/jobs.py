"""Turning a request into a stored job: what a user asks for
(``JobOptions``, as typed on a command line or sent in a form) becomes the
canonical ``JobParams`` (``job_params``), and with the input a job, created
once per idempotency key (``submit``). ``pipeline.service``'s verbs call
these; the CLI and the API build the options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline import config
from pipeline.config import JobParams, idempotency_key
from pipeline.documents.inputs import InputFile
from pipeline.errors import InvalidInput, JobConflict, KeyReused
from pipeline.store import Job, Store
from pipeline.store.records import MODES


@dataclass(frozen=True)
class JobOptions:
    """What a user asks for, as typed on a command line or sent in a form.

    ``job_params`` turns it, with the input, into the canonical ``JobParams``
    (model path resolved, format detected, destination checked).
    """

    src: str  # FLORES-200 code, e.g. eng_Latn
    tgt: str
    model: str | None = None  # None: $NLLB_PIPELINE_MODEL or the default
    fmt: str = "auto"  # auto or one of config.FORMATS
    jsonl_field: str = ""  # JSON Lines: the field to translate
    columns: str = ""  # csv, tsv, parquet: the columns to translate
    delimiter: str = ""  # csv: the delimiter; "" = detected
    in_place: bool = False  # jsonl, csv, tsv, parquet: replace instead of adding
    overwrite_translated: bool = False  # po: translate entries that have a msgstr
    fuzzy: bool = True  # po: mark machine translations fuzzy
    wrap: str = "keep"  # markdown, html: keep each paragraph's line count, or reflow it
    beams: int = 4
    max_chunk_tokens: int = 200
    length_ratio: float = 2.0
    length_offset: int = 16
    missing: str = "source"
    quality: str = "repair"  # repair, flag or off (pipeline.quality.ladder)
    to: str | None = None  # file:PATH, dir:DIR, an http(s) URL or a storage URL
    output: str | None = None  # -o PATH
    relative_to: str | None = None  # with a dir: sink, keep paths under this base
    http_method: str | None = None
    # How the job uses the translation memory: off, read or on; None: on for
    # a new job, unchanged for an existing one. Not part of JobParams: it
    # changes how a job runs, never its output (pipeline.memory.scope).
    memory: str | None = None


def job_params(options: JobOptions, source: InputFile, storage=None) -> JobParams:
    """The parameters that make a job what it is (its idempotency key).

    Raises InvalidInput for anything a user can get wrong, before anything
    is stored. ``storage``: this run's options for storage URLs
    (``pipeline.objects``), to check a storage destination with."""
    from models.checkpoint import resolve_model  # no torch import
    from pipeline.languages import validate_language
    from pipeline.sinks import resolve_target

    validate_language(options.src)
    validate_language(options.tgt)
    target = resolve_target(options.to, options.output, source, options.tgt,
                            http_method=options.http_method, relative_to=options.relative_to,
                            storage=storage)
    fmt = "jsonl" if options.jsonl_field else resolve_format(options.fmt, source.path,
                                                                source.text)
    return JobParams(
        model=resolve_model(options.model or config.default_model()), src_lang=options.src,
        tgt_lang=options.tgt, fmt=fmt, jsonl_field=options.jsonl_field, output=target.output,
        sink=target.sink, http_method=target.http_method, beams=options.beams,
        max_chunk_tokens=options.max_chunk_tokens, missing=options.missing,
        length_ratio=options.length_ratio, length_offset=options.length_offset,
        quality=options.quality, columns=options.columns,
        # A tab is awkward to type in a shell or a form: "tab" or "\t" names it.
        delimiter="\t" if options.delimiter.lower() in ("tab", "\\t") else options.delimiter,
        in_place=options.in_place,
        overwrite_translated=options.overwrite_translated, fuzzy=options.fuzzy,
        wrap=options.wrap,
    )


def resolve_format(fmt: str | None, path: Path, text: str | None = None) -> str:
    """The format asked for, or the one detected from the name and ``text``
    (the decoded input; read from ``path`` when not given)."""
    from pipeline.documents.formats import detect_format  # the parsers, only to submit

    return fmt if fmt and fmt != "auto" else detect_format(path, text)


def submit(store: Store, params: JobParams, source: InputFile, *,
           priority: int = 0, key: str | None = None,
           memory: str | None = None, checked: bool = False,
           storage=None) -> tuple[Job, bool]:
    """The job for this request, created if new. Returns (job, created).

    ``key`` is a caller's own idempotency key. Reused with the same
    parameters and input it returns the same job; reused with others it is
    refused (as payment APIs do) and nothing is written.

    ``memory`` is how the job uses the translation memory (``off``, ``read``,
    ``on``; None: ``on`` for a new job, unchanged for an existing one). It is
    not part of the key: reading from the memory gives what inference would
    (``pipeline.memory.scope``), so it changes how a job runs, not its output.
    ``checked``: the caller ran ``check_input`` already.
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
            if not checked:
                check_input(params, source, storage)
            refuse_shared_destination(store, params, source.sha256,
                                      key or idempotency_key(params, source.sha256))
        job, created = store.get_or_create_job(
            idem_key=key or idempotency_key(params, source.sha256), params=canonical,
            input_path=source.location, input_sha256=source.sha256, input_bytes=source.size,
            output_path=params.output, priority=priority, memory_mode=memory or "on",
        )
    if key and not created and (job.params != canonical or job.input_sha256 != source.sha256):
        raise KeyReused(
            f"idempotency key {key!r} was used for job {job.id} with different parameters or "
            "input; use a new key")
    if memory is not None and not created and store.memory_mode(job.id) != memory:
        store.set_memory_mode(job.id, memory)
    return job, created


def check_input(params: JobParams, source: InputFile, storage=None) -> None:
    """Refuse a file the format cannot parse before a job exists for it:
    parsed as preprocess will parse it, a slice at a time, keeping nothing
    of the parse (a Parquet file: its schema and columns). ``storage``: the
    run's options for an input given as a storage URL."""
    from pipeline.documents.formats import FormatOptions  # the parsers, only to submit
    from pipeline.documents.formats.slices import check_document

    if params.fmt == "parquet":
        from pipeline.documents.formats.parquet import check_parquet

        check_parquet(source.location, params.columns.split(","), storage)
    else:
        check_document(source.lines(storage), params.fmt, options=FormatOptions.of(params))


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


def is_prefix_url(to: str | None) -> bool:
    """``to`` is a storage prefix (s3://bucket/out/), which keeps paths as a directory does."""
    from pipeline import objects

    return bool(to) and objects.is_url(to) and objects.is_prefix(to)


Found = tuple["Path | str", "Path | str | None"]  # (a document, the directory or prefix it is in)


def expand_inputs(inputs, glob: str = "*", storage=None) -> tuple[list[Found], list[tuple]]:
    """Files and directories (searched recursively with ``glob``), objects
    and prefixes (storage URLs ending with ``/``, listed with the same
    rule), as documents; and the directories or prefixes where nothing
    matched, each with why."""
    from pipeline import objects

    files: list[Found] = []
    empty: list[tuple] = []
    for item in inputs:
        if objects.is_url(str(item)):
            url = objects.check_url(str(item), "input")
            found = ([(u, url) for u in objects.list_prefix(url, glob, storage)]
                     if objects.is_prefix(url) else [(url, None)])
            if not found:
                empty.append((url, f"no object matches {glob!r} under this prefix"))
        else:
            item = Path(item)
            found = ([(f, item) for f in sorted(item.rglob(glob)) if f.is_file()]
                     if item.is_dir() else [(item, None)])
            if not found:
                empty.append((item, f"no file matches {glob!r} in this directory"))
        files += found
    return files, empty
