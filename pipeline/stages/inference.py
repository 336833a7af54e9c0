"""Inference: translate pending chunks batch by batch, committing each batch.

Progress unit: source tokens. The batch plan is stored before the first
batch runs, so a resumed job runs exactly the batches that were not
committed, with the same members: its output is the same as an
uninterrupted run's. Chunks reused from the translation memory, or waiting
on an earlier chunk of the same text, are neither planned nor counted; each
commit stores its translations in the memory under the scope of the
translator that made them (``pipeline.memory.scope``).

A failed call is handled by ``pipeline.stages.recovery``: OOM splits and
a shrinking token budget, chunk-by-chunk rounds with backoff, batch
retries and skips, and the move to a fallback device (DESIGN.md, "Errors
and retries").

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

from concurrent.futures import Future, wait
from dataclasses import dataclass

from pipeline.batching import needs_replanning, plan_batches, plan_in_order
from pipeline.executors import executor_for
from pipeline.faults import kill_after_commits
from pipeline.memory.scope import scope_for
from pipeline.quality import ladder
from pipeline.stages.recovery import AGAIN, CallFailed, Recovery, TokenBudget, profile_of
from pipeline.store import Batch, Chunk
from pipeline.translator import BatchResult, Translation


@dataclass
class _Flight:
    """A batch in flight: its chunks, and the translator it was sent to."""

    batch: Batch
    chunks: list[Chunk]
    translator: object
    started_at: float  # recorded with its commit: one write transaction a batch


class EngineWaits:
    """How long the engine in this process sat idle, waiting for the
    pipeline, before each call: from the end of its previous call to the
    start of this one (``BatchResult.began`` and ``call_s``). Results are
    settled in the order their calls ran, one at a time on the engine's
    thread, so the previous call is the previous result."""

    def __init__(self):
        self._free_at: float | None = None  # when the last call ended (perf_counter)

    def waited(self, result: BatchResult) -> float | None:
        """The wait before ``result``'s call; None for the first call, the
        first after ``forget``, and a call that ran elsewhere (a Ray actor)."""
        if result.began is None or result.call_s is None:
            return None
        free_at, self._free_at = self._free_at, result.began + result.call_s
        return None if free_at is None else max(0.0, result.began - free_at)

    def forget(self) -> None:
        """The engine ran calls this did not see (a batch retried on the
        stage's own thread): the next wait is not measured."""
        self._free_at = None


def run(ctx) -> None:
    store, job = ctx.store, ctx.job
    done_tokens, total_tokens = store.token_counts(job.id)
    info = ctx.translator.describe()
    run_id = store.start_stage(job.id, "inference", units_total=total_tokens,
                               units_done=done_tokens, worker=ctx.worker,
                               model=ctx.params.model, **profile_of(info))
    ctx.events.stage_started("inference", total_tokens, done_tokens)
    runner = _BatchRunner(ctx, run_id, done_tokens)
    try:
        while True:
            if not store.has_pending_batches(job.id):
                # A round is planned only when the one before is done, so a
                # resumed job plans exactly the rounds an uninterrupted run
                # does: repeats their first occurrence cannot fill, and pieces
                # of replaced chunks, go into the next round.
                store.settle_waiting(job.id, memory=runner.memory_scope())
                if not runner.plan_round():
                    break
            ctx.check_running()
            runner.run_window()
    finally:
        runner.close()
    store.finish_stage(job.id, runner.run_id, "postprocess", ctx.worker)


class _BatchRunner(Recovery):
    """The loop: plan a round, run its batches (several in flight where the
    translator runs several at once), judge and commit each result."""

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
        self.engine = EngineWaits()
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
        while outcome == AGAIN:
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
        AGAIN: its worker was lost; send it again."""
        try:
            translations = self._translate(batch, chunks)
        except CallFailed as failed:
            return self._whole_failed(batch, chunks, failed)
        self._commit(batch, chunks, translations, final=True)
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
                        self.engine.forget()  # its calls ran untimed, on this thread
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
        idle_s = self.engine.waited(result)
        if result.error is None:
            self._check_count(result.translations, chunks)
            self._commit(batch, chunks, result.translations, final=True, ran_on=result.ran_on,
                         started_at=flight.started_at, call_s=result.call_s, idle_s=idle_s)
            self.budget.grow()
            return True
        self.store.mark_batch_started(batch.id, self.ctx.worker, at=flight.started_at)
        if flight.translator is not self.ctx.translator:
            return AGAIN
        failed = self._classified(result.error, batch, chunks, ran_on=result.ran_on)
        if failed is None:  # moved to the fallback device: send it again there
            return AGAIN
        outcome = self._whole_failed(batch, chunks, failed)
        if outcome != AGAIN:
            self._after_whole(batch, outcome)
            self.engine.forget()  # its rounds ran on this thread
        return outcome

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

    @staticmethod
    def _check_count(out: list[Translation], chunks: list[Chunk]) -> None:
        if len(out) != len(chunks):
            raise RuntimeError(f"model returned {len(out)} translations for {len(chunks)} inputs")

    def _commit(self, batch: Batch, chunks: list[Chunk], translations: list[Translation], *,
                final: bool, ran_on: str | None = None, started_at: float | None = None,
                call_s: float | None = None, idle_s: float | None = None) -> None:
        """Judge the translations, then commit what the judge decided. The
        store decides what of it the memory keeps: what each of the
        document's texts delivered, joined from its pieces where it was
        replaced (``pipeline.store.memory``)."""
        verdicts = self.judge.verdicts(chunks, translations, self.output_budget(chunks[0].n_tokens))
        self.store.commit_checked(self.job.id, batch.id, self.ctx.worker,
                                  accepted=verdicts.accepted, flags=verdicts.flags,
                                  replaced=verdicts.replaced, attempts=verdicts.attempts,
                                  final=final, memory=self.memory_scope(),
                                  translated_by=self.translated_by, ran_on=ran_on,
                                  started_at=started_at, call_s=call_s, idle_s=idle_s,
                                  generated_tokens=sum(getattr(t, "tokens", 0) or 0
                                                       for t in translations))
        self._committed()
        done, _ = self.store.token_counts(self.job.id)
        self.ctx.events.stage_progress("inference", done)

    def memory_scope(self) -> int | None:
        """The memory scope of what the translator makes now (asked at every
        commit: a translator that moved to another device makes another)."""
        if not self._writes_memory:
            return None
        info = self.ctx.translator.describe()
        if info not in self._scopes:
            self._scopes[info] = self.store.memory_scope_id(scope_for(self.ctx.params, info))
        return self._scopes[info]

    def _reload(self, batch: Batch) -> Batch:
        return self.store.batch(batch.id)

    @staticmethod
    def _name(batch: Batch) -> str:
        """The batch's name as ``logs`` and ``show`` print it (``batch_labels``)."""
        return batch.label or str(batch.seq + 1)
