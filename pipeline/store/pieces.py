"""Chunks replaced by pieces, quality flags, and what they add up to.

A chunk is *replaced* when its translation is not kept (a placeholder did
not survive, the repair ladder decodes it again or splits it, it runs out
of memory alone): it becomes ``replaced`` and its pieces are new chunk rows
that name it as ``parent``. That happens in the transaction that commits
the batch, so a killed process finds either the batch pending with the
chunk in it, or the batch committed and the pieces pending: nothing is
lost or translated twice. A piece with no tokens is copied, not translated:
it is ``done`` at once.

Progress: a replaced chunk hands its ``share`` of the document's source
tokens to its pieces, split in proportion to their tokens, so the total
stays the same and what is done never shrinks (``token_counts``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pipeline.store.records import Chunk, NewPiece

QUALITY = "quality"
REPAIRS = ("guarded", "clauses")  # ladder steps that translate a chunk again


class PiecesMixin:
    """Verbs over replaced chunks and their pieces."""

    def commit_checked(
        self, job_id: str, batch_id: int, worker: str, *, accepted: Mapping[int, str],
        flags: Mapping[int, str] = {}, replaced: Mapping[int, Sequence[NewPiece]] = {},
        attempts: Sequence[dict] = (), final: bool = True, memory: int | None = None,
        translated_by: tuple[str, str, str] | None = None, ran_on: str | None = None,
    ) -> bool:
        """Commit a judged batch in one transaction: ``accepted``
        translations (``commit_batch``, which fills their repeats and, with
        ``memory``, stores them; those in ``flags`` with their reason, their
        repeats too), chunks ``replaced`` by pieces, and one attempt row per
        ladder step (``record_attempt`` keywords; class QUALITY unless
        given). ``translated_by`` and ``ran_on`` as for ``commit_batch``, and
        idempotent like it: a batch no longer pending takes nothing (False),
        and a chunk no longer pending takes no translation, flag, pieces or
        ladder rows. The lease is checked (by ``commit_batch``) before anything
        is written."""
        with self._write() as db:
            pending = self._still_pending(job_id, {*accepted, *flags, *replaced})
            accepted = {i: t for i, t in accepted.items() if i in pending}
            flags = {i: r for i, r in flags.items() if i in pending}
            replaced = {i: r for i, r in replaced.items() if i in pending}
            attempts = [a for a in attempts
                        if a.get("chunk_idx") is None or a["chunk_idx"] in pending]
            if not self.commit_batch(job_id, batch_id, dict(accepted), worker, final=final,
                                     memory=memory, translated_by=translated_by, ran_on=ran_on):
                return False
            # Two statements, not "idx = ? OR dup_of = ?": SQLite answers an OR
            # of two indexed columns with a scan of the job's chunks, per flag.
            rows = [(reason, job_id, idx) for idx, reason in flags.items()]
            db.conn.executemany("UPDATE chunks SET flag = ? WHERE job_id = ? AND idx = ?", rows)
            db.conn.executemany("UPDATE chunks SET flag = ? WHERE job_id = ? AND dup_of = ?",
                                rows)
            for idx, rows in replaced.items():
                self._replace(job_id, idx, rows)
            for attempt in attempts:
                self.record_attempt(job_id, "inference", batch_id=batch_id,
                                    **{"error_class": QUALITY, **attempt})
        return True

    def replace_chunk(self, job_id: str, idx: int, rows: Sequence[NewPiece], worker: str,
                      attempt: dict) -> None:
        """Replace one pending chunk by pieces outside a commit (a sentence
        that ran out of memory alone), with the attempt that says why."""
        with self._write():
            self._check_lease(job_id, worker)
            self._replace(job_id, idx, rows)
            self.record_attempt(job_id, "inference", **attempt)

    def _replace(self, job_id: str, idx: int, rows: Sequence[NewPiece]) -> None:
        parent = self._one(Chunk, "SELECT * FROM chunks WHERE job_id = ? AND idx = ?",
                           (job_id, idx))
        if parent is None or parent.state != "pending":
            return  # already replaced: a delivery seen twice changes nothing
        share = parent.n_tokens if parent.share is None else parent.share
        weights = [r.n_tokens for r in rows] if any(r.n_tokens for r in rows) else [1] * len(rows)
        first = self.db.execute("SELECT COALESCE(MAX(idx), -1) + 1 FROM chunks WHERE job_id = ?",
                                (job_id,)).fetchone()[0]
        self.db.conn.executemany(
            "INSERT INTO chunks (job_id, idx, unit, source, n_tokens, state, translation, parent, "
            "protected, rung, share) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(job_id, first + i, parent.unit, r.source, r.n_tokens,
              "pending" if r.n_tokens else "done", None if r.n_tokens else r.source, idx,
              r.protected, r.rung, share * w / sum(weights))
             for i, (r, w) in enumerate(zip(rows, weights))])
        self.db.execute("UPDATE chunks SET state = 'replaced' WHERE job_id = ? AND idx = ?",
                        (job_id, idx))

    # -- what it adds up to --------------------------------------------------------

    def quality_report(self, job_id: str) -> dict:
        """A job's placeholders and quality: protected pieces (in the
        document's chunks), placeholder fallbacks, ladder steps and flags by
        reason, and the flagged chunks."""
        protected = round(self.db.execute(
            "SELECT protected_pieces FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])
        steps: dict[str, dict[str, int]] = {}
        for decision, reason, n in self.db.execute(
                "SELECT decision, reason, COUNT(*) FROM attempts WHERE job_id = ? AND "
                "error_class = ? GROUP BY decision, reason", (job_id, QUALITY)):
            steps.setdefault(decision, {})[reason or "?"] = n
        flagged = [(idx, flag, source) for idx, flag, source in self.db.execute(
            "SELECT idx, flag, source FROM chunks WHERE job_id = ? AND flag IS NOT NULL "
            "ORDER BY idx", (job_id,))]
        return {
            "protected": protected,
            "fallbacks": sum(steps.get("fragments", {}).values()),
            "repairs": _by_reason(steps, REPAIRS),
            "flags": _by_reason(steps, ("flag",)),
            "flagged": flagged,
        }

    def quality_counts(self, cutoff: float) -> dict:
        """Over the jobs created since ``cutoff``: flags and repairs by reason,
        placeholder fallbacks, and sentences split after running out of memory."""
        steps: dict[str, dict[str, int]] = {}
        for decision, reason, n in self.db.execute(
                "SELECT decision, reason, COUNT(*) FROM attempts WHERE job_id IN "
                "(SELECT id FROM jobs WHERE created_at >= :cutoff) AND decision IN "
                "('flag', 'guarded', 'clauses', 'fragments', 'split_chunk') "
                "GROUP BY decision, reason", {"cutoff": cutoff}):
            steps.setdefault(decision, {})[reason or "?"] = n
        return {"flags": _by_reason(steps, ("flag",)), "repairs": _by_reason(steps, REPAIRS),
                "placeholder_fallbacks": sum(steps.get("fragments", {}).values()),
                "oom_sentence_splits": sum(steps.get("split_chunk", {}).values())}


def _by_reason(steps: dict[str, dict[str, int]], decisions: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for decision in decisions:
        for reason, n in steps.get(decision, {}).items():
            out[reason] = out.get(reason, 0) + n
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
