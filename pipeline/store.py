"""The job store: one SQLite file that holds everything needed to resume.

The store is a handful of verbs that return dataclasses. Writes that belong
together happen in one transaction (a batch's translations and its batch row;
a stage's end and the next stage's start), so a process killed at any
instant leaves the store at a consistent point to resume from.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import sqlite_utils

from pipeline.errors import InvalidInput, LeaseLost
from pipeline.migrations import MIGRATIONS
from pipeline.records import Artifact, Attempt, Batch, Chunk, Job, NewChunk, StageRun

STAGES = ("preprocess", "inference", "postprocess", "upload")
__all__ = ["Artifact", "Attempt", "Batch", "Chunk", "Job", "NewChunk", "StageRun", "Store"]
BUSY_TIMEOUT_S = 30.0


def _build(cls, row: dict):
    if cls is Batch:
        row = {**row, "chunk_idxs": json.loads(row["chunk_idxs"])}
    return cls(**{k: row[k] for k in cls.__dataclass_fields__})


class Store:
    """Verbs over the SQLite job store. One instance per thread."""

    def __init__(self, path: str | Path, *, clock=time.time):
        self.path = Path(path)
        self.clock = clock
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode=WAL")
        except (OSError, sqlite3.Error) as exc:
            raise InvalidInput(f"cannot open the job database {self.path}: {exc}") from exc
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        self.db = sqlite_utils.Database(conn)
        self._migrate()

    def close(self) -> None:
        self.db.conn.close()

    # -- plumbing -----------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction that takes the write lock up front.

        ``db.atomic()`` starts a deferred transaction; a transaction that
        reads before it writes must hold the lock from the start, or two
        processes can both read the old state and one fails to upgrade.
        """
        if self.db.conn.in_transaction:
            with self.db.atomic():
                yield self.db
            return
        self.db.conn.execute("BEGIN IMMEDIATE")
        try:
            with self.db.atomic():  # a savepoint inside our transaction
                yield self.db
        except BaseException:
            self.db.conn.execute("ROLLBACK")
            raise
        self.db.conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._write():
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise InvalidInput(
                    f"the job database {self.path} was written by a newer nllb-pipeline "
                    f"(schema {version}, this one knows {len(MIGRATIONS)})"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={number}")

    def _one(self, cls, sql: str, params: Sequence = ()):
        rows = list(self.db.query(sql, params))
        return _build(cls, rows[0]) if rows else None

    def _all(self, cls, sql: str, params: Sequence = ()):
        return [_build(cls, row) for row in self.db.query(sql, params)]

    # -- jobs ---------------------------------------------------------------

    def get_or_create_job(
        self, *, idem_key: str, params: str, input_path: str, input_sha256: str,
        input_bytes: int, output_path: str, priority: int = 0,
    ) -> tuple[Job, bool]:
        """The job with this idempotency key, created QUEUED if there is none.

        Returns (job, created). Safe against concurrent submitters: the key is
        UNIQUE, so exactly one insert wins.
        """
        now = self.clock()
        job_id = uuid.uuid4().hex[:12]
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO jobs (id, idem_key, state, stage, params, input_path, "
                "input_sha256, input_bytes, output_path, priority, created_at, updated_at) "
                "VALUES (?, ?, 'QUEUED', 'preprocess', ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, idem_key, params, input_path, input_sha256, input_bytes, output_path,
                 priority, now, now),
            )
            job = self._one(Job, "SELECT * FROM jobs WHERE idem_key = ?", (idem_key,))
        return job, job.id == job_id

    def job(self, job_id: str) -> Job | None:
        """The job with this id, or with this unique id prefix."""
        job = self._one(Job, "SELECT * FROM jobs WHERE id = ?", (job_id,))
        if job is None and job_id:
            found = self._all(Job, "SELECT * FROM jobs WHERE id LIKE ? LIMIT 2", (job_id + "%",))
            job = found[0] if len(found) == 1 else None
        return job

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
            db.execute("UPDATE jobs SET stage = 'upload', state = 'QUEUED' WHERE id = ?", (job_id,))

    def request_cancel(self, job_id: str) -> str:
        """Cancel a job: at once if nothing runs it ("canceled"), else ask its
        worker to stop after the current batch ("requested"). Returns what
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

    def cancel_requested(self, job_id: str) -> bool:
        row = self.db.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row[0])

    def finish_cancel(self, job_id: str, worker: str) -> None:
        """The worker stopped for a cancel: CANCELED, lease released, results kept."""
        with self._write():
            self._mark_canceled(job_id, self.clock())
        self.release_job(job_id, worker)

    # -- leases -------------------------------------------------------------

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

    def gc(self, older_than_s: float) -> int:
        """Drop chunks, batches and the bulky artifacts (skeleton, output) of
        jobs that finished more than ``older_than_s`` ago. Job rows, stage
        timings, attempts, predictions and the delivery record stay, so
        statistics and "already translated" still work. Returns the number of
        jobs collected."""
        cutoff = self.clock() - older_than_s
        with self._write() as db:
            ids = [r[0] for r in db.execute(
                "SELECT id FROM jobs WHERE state IN ('SUCCEEDED', 'FAILED', 'CANCELED') "
                "AND finished_at < ? AND EXISTS (SELECT 1 FROM chunks WHERE job_id = jobs.id "
                "UNION SELECT 1 FROM artifacts WHERE job_id = jobs.id AND kind != 'delivery')",
                (cutoff,)).fetchall()]
            for job_id in ids:
                db.execute("DELETE FROM chunks WHERE job_id = ?", (job_id,))
                db.execute("DELETE FROM batches WHERE job_id = ?", (job_id,))
                db.execute("DELETE FROM artifacts WHERE job_id = ? AND kind != 'delivery'",
                           (job_id,))
                db.execute("UPDATE jobs SET stage = CASE WHEN state = 'SUCCEEDED' THEN 'done' "
                           "ELSE 'preprocess' END WHERE id = ?", (job_id,))
        return len(ids)

    def restart(self, job_id: str) -> None:
        """Run a collected job again from the start (its artifacts are gone)."""
        with self._write() as db:
            db.execute("UPDATE jobs SET state = 'QUEUED', stage = 'preprocess' WHERE id = ?",
                       (job_id,))

    def queue_summary(self) -> dict:
        """Queue depth, running jobs per worker, and documents and source tokens done/total."""
        states = dict(self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
        workers = dict(self.db.execute(
            "SELECT lease_owner, COUNT(*) FROM jobs WHERE state = 'RUNNING' AND lease_owner "
            "IS NOT NULL AND lease_expires >= ? GROUP BY lease_owner", (self.clock(),)).fetchall())
        done, total = self.db.execute(
            "SELECT COALESCE(SUM(CASE WHEN c.state = 'done' THEN c.n_tokens END), 0), "
            "COALESCE(SUM(c.n_tokens), 0) FROM chunks c JOIN jobs j ON j.id = c.job_id "
            "WHERE j.state IN ('QUEUED', 'RUNNING')").fetchone()
        return {"states": states, "queued": states.get("QUEUED", 0), "workers": workers,
                "documents_done": states.get("SUCCEEDED", 0),
                "documents_total": sum(states.values()),
                "active_tokens_done": done, "active_tokens_total": total}

    def requeue(self, job_id: str, worker: str) -> None:
        """A worker stopping (SIGTERM) gives its job back to the queue."""
        with self._write() as db:
            db.execute("UPDATE jobs SET state = 'QUEUED' WHERE id = ? AND lease_owner = ? "
                       "AND state = 'RUNNING'", (job_id, worker))
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

    def _check_lease(self, job_id: str, worker: str) -> None:
        row = self.db.execute("SELECT lease_owner FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or row[0] != worker:
            raise LeaseLost(f"job {job_id} was taken over by {row[0] if row else 'nobody'}")

    # -- stages -------------------------------------------------------------

    def start_stage(
        self, job_id: str, stage: str, *, units_total: float, device: str | None = None,
        model: str | None = None, worker: str | None = None, dtype: str | None = None,
    ) -> int:
        with self._write() as db:
            db["stage_runs"].insert({
                "job_id": job_id, "stage": stage, "started_at": self.clock(),
                "units_total": units_total, "units_done": 0, "device": device,
                "model": model, "worker": worker, "dtype": dtype,
            })
            return db.execute("SELECT last_insert_rowid()").fetchone()[0]

    def finish_stage(self, job_id: str, run_id: int, next_stage: str, worker: str) -> None:
        """End a stage run and move the job to ``next_stage``, in one transaction."""
        with self._write() as db:
            self._close_stage_run(run_id)
            self._check_lease(job_id, worker)
            db.execute(
                "UPDATE jobs SET stage = ?, updated_at = ? WHERE id = ?",
                (next_stage, self.clock(), job_id),
            )

    def _close_stage_run(self, run_id: int, units_done: float | None = None) -> None:
        now = self.clock()
        self.db.execute(
            "UPDATE stage_runs SET finished_at = ?, wall_s = ? - started_at, "
            "units_done = COALESCE(?, units_total) WHERE id = ?",
            (now, now, units_done, run_id),
        )

    def stage_runs(self, job_id: str) -> list[StageRun]:
        return self._all(StageRun, "SELECT * FROM stage_runs WHERE job_id = ? ORDER BY id", (job_id,))

    # -- preprocess ---------------------------------------------------------

    def finish_preprocess(
        self, job_id: str, run_id: int, worker: str, skeleton: str, chunks: Sequence[NewChunk],
    ) -> None:
        """Write the skeleton and all chunks and end preprocess, atomically.

        A preprocess killed half-way wrote nothing, so it simply runs again.
        """
        with self._write() as db:
            self._check_lease(job_id, worker)
            db.execute("DELETE FROM chunks WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM batches WHERE job_id = ?", (job_id,))
            self._put_artifact(job_id, "skeleton", content=skeleton.encode())
            db["chunks"].insert_all(
                {
                    "job_id": job_id, "idx": i, "unit": c.unit, "source": c.source,
                    "n_tokens": c.n_tokens, "state": "done" if c.done else "pending",
                    "translation": c.source if c.done else None,
                }
                for i, c in enumerate(chunks)
            )
            self.finish_stage(job_id, run_id, "inference", worker)

    # -- chunks and batches -------------------------------------------------

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
        rows = self.db.execute(
            "SELECT state, COUNT(*) FROM chunks WHERE job_id = ? GROUP BY state", (job_id,)
        ).fetchall()
        return dict(rows)

    def token_counts(self, job_id: str) -> tuple[int, int]:
        """(source tokens of done chunks, source tokens of all chunks)."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(CASE WHEN state = 'done' THEN n_tokens END), 0), "
            "COALESCE(SUM(n_tokens), 0) FROM chunks WHERE job_id = ?",
            (job_id,),
        ).fetchone()
        return row[0], row[1]

    def add_batches(self, job_id: str, batches: Sequence[Sequence[Chunk]], *, parent_id=None,
                    seq_start: int | None = None, same_seq: bool = False,
                    attempts: int = 0) -> None:
        """Persist a batch plan, so a resumed job runs the same batches.

        ``same_seq``: all get ``seq_start`` (the halves of a split batch run
        right where their parent would have, in insertion order)."""
        with self._write() as db:
            if seq_start is None:
                seq_start = db.execute(
                    "SELECT COALESCE(MAX(seq), -1) + 1 FROM batches WHERE job_id = ?", (job_id,)
                ).fetchone()[0]
            db["batches"].insert_all(
                {
                    "job_id": job_id, "seq": seq_start + (0 if same_seq else i),
                    "chunk_idxs": json.dumps([c.idx for c in batch]),
                    "padded_tokens": len(batch) * max(c.n_tokens for c in batch),
                    "source_tokens": sum(c.n_tokens for c in batch),
                    "state": "pending", "parent_id": parent_id, "attempts": attempts,
                }
                for i, batch in enumerate(batches)
            )

    def pending_batches(self, job_id: str) -> list[Batch]:
        return self._all(
            Batch, "SELECT * FROM batches WHERE job_id = ? AND state = 'pending' ORDER BY seq, id",
            (job_id,),
        )

    def batches(self, job_id: str) -> list[Batch]:
        return self._all(Batch, "SELECT * FROM batches WHERE job_id = ? ORDER BY id", (job_id,))

    def mark_batch_started(self, batch_id: int, worker: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE batches SET started_at = ?, worker = ? WHERE id = ?",
                (self.clock(), worker, batch_id),
            )

    def commit_batch(
        self, job_id: str, batch_id: int, translations: dict[int, str], worker: str, *,
        final: bool = True,
    ) -> None:
        """Store translations of a batch's chunks, in one transaction; with
        ``final`` the batch is marked committed too (else it stays pending,
        as when its chunks are retried one by one).

        The lease is checked inside the transaction, so a worker that lost its
        job cannot commit.
        """
        with self._write() as db:
            self._check_lease(job_id, worker)
            # ``commits`` counts every committed translation of a chunk, so a
            # chunk translated twice shows up as 2 rather than being hidden.
            db.conn.executemany(
                "UPDATE chunks SET translation = ?, state = 'done', batch_id = ?, "
                "commits = commits + 1 WHERE job_id = ? AND idx = ?",
                [(text, batch_id, job_id, idx) for idx, text in translations.items()],
            )
            if final:
                db.execute(
                    "UPDATE batches SET state = 'committed', committed_at = ?, not_before = NULL "
                    "WHERE id = ?",
                    (self.clock(), batch_id),
                )
            db.execute("UPDATE jobs SET updated_at = ? WHERE id = ?", (self.clock(), job_id))

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
            db.execute("UPDATE batches SET state = 'skipped', not_before = NULL WHERE id = ?",
                       (batch_id,))

    def reset_failed(self, job_id: str) -> int:
        """Make a failed or canceled job runnable again: failed chunks become
        pending with fresh attempts, and the job goes back to the earliest
        stage that has work. Returns the number of chunks reset."""
        with self._write() as db:
            n = db.execute(
                "UPDATE chunks SET state = 'pending', attempts = 0 "
                "WHERE job_id = ? AND state = 'failed'", (job_id,),
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

    # -- artifacts ----------------------------------------------------------

    def _put_artifact(self, job_id: str, kind: str, *, content: bytes | None = None,
                      path: str | None = None, sha256: str | None = None,
                      nbytes: int | None = None) -> None:
        self.db["artifacts"].upsert(
            {"job_id": job_id, "kind": kind, "content": content, "path": path,
             "sha256": sha256, "bytes": nbytes if nbytes is not None else
             (len(content) if content is not None else None), "created_at": self.clock()},
            pk=("job_id", "kind"),
        )

    def put_artifact(self, job_id: str, kind: str, **fields) -> None:
        with self._write():
            self._put_artifact(job_id, kind, **fields)

    def artifact(self, job_id: str, kind: str) -> Artifact | None:
        return self._one(
            Artifact, "SELECT * FROM artifacts WHERE job_id = ? AND kind = ?", (job_id, kind)
        )

    def finish_postprocess(self, job_id: str, run_id: int, worker: str, output: bytes) -> None:
        with self._write():
            self._put_artifact(job_id, "output", content=output)
            self.finish_stage(job_id, run_id, "upload", worker)

    def finish_upload(self, job_id: str, run_id: int, worker: str, *, path: str, sha256: str,
                      nbytes: int, failure: tuple[str, str] | None = None) -> None:
        """Record the delivery and end the stage and the job: SUCCEEDED, or
        FAILED with ``failure`` = (error class, message) when chunks failed."""
        with self._write() as db:
            self._put_artifact(job_id, "delivery", path=path, sha256=sha256, nbytes=nbytes)
            self.finish_stage(job_id, run_id, "done", worker)
            now = self.clock()
            error_class, message = failure or (None, None)
            db.execute(
                "UPDATE jobs SET state = ?, output_path = ?, finished_at = ?, "
                "updated_at = ?, error_class = ?, error_message = ? WHERE id = ?",
                ("FAILED" if failure else "SUCCEEDED", path, now, now, error_class, message,
                 job_id),
            )

    # -- attempts -----------------------------------------------------------

    def record_attempt(
        self, job_id: str, stage: str, *, error_class, message: str, attempt: int,
        decision: str, tb: str | None = None, batch_id: int | None = None,
        chunk_idx: int | None = None, delay_s: float | None = None, trace_id: str | None = None,
    ) -> None:
        """One failed attempt and what was decided about it (retry split
        chunks skip fail). With ``chunk_idx`` the chunk's attempt counter goes
        up in the same transaction, so a restart continues the count."""
        with self._write() as db:
            if chunk_idx is not None:
                db.execute("UPDATE chunks SET attempts = attempts + 1 WHERE job_id = ? AND idx = ?",
                           (job_id, chunk_idx))
            db["attempts"].insert({
                "job_id": job_id, "stage": stage, "batch_id": batch_id, "chunk_idx": chunk_idx,
                "error_class": getattr(error_class, "value", error_class), "message": message,
                "traceback": tb, "attempt": attempt, "delay_s": delay_s, "decision": decision,
                "trace_id": trace_id or uuid.uuid4().hex[:8], "at": self.clock(),
            })

    def attempts(self, job_id: str) -> list[Attempt]:
        return self._all(Attempt, "SELECT * FROM attempts WHERE job_id = ? ORDER BY id", (job_id,))

    # -- delivery -----------------------------------------------------------

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

    def finish_delivery(self, job_id: str, run_id: int, worker: str, *, target: str,
                        sha256: str, nbytes: int, details: str,
                        failure: tuple[str, str] | None = None) -> None:
        """``finish_upload``, with what the sink answered (``details``: JSON
        of sink, status, response id) on the delivery record, atomically."""
        with self._write():
            self.finish_upload(job_id, run_id, worker, path=target, sha256=sha256,
                               nbytes=nbytes, failure=failure)
            self._put_artifact(job_id, "delivery", content=details.encode(), path=target,
                               sha256=sha256, nbytes=nbytes)

    # -- ETA predictions -------------------------------------------------------

    def record_prediction(self, job_id: str, at_percent: int, elapsed_s: float,
                          predicted_total_s: float) -> None:
        """The job's predicted total wall time when it reached ``at_percent``
        (the first prediction at each mark is kept)."""
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO eta_predictions (job_id, at_percent, elapsed_s, "
                "predicted_total_s, at) VALUES (?, ?, ?, ?, ?)",
                (job_id, at_percent, elapsed_s, predicted_total_s, self.clock()),
            )

    def predictions(self, job_id: str) -> dict[int, float]:
        return dict(self.db.execute(
            "SELECT at_percent, predicted_total_s FROM eta_predictions WHERE job_id = ?",
            (job_id,)).fetchall())

    def wall_time(self, job_id: str) -> float:
        """Seconds the job's stage runs took so far (finished runs)."""
        return self.db.execute(
            "SELECT COALESCE(SUM(wall_s), 0) FROM stage_runs WHERE job_id = ?", (job_id,)
        ).fetchone()[0]
