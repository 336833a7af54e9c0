"""Upload: deliver the output to the job's sink, once, through failures.

Progress unit: bytes. The sink (``pipeline.sinks``) makes one attempt; this
stage decides about retries with the run's policy:

- every failed attempt is a row in the store before its wait starts, and a
  restarted process continues the round where it stopped: the same counts,
  the rest of a stored wait;
- each error class has its own budget (``RetryPolicy.class_limits``): a
  429 followed by a reset does not use up the SERVER attempts;
- a server's Retry-After is honoured (up to ``max_retry_after_s``);
- a class that is not retryable (AUTH, INVALID_INPUT) or an exhausted
  budget ends the job FAILED at this stage, and ``retry`` resumes here.

The delivery is recorded in the transaction that ends the stage. A crash
between the send and that record makes the resumed job send again, with the
same ``Idempotency-Key``, which the receiver uses to drop the repeat. The key
is the job's; a job that delivers a changed output (``retry`` translated
chunks that had failed) sends it under the job's key plus the new content's
hash, since it is a new delivery, and replaces its own earlier file.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from collections import Counter

from pipeline.errors import ErrorClass
from pipeline.sinks import DeliveryError, Receipt, sink_for

log = logging.getLogger("nllb_pipeline")
UPLOAD_ATTEMPTS = 3  # for a retryable class the policy sets no limit for


def run(ctx) -> None:
    store, job, params = ctx.store, ctx.job, ctx.params
    data = store.artifact(job.id, "output").content
    digest = hashlib.sha256(data).hexdigest()
    run_id = store.start_stage(job.id, "upload", units_total=len(data), worker=ctx.worker)
    ctx.events.stage_started("upload", len(data))
    sink = sink_for(params, ctx.delivery, clock=ctx.clock)
    recorded = store.artifact(job.id, "delivery")
    try:
        if (recorded and recorded.sha256 == digest and recorded.path == params.output
                and sink.still_delivered(recorded.sha256)):
            receipt = Receipt.from_json(recorded.content, sink=params.sink, target=params.output)
            ctx.events.stage_progress("upload", len(data))
        else:
            previous = recorded.sha256 if recorded and recorded.path == params.output else None
            receipt = _deliver(ctx, sink, data, previous)
    finally:
        sink.close()
    store.finish_delivery(job.id, run_id, ctx.worker, target=receipt.target, sha256=digest,
                          nbytes=len(data), details=receipt.to_json(),
                          failure=_chunk_failure(ctx))


def _deliver(ctx, sink, data: bytes, previous_sha256: str | None) -> Receipt:
    store, job, policy = ctx.store, ctx.job, ctx.policy
    key, digest = job.idem_key, hashlib.sha256(data).hexdigest()
    if previous_sha256 and previous_sha256 != digest:
        # A new version of a delivered output (a retry filled in failed
        # chunks): under the old key a receiver would drop it as a repeat.
        key = f"{job.idem_key}-{digest[:16]}"
    history = store.open_attempts(job.id, "upload")
    used: Counter[ErrorClass] = Counter()
    for a in history:
        used[ErrorClass(a.error_class)] = max(used[ErrorClass(a.error_class)], a.attempt)
    _finish_stored_wait(ctx, history)
    while True:
        ctx.check_running()
        try:
            return sink.deliver(data, key=key, previous_sha256=previous_sha256,
                                progress=lambda n: ctx.events.stage_progress("upload", n))
        except DeliveryError as err:
            error_class = err.error_class
            used[error_class] += 1
            attempt = used[error_class]
            limit = policy.limit(error_class, UPLOAD_ATTEMPTS)
            decision = policy.decide(error_class, attempt, ctx.rng, default_limit=UPLOAD_ATTEMPTS,
                                     retry_after_s=err.retry_after_s)
            if not decision.retry:
                if error_class.retryable:
                    raise DeliveryError(f"{err} (gave up after {attempt} {error_class.value} "
                                        f"attempt{'s' if attempt > 1 else ''})",
                                        error_class=error_class, attempt=attempt) from err
                err.attempt = attempt
                raise
            store.record_attempt(job.id, "upload", error_class=error_class, message=str(err),
                                 tb="".join(traceback.format_exception(err)), attempt=attempt,
                                 decision="retry", delay_s=decision.delay_s)
            log.warning("upload failed: %s [%s, attempt %d/%d]; retrying in %.1f s", err,
                        error_class.value, attempt, limit, decision.delay_s)
            ctx.events.retrying("upload", decision.delay_s, error_class.value.upper(),
                                attempt + 1, limit)
            ctx.sleep(decision.delay_s)


def _finish_stored_wait(ctx, history) -> None:
    """A process killed mid-wait left the wait on record: sleep what is left."""
    if not history or history[-1].decision != "retry" or not history[-1].delay_s:
        return
    last = history[-1]
    rest = last.at + last.delay_s - ctx.clock()
    if rest > 0:
        error_class = ErrorClass(last.error_class)
        ctx.events.retrying("upload", rest, error_class.value.upper(), last.attempt + 1,
                            ctx.policy.limit(error_class, UPLOAD_ATTEMPTS))
        ctx.sleep(rest)


def _chunk_failure(ctx) -> tuple[str, str] | None:
    """(class, message) when chunks failed for good: delivered, but FAILED."""
    store, job = ctx.store, ctx.job
    failed = [c for c in store.chunks(job.id) if c.state == "failed"]
    if not failed:
        return None
    shown = ", ".join(str(c.idx) for c in failed[:20]) + (" ..." if len(failed) > 20 else "")
    last = [a for a in store.attempts(job.id) if a.stage != "upload"]
    return (last[-1].error_class if last else "internal",
            f"{len(failed)} chunk(s) failed for good (chunks {shown}); the output keeps "
            f"their source text or a marker; 'nllb-pipeline retry {job.id}' retries them")
