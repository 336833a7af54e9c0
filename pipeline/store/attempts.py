"""Attempts: every failure and what was decided about it, stored before any
wait starts so that a restarted process continues the counts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pipeline.store.records import Attempt


class AttemptsMixin:
    """Verbs over the attempts table."""

    def record_attempt(
        self, job_id: str, stage: str, *, error_class, message: str, attempt: int,
        decision: str, tb: str | None = None, batch_id: int | None = None,
        chunk_idx: int | None = None, delay_s: float | None = None, trace_id: str | None = None,
        reason: str | None = None, ran_on: str | None = None,
    ) -> None:
        """One failed attempt and what was decided about it (retry split
        chunks skip fail). With ``chunk_idx`` the chunk's attempt counter goes
        up in the same transaction, so a restart continues the count."""
        with self._write() as db:
            if chunk_idx is not None:
                db.execute("UPDATE chunks SET attempts = attempts + 1 WHERE job_id = ? AND idx = ?",
                           (job_id, chunk_idx))
            db.execute(
                "INSERT INTO attempts (job_id, stage, batch_id, chunk_idx, error_class, message, "
                "traceback, attempt, delay_s, decision, trace_id, at, reason, ran_on) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, stage, batch_id, chunk_idx, getattr(error_class, "value", error_class),
                 message, tb, attempt, delay_s, decision, trace_id or uuid.uuid4().hex[:8],
                 self.clock(), reason, ran_on))

    def attempts(self, job_id: str) -> list[Attempt]:
        return self._all(Attempt, "SELECT * FROM attempts WHERE job_id = ? ORDER BY id", (job_id,))

    def attempts_with_decision(self, job_id: str, decision: str) -> list[Attempt]:
        return self._all(Attempt, "SELECT * FROM attempts WHERE job_id = ? AND decision = ? "
                                  "ORDER BY id", (job_id, decision))

    def attempts_of_chunks(self, job_id: str, idxs: Sequence[int]) -> list[Attempt]:
        """The attempts of these chunks, oldest first."""
        found: list[Attempt] = []
        for start in range(0, len(idxs), 500):
            part = list(idxs[start:start + 500])
            found += self._all(Attempt, "SELECT * FROM attempts WHERE job_id = ? AND chunk_idx IN "
                                        f"({','.join('?' * len(part))})", (job_id, *part))
        return sorted(found, key=lambda a: a.id)

    def resends(self, batch_id: int) -> int:
        """Times a batch was sent again after its worker was lost."""
        return self.db.execute("SELECT COUNT(*) FROM attempts WHERE batch_id = ? "
                               "AND decision = 'resend'", (batch_id,)).fetchone()[0]

    def last_failure_class(self, job_id: str, idxs: Sequence[int]) -> str | None:
        """The class of the latest failed attempt of any of these chunks."""
        if not idxs:
            return None
        row = self.db.execute(
            "SELECT error_class FROM attempts WHERE job_id = ? AND chunk_idx IN "
            f"({','.join('?' * len(idxs))}) ORDER BY id DESC LIMIT 1", (job_id, *idxs)).fetchone()
        return row[0] if row else None

    def open_attempts(self, job_id: str, stage: str) -> list[Attempt]:
        """The failed attempts of ``stage`` in its current round: since the
        stage last finished, or last ended the job FAILED (a ``fail`` row).
        A restarted process continues the round and its counts; ``retry``
        after a failure starts a new one."""
        return self._all(
            Attempt,
            "SELECT * FROM attempts WHERE job_id = ? AND stage = ? "
            "AND id > COALESCE((SELECT MAX(id) FROM attempts WHERE job_id = ? AND stage = ? "
            "AND decision = 'fail'), 0) "
            "AND at > COALESCE((SELECT MAX(finished_at) FROM stage_runs WHERE job_id = ? "
            "AND stage = ?), -1) ORDER BY id",
            (job_id, stage) * 3,
        )
