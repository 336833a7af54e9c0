"""Inference: translate pending chunks batch by batch, committing each batch.

Progress unit: source tokens. The batch plan is stored before the first
batch runs, so a resumed job runs exactly the batches that were not
committed, with the same members: its output is the same as an
uninterrupted run's. Chunks reused from the translation memory, or waiting
on an earlier chunk of the same text, are neither planned nor counted; each
commit stores its translations in the memory under the scope of the
translator that made them (``pipeline.memory.scope``).

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

Before a batch commits, its translations are judged
(``pipeline.quality.ladder``): placeholders checked, quality checked, and a
failing chunk replaced, in the commit's transaction, by a guarded copy or by
pieces (``pipeline.documents.pieces``). When the stored plan is done, the chunks that
appeared that way are planned into batches of their own (one ladder rung
each: a batch shares its decoding), until none is left. A sentence that
still runs out of memory alone after its tries is split the same way
instead of failing.

A translator that runs several batches at once (``describe().concurrency``
> 1: a pool of Ray actors, ``models.ray_pool``) gets that many batches in
flight through ``submit``; each result is committed as it comes back, in
any order (a batch's commit is idempotent and fenced by the lease), and a
cancel or a lost lease stops the commits at once: what is still in flight
is dropped. A batch whose actor died (WORKER_LOST) is sent again, to
another actor, up to the class's limit; any other failure is handled as
for a local model, in turn, while the rest stay in flight.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
import uuid
from concurrent.futures import Future, wait

from pipeline.batching import needs_replanning, plan_batches, plan_in_order
from pipeline.errors import ErrorClass
from pipeline.executors import executor_for
from pipeline.faults import kill_after_commits
from pipeline.logs import failure
from pipeline.memory.scope import scope_for
from pipeline.quality import ladder
from pipeline.store import Batch, Chunk
from pipeline.translator import Translation

log = logging.getLogger("nllb_pipeline")


class TokenBudget:
    """Padded tokens per batch: halved below an OOM, regrown 10% per success."""

    def __init__(self, initial: int, floor: int = 64):
        self.initial, self.floor, self.current = initial, min(floor, initial), initial

    def shrink(self, failed_padded_tokens: int) -> None:
        self.current = max(self.floor, min(self.current, failed_padded_tokens // 2))

    def grow(self) -> None:
        self.current = min(self.initial, int(self.current * 1.1) + 1)


_AGAIN = "again"  # a batch to send again as it is (its worker was lost)


@dataclass
class _Flight:
    """A batch in flight: its chunks, and the translator it was sent to."""

    batch: Batch
    chunks: list[Chunk]
    translator: object
    started_at: float  # recorded with its commit: one write transaction a batch


class _Failed(Exception):
    """A translate call failed; carries its class, and where it ran when
    that was not this process."""

    def __init__(self, exc: BaseException, error_class: ErrorClass, ran_on: str | None = None):
        super().__init__(str(exc))
        self.exc, self.error_class, self.ran_on = exc, error_class, ran_on


def run(ctx) -> None:
    store, job = ctx.store, ctx.job
    done_tokens, total_tokens = store.token_counts(job.id)
    info = ctx.translator.describe()
    run_id = store.start_stage(job.id, "inference", units_total=total_tokens,
                               units_done=done_tokens, worker=ctx.worker,
                               model=ctx.params.model, **_profile(info))
    ctx.events.stage_started("inference", total_tokens, done_tokens)
    runner = _BatchRunner(ctx, run_id, done_tokens)
    try:
        while True:
            if not store.has_pending_batches(job.id):
                # A round is planned only when the one before is done, so a
                # resumed job plans exactly the rounds an uninterrupted run
                # does: repeats their first occurrence cannot fill, and pieces
                # of replaced chunks, go into the next round.
                store.settle_waiting(job.id)
                if not runner.plan_round():
                    break
            ctx.check_running()
            runner.run_window()
    finally:
        runner.close()
    store.finish_stage(job.id, runner.run_id, "postprocess", ctx.worker)


def _profile(info) -> dict:
    return {"backend": info.backend, "device": info.device, "dtype": info.compute_type}


def _same_device(a: str, b: str) -> bool:
    return (a if a != "cuda" else "cuda:0") == (b if b != "cuda" else "cuda:0")


class _BatchRunner:
    def __init__(self, ctx, run_id: int, done_tokens: int):
        self.ctx = ctx
        self.store, self.job, self.policy = ctx.store, ctx.job, ctx.policy
        # The stage run being timed, and the tokens done when it started.
        self.run_id, self.run_started_at = run_id, done_tokens
        info = ctx.translator.describe()
        self.translated_by = (info.backend, info.device, info.compute_type)
        self.on_fallback = False
        # The run's setting wins; the translator knows a good default for its device.
        self.budget = TokenBudget(ctx.settings.batch_tokens or info.default_batch_tokens)
        cap = info.max_output_tokens

        def output_budget(n_tokens: int) -> int:
            return ctx.params.output_budget(n_tokens, cap)

        self.output_budget = output_budget
        params = ctx.params
        self.judge = ladder.Judge(mode=params.quality, src_lang=params.src_lang,
                                  tgt_lang=params.tgt_lang,
                                  count_tokens=ctx.translator.count_tokens)
        self._writes_memory = ctx.store.memory_mode(ctx.job.id) != "off"
        self._scopes: dict = {}  # TranslatorInfo -> memory scope id
        self.executor = executor_for(ctx.translator)
        self._committed = kill_after_commits()  # a crash test's hook; nothing when unset

    def close(self) -> None:
        self.executor.close()

    # -- planning -----------------------------------------------------------

    def plan_round(self) -> bool:
        """Plan every pending chunk into batches, in one transaction (a kill
        leaves the whole round planned or none of it). Called only when no
        batch is pending. True if there were any. The chunks are streamed
        from the store in plan order, so a round of a million chunks holds
        one batch at a time."""
        planned = 0
        with self.store.transaction():
            for rung in self.store.pending_rungs(self.job.id):
                planned += self.store.add_batches(self.job.id, plan_in_order(
                    self.store.plannable_chunks(self.job.id, rung), self.budget.current,
                    self.ctx.settings.max_batch_size, self.output_budget))
        return planned > 0

    def _plan(self, chunks: list[Chunk]) -> list[list[Chunk]]:
        """Batches of one ladder rung each (a batch shares its decoding)."""
        plan = []
        for rung in sorted({c.rung for c in chunks}):
            plan += plan_batches([c for c in chunks if c.rung == rung], self.budget.current,
                                 self.ctx.settings.max_batch_size, self.output_budget)
        return plan

    def _pending_chunks(self, batch: Batch) -> list[Chunk]:
        return [c for c in self.store.chunks(self.job.id, batch.chunk_idxs) if c.state == "pending"]

    # -- one batch ----------------------------------------------------------

    def run(self, batch: Batch) -> None:
        chunks = self._prepare(batch)
        if chunks is None:
            return
        self._wait(batch, f"batch {self._name(batch)}")
        self.store.mark_batch_started(batch.id, self.ctx.worker)
        outcome = self._try_whole(batch, chunks)
        while outcome == _AGAIN:
            batch = self._reload(batch)
            outcome = self._try_whole(batch, self._pending_chunks(batch))
        self._after_whole(batch, outcome)

    def _prepare(self, batch: Batch) -> list[Chunk] | None:
        """The batch's pending chunks, to translate in one call; None when
        there is nothing to send: nothing was left (committed now) or it
        was planned again (its parts are the next pending batches)."""
        chunks = self._pending_chunks(batch)
        if not chunks:
            self.store.commit_batch(self.job.id, batch.id, {}, self.ctx.worker)
            return None
        if (needs_replanning(chunks, self.budget.current, self.output_budget)
                or len({c.rung for c in chunks}) > 1):
            # An earlier OOM shrank the budget (split before trying, not after
            # failing), or an older version planned it with mixed output budgets.
            self.store.split_batch(self.job.id, batch, self._plan(chunks), self.ctx.worker)
            return None
        return chunks

    def _after_whole(self, batch: Batch, outcome) -> None:
        if outcome is True:
            self.budget.grow()
        elif outcome is False:
            self._rounds(batch)
        # None: split after an OOM; the halves are the next pending batches

    def _try_whole(self, batch: Batch, chunks: list[Chunk]):
        """Translate the batch in one call. True: committed. None: split
        after an OOM (its halves run next). False: go chunk by chunk.
        _AGAIN: its worker was lost; send it again."""
        try:
            translations = self._translate(batch, chunks)
        except _Failed as failed:
            return self._whole_failed(batch, chunks, failed)
        self._commit(batch, chunks, translations, final=True)
        return True

    def _whole_failed(self, batch: Batch, chunks: list[Chunk], failed: _Failed):
        """What to do after the batch failed as a whole (``_try_whole``'s outcomes)."""
        if failed.error_class is ErrorClass.WORKER_LOST and self._send_again(batch, failed):
            return _AGAIN
        if failed.error_class is ErrorClass.OOM and len(chunks) > 1:
            self._split_after_oom(batch, chunks, failed)
            return None
        if len(chunks) == 1:  # a batch of one: that was the chunk's try
            self._chunk_failed(batch, chunks[0], failed)
        else:
            self._record(failed, batch, decision="chunks")
        return False

    def _send_again(self, batch: Batch, failed: _Failed) -> bool:
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

    # -- several batches in flight --------------------------------------------

    def run_window(self) -> None:
        """Run the pending batches with up to ``window`` calls in flight,
        committing each result as it comes back, in plan order: the engine
        translates batch k while batch k+1 is prepared (its pending chunks,
        its call submitted) and batch k-1 is judged and committed. The
        window is the translator's own concurrency (Ray actors) or
        ``LOCAL_WINDOW`` for a model in this process, which runs one call at
        a time on the executor's thread. A batch in a retry (a stored wait,
        or a batch round under way) is run alone, in turn, as ``run`` does,
        once nothing is in flight. On a cancel or a lost lease nothing more
        is committed: ``check_running`` raises between results, and what is
        in flight is dropped."""
        flying: dict[Future, _Flight] = {}
        try:
            while True:
                while len(flying) < self.executor.window:
                    batch = self.store.next_pending_batch(
                        self.job.id, besides=[f.batch.id for f in flying.values()])
                    if batch is None:
                        break
                    if batch.not_before or batch.attempts:
                        if flying:
                            break  # settle what is in flight first
                        self.run(batch)  # resumed in a retry: its waits and rounds, in turn
                        self.ctx.check_running()
                        continue
                    chunks = self._prepare(batch)
                    if chunks is None:
                        continue
                    started_at = self.store.clock()
                    translator = self.ctx.translator
                    future = self.executor.submit(translator, [c.source for c in chunks],
                                                  self.ctx.params.src_lang,
                                                  self.ctx.params.tgt_lang, self._decoding(chunks))
                    flying[future] = _Flight(batch, chunks, translator, started_at)
                if not flying:
                    return
                future = next(iter(flying))  # the oldest: commits keep the plan's order
                while not wait([future], timeout=1.0)[0]:
                    self.ctx.check_running()
                flight = flying.pop(future)
                self._settle(flight, future)
                self.ctx.check_running()
        finally:
            for future in flying:
                future.cancel()

    def _settle(self, flight: _Flight, future: Future):
        """Commit a batch's result, or handle its failure as ``run`` would.
        A batch that failed on a translator the run has since left (it moved
        to its fallback device while this one was in flight) is sent again
        as it is: it stays pending and the window picks it up next."""
        batch, chunks = flight.batch, flight.chunks
        result = future.result()
        if result.error is None:
            self._check_count(result.translations, chunks)
            self._commit(batch, chunks, result.translations, final=True, ran_on=result.ran_on,
                         started_at=flight.started_at)
            self.budget.grow()
            return True
        self.store.mark_batch_started(batch.id, self.ctx.worker, at=flight.started_at)
        if flight.translator is not self.ctx.translator:
            return _AGAIN
        failed = self._classified(result.error, batch, chunks, ran_on=result.ran_on)
        if failed is None:  # moved to the fallback device: send it again there
            return _AGAIN
        outcome = self._whole_failed(batch, chunks, failed)
        if outcome != _AGAIN:
            self._after_whole(batch, outcome)
        return outcome

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
            with self.store.transaction():  # the row and the count it stands for
                self.store.record_attempt(
                    self.job.id, "inference", batch_id=batch.id, error_class=last_class,
                    message=f"{len(remaining)} chunk(s) still failing; retrying the batch",
                    attempt=retry, decision="retry_batch", delay_s=delay)
                self.store.set_batch_retry(batch.id, attempts=retry,
                                           not_before=self.ctx.clock() + delay)
            batch = self._reload(batch)
            self._wait(batch, f"batch {self._name(batch)}", error_class=last_class, attempt=retry,
                       limit=self.policy.batch_retries)
            if self._try_whole(batch, self._pending_chunks(batch)) is not False:
                return

    def _split_after_oom(self, batch: Batch, chunks: list[Chunk], failed: _Failed) -> None:
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
            except _Failed as failed:
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

    def _chunk_failed(self, batch: Batch, chunk: Chunk, failed: _Failed) -> bool:
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

    # -- primitives ---------------------------------------------------------

    def _decoding(self, chunks: list[Chunk]):
        budgets = {self.output_budget(c.n_tokens) for c in chunks}
        rungs = {c.rung for c in chunks}
        if len(budgets) != 1 or len(rungs) != 1:  # a bug
            raise RuntimeError(f"a batch mixes output budgets {sorted(budgets)} or rungs "
                               f"{sorted(rungs)}")
        return ladder.decoding(rungs.pop(), self.ctx.params.beams, budgets.pop())

    def _translate(self, batch: Batch, chunks: list[Chunk]) -> list[Translation]:
        ctx = self.ctx
        decoding = self._decoding(chunks)
        try:
            out = ctx.translator.translate_batch([c.source for c in chunks], ctx.params.src_lang,
                                                 ctx.params.tgt_lang, decoding)
        except Exception as exc:  # classified once, here
            failed = self._classified(exc, batch, chunks)
            if failed is None:
                return self._translate(batch, chunks)  # the same call, on the fallback device
            raise failed from exc
        self._check_count(out, chunks)
        return out

    def _classified(self, exc: BaseException, batch: Batch, chunks: list[Chunk], *,
                    ran_on: str | None = None) -> _Failed | None:
        """A failed call's class, as a ``_Failed``; None if the run moved to
        its fallback device (call again). A class retrying cannot help is
        raised as it is: it ends the job."""
        error_class = self.ctx.translator.classify(exc)
        if self._needs_fallback(error_class, chunks):
            self._switch_to_fallback(batch, exc, error_class)
            return None
        if not error_class.retryable:
            raise exc
        return _Failed(exc, error_class, ran_on)

    @staticmethod
    def _check_count(out: list[Translation], chunks: list[Chunk]) -> None:
        if len(out) != len(chunks):
            raise RuntimeError(f"model returned {len(out)} translations for {len(chunks)} inputs")

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
                and not _same_device(self.ctx.translator.describe().device, target))

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
            **_profile(after))
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

    def _commit(self, batch: Batch, chunks: list[Chunk], translations: list[Translation], *,
                final: bool, ran_on: str | None = None, started_at: float | None = None) -> None:
        """Judge the translations, then commit what the judge decided. The
        store decides what of it the memory keeps: what each of the
        document's texts delivered, joined from its pieces where it was
        replaced (``pipeline.store.memory``)."""
        verdicts = self.judge.verdicts(chunks, translations, self.output_budget(chunks[0].n_tokens))
        self.store.commit_checked(self.job.id, batch.id, self.ctx.worker,
                                  accepted=verdicts.accepted, flags=verdicts.flags,
                                  replaced=verdicts.replaced, attempts=verdicts.attempts,
                                  final=final, memory=self._memory_scope(),
                                  translated_by=self.translated_by, ran_on=ran_on,
                                  started_at=started_at,
                                  generated_tokens=sum(getattr(t, "tokens", 0) or 0
                                                       for t in translations))
        self._committed()
        done, _ = self.store.token_counts(self.job.id)
        self.ctx.events.stage_progress("inference", done)

    def _memory_scope(self) -> int | None:
        """The memory scope of what the translator makes now (asked at every
        commit: a translator that moved to another device makes another)."""
        if not self._writes_memory:
            return None
        info = self.ctx.translator.describe()
        if info not in self._scopes:
            self._scopes[info] = self.store.memory_scope_id(scope_for(self.ctx.params, info))
        return self._scopes[info]

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

    def _reload(self, batch: Batch) -> Batch:
        return self.store.batch(batch.id)

    @staticmethod
    def _name(batch: Batch) -> str:
        """The batch's name as ``logs`` and ``show`` print it (``batch_labels``)."""
        return batch.label or str(batch.seq + 1)

    def _record(self, failed: _Failed, batch: Batch, *, decision: str, chunk: Chunk | None = None,
                attempt: int = 1, delay: float | None = None, outcome: str = "") -> None:
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
