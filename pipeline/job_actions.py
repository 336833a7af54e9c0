"""Verbs of the task centre that the CLI and the API share, besides those in
``pipeline.service``: ending a retry's wait now, deleting a finished job,
retrying or canceling many jobs at once, and a job's log as text.

The faces import them from here (``pipeline.service`` does not re-export
them: these call its verbs, so the arrow goes one way).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InvalidInput, JobBusy, JobConflict, PipelineError
from pipeline.store import Job, Store

MAX_BULK = 1000  # ids in one bulk request


def waiting_of(job: Job, now: float) -> dict | None:
    """The retry's wait a running job is in now (from its live progress:
    what waits, until when, why), or None."""
    from pipeline import views

    live = views.live_progress(job) if views.shown_state(job, now) == "RUNNING" else None
    waiting = (live or {}).get("waiting")
    return waiting if waiting and waiting.get("until", 0) > now else None


def wake(store: Store, job_id: str) -> tuple[Job, dict]:
    """"Retry now": the job's worker ends the retry's wait it is in (a batch
    after a transient error, an upload after a 429 or 503) within a
    second, and tries again. Returns the job and the wait it ends;
    JobConflict when the job is not waiting out a retry."""
    from pipeline.service import find_job

    job = find_job(store, job_id)
    waiting = waiting_of(job, time.time())
    if waiting is None:
        raise JobConflict(f"job {job.id} is not waiting out a retry ({job.state}, stage "
                          f"{job.stage}); nothing to cut short")
    store.request_wake(job.id)
    return job, waiting


def delete(store: Store, job_id: str, *, files: Path | None = None) -> Job:
    """Delete a job with its chunks, batches, attempts, stage runs and its
    stored output. JobBusy while a live worker runs it (cancel it first).
    ``files`` (the server's files directory): the upload it read and the
    output delivered into that directory go too, when no other job reads or
    writes them; files anywhere else are the user's and stay."""
    from pipeline.runner import lease_is_live
    from pipeline.service import find_job

    job = find_job(store, job_id)
    if job.state == "RUNNING" and lease_is_live(job, store.clock()):
        raise JobBusy(f"job {job.id} is running ({job.lease_owner}); cancel it before "
                      "deleting it")
    removed = [Path(p) for p in store.delete_job(job.id)]
    if files is not None:
        root = Path(files).resolve()
        for path in (Path(job.input_path), Path(job.output_path or "")):
            inside = _under(path, root)
            if inside and not store.jobs_reading(str(path)) and not store.live_jobs_to(str(path)):
                removed.append(path)
    for path in removed:
        path.unlink(missing_ok=True)
        for parent in (path.parent, path.parent.parent):
            if files is not None and _under(parent, Path(files).resolve()) and parent.name not in (
                    "uploads", "outputs"):
                with contextlib.suppress(OSError):
                    parent.rmdir()  # only if empty
    return job


def _under(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root) and path.resolve() != root
    except OSError:
        return False


@dataclass(frozen=True)
class BulkResult:
    id: str  # as given
    ok: bool
    outcome: str | None = None  # what the verb did (e.g. "chunks", "canceled", "requested")
    job: Job | None = None
    error: PipelineError | None = None


def retry_many(store: Store, ids: Sequence[str]) -> list[BulkResult]:
    """Put each job back in the queue (``service.requeue``), all in one
    transaction (``bulk``). Whether a succeeded job's delivery still stands
    (it may read the delivered file, or ask remote storage) is judged for
    every job first, before the write lock is taken."""
    from pipeline.service import delivered, find_job

    ids = _bulk_ids(ids)
    judged = {}
    for job_id in ids:
        with contextlib.suppress(PipelineError):  # refused again, and answered, by the verb
            job = find_job(store, job_id)
            if job.state == "SUCCEEDED":
                judged[job.id] = delivered(store, job)

    def stands(store: Store, job: Job) -> bool:
        return judged[job.id] if job.id in judged else delivered(store, job)

    def requeue_one(store: Store, job_id: str) -> tuple[Job, str]:
        from pipeline.service import requeue

        done = requeue(store, job_id, stands)
        return done.job, done.what

    return bulk(store, requeue_one, ids)


def cancel_many(store: Store, ids: Sequence[str]) -> list[BulkResult]:
    """Cancel each job (``service.cancel``), all in one transaction (``bulk``)."""
    return bulk(store, cancel_one, _bulk_ids(ids))


def _bulk_ids(ids: Sequence[str]) -> list[str]:
    """The ids of a bulk request, deduplicated in order; InvalidInput for
    none or too many."""
    ids = list(dict.fromkeys(i.strip() for i in ids if isinstance(i, str) and i.strip()))
    if not ids:
        raise InvalidInput("give at least one job id")
    if len(ids) > MAX_BULK:
        raise InvalidInput(f"at most {MAX_BULK} job ids at once, not {len(ids)}")
    return ids


def bulk(store: Store, verb: Callable[[Store, str], tuple[Job, str]],
         ids: Sequence[str]) -> list[BulkResult]:
    """Run ``verb`` (a retry or a cancel) on each of ``ids`` (``_bulk_ids``)
    in one transaction: the write lock is taken once, and readers see every
    change or none, so the list moves to one new revision (one rendering
    for all its pollers), not one per job. One refused job does not stop
    the others: what its verb wrote is undone with its savepoint
    (``Store._write``)."""
    results = []
    with store.transaction():
        for job_id in ids:
            try:
                job, outcome = verb(store, job_id)
                results.append(BulkResult(job_id, True, outcome, job))
            except PipelineError as exc:
                results.append(BulkResult(job_id, False, error=exc))
    return results


def cancel_one(store: Store, job_id: str) -> tuple[Job, str]:
    from pipeline.service import cancel

    job, outcome = cancel(store, job_id)
    if outcome not in ("canceled", "requested"):
        raise JobConflict(f"job {job.id} already {outcome}; nothing to cancel")
    return store.job(job.id), outcome


def log_line(a: dict) -> str:
    """One attempt of ``views.job_logs`` as ``logs`` prints it."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(a["at"]))
    where = a["stage"] + (f" batch {a['batch']}" if a["batch"] is not None else "") + (
        f" chunk {a['chunk_idx']}" if a["chunk_idx"] is not None else "") + (
        f" on {a['ran_on']}" if a["ran_on"] else "")
    wait = f" after {a['delay_s']:.1f} s" if a["delay_s"] else ""
    kind = f"{a['error_class']} ({a['reason']})" if a["reason"] else a["error_class"]
    return (f"{when} [{a['trace_id']}] {where}: {kind} attempt {a['attempt']} -> "
            f"{a['decision']}{wait}: {a['message']}")


def log_text(store: Store, job: Job) -> str:
    """The job's log as a file: a header (the job, its state and error) and
    every attempt, oldest first, as ``logs`` prints them."""
    import os

    from pipeline import views

    lines = [f"job {job.id} {os.path.basename(job.input_path)}: {job.state} (stage {job.stage})"]
    if job.error_message:
        lines.append(f"error: [{job.error_class}] {job.error_message}")
    entries = views.job_logs(store, job)
    lines += [log_line(a) for a in entries] or ["no failed attempts"]
    return "\n".join(lines) + "\n"
