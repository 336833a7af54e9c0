"""Stage runs: each stage's start and end, and the writes that end a stage
together with its results (a stage's end and the next stage's start are one
transaction)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline.store.records import Artifact, NewChunk, StageRun


class StagesMixin:
    """Verbs that start and finish stages, with the artifacts they leave."""

    def start_stage(
        self, job_id: str, stage: str, *, units_total: float, units_done: float = 0.0,
        device: str | None = None, model: str | None = None, worker: str | None = None,
        dtype: str | None = None, backend: str | None = None,
    ) -> int:
        """A new stage run; inference's records its profile (model, backend,
        device, dtype). ``units_done``: of ``units_total``, done before it
        began (a resumed stage); the run's row keeps it until the run ends,
        when it becomes what was done by then, so an interrupted run shows
        where it started (``pipeline.views`` adds what it did since).
        Returns its id."""
        with self._write() as db:
            db["stage_runs"].insert({
                "job_id": job_id, "stage": stage, "started_at": self.clock(),
                "units_total": units_total, "units_done": units_done, "device": device,
                "model": model, "worker": worker, "dtype": dtype, "backend": backend,
            })
            run_id = db.execute("SELECT last_insert_rowid()").fetchone()[0]
        self._cpu_started[run_id] = time.process_time()
        return run_id

    def switch_stage_run(self, job_id: str, run_id: int, *, units_done: float,
                         units_total: float, **profile) -> int:
        """End a stage run at ``units_done`` and start the same stage again
        for ``units_total`` more units with another profile
        (``start_stage``'s keywords), in one transaction: the inference of a
        job that moved to its fallback device is timed on the profile each
        part ran on. Returns the new run's id."""
        with self._write():
            stage = self.db.execute("SELECT stage FROM stage_runs WHERE id = ?",
                                    (run_id,)).fetchone()[0]
            self._close_stage_run(run_id, units_done)
            return self.start_stage(job_id, stage, units_total=units_total, **profile)

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
        """End a run: its wall time, and its CPU time if this process started it."""
        now = self.clock()
        cpu_started = self._cpu_started.pop(run_id, None)
        cpu_s = None if cpu_started is None else time.process_time() - cpu_started
        self.db.execute(
            "UPDATE stage_runs SET finished_at = ?, wall_s = ? - started_at, "
            "units_done = COALESCE(?, units_total), cpu_s = ? WHERE id = ?",
            (now, now, units_done, cpu_s, run_id),
        )

    def stage_runs(self, job_id: str) -> list[StageRun]:
        return self._all(StageRun, "SELECT * FROM stage_runs WHERE job_id = ? ORDER BY id", (job_id,))

    def finish_preprocess(
        self, job_id: str, run_id: int, worker: str, skeleton: str, chunks: Sequence[NewChunk],
        *, memory: int | None = None,
    ) -> None:
        """Write the skeleton (one Document's JSON) and all chunks and end
        preprocess, atomically: a whole document at once, replacing whatever
        an earlier preprocess wrote. (The preprocess stage writes a long
        document in slices instead: ``pipeline.store.slices``.)

        With ``memory`` (a memory scope id) chunks whose key the memory knows
        are written done, as reused; repeated texts wait on their first
        occurrence (``pipeline.store.memory``).
        """
        with self._write() as db:
            self._check_lease(job_id, worker)
            for table in ("skeleton_slices", "batches", "chunks"):
                db.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))
            self._put_artifact(job_id, "skeleton", content=skeleton.encode())
            self._insert_chunks(job_id, chunks, memory)
            self.finish_stage(job_id, run_id, "inference", worker)

    def output_file(self, job_id: str) -> Path:
        """Where postprocess writes the job's output document, for upload to
        deliver: the store's working area, ``<db name>-work/`` beside the
        database file (``gc`` removes what it collects)."""
        return self.path.with_name(f"{self.path.stem}-work") / f"{job_id}.out"

    def spool_dir(self) -> Path:
        """Where documents read from standard input are kept (content-addressed,
        ``pipeline.documents.inputs.spool``): in the working area, as the inputs of their
        jobs. ``gc`` leaves them, as it leaves every job's input."""
        return self.path.with_name(f"{self.path.stem}-work") / "stdin"

    def finish_postprocess(self, job_id: str, run_id: int, worker: str, *, path: str,
                           sha256: str, nbytes: int, empty_chunks: Sequence[int] = ()) -> None:
        """Record the output document (the file at ``path``, written and
        synced, with its checksum and size) and end postprocess, atomically,
        with the chunks the model returned empty for (their source text was
        kept)."""
        with self._write():
            self._put_artifact(job_id, "output", path=path, sha256=sha256, nbytes=nbytes)
            self._put_artifact(job_id, "empty_chunks",
                               content=json.dumps(list(empty_chunks)).encode())
            self.finish_stage(job_id, run_id, "upload", worker)

    def empty_chunks(self, job_id: str) -> list[int]:
        """Chunks whose translation came back empty in the last postprocess."""
        artifact = self.artifact(job_id, "empty_chunks")
        return json.loads(artifact.content) if artifact and artifact.content else []

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
