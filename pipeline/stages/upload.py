"""Upload: deliver the output to the job's sink, once, through failures.

Progress unit: bytes. The sink (``pipeline.sinks``) makes one attempt; this
stage retries it by the run's policy as ``pipeline.stages.retrying`` says
(each failed attempt a row in the store before its wait, per-class
budgets, Retry-After honoured; a class that is not retryable, or an
exhausted budget, ends the job FAILED at this stage, and ``retry`` resumes
here).

The delivery is recorded in the transaction that ends the stage. A crash
between the send and that record makes the resumed job send again, with the
same ``Idempotency-Key``, which the receiver uses to drop the repeat. The key
is the job's; a job that delivers a changed output (``retry`` translated
chunks that had failed) sends it under the job's key plus the new content's
hash, since it is a new delivery, and replaces its own earlier file.

The output is the file postprocess wrote (``Store.output_file``), read and
sent a piece at a time; it is checked against its recorded checksum first,
and rendered again from the store if it is gone or changed. Cancel,
SIGTERM and the lease are checked between pieces and during a retry's
wait; an HTTP request waiting for its answer is bounded by its timeout.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.output_file import OutputFile, sha256_of, size_of
from pipeline.sinks import DeliveryError, Payload, Receipt, sink_for
from pipeline.stages import postprocess
from pipeline.stages.retrying import attempted

log = logging.getLogger("nllb_pipeline")


def run(ctx) -> None:
    store, job, params = ctx.store, ctx.job, ctx.params
    data = _output(ctx)
    digest, size = sha256_of(data), size_of(data)
    run_id = store.start_stage(job.id, "upload", units_total=size, worker=ctx.worker)
    ctx.events.stage_started("upload", size)
    sink = sink_for(params, ctx.delivery, clock=ctx.clock)
    recorded = store.artifact(job.id, "delivery")
    try:
        if (recorded and recorded.sha256 == digest and recorded.path == params.output
                and sink.still_delivered(recorded.sha256)):
            receipt = Receipt.from_json(recorded.content, sink=params.sink, target=params.output)
            ctx.events.stage_progress("upload", size)
        else:
            previous = recorded.sha256 if recorded and recorded.path == params.output else None
            receipt = _deliver(ctx, sink, data, previous)
    finally:
        sink.close()
    store.finish_delivery(job.id, run_id, ctx.worker, target=receipt.target, sha256=digest,
                          nbytes=size, details=receipt.to_json(),
                          failure=_chunk_failure(ctx))


def _output(ctx) -> Payload:
    """The output document as postprocess left it: its file, checked
    against the recorded size and checksum (rendered again when it is
    gone or changed), or the bytes a store from before output files kept."""
    store, job = ctx.store, ctx.job
    stored = store.artifact(job.id, "output")
    if stored.path is None:
        return stored.content
    output = OutputFile(Path(stored.path), stored.bytes, stored.sha256)
    if output.intact(each_piece=lambda n: ctx.checkpoint()):
        return output
    log.warning("job %s: its output file %s is gone or changed; rendering it again",
                job.id, output.path)
    postprocess.run(ctx)
    stored = store.artifact(job.id, "output")
    return OutputFile(Path(stored.path), stored.bytes, stored.sha256)


def _deliver(ctx, sink, data: Payload, previous_sha256: str | None) -> Receipt:
    key, digest = ctx.job.idem_key, sha256_of(data)
    if previous_sha256 and previous_sha256 != digest:
        # A new version of a delivered output (a retry filled in failed
        # chunks): under the old key a receiver would drop it as a repeat.
        key = f"{ctx.job.idem_key}-{digest[:16]}"
    return attempted(ctx, "upload", lambda: sink.deliver(
        data, key=key, previous_sha256=previous_sha256, progress=lambda n: _sent(ctx, n)),
        failure=DeliveryError)


def _sent(ctx, n: int) -> None:
    ctx.events.stage_progress("upload", n)
    ctx.checkpoint()


def _chunk_failure(ctx) -> tuple[str, str] | None:
    """(class, message) when chunks failed for good: delivered, but FAILED."""
    store, job = ctx.store, ctx.job
    count, first = store.failed_chunks(job.id, shown=20)
    if not count:
        return None
    shown = ", ".join(map(str, first)) + (" ..." if count > len(first) else "")
    return (store.last_error_class(job.id, besides="upload") or "internal",
            f"{count} chunk(s) failed for good (chunks {shown}); the output keeps "
            f"their source text or a marker; 'nllb-pipeline retry {job.id}' retries them")
