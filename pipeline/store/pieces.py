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

from pipeline.documents import pieces, protect
from pipeline.store.memory import source_key
from pipeline.store.records import Chunk, NewPiece, is_delivered

QUALITY = "quality"
REPAIRS = ("guarded", "clauses")  # ladder steps that translate a chunk again


class PiecesMixin:
    """Verbs over replaced chunks and their pieces."""

    def commit_checked(
        self, job_id: str, batch_id: int, worker: str, *, accepted: Mapping[int, str],
        flags: Mapping[int, str] = {}, replaced: Mapping[int, Sequence[NewPiece]] = {},
        attempts: Sequence[dict] = (), final: bool = True, memory: int | None = None,
        translated_by: tuple[str, str, str] | None = None, ran_on: str | None = None,
        started_at: float | None = None, generated_tokens: int = 0,
        call_s: float | None = None, idle_s: float | None = None,
    ) -> bool:
        """Commit a judged batch in one transaction: ``accepted``
        translations (``commit_batch``, which fills their repeats and, with
        ``memory``, stores them; those in ``flags`` with their reason, their
        repeats too), chunks ``replaced`` by pieces, and one attempt row per
        ladder step (``record_attempt`` keywords; class QUALITY unless
        given). ``translated_by`` and ``ran_on`` as for ``commit_batch``, and
        idempotent like it: a batch no longer pending takes nothing (False),
        and a chunk no longer pending takes no translation, flag, pieces or
        ladder rows. ``started_at``, ``call_s`` and ``idle_s`` as for
        ``commit_batch``. The lease is checked (by ``commit_batch``) before
        anything is written."""
        with self._write():
            pending = self._still_pending(job_id, {*accepted, *flags, *replaced})
            accepted = {i: t for i, t in accepted.items() if i in pending}
            flags = {i: r for i, r in flags.items() if i in pending}
            replaced = {i: r for i, r in replaced.items() if i in pending}
            attempts = [a for a in attempts
                        if a.get("chunk_idx") is None or a["chunk_idx"] in pending]
            if not self.commit_batch(job_id, batch_id, dict(accepted), worker, final=final,
                                     memory=memory, flags=flags, translated_by=translated_by,
                                     ran_on=ran_on, started_at=started_at,
                                     generated_tokens=generated_tokens, pending=pending,
                                     call_s=call_s, idle_s=idle_s):
                return False
            delivered: dict[int, tuple[str, str, str | None]] = {}
            for idx, rows in replaced.items():
                delivered.update(self._replace(job_id, idx, rows))
            self._remember(job_id, delivered, memory)
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

    def _replace(self, job_id: str, idx: int, rows: Sequence[NewPiece]
                 ) -> dict[int, tuple[str, str, str | None]]:
        """Insert ``rows`` as the pieces of chunk ``idx``. A piece to
        translate whose text and rung an earlier chunk of the job has (the
        same fragment or clause of another sentence, decoded the same way)
        is that chunk's repeat, as a repeated sentence is: it takes its
        translation now if it is delivered, else waits on it
        (``pipeline.store.memory``). Returns what ``_join_parents`` returns
        when the pieces are all delivered at once."""
        parent = self._one(Chunk, "SELECT * FROM chunks WHERE job_id = ? AND idx = ?",
                           (job_id, idx))
        if parent is None or parent.state != "pending":
            return {}  # already replaced: a delivery seen twice changes nothing
        share = parent.n_tokens if parent.share is None else parent.share
        weights = [r.n_tokens for r in rows] if any(r.n_tokens for r in rows) else [1] * len(rows)
        # The job's last chunk by its primary key, one seek (a plan the
        # hot-loop test can tell from a read of the whole job's chunks).
        last = self.db.execute("SELECT idx FROM chunks WHERE job_id = ? ORDER BY idx DESC "
                               "LIMIT 1", (job_id,)).fetchone()
        first = last[0] + 1
        firsts: dict[tuple[str, int], tuple] = {}
        inserted: list[list] = []
        for i, (r, w) in enumerate(zip(rows, weights)):
            row = {"state": "done", "translation": r.source, "flag": None, "reused": None,
                   "dup_of": None, "source_key": None}
            piece_share = share * w / sum(weights)
            if r.n_tokens:
                same = firsts.get((r.source, r.rung)) or self._first_piece(job_id, r.source,
                                                                           r.rung)
                if same is None:
                    row.update(state="pending", translation=None, source_key=source_key(r.source))
                    firsts[(r.source, r.rung)] = (first + i, "pending", None, None)
                else:
                    row.update(_repeat_of(*same))
                    # A repeat is no work of its own (``token_counts``): its
                    # share of the tokens goes to the chunk that does the work.
                    piece_share = self._hand_share(job_id, same[0], piece_share, first, inserted)
            inserted.append([job_id, first + i, parent.unit, r.source, r.n_tokens, row["state"],
                             row["translation"], idx, r.protected, r.rung, piece_share,
                             row["flag"], row["reused"], row["dup_of"], row["source_key"]])
        self.db.conn.executemany(
            "INSERT INTO chunks (job_id, idx, unit, source, n_tokens, state, translation, parent, "
            "protected, rung, share, flag, reused, dup_of, source_key) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", inserted)
        self.db.execute("UPDATE chunks SET state = 'replaced' WHERE job_id = ? AND idx = ?",
                        (job_id, idx))
        if all(is_delivered(row[5], row[6]) for row in inserted):
            return self._join_parents(job_id, {idx})
        return {}

    def _hand_share(self, job_id: str, to: int, share: float, first: int,
                    inserted: list[list]) -> float:
        """Add ``share`` to chunk ``to`` (one of ``inserted``, numbered from
        ``first``, or a stored one) and return what stays with the repeat:
        nothing, unless ``to`` was replaced already (its share went to its
        pieces), where the repeat keeps it and the total loses it."""
        if to >= first:
            inserted[to - first][10] += share
            return 0.0
        n = self.db.execute("UPDATE chunks SET share = COALESCE(share, n_tokens) + ? "
                            "WHERE job_id = ? AND idx = ? AND state != 'replaced'",
                            (share, job_id, to)).rowcount
        return 0.0 if n else share

    def _first_piece(self, job_id: str, source: str, rung: int) -> tuple | None:
        """(idx, state, translation, flag) of the job's first chunk of this
        text decoded at ``rung``, by the indexed key of its text. ``+idx``:
        ordered by the primary key, SQLite walked the job's chunks in order
        until one matched (0.37 s a piece on a 1,000,000-line job); this way
        it sorts the few rows of the key instead."""
        return self.db.execute(
            "SELECT idx, state, translation, flag FROM chunks WHERE job_id = ? AND "
            "source_key = ? AND source = ? AND rung = ? ORDER BY +idx LIMIT 1",
            (job_id, source_key(source), source, rung)).fetchone()

    def _join_parents(self, job_id: str, parents: set[int]) -> dict[int, tuple[str, str,
                                                                             str | None]]:
        """The replaced chunks among ``parents`` whose pieces are now all
        done (a piece replaced in turn counts once its own are) take their
        pieces' joined text as their translation, in their own placeholder
        form, and the flag of their first flagged piece; so do their
        parents, up the chain. Returns {idx: (source, text, flag)} of those
        of rung 0. A chunk whose joined text would not restore to its
        pieces' bytes (``pipeline.documents.pieces.joined``) keeps none, nor do the
        chunks above it: they are delivered from their pieces, and not
        remembered. A few indexed reads per parent, whatever the job's size."""
        out: dict[int, tuple[str, str, str | None]] = {}
        while parents:
            above: set[int] = set()
            for idx in sorted(parents):
                parent = self._one(Chunk, "SELECT * FROM chunks WHERE job_id = ? AND idx = ?",
                                   (job_id, idx))
                if parent is None or parent.state != "replaced" or parent.translation is not None:
                    continue
                kids = self._all(Chunk, "SELECT * FROM chunks WHERE job_id = ? AND parent = ? "
                                 "ORDER BY idx", (job_id, idx))
                if not kids or not all(is_delivered(k.state, k.translation) for k in kids):
                    continue
                text = pieces.joined([(_part(k), k.protected is not None) for k in kids],
                                     protect.load_spec(parent.protected))
                if text is None:
                    continue
                flag = next((k.flag for k in kids if k.flag), None)
                self.db.execute("UPDATE chunks SET translation = ?, flag = ? "
                                "WHERE job_id = ? AND idx = ?", (text, flag, job_id, idx))
                # Its repeats that follow its pieces (``settle_waiting``) are
                # delivered with it, and so may complete their own parents.
                followers = self.db.execute(
                    "SELECT idx, parent FROM chunks WHERE job_id = ? AND dup_of = ? "
                    "AND state = 'replaced' AND translation IS NULL", (job_id, idx)).fetchall()
                self.db.conn.executemany("UPDATE chunks SET translation = ?, flag = ? "
                                         "WHERE job_id = ? AND idx = ?",
                                         [(text, flag, job_id, i) for i, _ in followers])
                above.update(p for _, p in followers if p is not None)
                if parent.rung == 0:
                    out[idx] = (parent.source, text, flag)
                if parent.parent is not None:
                    above.add(parent.parent)
            parents = above
        return out

    # -- what it adds up to --------------------------------------------------------

    def quality_report(self, job_id: str) -> dict:
        """A job's placeholders and quality: protected pieces (in the
        document's chunks), placeholder fallbacks, ladder steps and flags by
        reason, and the flagged chunks as (idx, reason, source, reused).
        A chunk reused from the memory with its flag counts as a flag of its
        reason; a replaced chunk is not listed (its flagged pieces are)."""
        protected = round(self.db.execute(
            "SELECT protected_pieces FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])
        steps: dict[str, dict[str, int]] = {}
        for decision, reason, n in self.db.execute(
                "SELECT decision, reason, COUNT(*) FROM attempts WHERE job_id = ? AND "
                "error_class = ? GROUP BY decision, reason", (job_id, QUALITY)):
            steps.setdefault(decision, {})[reason or "?"] = n
        flagged = [(idx, flag, source, reused) for idx, flag, source, reused in self.db.execute(
            "SELECT idx, flag, source, reused FROM chunks WHERE job_id = ? AND flag IS NOT NULL "
            "AND state != 'replaced' ORDER BY idx", (job_id,))]
        for _, reason, _, reused in flagged:
            if reused == "memory":
                steps.setdefault("flag", {})[reason] = steps.get("flag", {}).get(reason, 0) + 1
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


def _repeat_of(idx: int, state: str, translation: str | None, flag: str | None) -> dict:
    """A new piece that repeats chunk ``idx``: delivered as it was, or waiting on it."""
    if is_delivered(state, translation):
        return {"state": state, "translation": translation, "flag": flag,
                "reused": "document", "dup_of": idx}
    return {"state": "waiting", "translation": None, "dup_of": idx}



def _part(chunk: Chunk) -> str:
    """What a delivered piece gives before placeholders are restored, as
    postprocess writes it: a copied piece's source, a translation on one line
    (its source where it came back empty), a replaced piece's joined text."""
    if chunk.state == "replaced" or (chunk.parent is not None and chunk.n_tokens == 0):
        return chunk.translation if chunk.state == "replaced" else chunk.source
    return pieces.clean_translation(chunk.translation, chunk.source)[0]


def _by_reason(steps: dict[str, dict[str, int]], decisions: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for decision in decisions:
        for reason, n in steps.get(decision, {}).items():
            out[reason] = out.get(reason, 0) + n
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
