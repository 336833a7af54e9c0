"""Run a job's stages under a lease, from wherever it stopped.

Each stage reads its inputs from the store and writes its outputs to it, and
the job's ``stage`` column says which stage is next, so running a job is
always "continue from the stored stage". A lease (worker id + expiry,
renewed by a heartbeat thread) keeps two processes from running one job; a
lease whose process is gone can be taken over at once, an unrenewed lease
after it expires.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.config import JobParams, RunSettings
from pipeline.errors import (ErrorClass, JobBusy, JobCanceled, JobFailed, LeaseLost,
                             PipelineError, WorkerStopping)
from pipeline.io_errors import DatabaseDamaged
from pipeline.progress import STAGES, Events, Fanout, LiveProgress
from pipeline.retry import RetryPolicy
from pipeline.sinks import DeliveryOptions
from pipeline.store import Job, Store
from pipeline.translator import Translator

log = logging.getLogger("nllb_pipeline")
# How often a stage's own work asks the store whether its job was canceled
# (``JobContext.checkpoint``), and the longest step of a wait: the design
# promises an answer to cancel, SIGTERM and a lost lease within 2 s of work.
CHECK_EVERY_S = 0.5


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def is_dead_local_worker(worker: str | None) -> bool:
    """True if ``worker`` ran on this host in a process that no longer exists."""
    if not worker:
        return False
    host, _, rest = worker.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def lease_is_live(job: Job, now: float) -> bool:
    """Some process that may still be alive holds the job's lease."""
    return (bool(job.lease_owner) and (job.lease_expires or 0) > now
            and not is_dead_local_worker(job.lease_owner))


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


@dataclass
class JobContext:
    """What a stage needs: the store, the job, the model, who we are."""

    store: Store
    job: Job
    params: JobParams
    translator: Translator
    settings: RunSettings
    worker: str
    events: Events
    policy: RetryPolicy = RetryPolicy()
    # How a retry's wait is slept; None: in steps that answer a cancel,
    # SIGTERM or lost lease. Tests pass a recorder that sleeps nothing.
    sleep: Callable[[float], None] | None = None
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)
    stop: threading.Event = field(default_factory=threading.Event)
    shutdown: threading.Event | None = None  # set by a worker's SIGTERM handler
    delivery: DeliveryOptions = DeliveryOptions()  # run-time only: holds credentials
    # Paces checkpoint(): seconds, only differences count (tests pass a fake).
    monotonic: Callable[[], float] = time.monotonic
    _checked_at: float | None = field(default=None, init=False, repr=False)

    def check_running(self) -> None:
        """Stop if the lease was lost (the heartbeat found out, or another
        worker holds it now), a cancel was asked, or the worker is stopping."""
        if self.stop.is_set():
            raise LeaseLost(f"job {self.job.id}: lease lost")
        self._checked_at = self.monotonic()
        check_run(self.store, self.job.id, self.worker, self.shutdown)

    def checkpoint(self) -> None:
        """``check_running``, paced for a stage's own work: call it as often
        as convenient (every line, block or slice). A lost lease or a
        SIGTERM is an event, answered at once; the store is asked about a
        cancel and the lease once ``CHECK_EVERY_S`` passed since it was last
        asked."""
        if (self._checked_at is None or self.stop.is_set()
                or (self.shutdown is not None and self.shutdown.is_set())
                or self.monotonic() - self._checked_at >= CHECK_EVERY_S):
            self.check_running()

    def __post_init__(self) -> None:
        if self.sleep is None:
            self.sleep = self._sleep_answering

    def _sleep_answering(self, seconds: float) -> None:
        """A retry's wait, in steps of at most ``CHECK_EVERY_S`` that raise as
        ``check_running`` does: a canceled, stopping or lost job does not
        sit out a 20 s backoff (the wait's end is in the store already).
        "Retry now" (``Store.request_wake``, from the API or ``retry --now``)
        ends it at the next step. Real time: ``monotonic`` paces the checks
        of work, not a wait."""
        end = time.monotonic() + seconds
        try:
            while True:
                self.check_running()
                left = end - time.monotonic()
                if left <= 0 or self.store.wake_requested(self.job.id):
                    return
                self.stop.wait(min(left, CHECK_EVERY_S))  # a lost lease wakes it at once
        finally:
            self.store.clear_wake(self.job.id)


def check_run(store: Store, job_id: str, worker: str,
              shutdown: threading.Event | None) -> None:
    """Raise what stops a job this worker runs, in one read: its lease taken
    over (LeaseLost: after it expired, which the heartbeat finds out only at
    its next renewal), a cancel asked (JobCanceled), or the worker stopping
    (WorkerStopping)."""
    canceled, holder = store.run_state(job_id)
    if holder != worker:
        raise LeaseLost(f"job {job_id}: lease lost to {holder or 'nobody'}")
    if canceled:
        raise JobCanceled(f"job {job_id} canceled")
    if shutdown is not None and shutdown.is_set():
        raise WorkerStopping(f"job {job_id}: worker stopping")


class Heartbeat:
    """Renews the lease every third of its lifetime on its own connection."""

    def __init__(self, db_path, job_id: str, worker: str, ttl: float, lost: threading.Event):
        self.db_path, self.job_id, self.worker, self.ttl = db_path, job_id, worker, ttl
        self.lost = lost
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        store = None  # opened at the first renewal: most holders end sooner
        try:
            while not self._done.wait(self.ttl / 3):
                store = store or Store(self.db_path)
                if not store.heartbeat(self.job_id, self.worker, self.ttl):
                    log.error("job %s: lease lost to another worker", self.job_id)
                    self.lost.set()
                    return
        finally:
            if store is not None:
                store.close()


def _with_live_progress(store: Store, job_id: str, worker: str, translator,
                        params: JobParams, events: Events) -> Events:
    """Add the observer that keeps the job's progress and ETA in the store
    (what status and the API show) and records its ETA predictions at
    10/50/90%."""
    import json

    from pipeline.progress.eta import JobEta
    from pipeline.progress.profiles import history_for

    def record(percent: int, elapsed_s: float, predicted_total_s: float) -> None:
        store.record_prediction(job_id, percent, elapsed_s, predicted_total_s)

    def save(snapshot: dict) -> None:
        store.set_progress(job_id, worker, json.dumps(snapshot))

    eta = JobEta(history_for(store, translator, params.model), time.time,
                 elapsed_before=store.wall_time(job_id), on_mark=record)
    return Fanout(events, LiveProgress(eta, save, time.time))


def _damage(exc: BaseException, path) -> DatabaseDamaged | None:
    """The store's damage, if that is what ``exc`` met."""
    import sqlite3

    from pipeline.io_errors import database_error

    if isinstance(exc, DatabaseDamaged):
        return exc
    mapped = database_error(exc, path) if isinstance(exc, sqlite3.DatabaseError) else None
    return mapped if isinstance(mapped, DatabaseDamaged) else None


def run_job(store: Store, job_id: str, translator: Translator, **options) -> Job:
    """``_run_job``, its log records about the job (``pipeline.monitoring.logs``)."""
    from pipeline.monitoring.logs import job_context

    with job_context(job_id):
        return _run_job(store, job_id, translator, **options)


def _run_job(store: Store, job_id: str, translator: Translator, *,
             settings: RunSettings = RunSettings(), events: Events | None = None,
             worker: str | None = None, policy: RetryPolicy = RetryPolicy(),
             sleep: Callable[[float], None] | None = None, rng: random.Random | None = None,
             delivery: DeliveryOptions | None = None,
             shutdown: threading.Event | None = None,
             monotonic: Callable[[], float] = time.monotonic) -> Job:
    """Run the job from its stored stage to the end; return the final job.

    The job may end SUCCEEDED, or FAILED with some chunks failed for good
    (the rest is delivered). Raises JobBusy if a live worker holds it, and
    JobFailed if a non-retryable error stops it. ``sleep`` and ``rng`` are
    injectable so tests wait for nothing and get exact delays (by default a
    wait answers a cancel, SIGTERM or lost lease as it goes); the clock is
    the store's, and ``monotonic`` paces each stage's checks of them
    (``JobContext.checkpoint``). ``delivery`` is how the upload reaches its
    sink (headers, timeout, overwrite): passed to this run only, never
    stored.
    """
    from pipeline.stages import STAGE_RUNNERS

    worker = worker or new_worker_id()
    events = events or Events()
    job = store.job(job_id)
    if job.state == "SUCCEEDED" and job.stage == "done":
        return job
    dead = [job.lease_owner] if is_dead_local_worker(job.lease_owner) else []
    if dead:
        log.info("job %s: taking over from dead worker %s", job.id, job.lease_owner)
    if not store.claim_job(job.id, worker, settings.lease_seconds, dead=dead):
        current = store.job(job.id)
        raise JobBusy(
            f"job {job.id} is running in another process ({current.lease_owner}); "
            f"its lease expires in {max(0.0, (current.lease_expires or 0) - time.time()):.0f} s"
        )
    params = JobParams.from_json(job.params)
    events = _with_live_progress(store, job.id, worker, translator, params, events)
    ctx = JobContext(store, store.job(job.id), params, translator,
                     settings, worker, events, policy=policy, sleep=sleep, clock=store.clock,
                     rng=rng or random.Random(), delivery=delivery or DeliveryOptions(),
                     shutdown=shutdown, monotonic=monotonic)
    try:
        with Heartbeat(store.path, job.id, worker, settings.lease_seconds, ctx.stop):
            if ctx.job.stage in STAGES:  # a sink this run cannot reach fails before any work
                from pipeline.sinks import sink_for

                sink_for(params, ctx.delivery).close()
            for stage in STAGES[STAGES.index(ctx.job.stage):] if ctx.job.stage in STAGES else ():
                ctx.check_running()
                STAGE_RUNNERS[stage](ctx)
                events.stage_finished(stage)
    except LeaseLost:
        raise
    except JobCanceled:
        store.finish_cancel(job.id, worker)
        return store.job(job.id)
    except WorkerStopping:
        store.requeue(job.id, worker)
        return store.job(job.id)
    except BaseException as exc:
        damage = _damage(exc, store.path)
        if damage is not None:  # nothing more is written into a damaged file
            raise damage from exc
        # ctx.translator: the one on the fallback device if the run switched.
        error_class = (exc.error_class if isinstance(exc, PipelineError)
                       else ctx.translator.classify(exc))
        if isinstance(exc, KeyboardInterrupt):
            store.release_job(job.id, worker)  # resumable at once; state stays RUNNING
            raise
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if error_class is ErrorClass.DEVICE_FATAL:
            message += ("; the device is in a broken state: restart the process, then run the "
                        "same command to continue the job"
                        + ("" if settings.fallback_device else
                           " (with --fallback-device cpu a run goes on on the CPU instead)"))
        store.record_attempt(job.id, store.job(job.id).stage, error_class=error_class,
                             message=message, tb=traceback.format_exc(),
                             attempt=getattr(exc, "attempt", 1),
                             decision="fail")
        store.set_job_state(job.id, "FAILED", error_class=error_class.value, error_message=message)
        store.release_job(job.id, worker)
        if error_class is ErrorClass.INTERNAL and not isinstance(exc, PipelineError):
            raise JobFailed(f"job {job.id} failed: internal error: {message}") from exc
        raise JobFailed(f"job {job.id} failed: {message}", error_class=error_class) from exc
    store.release_job(job.id, worker)
    final = store.job(job.id)
    if final.state == "SUCCEEDED":
        _judge_eta_drift(store, job.id, settings)
    return final


def _judge_eta_drift(store: Store, job_id: str, settings: RunSettings) -> None:
    """Monitoring never fails a job: a check that cannot be made is logged."""
    from pipeline.monitoring.drift import EtaDrift, check_after_job

    try:
        check_after_job(store, job_id, EtaDrift.parse(settings.eta_drift))
    except Exception as exc:  # noqa: BLE001
        log.warning("ETA drift check skipped: %s: %s", type(exc).__name__, exc)
