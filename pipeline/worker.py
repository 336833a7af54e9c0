"""The queue worker: claim the next job, run it, repeat.

Claiming is the store's atomic lease compare-and-set, so two workers never
run one job; a job whose worker died (its pid is gone, or its lease expired)
is claimed again and resumes from its last committed batch. On SIGTERM or
SIGINT the worker stops its job at the job's next check, within a second or
two of any stage's work (a model call in flight finishes first), gives the
job back to the queue and exits.

With ``jobs`` > 1 the worker runs that many jobs at once, each in a thread
with its own store connection, sharing the translators: what a pool of Ray
actors needs to stay busy while one job is in preprocess, postprocess or
upload, or has few batches left (``models.ray_pool``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.config import NOTE, JobParams, RunSettings
from pipeline.errors import JobCanceled, PipelineError, WorkerStopping
from pipeline.io_errors import DatabaseDamaged
from pipeline.monitoring.logs import failure, job_context
from pipeline.retry import RetryPolicy
from pipeline.runner import Heartbeat, check_run, is_dead_local_worker, new_worker_id, run_job
from pipeline.store import Job, Store

log = logging.getLogger("nllb_pipeline")
BEAT_S = 15.0  # how often an idle worker says it is alive (pipeline.store.totals)


def claim_next(store: Store, worker: str, ttl: float) -> Job | None:
    """The next job this worker now holds the lease of, or None."""
    now = store.clock()
    for job in store.claimable_jobs():
        dead = [job.lease_owner] if is_dead_local_worker(job.lease_owner) else []
        if job.state == "RUNNING" and not dead and (job.lease_expires or 0) >= now:
            continue  # a live worker on this host holds it
        if store.claim_job(job.id, worker, ttl, dead=dead, states=("QUEUED", "RUNNING")):
            return store.job(job.id)
    return None


class _Quota:
    """Jobs left to claim under ``max_jobs``, shared by the worker's threads."""

    def __init__(self, limit: int | None):
        self.left, self._lock = limit, threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.left is None:
                return True
            if self.left <= 0:
                return False
            self.left -= 1
            return True

    def give_back(self) -> None:
        with self._lock:
            if self.left is not None:
                self.left += 1


def run_worker(store: Store, make_translator: Callable[[JobParams], object], *,
               settings: RunSettings = RunSettings(), policy: RetryPolicy = RetryPolicy(),
               shutdown: threading.Event | None = None, max_jobs: int | None = None,
               idle_exit_s: float | None = None, poll_s: float = 1.0,
               worker: str | None = None, delivery=None, jobs: int = 1,
               events_for: Callable | None = None) -> dict:
    """Run jobs until ``max_jobs`` ran, the queue stayed empty ``idle_exit_s``
    seconds, or ``shutdown`` is set; ``jobs`` of them at once. Returns
    counts by final state. Each job's start and end is a note in the log;
    ``events_for(store, job, translator)`` gives each run's observer of its
    progress (the CLI's bar), closed when the run ends."""
    worker = worker or new_worker_id()
    shutdown = shutdown or threading.Event()
    quota = _Quota(max_jobs)
    counts: dict[str, int] = {}
    run = _Runs(make_translator, settings, policy, delivery, events_for)
    if jobs <= 1:
        _claim_and_run(store, run, shutdown, quota, idle_exit_s, poll_s, worker, counts)
        return counts
    lock = threading.Lock()
    errors: list[BaseException] = []

    def loop(n: int) -> None:
        own: dict[str, int] = {}
        thread_store = Store(store.path, clock=store.clock)
        try:
            # One lease owner per thread: a job's lease names the thread that runs it.
            _claim_and_run(thread_store, run, shutdown, quota, idle_exit_s, poll_s,
                           f"{worker}.{n}", own)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)
            shutdown.set()
        finally:
            thread_store.close()
            with lock:
                for state, k in own.items():
                    counts[state] = counts.get(state, 0) + k

    threads = [threading.Thread(target=loop, args=(n,), name=f"job-{n}", daemon=True)
               for n in range(1, jobs + 1)]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():  # a join with a timeout lets the main thread take signals
            t.join(0.5)
    if errors:
        raise errors[0]
    return counts


@dataclass(frozen=True)
class _Runs:
    """How each claimed job is run: the same for every job and thread."""

    make_translator: Callable[[JobParams], object]
    settings: RunSettings
    policy: RetryPolicy
    delivery: object
    events_for: Callable | None


def _claim_and_run(store: Store, run: _Runs, shutdown: threading.Event, quota: _Quota,
                   idle_exit_s: float | None, poll_s: float, worker: str,
                   counts: dict[str, int]) -> None:
    idle_since, beat_at = time.monotonic(), None
    try:
        while not shutdown.is_set() and quota.take():
            if beat_at is None or time.monotonic() - beat_at >= BEAT_S:
                store.worker_seen(worker)  # alive while idle too (``/metrics``)
                beat_at = time.monotonic()
            job = claim_next(store, worker, run.settings.lease_seconds)
            if job is None:
                quota.give_back()
                if idle_exit_s is not None and time.monotonic() - idle_since >= idle_exit_s:
                    break
                shutdown.wait(poll_s)
                continue
            with job_context(job.id):  # its log records say which job (pipeline.monitoring.logs)
                state = _run_one(store, run, job, shutdown, worker)
            counts[state] = counts.get(state, 0) + 1
            idle_since = beat_at = time.monotonic()
    finally:
        with contextlib.suppress(PipelineError, sqlite3.Error):
            store.worker_gone(worker)


def _translator(held: contextlib.ExitStack, store: Store, run: _Runs, job: Job,
                params: JobParams, shutdown: threading.Event, worker: str):
    """The job's translator, held until ``held`` closes. A factory that
    shares translators between jobs (``TranslatorCache.lease``) learns when
    the job is done with it. Getting it can take minutes (loading a large
    model, waiting for a Ray cluster to have room for its actors): the job's
    lease is renewed meanwhile, so no other worker takes the job over."""
    def say(text: str) -> None:  # what the job waits for, on every face until its run starts
        store.set_progress(job.id, worker, json.dumps({"stage": job.stage, "note": text,
                                                       "at": store.clock()}))

    with Heartbeat(store.path, job.id, worker, run.settings.lease_seconds, threading.Event()):
        lease = getattr(run.make_translator, "lease", None)
        if lease is None:
            return run.make_translator(params)
        return held.enter_context(lease(params, say=say, check=lambda: check_run(
            store, job.id, worker, shutdown)))


def _run_one(store: Store, run: _Runs, job: Job, shutdown: threading.Event, worker: str) -> str:
    """Run one claimed job; its final state."""
    params = JobParams.from_json(job.params)
    log.log(NOTE, "job %s started: %s (%s -> %s)%s", job.id, job.input_path, params.src_lang,
            params.tgt_lang, " resuming at " + job.stage if job.stage != "preprocess" else "")
    started, events = time.monotonic(), None
    try:
        with contextlib.ExitStack() as held:
            translator = _translator(held, store, run, job, params, shutdown, worker)
            events = run.events_for(store, job, translator) if run.events_for else None
            final = run_job(store, job.id, translator, settings=run.settings, worker=worker,
                            policy=run.policy, shutdown=shutdown, delivery=run.delivery,
                            events=events)
        state = final.state
    except WorkerStopping:  # stopped while it waited for its translator
        store.requeue(job.id, worker)
        final = store.job(job.id)
        state = final.state
    except JobCanceled:  # canceled while it waited for its translator
        store.finish_cancel(job.id, worker)
        final = store.job(job.id)
        state = final.state
    except DatabaseDamaged:
        raise  # the store's, not the job's: nothing more is written into it
    except PipelineError as exc:  # recorded on the job by run_job where it applies
        text = str(exc)  # run_job's JobFailed names the job already
        log.error("%s", text if text.startswith(f"job {job.id}") else f"job {job.id}: {text}",
                  **failure(error_class=exc.error_class, decision="fail"))
        current = store.job(job.id)
        if current.state == "RUNNING" and current.lease_owner == worker:
            store.set_job_state(job.id, "FAILED", error_class=exc.error_class.value,
                                error_message=str(exc))
            store.release_job(job.id, worker)
        final = store.job(job.id)
        state = final.state
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
    took = time.monotonic() - started
    if state in ("QUEUED", "RUNNING"):  # given back (SIGTERM): resumes from here
        log.log(NOTE, "job %s stopped after %.1f s at %s; back in the queue", job.id, took,
                final.stage)
    else:
        where = f" -> {final.output_path}" if state == "SUCCEEDED" and final.output_path else ""
        log.log(NOTE, "job %s ended %s in %.1f s%s", job.id, state, took, where)
    return state
