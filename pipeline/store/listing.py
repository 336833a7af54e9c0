"""The queries behind the task centre's list: search, keyset pages, what
needs attention, what just finished, queue positions, and deleting a job.

Every query here is bounded by its ``limit`` and answered from an index
(``jobs_by_created``, ``jobs_by_state``, ``jobs_by_end``, ``jobs_queue``:
migrations 13 and 17) or, for a search by name, from a walk of
``jobs_by_created`` that stops at ``limit`` matches: that index holds the
input path, so the walk reads a job's row only when its path matches. A
substring has no B-tree order; a trigram index (FTS5) answers a rare name
from the index alone but costs more than this walk for a common one (on
10,000 jobs: 120 ms for "doc", which every name holds). None reads chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.store.records import Job

LIVE_STATES = ("QUEUED", "RUNNING")
# What a job owns besides its row, child tables first.
JOB_TABLES = ("attempts", "chunks", "batches", "skeleton_slices", "stage_runs", "artifacts",
              "eta_predictions", "leases")


def _like(text: str) -> str:
    """``text`` as a LIKE pattern that matches it literally anywhere."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class ListingMixin:
    """Read verbs of the job list and the one verb that deletes a job."""

    def list_jobs(self, *, states: Sequence[str] = (), query: str = "",
                  after: tuple[float, str] | None = None, limit: int = 100) -> list[Job]:
        """Jobs newest first (by created_at, then id), in ``states`` (all when
        empty), whose file name contains ``query`` or whose id starts with it
        (literally: ``_`` and ``%`` are characters, not wildcards), after
        the keyset ``after`` = (created_at, id) of the previous page's last."""
        where, args = [], []
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            args += states
        if query:
            where.append("(input_path LIKE ? ESCAPE '\\' OR (id >= ? AND id < ?))")
            args += [_like(query), *prefix_range(query.lower())]
        if after is not None:
            where.append("(created_at, id) < (?, ?)")
            args += [after[0], after[1]]
        sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._all(Job, sql + " ORDER BY created_at DESC, id DESC LIMIT ?", (*args, limit))
        if query:  # LIKE matched the whole path: keep the jobs whose *name* matches
            q = query.lower()
            rows = [j for j in rows if q in Path(j.input_path).name.lower()
                    or j.id.startswith(q)]
        return rows

    def attention_jobs(self, failed_since: float, limit: int = 20) -> list[Job]:
        """The running jobs (longest running first), then the jobs that
        FAILED since ``failed_since``, most recent first."""
        running = self._all(Job, "SELECT * FROM jobs WHERE state = 'RUNNING' "
                                 "ORDER BY created_at LIMIT ?", (limit,))
        failed = self._all(Job, "SELECT * FROM jobs WHERE state = 'FAILED' AND finished_at >= ? "
                                "ORDER BY finished_at DESC LIMIT ?", (failed_since, limit))
        return running + failed

    def finished_since(self, since: float, limit: int = 50) -> list[tuple[str, str, str, float]]:
        """(id, input path, state, finished_at) of the jobs that ended at or
        after ``since``, latest first: one index range per end state."""
        ended = [row for state in ("SUCCEEDED", "FAILED", "CANCELED") for row in self.db.execute(
            "SELECT id, input_path, state, finished_at FROM jobs WHERE state = ? AND "
            "finished_at >= ? ORDER BY finished_at DESC LIMIT ?", (state, since, limit))]
        return sorted(ended, key=lambda row: row[3], reverse=True)[:limit]

    def state_counts(self) -> dict[str, int]:
        """How many jobs are in each stored state: the counts triggers keep
        (``job_state_counts``, migration 14), not a count of the jobs."""
        return dict(self.db.execute("SELECT state, n FROM job_state_counts WHERE n > 0"))

    def queue_positions(self) -> dict[str, int]:
        """Queued job id -> its place in the queue (1: the next a worker
        claims), in the order workers claim: priority, then age."""
        rows = self.db.execute("SELECT id FROM jobs INDEXED BY jobs_queue WHERE state = 'QUEUED' "
                               "ORDER BY priority DESC, created_at, id").fetchall()
        return {job_id: n for n, (job_id,) in enumerate(rows, 1)}

    def queue_position(self, job_id: str) -> int | None:
        """One queued job's place in the queue (as ``queue_positions``): two
        ranges of the queue's index, the jobs of a higher priority and those
        of its own that are older; None when it is not queued."""
        me = self.db.execute("SELECT priority, created_at FROM jobs WHERE id = ? AND state = "
                             "'QUEUED'", (job_id,)).fetchone()
        if me is None:
            return None
        return self.db.execute(
            "SELECT (SELECT COUNT(*) FROM jobs INDEXED BY jobs_queue WHERE state = 'QUEUED' "
            "AND priority > :p) + (SELECT COUNT(*) FROM jobs INDEXED BY jobs_queue WHERE "
            "state = 'QUEUED' AND priority = :p AND (created_at, id) <= (:c, :id))",
            {"p": me[0], "c": me[1], "id": job_id}).fetchone()[0]

    def live_jobs_to(self, output_path: str, besides: str | None = None) -> list[Job]:
        """Queued or running jobs that deliver to ``output_path``."""
        return self._all(Job, "SELECT * FROM jobs WHERE state IN ('QUEUED', 'RUNNING') "
                              "AND output_path = ? AND id IS NOT ? ORDER BY created_at",
                         (output_path, besides))

    def job_by_request(self, input_sha256: str, params: str) -> Job | None:
        """The oldest job for this input and these canonical parameters,
        whatever key it was submitted under."""
        return self._one(Job, "SELECT * FROM jobs WHERE input_sha256 = ? AND params = ? "
                              "ORDER BY created_at LIMIT 1", (input_sha256, params))

    def delete_job(self, job_id: str) -> list[str]:
        """Delete a job that no live worker holds with everything it owns
        (chunks, batches, attempts, stage runs, artifacts); returns the
        files its artifacts named, for the caller to remove once no row
        names them. Its input file is the caller's to judge (another job may
        read the same upload)."""
        with self._write() as db:
            files = [p for (p,) in db.execute(
                "SELECT path FROM artifacts WHERE job_id = ? AND kind = 'output' "
                "AND path IS NOT NULL", (job_id,))]
            for table in JOB_TABLES:
                db.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return files

    def piece_count(self, job_id: str) -> int:
        """Chunks of the job that are pieces of a split chunk (by index)."""
        return self.db.execute("SELECT COUNT(*) FROM chunks WHERE job_id = ? AND parent IS NOT "
                               "NULL", (job_id,)).fetchone()[0]

    def jobs_reading(self, input_path: str) -> int:
        """How many jobs read this input file."""
        return self.db.execute("SELECT COUNT(*) FROM jobs WHERE input_path = ?",
                               (input_path,)).fetchone()[0]


def prefix_range(prefix: str) -> tuple[str, str]:
    """[low, high) of the ids that start with ``prefix``: a range on the
    primary key, in which no character is a wildcard."""
    if not prefix:
        return "", "\U0010ffff"
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)
