"""Chunks and batches: the units of inference, the stored batch plan, and
the transaction that commits a batch's translations."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence

from pipeline.batching import Sized
from pipeline.store.migrations import CHUNK_STATES
from pipeline.store.records import Batch, Chunk, Plannable


class ChunksMixin:
    """Verbs over chunks and the batches that translate them."""

    def chunks(self, job_id: str, idxs: Sequence[int] | None = None) -> list[Chunk]:
        if idxs is None:
            return self._all(Chunk, "SELECT * FROM chunks WHERE job_id = ? ORDER BY idx", (job_id,))
        marks = ",".join("?" * len(idxs))
        found = self._all(
            Chunk, f"SELECT * FROM chunks WHERE job_id = ? AND idx IN ({marks})", (job_id, *idxs)
        )
        by_idx = {c.idx: c for c in found}
        return [by_idx[i] for i in idxs]

    def pending_chunks(self, job_id: str) -> list[Chunk]:
        return self._all(
            Chunk, "SELECT * FROM chunks WHERE job_id = ? AND state = 'pending' ORDER BY idx",
            (job_id,),
        )

    def chunk_counts(self, job_id: str) -> dict[str, int]:
        """The job's chunks by state (only states it has), from its counters."""
        row = self.db.execute(
            f"SELECT {', '.join('chunks_' + s for s in CHUNK_STATES)} FROM jobs WHERE id = ?",
            (job_id,)).fetchone()
        return {s: round(n) for s, n in zip(CHUNK_STATES, row or ()) if round(n)}

    def token_counts(self, job_id: str) -> tuple[int, int]:
        """(source tokens of done chunks, source tokens of all chunks), of
        the chunks inference translates: reused ones (from the memory, or
        repeats of an earlier chunk) are no work, so progress and ETAs leave
        them out. A replaced chunk hands its tokens on to its pieces
        (``share``: its tokens split in proportion to theirs), so the total
        does not change and the done count never goes back when a chunk is
        replaced. Kept on the job row by triggers (migration 8), so this
        reads one row however large the job is."""
        row = self.db.execute("SELECT tokens_done, tokens_total FROM jobs WHERE id = ?",
                              (job_id,)).fetchone()
        return (round(row[0]), round(row[1])) if row else (0, 0)

    def pending_rungs(self, job_id: str) -> list[int]:
        """The ladder rungs that pending chunks are decoded at, in order."""
        return [r for (r,) in self.db.execute(
            "SELECT DISTINCT rung FROM chunks WHERE job_id = ? AND state = 'pending' ORDER BY rung",
            (job_id,))]

    def plannable_chunks(self, job_id: str, rung: int) -> Iterator[Plannable]:
        """The pending chunks of one rung, longest first (ties by index): the
        order ``pipeline.batching.plan_in_order`` plans in, streamed rather
        than held, so planning a million chunks holds a batch at a time."""
        cursor = self.db.execute(
            "SELECT idx, n_tokens, rung FROM chunks WHERE job_id = ? AND state = 'pending' "
            "AND rung = ? ORDER BY n_tokens DESC, idx", (job_id, rung))
        for row in cursor:
            yield Plannable(*row)

    def add_batches(self, job_id: str, batches: Iterable[Sequence[Sized]], *, parent_id=None,
                    seq_start: int | None = None, same_seq: bool = False,
                    attempts: int = 0) -> int:
        """Persist a batch plan, so a resumed job runs the same batches, and
        each batch's label (``batch_labels``: ``12``, or ``12.1`` for the
        first part of a split batch 12). ``batches`` may be a generator: it
        is written as it comes. Returns the number of batches.

        ``same_seq``: all get ``seq_start`` (the parts of a split batch run
        right where their parent would have, in insertion order)."""
        with self._write() as db:
            if seq_start is None:
                seq_start = db.execute(
                    "SELECT COALESCE(MAX(seq), -1) + 1 FROM batches WHERE job_id = ?", (job_id,)
                ).fetchone()[0]
            prefix = None
            if parent_id is not None:
                row = db.execute("SELECT label FROM batches WHERE id = ?", (parent_id,)).fetchone()
                prefix = (row[0] if row and row[0] else str(parent_id)) + "."
            count = 0

            def rows():
                nonlocal count
                for i, batch in enumerate(batches):
                    count += 1
                    seq = seq_start + (0 if same_seq else i)
                    yield {
                        "job_id": job_id, "seq": seq,
                        "chunk_idxs": json.dumps([c.idx for c in batch]),
                        "padded_tokens": len(batch) * max(c.n_tokens for c in batch),
                        "source_tokens": sum(c.n_tokens for c in batch),
                        "state": "pending", "parent_id": parent_id, "attempts": attempts,
                        "label": f"{prefix}{i + 1}" if prefix else str(seq + 1),
                    }

            db["batches"].insert_all(rows(), batch_size=500)
        return count

    def pending_batches(self, job_id: str) -> list[Batch]:
        """Every pending batch of the job, in plan order (a read for tests
        and reports: the inference loop takes one at a time,
        ``next_pending_batch``)."""
        return self._all(
            Batch, "SELECT * FROM batches WHERE job_id = ? AND state = 'pending' ORDER BY seq, id",
            (job_id,),
        )

    def batches(self, job_id: str) -> list[Batch]:
        """Every batch of the job (reports, tests, benchmarks; never the
        inference loop)."""
        return self._all(Batch, "SELECT * FROM batches WHERE job_id = ? ORDER BY id", (job_id,))

    def next_pending_batch(self, job_id: str, *, besides: Sequence[int] = ()) -> Batch | None:
        """The pending batch that runs next (plan order: ``seq``, then
        insertion), other than ``besides`` (batches already in flight). One
        indexed lookup that steps over at most ``len(besides)`` rows."""
        marks = ",".join("?" * len(besides))
        return self._one(
            Batch, "SELECT * FROM batches WHERE job_id = ? AND state = 'pending' "
            + (f"AND id NOT IN ({marks}) " if besides else "") + "ORDER BY seq, id LIMIT 1",
            (job_id, *besides))

    def has_pending_batches(self, job_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM batches WHERE job_id = ? AND state = 'pending' "
                               "LIMIT 1", (job_id,)).fetchone() is not None

    def batch_labels(self, batch_ids: Iterable[int | None]) -> dict[int, str]:
        """{batch id: label} of these batches (as the live log names them)."""
        ids = sorted({i for i in batch_ids if i is not None})
        labels: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            labels.update(self.db.execute(
                f"SELECT id, label FROM batches WHERE id IN ({','.join('?' * len(part))})",
                part).fetchall())
        return labels

    def batch(self, batch_id: int) -> Batch | None:
        return self._one(Batch, "SELECT * FROM batches WHERE id = ?", (batch_id,))

    def mark_batch_started(self, batch_id: int, worker: str, *, at: float | None = None) -> None:
        """When (default: now) and by which worker a batch was sent. The
        inference loop's batches record it with their commit instead
        (``commit_batch``'s ``started_at``): one transaction a batch, not two."""
        with self._write() as db:
            db.execute(
                "UPDATE batches SET started_at = ?, worker = ? WHERE id = ?",
                (self.clock() if at is None else at, worker, batch_id),
            )

    def commit_batch(
        self, job_id: str, batch_id: int, translations: dict[int, str], worker: str, *,
        final: bool = True, memory: int | None = None, flags: Mapping[int, str] = {},
        translated_by: tuple[str, str, str] | None = None, ran_on: str | None = None,
        started_at: float | None = None, generated_tokens: int = 0,
        pending: set[int] | None = None, call_s: float | None = None,
        idle_s: float | None = None,
    ) -> bool:
        """Store translations of a batch's chunks, in one transaction; with
        ``final`` the batch is marked committed too (else it stays pending,
        as when its chunks are retried one by one). Those in ``flags`` were
        accepted with a quality flag: {chunk: reason}. In the same
        transaction the chunks waiting on these (same text) are filled, a
        replaced chunk whose last piece this was gets its pieces' joined
        text, and with ``memory`` (the scope id of the translator that made
        them) what the document's chunks delivered goes into the memory if
        the job writes it (``pipeline.store.memory``).
        ``translated_by`` is the (backend, device, compute type) that
        translated them, recorded on the batch, and ``ran_on`` where (a Ray
        actor), if not in this process. ``started_at``: when the batch was
        sent, recorded with ``worker`` (``mark_batch_started``'s, in the same
        transaction). ``generated_tokens``: what the model generated for
        them, added to the batch's count (``/metrics``). ``pending``: which
        of ``translations`` the caller already found pending in this
        transaction (``commit_checked``), so they are not read again.
        ``call_s``: seconds the model call took where it ran, and ``idle_s``:
        how long this process's engine waited for the pipeline before it
        (``BatchResult``; None where not measured), recorded with ``final``.

        Idempotent: a batch that is no longer pending takes nothing, and only
        chunks still pending take a translation, so a result delivered twice
        (a batch sent again after its actor was lost, whose first result
        arrived after all) commits once. Returns False when the batch took
        nothing for that reason.

        The lease is checked inside the transaction, so a worker that lost its
        job cannot commit.
        """
        with self._write() as db:
            self._check_lease(job_id, worker)
            state = db.execute("SELECT state FROM batches WHERE id = ? AND job_id = ?",
                               (batch_id, job_id)).fetchone()
            if state is None or state[0] != "pending":
                return False
            if translated_by is not None:
                db.execute("UPDATE batches SET backend = ?, device = ?, compute_type = ? "
                           "WHERE id = ?", (*translated_by, batch_id))
            if ran_on is not None:
                db.execute("UPDATE batches SET ran_on = ? WHERE id = ?", (ran_on, batch_id))
            if started_at is not None:
                db.execute("UPDATE batches SET started_at = ?, worker = ? WHERE id = ?",
                           (started_at, worker, batch_id))
            if pending is None:
                pending = self._still_pending(job_id, translations)
            translations = {i: text for i, text in translations.items() if i in pending}
            # ``commits`` counts every committed translation of a chunk, so a
            # chunk translated twice shows up as 2 rather than being hidden.
            db.conn.executemany(
                "UPDATE chunks SET translation = ?, state = 'done', batch_id = ?, "
                "commits = commits + 1 WHERE job_id = ? AND idx = ?",
                [(text, batch_id, job_id, idx) for idx, text in translations.items()],
            )
            flags = {idx: reason for idx, reason in flags.items() if idx in translations}
            db.conn.executemany("UPDATE chunks SET flag = ? WHERE job_id = ? AND idx = ?",
                                [(reason, job_id, idx) for idx, reason in flags.items()])
            self._after_commit(job_id, translations, memory, flags)
            if final:
                db.execute(
                    "UPDATE batches SET state = 'committed', committed_at = ?, not_before = NULL, "
                    "generated_tokens = generated_tokens + ?, call_s = ?, idle_s = ? WHERE id = ?",
                    (self.clock(), generated_tokens, call_s, idle_s, batch_id),
                )
            elif generated_tokens:
                db.execute("UPDATE batches SET generated_tokens = generated_tokens + ? "
                           "WHERE id = ?", (generated_tokens, batch_id))
            db.execute("UPDATE jobs SET updated_at = ? WHERE id = ?", (self.clock(), job_id))
        return True

    def _still_pending(self, job_id: str, idxs) -> set[int]:
        """Those of ``idxs`` whose chunk is still pending: the only ones a
        commit may change. One seek per chunk in ``chunks_by_state``
        (job, state, idx)."""
        idxs = list(idxs)
        if not idxs:
            return set()
        return {idx for (idx,) in self.db.execute(
            "SELECT idx FROM chunks WHERE job_id = ? AND state = 'pending' AND idx IN "
            f"({','.join('?' * len(idxs))})", (job_id, *idxs))}

    def add_chunk_attempts(self, job_id: str, idx: int, n: int) -> None:
        """Count ``n`` more tries against a chunk (a round it gave up early)."""
        if n > 0:
            with self._write() as db:
                db.execute("UPDATE chunks SET attempts = attempts + ? WHERE job_id = ? AND idx = ?",
                           (n, job_id, idx))

    def split_batch(self, job_id: str, batch: Batch, parts: Sequence[Sequence[Chunk]],
                    worker: str) -> None:
        """Replace a batch by smaller ones that run next, in one transaction."""
        with self._write() as db:
            self._check_lease(job_id, worker)
            db.execute("UPDATE batches SET state = 'split' WHERE id = ?", (batch.id,))
            # The halves inherit the parent's batch round, which the chunks'
            # attempt counters are measured against.
            self.add_batches(job_id, parts, parent_id=batch.id, seq_start=batch.seq,
                             same_seq=True, attempts=batch.attempts)

    def set_batch_retry(self, batch_id: int, *, attempts: int | None = None,
                        not_before: float | None) -> None:
        """Persist a batch's retry count and the time before which it must wait."""
        with self._write() as db:
            if attempts is None:
                db.execute("UPDATE batches SET not_before = ? WHERE id = ?", (not_before, batch_id))
            else:
                db.execute("UPDATE batches SET attempts = ?, not_before = ? WHERE id = ?",
                           (attempts, not_before, batch_id))

    def skip_batch(self, job_id: str, batch_id: int, idxs: Sequence[int], worker: str) -> None:
        """Give up on a batch: its still-pending chunks become failed."""
        with self._write() as db:
            self._check_lease(job_id, worker)
            marks = ",".join("?" * len(idxs)) or "NULL"
            db.execute(
                f"UPDATE chunks SET state = 'failed' WHERE job_id = ? AND state = 'pending' "
                f"AND idx IN ({marks})",
                (job_id, *idxs),
            )
            self._fail_duplicates(job_id, idxs)
            db.execute("UPDATE batches SET state = 'skipped', not_before = NULL WHERE id = ?",
                       (batch_id,))

    def reset_failed(self, job_id: str) -> int:
        """Make a failed or canceled job runnable again: failed chunks become
        pending with fresh attempts (repeats of an earlier chunk wait on it
        again), and the job goes back to the earliest stage that has work.
        Returns the number of chunks reset."""
        with self._write() as db:
            n = db.execute(
                "UPDATE chunks SET state = CASE WHEN dup_of IS NULL THEN 'pending' "
                "ELSE 'waiting' END, attempts = 0 WHERE job_id = ? AND state = 'failed'",
                (job_id,),
            ).rowcount
            job = self.job(job_id)
            stage = job.stage
            if n:
                stage = "inference"
            elif stage == "done":
                stage = "upload"
            db.execute(
                "UPDATE jobs SET state = 'QUEUED', stage = ?, error_class = NULL, "
                "error_message = NULL, finished_at = NULL, cancel_requested = 0, "
                "updated_at = ? WHERE id = ?",
                (stage, self.clock(), job_id),
            )
        return n
