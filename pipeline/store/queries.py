"""Read queries: the SQL behind status, stats, profiles and ETAs.

Every figure a read command shows comes from one of these verbs, one query
each, so the commands stay fast on a store with tens of thousands of jobs
and no module outside the store writes SQL. The meaning of each figure is
documented where it is computed (``pipeline.progress.stats``, ``pipeline.progress.profiles``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pipeline.store.records import Chunk, Job, JobCounters

# The jobs created since :cutoff; every stats query starts from it.
_WINDOW = "SELECT id FROM jobs WHERE created_at >= :cutoff"
_FINISHED_WINDOW = _WINDOW + " AND state IN ('SUCCEEDED', 'FAILED')"
RETRY_DECISIONS = ("retry", "retry_batch", "split")
_IDS_AT_ONCE = 500  # ids in one IN (...): under SQLite's old 999-parameter limit


class QueriesMixin:
    """Read-only verbs; each returns plain values or tuples, never a cursor."""

    def job_counters(self, job_ids: Sequence[str]) -> dict[str, JobCounters]:
        """The live counters of each of ``job_ids`` (tokens done and to do,
        chunks reused from the memory or their document), in one read per
        500 jobs: what a listing shows beside each job. An unknown id reads
        as zeros."""
        counters = {job_id: JobCounters() for job_id in job_ids}
        for start in range(0, len(job_ids), _IDS_AT_ONCE):
            part = list(job_ids[start:start + _IDS_AT_ONCE])
            for job_id, *values in self.db.execute(
                    "SELECT id, tokens_done, tokens_total, reused_memory, reused_document "
                    f"FROM jobs WHERE id IN ({','.join('?' * len(part))})", part):
                counters[job_id] = JobCounters(*(round(v or 0) for v in values))
        return counters

    def queue_summary(self) -> dict:
        """Queue depth, running jobs per worker, and documents and source
        tokens done/total (of the chunks inference translates, as
        ``token_counts``)."""
        states = dict(self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
        workers = dict(self.db.execute(
            "SELECT lease_owner, COUNT(*) FROM jobs WHERE state = 'RUNNING' AND lease_owner "
            "IS NOT NULL AND lease_expires >= ? GROUP BY lease_owner", (self.clock(),)).fetchall())
        done, total = self.db.execute(
            # The jobs' counters (``token_counts``): no read of their chunks.
            "SELECT COALESCE(SUM(tokens_done), 0), COALESCE(SUM(tokens_total), 0) FROM jobs "
            "WHERE state IN ('QUEUED', 'RUNNING')").fetchone()
        done, total = round(done), round(total)
        return {"states": states, "queued": states.get("QUEUED", 0), "workers": workers,
                "documents_done": states.get("SUCCEEDED", 0),
                "documents_total": sum(states.values()),
                "active_tokens_done": done, "active_tokens_total": total}

    def revision(self) -> int:
        """A number that changes whenever any job's visible state changes
        (its state, stage, progress, error, output, priority or holder):
        an ETag for a list of jobs."""
        return self.db.execute("SELECT n FROM revision").fetchone()[0]

    def jobs_in_states(self, states: Sequence[str], limit: int = 100) -> list[Job]:
        """Jobs whose stored state is one of ``states``, newest first."""
        marks = ",".join("?" * len(states)) or "NULL"
        return self._all(Job, f"SELECT * FROM jobs WHERE state IN ({marks}) "
                              "ORDER BY created_at DESC LIMIT ?", (*states, limit))

    def jobs_changed_since(self, since: float, limit: int = 1000) -> list[Job]:
        """Jobs created, updated or finished at or after ``since`` (unix
        time), newest first: with the running ones, what a watcher of the
        queue must look at again after ``revision`` moved."""
        return self._all(Job, "SELECT * FROM jobs WHERE updated_at >= ? "
                              "ORDER BY created_at DESC LIMIT ?", (since, limit))

    def chunks_in_state(self, job_id: str, state: str) -> list[Chunk]:
        """The job's chunks in one state (e.g. the failed ones), in order."""
        return self._all(Chunk, "SELECT * FROM chunks WHERE job_id = ? AND state = ? ORDER BY idx",
                         (job_id, state))

    def failed_chunks(self, job_id: str, *, shown: int = 20) -> tuple[int, list[int]]:
        """(how many of the job's chunks failed for good, the first ``shown`` of them)."""
        count = self.db.execute("SELECT COUNT(*) FROM chunks WHERE job_id = ? AND state = "
                                "'failed'", (job_id,)).fetchone()[0]
        first = [idx for (idx,) in self.db.execute(
            "SELECT idx FROM chunks WHERE job_id = ? AND state = 'failed' ORDER BY idx LIMIT ?",
            (job_id, shown))] if count else []
        return count, first

    def last_error_class(self, job_id: str, *, besides: str | None = None) -> str | None:
        """The class of the job's last recorded attempt, of any stage but ``besides``."""
        row = self.db.execute(
            "SELECT error_class FROM attempts WHERE job_id = ? AND stage IS NOT ? "
            "ORDER BY id DESC LIMIT 1", (job_id, besides)).fetchone()
        return row[0] if row else None

    def inference_profile(self, job_id: str) -> tuple[str, str, str, str] | None:
        """(model, backend, device, dtype) of the job's latest inference stage run."""
        row = self.db.execute(
            "SELECT model, backend, device, dtype FROM stage_runs WHERE job_id = ? "
            "AND stage = 'inference' ORDER BY id DESC LIMIT 1", (job_id,)).fetchone()
        return None if row is None or None in row else tuple(row)

    def profile_stage_rows(self, model: str, backend: str, device: str, dtype: str,
                           last_n: int) -> list[tuple[str, str, float, float]]:
        """(job, stage, wall s, units) summed per stage, for the last
        ``last_n`` succeeded jobs whose inference ran on this profile."""
        return self.db.execute(
            "SELECT r.job_id, r.stage, SUM(r.wall_s), SUM(r.units_done) FROM stage_runs r "
            "JOIN jobs j ON j.id = r.job_id "
            "WHERE j.state = 'SUCCEEDED' AND r.finished_at IS NOT NULL AND r.job_id IN ("
            "  SELECT job_id FROM stage_runs WHERE stage = 'inference' AND model = ? "
            "  AND backend = ? AND device = ? AND dtype = ? AND finished_at IS NOT NULL "
            "  ORDER BY finished_at DESC LIMIT ?) "
            "GROUP BY r.job_id, r.stage",
            (model, backend, device, dtype, last_n),
        ).fetchall()

    def profiles_seen(self) -> list[tuple[str, str, str, str, int]]:
        """(model, backend, device, dtype, jobs) of every profile an inference ran on."""
        return self.db.execute(
            "SELECT model, backend, device, dtype, COUNT(DISTINCT job_id) FROM stage_runs "
            "WHERE stage = 'inference' AND model IS NOT NULL AND backend IS NOT NULL "
            "GROUP BY model, backend, device, dtype ORDER BY model, backend, device, dtype"
        ).fetchall()

    TRANSLATED_BY = ("backend", "device", "compute_type", "batches", "first_batch",
                     "last_batch", "timed_batches", "engine_s", "waits", "waited_s")

    def translated_by(self, job_id: str) -> list[tuple]:
        """``TRANSLATED_BY`` (backend, device, compute type, batches, first
        seq, last seq, timed calls, their seconds, calls with a measured
        wait, the waits' seconds) of the job's committed batches, in the order the groups
        began (``commit_batch``'s ``call_s`` and ``idle_s``)."""
        return self.db.execute(
            "SELECT backend, device, compute_type, COUNT(*), MIN(seq), MAX(seq), "
            "COUNT(call_s), ROUND(TOTAL(call_s), 3), COUNT(idle_s), ROUND(TOTAL(idle_s), 3) "
            "FROM batches "
            "WHERE job_id = ? AND state = 'committed' AND backend IS NOT NULL "
            "GROUP BY backend, device, compute_type ORDER BY MIN(committed_at)", (job_id,)
        ).fetchall()

    def ran_on_counts(self, job_id: str) -> dict[str, int]:
        """Committed batches per place they ran (Ray actors); empty when
        every batch ran in the worker's own process."""
        return dict(self.db.execute(
            "SELECT ran_on, COUNT(*) FROM batches WHERE job_id = ? AND state = 'committed' "
            "AND ran_on IS NOT NULL GROUP BY ran_on ORDER BY ran_on", (job_id,)).fetchall())

    # -- stats over a window of jobs (created_at >= cutoff) ----------------------

    def jobs_by_state(self, cutoff: float) -> dict[str, int]:
        return dict(self.db.execute(
            "SELECT state, COUNT(*) FROM jobs WHERE created_at >= :cutoff GROUP BY state",
            {"cutoff": cutoff}).fetchall())

    def retries_by_class(self, cutoff: float) -> list[tuple[str, str, int]]:
        """(error class, decision, count) of the retry rows of the window."""
        return self.db.execute(
            "SELECT error_class, decision, COUNT(*) FROM attempts "
            f"WHERE job_id IN ({_WINDOW}) AND decision IN {RETRY_DECISIONS} "
            "GROUP BY error_class, decision", {"cutoff": cutoff}).fetchall()

    def empty_chunk_totals(self, cutoff: float) -> tuple[int, int]:
        """(jobs, chunks) in the window whose translation came back empty from
        the model, so the output kept their source text (``empty_chunks``)."""
        rows = self.db.execute(
            f"SELECT content FROM artifacts WHERE kind = 'empty_chunks' AND job_id IN ({_WINDOW}) "
            "AND content IS NOT NULL AND CAST(content AS TEXT) != '[]'",
            {"cutoff": cutoff}).fetchall()
        counts = [len(json.loads(content)) for (content,) in rows]
        return sum(1 for n in counts if n), sum(counts)

    def max_retries_per_job(self, cutoff: float) -> int:
        return self.db.execute(
            "SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM attempts "
            f"WHERE job_id IN ({_WINDOW}) AND decision IN {RETRY_DECISIONS} GROUP BY job_id)",
            {"cutoff": cutoff}).fetchone()[0]

    def retry_outcomes(self, cutoff: float) -> list[tuple[str, int, int]]:
        """(kind, retried, succeeded) for chunks, batches and uploads retried
        in the window's finished jobs (``pipeline.progress.stats`` defines each)."""
        return self.db.execute(
            # chunks with a 'retry' row of their own: did they end done?
            "SELECT 'chunks', COUNT(*), COALESCE(SUM(c.state = 'done'), 0) FROM ("
            "  SELECT DISTINCT job_id, chunk_idx FROM attempts "
            f"  WHERE job_id IN ({_FINISHED_WINDOW}) AND stage = 'inference' "
            "  AND decision = 'retry' AND chunk_idx IS NOT NULL) r "
            "JOIN chunks c ON c.job_id = r.job_id AND c.idx = r.chunk_idx "
            "UNION ALL "
            # batches with a 'retry_batch' row: did every chunk in them end done?
            "SELECT 'batches', COUNT(*), COALESCE(SUM(all_done), 0) FROM ("
            "  SELECT MIN(c.state = 'done') AS all_done FROM batches b, json_each(b.chunk_idxs) e "
            "  JOIN chunks c ON c.job_id = b.job_id AND c.idx = e.value "
            "  WHERE b.id IN (SELECT batch_id FROM attempts "
            f"    WHERE job_id IN ({_FINISHED_WINDOW}) AND decision = 'retry_batch') "
            "  GROUP BY b.id) "
            "UNION ALL "
            # jobs whose upload was retried: did they end SUCCEEDED?
            "SELECT 'uploads', COUNT(*), COALESCE(SUM(state = 'SUCCEEDED'), 0) FROM jobs "
            f"WHERE id IN (SELECT job_id FROM attempts WHERE job_id IN ({_FINISHED_WINDOW}) "
            "  AND stage = 'upload' AND decision = 'retry')",
            {"cutoff": cutoff}).fetchall()

    def eta_predictions_with_actuals(self, cutoff: float) -> list[tuple[str, int, float, float]]:
        """(job, mark, predicted total s, actual total s) of succeeded jobs."""
        return self.db.execute(
            "SELECT p.job_id, p.at_percent, p.predicted_total_s, "
            "  (SELECT SUM(wall_s) FROM stage_runs r WHERE r.job_id = p.job_id) "
            "FROM eta_predictions p "
            f"WHERE p.job_id IN ({_WINDOW} AND state = 'SUCCEEDED')", {"cutoff": cutoff},
        ).fetchall()
