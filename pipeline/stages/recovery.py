"""Recovery: what inference does when a translate call fails.

Failures are handled at three levels (DESIGN.md, "Errors and retries"):

- an OOM splits the batch in halves (stored, so a restart keeps the split)
  and shrinks the token budget for later batches, which grows back slowly;
- a batch that fails otherwise falls back to its chunks one by one, each
  with ``chunk_attempts`` tries and backoff between them;
- a batch that still has failed chunks is retried as a batch
  ``batch_retries`` times, then skipped: its chunks are marked failed and
  the job goes on.

When the device fails in a way retrying on it cannot fix (DEVICE_FATAL: the
CUDA context is poisoned; or OOM on a batch of one sentence) and the run
has a fallback device, the model is loaded there and the same call runs
again on it, and so does the rest of the job: the switch is an attempt row
(decision ``fallback``), each batch records the backend, device and compute
type that translated it, and the inference stage run is split so each part
is timed on the profile it ran on. Without a fallback device the job fails
as before.

Every attempt is a row in the store before any wait starts, and the wait's
end (``not_before``) is stored too, so a process killed mid-backoff resumes
with the same counts and the rest of the wait.

``Recovery`` is the half of inference's batch runner
(``pipeline.stages.inference``) that decides and acts on a failure; the
other half plans, sends and commits. It uses the runner's ``_translate``,
``_commit``, ``_try_whole`` and ``_pending_chunks``.
"""

from __future__ import annotations

import logging
import traceback
import uuid

from pipeline.monitoring.logs import failure
from pipeline.errors import ErrorClass
from pipeline.store import Batch, Chunk

log = logging.getLogger("nllb_pipeline")

AGAIN = "again"  # a batch to send again as it is (its worker was lost)


class TokenBudget:
    """Padded tokens per batch: halved below an OOM, regrown 10% per success."""

    def __init__(self, initial: int, floor: int = 64):
        self.initial, self.floor, self.current = initial, min(floor, initial), initial

    def shrink(self, failed_padded_tokens: int) -> None:
        self.current = max(self.floor, min(self.current, failed_padded_tokens // 2))

    def grow(self) -> None:
        self.current = min(self.initial, int(self.current * 1.1) + 1)


class CallFailed(Exception):
    """A translate call failed; carries its class, and where it ran when
    that was not this process."""

    def __init__(self, exc: BaseException, error_class: ErrorClass, ran_on: str | None = None):
        super().__init__(str(exc))
        self.exc, self.error_class, self.ran_on = exc, error_class, ran_on


def profile_of(info) -> dict:
    """A stage run's profile fields from a translator's description."""
    return {"backend": info.backend, "device": info.device, "dtype": info.compute_type}


def same_device(a: str, b: str) -> bool:
    return (a if a != "cuda" else "cuda:0") == (b if b != "cuda" else "cuda:0")


class Recovery:
    """Failure handling of the batch runner (a mixin: the runner holds the
    state, ``ctx``, ``store``, ``job``, ``policy``, ``budget``, ``judge``)."""

    def _whole_failed(self, batch: Batch, chunks: list[Chunk], failed: CallFailed):
        """What to do after the batch failed as a whole (``_try_whole``'s outcomes)."""
        if failed.error_class is ErrorClass.WORKER_LOST and self._send_again(batch, failed):
            return AGAIN
        if failed.error_class is ErrorClass.OOM and len(chunks) > 1:
            self._split_after_oom(batch, chunks, failed)
            return None
        if len(chunks) == 1:  # a batch of one: that was the chunk's try
            self._chunk_failed(batch, chunks[0], failed)
        else:
            self._record(failed, batch, decision="chunks")
        return False

    def _send_again(self, batch: Batch, failed: CallFailed) -> bool:
        """After its worker was lost: record it, and say whether the batch
        may be sent again whole (the class's limit, counted over the
        batch's WORKER_LOST attempts; a crashed process is not the batch's
        fault, so no wait)."""
        lost = self.store.resends(batch.id)
        decision = self.policy.decide(ErrorClass.WORKER_LOST, lost + 1, self.ctx.rng)
        if not decision.retry:
            return False
        self._record(failed, batch, decision="resend", attempt=lost + 1)
        return True

    def _rounds(self, batch: Batch) -> None:
        """Chunk by chunk, then the whole batch again, until done or skipped."""
        while True:
            for chunk in self._pending_chunks(batch):
                self._one_chunk(batch, chunk)
            remaining = self._pending_chunks(batch)
            if not remaining:
                self.store.commit_batch(self.job.id, batch.id, {}, self.ctx.worker)
                return
            batch = self._reload(batch)
            last_class = self._last_class(remaining)
            if batch.attempts >= self.policy.batch_retries:
                self.store.skip_batch(self.job.id, batch.id, [c.idx for c in remaining],
                                      self.ctx.worker)
                self._log_skip(batch, remaining, last_class)
                return
            retry = batch.attempts + 1
            delay = self.policy.batch_wait(retry, self.ctx.rng)
            trace_id = uuid.uuid4().hex[:8]
            message = f"{len(remaining)} chunk(s) still failing; retrying the batch"
            with self.store.transaction():  # the row and the count it stands for
                self.store.record_attempt(
                    self.job.id, "inference", batch_id=batch.id, error_class=last_class,
                    message=message, attempt=retry, decision="retry_batch", delay_s=delay,
                    trace_id=trace_id)
                self.store.set_batch_retry(batch.id, attempts=retry,
                                           not_before=self.ctx.clock() + delay)
            name = self._name(batch)
            log.warning("[%s] batch %s: %s (%s) in %.1f s", trace_id, name, message,
                        last_class.value, delay,
                        **failure(batch=name, trace_id=trace_id, error_class=last_class,
                                  decision="retry_batch"))
            batch = self._reload(batch)
            self._wait(batch, f"batch {self._name(batch)}", error_class=last_class, attempt=retry,
                       limit=self.policy.batch_retries)
            if self._try_whole(batch, self._pending_chunks(batch)) is not False:
                return

    def _split_after_oom(self, batch: Batch, chunks: list[Chunk], failed: CallFailed) -> None:
        self.ctx.translator.recover(ErrorClass.OOM)
        self.budget.shrink(len(chunks) * max(c.n_tokens for c in chunks))
        half = (len(chunks) + 1) // 2
        name = self._name(batch)
        self._record(failed, batch, decision="split",  # one log line for the failure and the split
                     outcome=f"split into {name}.1 ({half} chunks) + {name}.2 "
                             f"({len(chunks) - half}), budget now {self.budget.current} tokens")
        self.store.split_batch(self.job.id, batch, [chunks[:half], chunks[half:]], self.ctx.worker)

    def _one_chunk(self, batch: Batch, chunk: Chunk) -> None:
        """Try one chunk alone until it succeeds or this round's tries are used."""
        while True:
            batch = self._reload(batch)
            if self._tries_used(batch, chunk) >= self.policy.chunk_attempts:
                return
            self._wait(batch, f"chunk {chunk.idx}")
            try:
                self._commit(batch, [chunk], self._translate(batch, [chunk]), final=False)
                return
            except CallFailed as failed:
                if not self._chunk_failed(batch, chunk, failed):
                    return
            chunk = self.store.chunks(self.job.id, [chunk.idx])[0]

    def _split_alone(self, batch: Batch, chunk: Chunk) -> bool:
        """A sentence out of memory on its own, tries used up: split it at
        clause boundaries (or in two) and go on with the pieces."""
        rows = self.judge.split_pieces(chunk)
        if not rows:
            return False
        self.store.replace_chunk(self.job.id, chunk.idx, rows, self.ctx.worker, {
            "error_class": ErrorClass.OOM, "batch_id": batch.id, "chunk_idx": chunk.idx,
            "attempt": 1, "decision": "split_chunk",
            "message": f"out of memory alone: split into {sum(r.n_tokens > 0 for r in rows)} "
                       "pieces"})
        log.warning("chunk %d ran out of memory on its own: split into pieces", chunk.idx)
        return True

    def _tries_used(self, batch: Batch, chunk: Chunk) -> int:
        """A chunk's tries in the current batch round (each round has its own)."""
        return chunk.attempts - batch.attempts * self.policy.chunk_attempts

    def _chunk_failed(self, batch: Batch, chunk: Chunk, failed: CallFailed) -> bool:
        """Record a chunk's failed try and set the wait before the next one.
        False: no more tries for it in this round."""
        batch = self._reload(batch)
        attempt_in_round = self._tries_used(batch, chunk) + 1
        limit = min(self.policy.chunk_attempts,
                    self.policy.limit(failed.error_class, self.policy.chunk_attempts))
        decision = self.policy.decide(failed.error_class, attempt_in_round, self.ctx.rng,
                                      level_limit=limit)
        if failed.error_class is ErrorClass.OOM:
            self.ctx.translator.recover(ErrorClass.OOM)
        if not decision.retry:
            self._record(failed, batch, chunk=chunk, attempt=attempt_in_round,
                         decision="give_up", delay=decision.delay_s)
            if failed.error_class is ErrorClass.OOM and self._split_alone(batch, chunk):
                return False
            # Used up early (a class limit below chunk_attempts): end the round.
            self.store.add_chunk_attempts(self.job.id, chunk.idx, self.policy.chunk_attempts
                                          - attempt_in_round)
            return False
        with self.store.transaction():  # the attempt and the wait it starts, or neither
            self._record(failed, batch, chunk=chunk, attempt=attempt_in_round,
                         decision="retry", delay=decision.delay_s)
            self.store.set_batch_retry(batch.id, not_before=self.ctx.clock() + decision.delay_s)
        self._wait(self._reload(batch), f"chunk {chunk.idx}", error_class=failed.error_class,
                   attempt=attempt_in_round + 1, limit=limit)
        return True

    def _classified(self, exc: BaseException, batch: Batch, chunks: list[Chunk], *,
                    ran_on: str | None = None) -> CallFailed | None:
        """A failed call's class, as a ``CallFailed``; None if the run moved to
        its fallback device (call again). A class retrying cannot help is
        raised as it is: it ends the job."""
        error_class = self.ctx.translator.classify(exc)
        if self._needs_fallback(error_class, chunks):
            self._switch_to_fallback(batch, exc, error_class)
            return None
        if not error_class.retryable:
            raise exc
        return CallFailed(exc, error_class, ran_on)

    def _needs_fallback(self, error_class: ErrorClass, chunks: list[Chunk]) -> bool:
        """The device failed in a way retrying on it cannot fix, and the run
        has a fallback it has not moved to yet. After a fatal error even the
        same device counts (a fresh model is all a process can try); an OOM
        on the device the fallback names would only load a second copy."""
        target = self.ctx.settings.fallback_device
        if not target or self.on_fallback:
            return False
        if error_class is ErrorClass.DEVICE_FATAL:
            return True
        return (error_class is ErrorClass.OOM and len(chunks) == 1  # nothing left to split
                and not same_device(self.ctx.translator.describe().device, target))

    def _switch_to_fallback(self, batch: Batch, exc: BaseException,
                            error_class: ErrorClass) -> None:
        ctx = self.ctx
        before = ctx.translator.describe()
        ctx.translator.recover(error_class)
        ctx.translator = ctx.translator.on_device(ctx.settings.fallback_device)
        self.on_fallback = True
        after = ctx.translator.describe()
        self.translated_by = (after.backend, after.device, after.compute_type)
        done, total = self.store.token_counts(self.job.id)
        self.run_id = self.store.switch_stage_run(
            self.job.id, self.run_id, units_done=done - self.run_started_at,
            units_total=total - done, worker=ctx.worker, model=ctx.params.model,
            **profile_of(after))
        self.run_started_at = done
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        trace_id = uuid.uuid4().hex[:8]
        self.store.record_attempt(
            self.job.id, "inference", batch_id=batch.id, error_class=error_class,
            message=f"{first} on {before.device}; going on on {after.device} "
                    f"({after.backend} {after.compute_type})",
            tb="".join(traceback.format_exception(exc)), attempt=1, decision="fallback",
            trace_id=trace_id)
        log.warning("[%s] batch %d: %s on %s (%s); going on on the fallback device %s (%s)",
                    trace_id, batch.seq, error_class.value, before.device, first, after.device,
                    after.compute_type, **failure(batch=self._name(batch), trace_id=trace_id,
                                                  error_class=error_class, decision="fallback"))

    def _wait(self, batch: Batch, what: str, *, error_class: ErrorClass | None = None,
              attempt: int = 0, limit: int = 0) -> None:
        """Sleep until the batch's stored ``not_before``, saying so."""
        if not batch.not_before:
            return
        delay = batch.not_before - self.ctx.clock()
        if delay > 0:
            name = error_class.value.upper() if error_class else "waiting"
            self.ctx.events.retrying(what, delay, name, attempt, limit)
            self.ctx.sleep(delay)
        self.store.set_batch_retry(batch.id, not_before=None)

    def _record(self, failed: CallFailed, batch: Batch, *, decision: str,
                chunk: Chunk | None = None, attempt: int = 1, delay: float | None = None,
                outcome: str = "") -> None:
        trace_id = uuid.uuid4().hex[:8]
        tb = "".join(traceback.format_exception(failed.exc))
        where_ran = failed.ran_on
        self.store.record_attempt(
            self.job.id, "inference", batch_id=batch.id,
            chunk_idx=chunk.idx if chunk else None, error_class=failed.error_class,
            message=str(failed.exc).splitlines()[0][:500] if str(failed.exc) else
            type(failed.exc).__name__, tb=tb, attempt=attempt, decision=decision,
            delay_s=delay, trace_id=trace_id, ran_on=where_ran,
        )
        name = self._name(batch)
        where = f"chunk {chunk.idx} of batch {name}" if chunk else f"batch {name}"
        if where_ran:
            where += f" on {where_ran}"
        log.warning("[%s] %s failed: %s (%s); %s%s", trace_id, where, failed.error_class.value,
                    str(failed.exc).splitlines()[0][:200] if str(failed.exc) else "",
                    outcome or decision, f" in {delay:.1f} s" if delay else "",
                    **failure(batch=name, trace_id=trace_id, error_class=failed.error_class,
                              decision=decision))

    def _last_class(self, chunks: list[Chunk]) -> ErrorClass:
        """The class of the latest failure among these chunks."""
        last = self.store.last_failure_class(self.job.id, [c.idx for c in chunks])
        return ErrorClass(last) if last else ErrorClass.INTERNAL

    def _log_skip(self, batch: Batch, chunks: list[Chunk], error_class: ErrorClass) -> None:
        self.store.record_attempt(
            self.job.id, "inference", batch_id=batch.id, error_class=error_class,
            message=f"batch skipped after {batch.attempts} batch retries: chunks "
                    + ", ".join(str(c.idx) for c in chunks) + " failed",
            attempt=batch.attempts + 1, decision="skip")
        log.error("batch %s skipped; %d chunk(s) failed for good", self._name(batch), len(chunks),
                  **failure(batch=self._name(batch), error_class=error_class, decision="skip"))
