"""A document's skeleton in slices, and the reads that walk it a slice at a time.

Preprocess writes a long document a slice (a few thousand lines) at a
time: the slice's skeleton, its chunks and where the next slice starts go
in one transaction (``write_slice``), so a process killed anywhere leaves
whole slices and nothing else, and the next run goes on from the last one
(``last_slice``). Postprocess then reads the skeleton back one slice at a
time (``skeleton_slice``) with that slice's chunks (``top_level_chunks``)
and the pieces of those that were replaced (``pieces_of``): both indexed,
so no read holds a whole job's chunks.
"""

from __future__ import annotations

import json

from collections.abc import Sequence

from pipeline.store.records import Chunk, NewChunk, SkeletonSlice

_AT_ONCE = 500  # values per IN (...) list (SQLite allows 32,766 parameters)


class SlicesMixin:
    """Verbs over the skeleton slices preprocess writes and postprocess reads."""

    def write_slice(self, job_id: str, worker: str, *, seq: int, first_unit: int,
                    first_chunk: int, end_byte: int, cursor: str, skeleton: str,
                    chunks: Sequence[NewChunk], memory: int | None = None) -> None:
        """Store one slice of the document being preprocessed, atomically:
        its skeleton, where the next slice starts and the tallies so far
        (``cursor``, the preprocess's own JSON), and its chunks, numbered
        from ``first_chunk``. Chunks are written as ``finish_preprocess``
        writes them (reused from the memory with ``memory``, a repeat
        waiting on its first occurrence, in this slice or an earlier one).
        Raises LeaseLost, writing nothing, if ``worker`` no longer holds
        the job."""
        with self._write() as db:
            self._check_lease(job_id, worker)
            self._insert_chunks(job_id, chunks, memory, first_idx=first_chunk)
            db["skeleton_slices"].insert({
                "job_id": job_id, "seq": seq, "first_unit": first_unit,
                "first_chunk": first_chunk, "chunks": len(chunks), "end_byte": end_byte,
                "cursor": cursor, "skeleton": skeleton})

    def last_slice(self, job_id: str) -> SkeletonSlice | None:
        """The job's last written slice: where an interrupted preprocess goes on."""
        return self._one(SkeletonSlice, "SELECT * FROM skeleton_slices WHERE job_id = ? "
                                        "ORDER BY seq DESC LIMIT 1", (job_id,))

    def skeleton_slice(self, job_id: str, seq: int) -> SkeletonSlice | None:
        return self._one(SkeletonSlice, "SELECT * FROM skeleton_slices WHERE job_id = ? "
                                        "AND seq = ?", (job_id, seq))

    def restart_preprocess(self, job_id: str, worker: str) -> None:
        """Drop whatever an earlier preprocess of the job wrote (slices,
        chunks, batches, skeleton), so that it starts over from the input's
        first byte."""
        with self._write() as db:
            self._check_lease(job_id, worker)
            for table in ("skeleton_slices", "batches", "chunks"):
                db.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM artifacts WHERE job_id = ? AND kind = 'skeleton'", (job_id,))

    def finish_slices(self, job_id: str, run_id: int, worker: str, header: str) -> None:
        """End preprocess: the skeleton's ``header`` (what holds for the whole
        document: line endings, notes, how many slices) stored as the
        ``skeleton`` artifact, and the job moved to inference, atomically."""
        with self._write():
            self._put_artifact(job_id, "skeleton", content=header.encode())
            self.finish_stage(job_id, run_id, "inference", worker)

    def skeleton_header(self, job_id: str) -> dict | None:
        """The header ``finish_slices`` stored (line endings, notes, the
        pieces the model cannot read...); None before preprocess finished,
        and for a skeleton an older version stored whole (not read: it is
        the whole document)."""
        row = self.db.execute(
            "SELECT content FROM artifacts WHERE job_id = ? AND kind = 'skeleton' AND "
            "CAST(substr(content, 1, 11) AS TEXT) = '{\"version\":'", (job_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def top_level_chunks(self, job_id: str, first: int, end: int) -> list[Chunk]:
        """Chunks ``first`` .. ``end - 1`` as preprocess wrote them (not the
        pieces that replaced some later), in order."""
        return self._all(Chunk, "SELECT * FROM chunks WHERE job_id = ? AND idx >= ? AND idx < ? "
                                "AND parent IS NULL ORDER BY idx", (job_id, first, end))

    def pieces_of(self, job_id: str, parents: Sequence[int]) -> list[Chunk]:
        """The pieces of the chunks ``parents`` (replaced chunks), in order."""
        parents, found = sorted(set(parents)), []
        for start in range(0, len(parents), _AT_ONCE):
            part = parents[start:start + _AT_ONCE]
            found += self._all(Chunk, "SELECT * FROM chunks WHERE job_id = ? AND parent IN "
                                      f"({','.join('?' * len(part))})", (job_id, *part))
        return sorted(found, key=lambda c: c.idx)
