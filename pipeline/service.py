"""The verbs the command line and the HTTP API share.

Each verb takes typed parameters and returns records; none parses
arguments, prints or knows about HTTP. ``pipeline.cli`` and ``pipeline.api``
parse a request, call one of these and render what comes back, so neither
face holds logic the other lacks (as huey's consumer calls its library).

Verbs that translate need a ``Runtime``: how this process runs jobs (device,
batch budget, retry policy, delivery credentials) and where its models come
from (``TranslatorCache``: one loaded model per model and backend, shared
by every job that names it).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline import config, jobs
from pipeline.config import JobParams, RunSettings
from pipeline.errors import AmbiguousJob, InvalidInput, JobBusy, JobConflict, JobNotFound
from pipeline.executors.cache import TranslatorCache
from pipeline.documents.inputs import InputFile, scan_input
from pipeline.io_errors import DatabaseDamaged
from pipeline.jobs import JobOptions, job_params
from pipeline.progress import Events
from pipeline.retry import RetryPolicy
from pipeline.settings import Settings
from pipeline.sinks import DeliveryOptions
from pipeline.store import Artifact, Job, Store
from pipeline.translator import NoModel, Translator

log = logging.getLogger("nllb_pipeline")


# -- how this process runs jobs ---------------------------------------------------------


@dataclass
class Runtime:
    """Everything a verb that runs a job needs besides the store."""

    settings: RunSettings = field(default_factory=RunSettings)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    delivery: DeliveryOptions = field(default_factory=DeliveryOptions)
    translators: Callable[[JobParams], Translator] | None = None  # default: a TranslatorCache

    def __post_init__(self) -> None:
        if self.translators is None:
            self.translators = TranslatorCache(self.settings)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        """A runtime for layered settings (``pipeline.settings.load``)."""
        faults = str(settings.faults) if settings.faults else None
        return cls(settings.run, settings.retry, settings.delivery,
                   TranslatorCache(settings.run, inject_faults=faults))


# Called with (store, job, translator) before a run; returns the observer of
# its progress (the CLI's bar) or None.
EventsFor = Callable[[Store, Job, Translator], Events | None]


@dataclass(frozen=True)
class Outcome:
    """What a verb that runs a job did."""

    job: Job
    note: str | None = None  # e.g. "already translated; nothing to do"
    seconds: float | None = None  # wall time of the run, None if nothing ran


# -- the verbs --------------------------------------------------------------------------


def open_store(path: Path | None = None) -> Store:
    return Store(path or config.default_db_path())


def find_job(store: Store, job_id: str) -> Job:
    """The job with this id or unique id prefix; JobNotFound if none,
    AmbiguousJob (naming the candidates) if the prefix starts several."""
    job = store.job(job_id)
    if job is not None:
        return job
    candidates = store.jobs_with_prefix(job_id, SHOWN_CANDIDATES + 1)
    if len(candidates) > 1:
        names = ", ".join(f"{j.id} ({os.path.basename(j.input_path)})"
                          for j in candidates[:SHOWN_CANDIDATES])
        more = " and more" if len(candidates) > SHOWN_CANDIDATES else ""
        raise AmbiguousJob(f"job id {job_id!r} is ambiguous: it starts {names}{more}; give "
                           "more of the id")
    raise JobNotFound(f"no job {job_id!r} (see 'nllb-pipeline status')")


SHOWN_CANDIDATES = 5  # the jobs an ambiguous prefix names


@dataclass(frozen=True)
class Submitted:
    input: Path | str  # a path, or a storage URL
    job: Job | None = None
    created: bool = False  # a new job; False: the same request's existing job
    requeued: bool = False  # it had succeeded but its output was gone: queued to deliver again
    error: str | None = None  # why this input was refused


def submit(store: Store, source: InputFile, options: JobOptions, *, priority: int = 0,
           key: str | None = None, storage=None) -> Submitted:
    """Queue one document without loading a model. The same document and
    parameters again give the same job (a succeeded one whose output has
    since been deleted or collected is queued again to deliver it); a
    caller's ``key`` reused with other parameters or input is refused."""
    job, created = jobs.submit(store, job_params(options, source, storage), source,
                               priority=priority, key=key, memory=options.memory,
                               storage=storage)
    requeued = False
    if not created and job.state == "SUCCEEDED" and not delivered(store, job, storage):
        reopen_undelivered(store, job)
        job, requeued = store.job(job.id), True
    return Submitted(source.path, job, created, requeued)


def submit_paths(store: Store, inputs: Sequence[Path | str], options: JobOptions, *,
                 glob: str = "*", output_dir: Path | None = None, priority: int = 0,
                 key: str | None = None, storage=None) -> list[Submitted]:
    """``submit`` for files, directories, objects and prefixes
    (``jobs.expand_inputs``); with ``output_dir`` or a prefix ``--to`` each
    job delivers into it, keeping paths relative to the directory or prefix
    it was found in. One refused file does not stop the others (unless a
    ``key`` names the single document)."""
    files, unmatched = jobs.expand_inputs(inputs, glob, storage)
    if key and len(files) != 1:
        raise InvalidInput("--idempotency-key names one document; give exactly one input file")
    if output_dir and options.to:
        raise InvalidInput("give either -o/--output-dir or --to, not both")
    results = [Submitted(item, error=error) for item, error in unmatched]
    prefix_to = jobs.is_prefix_url(options.to)
    for path, base in files:
        try:
            source = scan_input(path, storage)
            opts = options
            if output_dir:
                opts = replace(options, to=f"dir:{output_dir}",
                               relative_to=str(base) if base else None)
            elif prefix_to and base and options.relative_to is None:
                opts = replace(options, relative_to=str(base))
            results.append(replace(submit(store, source, opts, priority=priority, key=key,
                                          storage=storage), input=path))
        except InvalidInput as exc:
            if key or isinstance(exc, DatabaseDamaged):  # the store's, not this input's
                raise
            results.append(Submitted(path, error=str(exc)))
    return results


def delivered(store: Store, job: Job, storage=None) -> bool:
    """The recorded delivery still stands: the file is there unchanged, or
    the upload to a URL is on record (it is never sent twice)."""
    from pipeline.sinks import STDOUT, is_http, sink_for

    delivery = store.artifact(job.id, "delivery")
    if delivery is None:
        return False
    params = JobParams.from_json(job.params)
    if is_http(params.sink):  # on record: never sent twice, and not readable from here
        return delivery.sha256 is not None
    if params.sink == STDOUT:  # printed from the store's copy, as long as it has one
        output = store.artifact(job.id, "output")
        return output is not None and (output.content is not None or (
            output.path is not None and Path(output.path).is_file()))
    return sink_for(params, DeliveryOptions(storage=storage or {})).still_delivered(
        delivery.sha256)


def reopen_undelivered(store: Store, job: Job) -> str:
    """Queue a SUCCEEDED job whose delivery no longer stands: "deliver" from
    the stored output, or "translate" again when ``gc`` collected it."""
    if store.artifact(job.id, "output") is None:
        store.restart(job.id)
        return "translate"
    store.reopen_for_upload(job.id)
    return "deliver"


def translate_or_resume(store: Store, source: InputFile, options: JobOptions, runtime: Runtime,
                        *, events_for: EventsFor | None = None) -> Outcome:
    """Translate a document, or resume its interrupted job, or say it is done.

    Everything a user can get wrong is checked before anything is stored or
    a model is loaded. A succeeded job whose output is gone is delivered
    again (from the store, or translated again when ``gc`` collected it).
    """
    from pipeline.sinks import check_target_free

    # The job stores a presigned URL redacted; this run delivers with the whole one.
    runtime = replace(runtime, delivery=runtime.delivery.given(options.to))
    storage = runtime.delivery.storage
    params = job_params(options, source, storage)
    existing = jobs.find_job(store, params, source)
    if existing and existing.state == "SUCCEEDED" and delivered(store, existing, storage):
        return Outcome(existing, "already translated; nothing to do")
    if existing and existing.state == "FAILED" and existing.stage == "done":
        raise JobEnded(existing)
    ours = store.artifact(existing.id, "output") if existing else None
    check_target_free(params.sink, params.output, _stored_output(ours),
                      overwrite=runtime.delivery.overwrite, storage=storage)
    if existing is None:  # a file its format cannot read: refused before any model loads
        jobs.check_input(params, source, storage)
    translator = runtime.translators(params)
    job, created = jobs.submit(store, params, source, memory=options.memory,
                               checked=existing is None, storage=storage)
    if not created:
        log.info("resuming job %s from stage %s", job.id, job.stage)
    if existing and existing.state == "SUCCEEDED":  # output file gone or changed
        reopen_undelivered(store, job)
    return _run(store, store.job(job.id), translator, runtime, events_for,
                note=None if created else "resumed")


def _stored_output(output: Artifact | None):
    """A job's output as a sink takes it: its file, or the bytes a store
    from before output files kept."""
    from pipeline.output_file import OutputFile

    if output is None or output.path is None:
        return output.content if output else None
    return OutputFile(Path(output.path), output.bytes, output.sha256)


class JobEnded(InvalidInput):
    """The job ran to its end and FAILED; ``retry`` is the way on."""

    exit_code = 1

    def __init__(self, job: Job):
        super().__init__(f"job {job.id} ended FAILED: {job.error_message}")
        self.job = job


def retry(store: Store, job_id: str, runtime: Runtime, *,
          events_for: EventsFor | None = None) -> Outcome:
    """Run a failed, canceled or interrupted job's remaining work: failed
    chunks get fresh attempts, everything that succeeded is kept. Loads a
    model only when there is something to translate."""
    from pipeline.runner import lease_is_live

    job = find_job(store, job_id)
    if job.state == "SUCCEEDED":
        if delivered(store, job, runtime.delivery.storage):
            return Outcome(job, "already succeeded and delivered; nothing to retry")
        # The output was deleted or replaced since (or gc collected it):
        # deliver again, from the store, or translate again when collected.
        redo = reopen_undelivered(store, job)
        translator = runtime.translators(JobParams.from_json(job.params)) if redo == "translate" \
            else NoModel()
        note = ("translated again (its chunks had been collected)" if redo == "translate"
                else "delivered again from the store")
        return _run(store, store.job(job.id), translator, runtime, events_for, note=note)
    if job.state == "RUNNING" and lease_is_live(job, store.clock()):
        raise JobBusy(f"job {job.id} is running ({job.lease_owner}); nothing to retry")
    params = JobParams.from_json(job.params)
    needs_model = job.stage in ("preprocess", "inference") or store.chunk_counts(job.id).get(
        "failed", 0) > 0
    # Built before anything is reset: a model that fails to load changes nothing.
    translator = runtime.translators(params) if needs_model else NoModel()
    reset = store.reset_failed(job.id)
    log.info("job %s: %d failed chunk(s) will be retried", job.id, reset)
    return _run(store, store.job(job.id), translator, runtime, events_for,
                note=f"retried {reset} chunk(s)")


@dataclass(frozen=True)
class Requeued:
    """What ``requeue`` put back in the queue."""

    job: Job
    what: str  # "chunks": failed chunks reset; "resume": the rest of its stages;
    #            "deliver": deliver again from the store; "translate": from the start
    chunks: int = 0  # failed chunks given fresh attempts


def requeue(store: Store, job_id: str, stands=delivered) -> Requeued:
    """``retry`` for a queue: the same jobs and the same work, run by a
    worker instead of this process, so no model is loaded here. A failed,
    canceled or interrupted job goes back to the queue (failed chunks with
    fresh attempts; everything that succeeded is kept); a succeeded job
    whose delivery no longer ``stands`` (store, job) is queued to deliver again.
    JobConflict when there is nothing to retry (it is queued, or succeeded and
    delivered); JobBusy while a live worker runs it."""
    from pipeline.runner import lease_is_live

    job = find_job(store, job_id)
    if job.state == "SUCCEEDED":
        if stands(store, job):
            raise JobConflict(f"job {job.id} already succeeded and delivered; nothing to retry")
        what = reopen_undelivered(store, job)
        return Requeued(store.job(job.id), what)
    if job.state == "QUEUED":
        raise JobConflict(f"job {job.id} is already queued")
    if job.state == "RUNNING" and lease_is_live(job, store.clock()):
        raise JobBusy(f"job {job.id} is running ({job.lease_owner}); nothing to retry")
    reset = store.reset_failed(job.id)
    log.info("job %s queued again: %d failed chunk(s) will be retried", job.id, reset)
    return Requeued(store.job(job.id), "chunks" if reset else "resume", reset)


@dataclass(frozen=True)
class Output:
    """A finished job's translation, as the store keeps it: read a piece at
    a time from the job's output file (opened already, so it cannot go
    away half-way)."""

    name: str  # the file name it was delivered under (NAME.<tgt>.EXT)
    fmt: str  # one of config.FORMATS
    size: int  # bytes
    pieces: Iterator[bytes]


def output(store: Store, job_id: str) -> Output:
    """The translation of a job that got through postprocess (a job that
    ended FAILED with some chunks failed for good has one too: they keep
    their source text or a marker). JobConflict while there is none yet, or
    after ``gc`` collected it, or if its file is gone."""
    from pipeline.sinks import STDOUT, default_output, is_http

    job = find_job(store, job_id)
    artifact = store.artifact(job.id, "output") if job.stage in ("upload", "done") else None
    if artifact is None or (artifact.content is None and artifact.path is None):
        if job.stage == "done":
            raise JobConflict(f"job {job.id}: its output was collected by gc; retry it to "
                              "translate it again")
        raise JobConflict(f"job {job.id} has no output yet ({job.state}, stage {job.stage})")
    params = JobParams.from_json(job.params)
    name = (default_output(Path(job.input_path), params.tgt_lang).name
            if is_http(params.sink) or params.sink == STDOUT else Path(params.output).name)
    if artifact.path is None:
        return Output(name, params.fmt, len(artifact.content), iter([artifact.content]))
    try:
        f = open(artifact.path, "rb")
    except OSError:
        raise JobConflict(f"job {job.id}: its output file {artifact.path} is gone; retry it "
                          "to render it again") from None
    return Output(name, params.fmt, os.fstat(f.fileno()).st_size, _read_pieces(f))


def _read_pieces(f) -> Iterator[bytes]:
    from pipeline.output_file import PIECE_BYTES

    with f:
        while piece := f.read(PIECE_BYTES):
            yield piece


def _run(store: Store, job: Job, translator: Translator, runtime: Runtime,
         events_for: EventsFor | None, *, note: str | None) -> Outcome:
    from pipeline.runner import run_job

    events = events_for(store, job, translator) if events_for else None
    started = time.perf_counter()
    try:
        job = run_job(store, job.id, translator, settings=runtime.settings, events=events,
                      policy=runtime.policy, delivery=runtime.delivery)
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
    return Outcome(job, note, time.perf_counter() - started)


def cancel(store: Store, job_id: str) -> tuple[Job, str]:
    """Cancel a job: "canceled" at once if nothing runs it, "requested" if a
    worker holds it (it stops within a second or two, once a model call in
    flight returns), or the job's state if it has already ended. Partial
    results stay; ``retry`` continues."""
    job = find_job(store, job_id)
    return job, store.request_cancel(job.id)


def gc(store: Store, older_than_days: float) -> int:
    """Drop chunks and outputs of jobs finished more than this many days
    ago; their rows, timings and history stay. Returns how many."""
    if not (math.isfinite(older_than_days) and older_than_days >= 0):
        raise InvalidInput("--older-than takes a finite number of days >= 0")
    return store.gc(older_than_days * 86400)


def run_worker(store: Store, runtime: Runtime, **kwargs) -> dict[str, int]:
    """Run queued jobs (``pipeline.worker.run_worker``) with this runtime's
    translators, settings, policy and delivery. Returns counts by state."""
    from pipeline.worker import run_worker as run

    return run(store, runtime.translators, settings=runtime.settings, policy=runtime.policy,
               delivery=runtime.delivery, **kwargs)
