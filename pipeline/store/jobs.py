"""Jobs and their leases: created once per idempotency key, claimed by one
worker at a time, cancelled, requeued, collected."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import LeaseLost
from pipeline.store.records import Job


class JobsMixin:
    """Verbs over the jobs table and the lease a running job holds."""

    def get_or_create_job(
        self, *, idem_key: str, params: str, input_path: str, input_sha256: str,
        input_bytes: int, output_path: str, priority: int = 0, memory_mode: str = "on",
    ) -> tuple[Job, bool]:
        """The job with this idempotency key, created QUEUED if there is none.

        Returns (job, created). Safe against concurrent submitters: the key is
        UNIQUE, so exactly one insert wins. ``memory_mode`` (how the job uses
        the translation memory) is set in the same insert, so no worker can
        run the job before it is.
        """
        now = self.clock()
        job_id = uuid.uuid4().hex[:12]
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO jobs (id, idem_key, state, stage, params, input_path, "
                "input_sha256, input_bytes, output_path, priority, created_at, updated_at, "
                "memory_mode) VALUES (?, ?, 'QUEUED', 'preprocess', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, idem_key, params, input_path, input_sha256, input_bytes, output_path,
                 priority, now, now, memory_mode),
            )
            job = self._one(Job, "SELECT * FROM jobs WHERE idem_key = ?", (idem_key,))
        return job, job.id == job_id

    def job(self, job_id: str) -> Job | None:
        """The job with this id, or with this unique id prefix."""
        job = self._one(Job, "SELECT * FROM jobs WHERE id = ?", (job_id,))
        if job is None and job_id:
            found = self.jobs_with_prefix(job_id, 2)
            job = found[0] if len(found) == 1 else None
        return job

    def jobs_with_prefix(self, prefix: str, limit: int = 10) -> list[Job]:
        """Up to ``limit`` jobs whose id starts with ``prefix``, by id: a
        range on the primary key, so every character is itself (``_`` and
        ``%`` are no wildcards)."""
        from pipeline.store.listing import prefix_range

        if not prefix:
            return []
        return self._all(Job, "SELECT * FROM jobs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
                         (*prefix_range(prefix), limit))

    def job_by_key(self, idem_key: str) -> Job | None:
        return self._one(Job, "SELECT * FROM jobs WHERE idem_key = ?", (idem_key,))

    def jobs(self, limit: int = 100) -> list[Job]:
        return self._all(Job, "SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,))

    def set_job_state(
        self, job_id: str, state: str, *, error_class: str | None = None,
        error_message: str | None = None,
    ) -> None:
        now = self.clock()
        finished = now if state in ("SUCCEEDED", "FAILED", "CANCELED") else None
        with self._write() as db:
            db.execute(
                "UPDATE jobs SET state = ?, error_class = ?, error_message = ?, updated_at = ?, "
                "finished_at = ? WHERE id = ?",
                (state, error_class, error_message, now, finished, job_id),
            )

    def reopen_for_upload(self, job_id: str) -> None:
        """A SUCCEEDED job whose output file is gone: deliver it again."""
        with self._write() as db:
            db.execute("UPDATE jobs SET stage = 'upload', state = 'QUEUED', updated_at = ? "
                       "WHERE id = ?", (self.clock(), job_id))

    def restart(self, job_id: str) -> None:
        """Run a collected job again from the start (its artifacts are gone)."""
        with self._write() as db:
            db.execute("UPDATE jobs SET state = 'QUEUED', stage = 'preprocess', updated_at = ? "
                       "WHERE id = ?", (self.clock(), job_id))

    def request_cancel(self, job_id: str) -> str:
        """Cancel a job: at once if nothing runs it ("canceled"), else ask its
        worker to stop ("requested": within a second or two of its stage's
        own work, once a model call in flight returns). Returns what
        happened, or the job's state if it has already ended."""
        now = self.clock()
        with self._write() as db:
            job = self.job(job_id)
            running = job.state == "RUNNING" and job.lease_owner and (job.lease_expires or 0) > now
            if running:
                db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job.id,))
                return "requested"
            if job.state in ("QUEUED", "RUNNING", "FAILED") and job.stage != "done":
                self._mark_canceled(job.id, now)
                return "canceled"
            return job.state

    def _mark_canceled(self, job_id: str, now: float) -> None:
        self.db.execute(
            "UPDATE jobs SET state = 'CANCELED', cancel_requested = 0, lease_owner = NULL, "
            "lease_expires = NULL, finished_at = ?, updated_at = ? WHERE id = ?",
            (now, now, job_id))

    def request_wake(self, job_id: str) -> None:
        """Ask the worker that runs the job to end the retry's wait it is in
        now ("retry now"); it looks at least every ``WAKE_POLL_S``."""
        with self._write() as db:
            db.execute("UPDATE jobs SET wake_requested = 1 WHERE id = ?", (job_id,))

    def wake_requested(self, job_id: str) -> bool:
        row = self.db.execute("SELECT wake_requested FROM jobs WHERE id = ?",
                              (job_id,)).fetchone()
        return bool(row and row[0])

    def clear_wake(self, job_id: str) -> None:
        """A wait ended (woken or not): a later wait is not cut short by an
        old request."""
        if self.wake_requested(job_id):
            with self._write() as db:
                db.execute("UPDATE jobs SET wake_requested = 0 WHERE id = ?", (job_id,))

    def cancel_requested(self, job_id: str) -> bool:
        row = self.db.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row[0])

    def run_state(self, job_id: str) -> tuple[bool, str | None]:
        """(a cancel was requested, who holds the lease): what a running job
        checks as it goes, in one read."""
        row = self.db.execute("SELECT cancel_requested, lease_owner FROM jobs WHERE id = ?",
                              (job_id,)).fetchone()
        return (bool(row[0]), row[1]) if row else (False, None)

    def finish_cancel(self, job_id: str, worker: str) -> None:
        """The worker stopped for a cancel: CANCELED, lease released, results kept."""
        with self._write():
            self._mark_canceled(job_id, self.clock())
        self.release_job(job_id, worker)

    def claim_job(self, job_id: str, worker: str, ttl: float, *, dead: Sequence[str] = (),
                  states: Sequence[str] = ("QUEUED", "RUNNING", "FAILED", "CANCELED")) -> bool:
        """Take the job's lease if it is free, expired, ours, or held by a
        worker known to be dead, and the job is in one of ``states``; mark
        the job RUNNING. Atomic: of two claimers exactly one wins."""
        now = self.clock()
        holders = ("?," * len(dead)).rstrip(",") or "NULL"
        wanted = ",".join("?" * len(states))
        with self._write() as db:
            cur = db.execute(
                "UPDATE jobs SET lease_owner = ?, lease_expires = ?, state = 'RUNNING', "
                "error_class = NULL, error_message = NULL, finished_at = NULL, updated_at = ? "
                "WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_expires < ? "
                f"OR lease_owner IN ({holders})) AND state IN ({wanted})",
                (worker, now + ttl, now, job_id, worker, now, *dead, *states),
            )
            if cur.rowcount != 1:
                return False
            db.execute(
                "UPDATE leases SET released_at = ?, how = 'expired' "
                "WHERE job_id = ? AND released_at IS NULL",
                (now, job_id),
            )
            db["leases"].insert({"job_id": job_id, "worker": worker, "acquired_at": now})
        return True

    def claimable_jobs(self, limit: int = 20) -> list[Job]:
        """Queued jobs, and running ones whose lease has expired or whose
        holder may be dead: highest priority first, then oldest."""
        return self._all(
            Job, "SELECT * FROM jobs WHERE state = 'QUEUED' OR (state = 'RUNNING' AND "
            "(lease_owner IS NULL OR lease_expires < ? OR lease_owner LIKE ?)) "
            "ORDER BY priority DESC, created_at LIMIT ?",
            (self.clock(), f"{socket.gethostname()}:%", limit))

    def requeue(self, job_id: str, worker: str) -> None:
        """A worker stopping (SIGTERM) gives its job back to the queue."""
        with self._write() as db:
            db.execute("UPDATE jobs SET state = 'QUEUED', updated_at = ? WHERE id = ? "
                       "AND lease_owner = ? AND state = 'RUNNING'", (self.clock(), job_id, worker))
        self.release_job(job_id, worker)

    def heartbeat(self, job_id: str, worker: str, ttl: float) -> bool:
        """Extend our lease; False if it is no longer ours."""
        now = self.clock()
        with self._write() as db:
            cur = db.execute(
                "UPDATE jobs SET lease_expires = ? WHERE id = ? AND lease_owner = ?",
                (now + ttl, job_id, worker),
            )
        return cur.rowcount == 1

    def release_job(self, job_id: str, worker: str) -> None:
        now = self.clock()
        with self._write() as db:
            db.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_expires = NULL WHERE id = ? "
                "AND lease_owner = ?",
                (job_id, worker),
            )
            db.execute(
                "UPDATE leases SET released_at = ?, how = 'released' WHERE job_id = ? "
                "AND worker = ? AND released_at IS NULL",
                (now, job_id, worker),
            )

    def set_progress(self, job_id: str, worker: str, snapshot: str) -> None:
        """Store the live progress of a job this worker holds (JSON from
        ``pipeline.progress.LiveProgress``); a worker that lost the lease
        writes nothing."""
        with self._write() as db:
            db.execute("UPDATE jobs SET progress = ? WHERE id = ? AND lease_owner = ?",
                       (snapshot, job_id, worker))

    def _check_lease(self, job_id: str, worker: str) -> None:
        row = self.db.execute("SELECT lease_owner FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or row[0] != worker:
            raise LeaseLost(f"job {job_id} was taken over by {row[0] if row else 'nobody'}")

    def gc(self, older_than_s: float) -> int:
        """Drop chunks, batches, skeleton slices and the bulky artifacts
        (skeleton, output and its file) of jobs that finished more than
        ``older_than_s`` ago. Job rows, stage timings, attempts, predictions
        and the delivery record stay, so statistics and "already translated"
        still work. Returns the number of jobs collected."""
        cutoff = self.clock() - older_than_s
        files = []
        with self._write() as db:
            ids = [r[0] for r in db.execute(
                "SELECT id FROM jobs WHERE state IN ('SUCCEEDED', 'FAILED', 'CANCELED') "
                "AND finished_at < ? AND EXISTS (SELECT 1 FROM chunks WHERE job_id = jobs.id "
                "UNION SELECT 1 FROM artifacts WHERE job_id = jobs.id AND kind != 'delivery' "
                "UNION SELECT 1 FROM skeleton_slices WHERE job_id = jobs.id)",
                (cutoff,)).fetchall()]
            for job_id in ids:
                files += [Path(p) for (p,) in db.execute(
                    "SELECT path FROM artifacts WHERE job_id = ? AND kind = 'output' "
                    "AND path IS NOT NULL", (job_id,))]
                for table in ("chunks", "batches", "skeleton_slices"):
                    db.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))
                db.execute("DELETE FROM artifacts WHERE job_id = ? AND kind != 'delivery'",
                           (job_id,))
                db.execute("UPDATE jobs SET stage = CASE WHEN state = 'SUCCEEDED' THEN 'done' "
                           "ELSE 'preprocess' END WHERE id = ?", (job_id,))
        for path in files:  # once no row names them
            path.unlink(missing_ok=True)
        return len(ids)
