"""Readers' reviews of delivered chunks (``pipeline.quality.review``): a chunk marked
wrong, with the correction typed for it.

A correction is the chunk's translation from then on, and the translation
memory's under that key, as a *human* translation: it replaces what the
model delivered (``origin = 'human'``), and a later commit of the model's
translation of the same text leaves it be (``pipeline.store.memory`` keeps
the first unit stored under a key). In the same transaction the job goes
back to the queue at postprocess, so a worker renders the output again and
delivers it again (the file sink replaces its own earlier delivery).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.store.records import Chunk


@dataclass(frozen=True)
class Review:
    chunk_idx: int
    was: str | None  # the translation before it
    correction: str | None  # None: marked wrong, nothing typed
    at: float


@dataclass(frozen=True)
class ReviewPage:
    total: int  # the document's chunks (not the pieces the repair ladder made)
    flagged: int  # of them, accepted with a quality flag; listed first
    chunks: list[tuple[Chunk, Review | None]]  # each with its latest review


class ReviewsMixin:
    def review_page(self, job_id: str, offset: int, limit: int) -> ReviewPage:
        """The document's chunks, flagged ones first, then in order, from
        ``offset``: each with its latest review."""
        total = self.db.execute("SELECT COUNT(*) FROM chunks WHERE job_id = ? AND parent IS NULL",
                                (job_id,)).fetchone()[0]
        flagged = self.db.execute("SELECT COUNT(*) FROM chunks WHERE job_id = ? AND flag IS NOT "
                                  "NULL AND parent IS NULL", (job_id,)).fetchone()[0]
        page = self._all(Chunk, "SELECT * FROM chunks WHERE job_id = ? AND flag IS NOT NULL AND "
                                "parent IS NULL ORDER BY idx LIMIT ? OFFSET ?",
                         (job_id, limit, offset)) if offset < flagged else []
        if len(page) < limit:
            page += self._all(Chunk, "SELECT * FROM chunks WHERE job_id = ? AND flag IS NULL AND "
                                     "parent IS NULL ORDER BY idx LIMIT ? OFFSET ?",
                              (job_id, limit - len(page), max(0, offset - flagged)))
        reviews = self.latest_reviews(job_id, [c.idx for c in page])
        return ReviewPage(total, flagged, [(c, reviews.get(c.idx)) for c in page])

    def document_chunk(self, job_id: str, idx: int) -> Chunk | None:
        """Chunk ``idx`` of the document (None for a piece, or none)."""
        return self._one(Chunk, "SELECT * FROM chunks WHERE job_id = ? AND idx = ? AND parent "
                                "IS NULL", (job_id, idx))

    def latest_reviews(self, job_id: str, idxs: list[int]) -> dict[int, Review]:
        if not idxs:
            return {}
        rows = self.db.execute(
            "SELECT chunk_idx, was, correction, at FROM reviews WHERE job_id = ? AND chunk_idx IN "
            f"({','.join('?' * len(idxs))}) ORDER BY id", (job_id, *idxs)).fetchall()
        return {row[0]: Review(*row) for row in rows}

    def review_scope(self, model: str, src_lang: str, tgt_lang: str, settings: str,
                     backend: str | None, device: str | None,
                     compute_type: str | None) -> int | None:
        """The memory scope a job's chunk was delivered under: the latest
        one of the job's model, languages and output settings (and of the
        backend, device kind and compute type of the batch that translated
        it, where one did); None when the memory holds none."""
        where = ["model = ?", "src_lang = ?", "tgt_lang = ?", "settings = ?"]
        params: list = [model, src_lang, tgt_lang, settings]
        for column, value in (("backend", backend), ("device", device and device.split(":")[0]),
                              ("compute_type", compute_type)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        row = self.db.execute(f"SELECT id FROM memory_scopes WHERE {' AND '.join(where)} "
                              "ORDER BY id DESC LIMIT 1", params).fetchone()
        return row[0] if row else None

    def batch_profile(self, batch_id: int | None) -> tuple[str | None, str | None, str | None]:
        """(backend, device, compute type) that translated a batch."""
        row = self.db.execute("SELECT backend, device, compute_type FROM batches WHERE id = ?",
                              (batch_id,)).fetchone() if batch_id is not None else None
        return tuple(row) if row else (None, None, None)

    def record_review(self, chunk: Chunk, correction: str | None,
                      scope_id: int | None) -> bool:
        """Mark the chunk wrong; with a correction, make it the translation
        of the chunk and of its repeats in the document, store it in the
        memory under ``scope_id`` (when given) as a human translation, and
        queue the job to be rendered and delivered again, all at once.
        Returns whether the job was queued again."""
        now = self.clock()
        job_id = chunk.job_id
        with self._write() as db:
            db.execute("INSERT INTO reviews (job_id, chunk_idx, was, correction, at) "
                       "VALUES (?, ?, ?, ?, ?)",
                       (job_id, chunk.idx, chunk.translation, correction, now))
            if correction is None:
                return False
            first = chunk.dup_of if chunk.dup_of is not None else chunk.idx
            db.execute("UPDATE chunks SET translation = ?, flag = NULL, state = 'done' "
                       "WHERE job_id = ? AND parent IS NULL AND (idx = ? OR dup_of = ?)",
                       (correction, job_id, first, first))
            if scope_id is not None:
                db.execute(
                    "INSERT INTO memory_units (scope, source, translation, flag, origin, "
                    "created_at, used_at) VALUES (?, ?, ?, NULL, 'human', ?, ?) "
                    "ON CONFLICT (scope, source) DO UPDATE SET translation = excluded.translation, "
                    "flag = NULL, origin = 'human', used_at = excluded.used_at",
                    (scope_id, chunk.source, correction, now, now))
            queued = db.execute(
                "UPDATE jobs SET state = 'QUEUED', stage = 'postprocess', updated_at = ?, "
                "finished_at = NULL WHERE id = ? AND state = 'SUCCEEDED'", (now, job_id)).rowcount
        return bool(queued)

    def review_counts(self, cutoff: float) -> dict:
        """Marks and corrections of the jobs created since ``cutoff`` (``stats``)."""
        marked, corrected, jobs = self.db.execute(
            "SELECT COUNT(*), COUNT(correction), COUNT(DISTINCT job_id) FROM reviews WHERE job_id "
            "IN (SELECT id FROM jobs WHERE created_at >= ?)", (cutoff,)).fetchone()
        return {"marked": marked, "corrected": corrected, "jobs": jobs}


MIGRATION = """
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs (id),
    chunk_idx INTEGER NOT NULL,
    was TEXT,                     -- the chunk's translation when it was marked
    correction TEXT,              -- NULL: marked wrong without one
    at REAL NOT NULL
);
CREATE INDEX reviews_by_chunk ON reviews (job_id, chunk_idx);
CREATE TRIGGER metric_reviews AFTER INSERT ON reviews BEGIN
INSERT INTO metric_totals (metric, labels, value) SELECT 'review_marks_total',
    json_object('kind', CASE WHEN NEW.correction IS NULL THEN 'marked' ELSE 'corrected' END), 1
    WHERE true ON CONFLICT (metric, labels) DO UPDATE SET value = value + excluded.value;
END;
"""
