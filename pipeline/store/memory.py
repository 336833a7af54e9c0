"""The translation memory: what each chunk of a document delivered, under
its key, kept in the job store's file (``gc`` of jobs never touches it;
``prune`` does). That is the chunk's committed translation, or, for a chunk
the repair ladder or the placeholder fallback replaced by pieces, the
pieces' translations joined once the last of them commits
(``pipeline.documents.pieces.joined``), with the quality flag it was accepted with.

A key is a scope (``pipeline.memory.scope``: model identity, backend,
device kind, compute type, languages, output settings) plus the exact
source text. The memory is read when a job's chunks are written and written
when a batch commits, each inside that transaction, so a process killed at
any instant leaves the chunks and the memory consistent:

- a chunk whose key is known is written ``done``, ``reused = 'memory'``;
- a chunk whose text an earlier pending chunk of the same job has is written
  ``waiting`` with ``dup_of`` = that chunk: it is never planned into a
  batch, and the commit of its first occurrence fills it (``reused =
  'document'``); the first failing for good fails it too, and ``retry`` makes
  it wait again. The first occurrence may be in an earlier slice of the
  document (``pipeline.store.slices``): each first occurrence carries a
  64-bit key of its text (``source_key``), and a repeat finds it by an
  index on that key, so no slice holds a map of the whole job's texts.

A job's ``memory_mode`` (``off``, ``read``, ``on``) says whether its chunks
are looked up and whether its commits are stored; duplicates inside one
document are translated once in every mode (one job is one scope).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence

from pipeline.documents import protect
from pipeline.errors import InvalidInput
from pipeline.documents.pieces import clean_translation
from pipeline.store.records import (MODES, MemoryEntry, MemoryImport, MemoryScope,
                                     MemoryScopeSummary, NewChunk, is_delivered)

_SCOPE_FIELDS = ("identity", "backend", "device", "compute_type", "src_lang", "tgt_lang",
                 "settings", "model")
_LOOKUP_AT_ONCE = 500  # source texts per lookup query (SQLite allows 32,766 parameters)


def _fits(translation: str, source: str, spec: str | None) -> bool:
    """A unit's translation, as postprocess would deliver it for this chunk,
    keeps the chunk's placeholders in order. The same text may carry other
    kinds of pieces in another document (a link's two ends there, two URLs
    here), whose pairs a translation must respect; one that does not is
    translated again rather than delivered as its source."""
    return spec is None or protect.check(clean_translation(translation, source)[0],
                                         protect.load_spec(spec)) is None


def _scope(row) -> MemoryScope:
    return MemoryScope(**{k: row[k] for k in _SCOPE_FIELDS})


def source_key(text: str) -> int:
    """A 64-bit key of a chunk's text (signed, as SQLite stores integers).
    Two texts may share one, so a lookup by key compares the texts too."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big",
                          signed=True)


class MemoryMixin:
    """Verbs over the translation memory and the jobs' use of it."""

    # -- a job's mode --------------------------------------------------------

    def memory_mode(self, job_id: str) -> str:
        row = self.db.execute("SELECT memory_mode FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row[0] if row else "on"

    def set_memory_mode(self, job_id: str, mode: str) -> None:
        """Change how a job uses the memory from its next chunk write or commit on."""
        if mode not in MODES:
            raise InvalidInput(f"--tm is one of {', '.join(MODES)}, not {mode!r}")
        with self._write() as db:
            db.execute("UPDATE jobs SET memory_mode = ? WHERE id = ?", (mode, job_id))

    # -- scopes --------------------------------------------------------------

    def memory_scope_id(self, scope: MemoryScope) -> int:
        """The id of this scope, created if new."""
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO memory_scopes (digest, model, identity, backend, device, "
                "compute_type, src_lang, tgt_lang, settings, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (scope.digest, scope.model, scope.identity, scope.backend, scope.device,
                 scope.compute_type, scope.src_lang, scope.tgt_lang, scope.settings,
                 self.clock()))
            return db.execute("SELECT id FROM memory_scopes WHERE digest = ?",
                              (scope.digest,)).fetchone()[0]

    # -- inside the chunk-writing and batch-committing transactions ----------

    def _chunk_rows(self, job_id: str, chunks: Sequence[NewChunk],
                    scope_id: int | None, *, first_idx: int = 0) -> list[dict]:
        """Rows for a job's new chunks, numbered from ``first_idx``: known
        keys reused (when the job reads the memory, ``scope_id`` given),
        repeated texts waiting on their first occurrence (in these chunks
        or among the job's earlier ones), the rest pending. Counts the reuse
        on the units."""
        if scope_id is not None and self.memory_mode(job_id) == "off":
            scope_id = None
        known = self._lookup(scope_id, {c.source for c in chunks if not c.done})
        first = self._first_occurrences(
            job_id, {c.source for c in chunks if not c.done and c.source not in known})
        rows, reuses = [], dict.fromkeys(known, 0)
        for i, c in enumerate(chunks, start=first_idx):
            row = {"job_id": job_id, "idx": i, "unit": c.unit, "source": c.source,
                   "n_tokens": c.n_tokens, "state": "pending", "translation": None,
                   "reused": None, "dup_of": None, "protected": c.protected,
                   "source_key": None, "flag": None}
            unit = known.get(c.source)
            if c.done:
                row.update(state="done", translation=c.source)
            elif unit is not None and _fits(unit[0], c.source, c.protected):
                row.update(state="done", translation=unit[0], flag=unit[1], reused="memory")
                reuses[c.source] += 1
            elif c.source in first:
                row.update(state="waiting", dup_of=first[c.source])
            else:
                first[c.source] = i
                row["source_key"] = source_key(c.source)
            rows.append(row)
        self.db.conn.executemany(
            "UPDATE memory_units SET used_at = ?, uses = uses + ? WHERE scope = ? AND source = ?",
            [(self.clock(), n, scope_id, source) for source, n in reuses.items() if n])
        return rows

    def _insert_chunks(self, job_id: str, chunks: Sequence[NewChunk], scope_id: int | None,
                       *, first_idx: int = 0) -> None:
        """Insert ``_chunk_rows``, in one executemany of plain SQL: a
        slice of a few thousand chunks in one call."""
        rows = self._chunk_rows(job_id, chunks, scope_id, first_idx=first_idx)
        if rows:
            names = list(rows[0])
            self.db.conn.executemany(
                f"INSERT INTO chunks ({', '.join(names)}) "
                f"VALUES ({', '.join('?' * len(names))})",
                [tuple(row[n] for n in names) for row in rows])

    def _first_occurrences(self, job_id: str, sources: set[str]) -> dict[str, int]:
        """{source: idx} of the job's stored chunks that are the first of one
        of ``sources`` (by the indexed key, then the exact text), decoded as
        the document's own chunks are (rung 0: not a guarded piece)."""
        by_key = {source_key(s): s for s in sources}
        wanted, found = sorted(by_key), {}
        for start in range(0, len(wanted), _LOOKUP_AT_ONCE):
            part = wanted[start:start + _LOOKUP_AT_ONCE]
            for idx, source in self.db.execute(
                    "SELECT idx, source FROM chunks WHERE job_id = ? AND rung = 0 AND "
                    f"source_key IN ({','.join('?' * len(part))})", (job_id, *part)):
                if source in sources and idx < found.get(source, idx + 1):
                    found[source] = idx
        return found

    def _lookup(self, scope_id: int | None, sources: set[str]
                ) -> dict[str, tuple[str, str | None]]:
        """{source: (translation, flag)} of the units the scope holds."""
        if scope_id is None or not sources:
            return {}
        wanted, found = sorted(sources), {}
        for start in range(0, len(wanted), _LOOKUP_AT_ONCE):
            part = wanted[start:start + _LOOKUP_AT_ONCE]
            for source, translation, flag in self.db.execute(
                    "SELECT source, translation, flag FROM memory_units WHERE scope = ? AND "
                    f"source IN ({','.join('?' * len(part))})", (scope_id, *part)):
                found[source] = (translation, flag)
        return found

    def _after_commit(self, job_id: str, translations: dict[int, str],
                      scope_id: int | None, flags: Mapping[int, str] = {}) -> None:
        """Fill the duplicates of the committed chunks (with their flags),
        join the pieces of the replaced chunks they complete (theirs and
        their filled duplicates', which may be pieces too), and store what
        the document's chunks delivered under ``scope_id`` if the job writes
        the memory: each committed chunk of rung 0 (a text as the document
        has it, or a fragment of one; never a guarded decode or a clause,
        which are not what that text alone becomes) and each rung-0 chunk
        whose pieces are now all done, joined (``pipeline.documents.pieces.joined``),
        with the flag of its first flagged piece."""
        if not translations:
            return
        self.db.conn.executemany(
            "UPDATE chunks SET state = 'done', translation = ?, flag = ?, reused = 'document' "
            "WHERE job_id = ? AND dup_of = ? AND state = 'waiting'",
            [(text, flags.get(idx), job_id, idx) for idx, text in translations.items()])
        marks = ",".join("?" * len(translations))
        rows = self.db.execute(
            f"SELECT idx, source, rung, parent FROM chunks WHERE job_id = ? AND idx IN ({marks})",
            (job_id, *translations)).fetchall()
        parents = {p for *_, p in rows if p is not None}
        parents.update(p for (p,) in self.db.execute(
            f"SELECT parent FROM chunks WHERE job_id = ? AND dup_of IN ({marks}) "
            "AND parent IS NOT NULL", (job_id, *translations)))
        delivered = {idx: (source, translations[idx], flags.get(idx))
                     for idx, source, rung, _ in rows if rung == 0}
        delivered.update(self._join_parents(job_id, parents))
        self._remember(job_id, delivered, scope_id)

    def _remember(self, job_id: str, delivered: Mapping[int, tuple[str, str, str | None]],
                  scope_id: int | None) -> None:
        """Store {idx: (source, translation, flag)} under ``scope_id`` if the
        job writes the memory."""
        if not delivered or scope_id is None or self.memory_mode(job_id) != "on":
            return
        now = self.clock()
        # The first translation stored under a key stays: by the determinism
        # contract a second one is the same text, and if it is not (a memory
        # imported with ``replace``), what the memory holds was chosen.
        self.db.conn.executemany(
            "INSERT INTO memory_units (scope, source, translation, flag, origin, created_at, "
            "used_at) VALUES (?, ?, ?, ?, 'inferred', ?, ?) "
            "ON CONFLICT (scope, source) DO UPDATE SET used_at = excluded.used_at",
            [(scope_id, source, text, flag, now, now)
             for source, text, flag in delivered.values()])

    def _fail_duplicates(self, job_id: str, idxs: Sequence[int]) -> None:
        """Chunks waiting on chunks that failed for good fail with them."""
        if idxs:
            self.db.execute(
                f"UPDATE chunks SET state = 'failed' WHERE job_id = ? AND +state = 'waiting' "
                f"AND dup_of IN ({','.join('?' * len(idxs))})", (job_id, *idxs))

    def settle_waiting(self, job_id: str, *, memory: int | None = None) -> int:
        """No chunk waits forever: one whose first occurrence is done takes
        its translation, one whose first failed fails, one whose first was
        replaced by pieces is replaced by the same pieces (postprocess joins
        its first's pieces for it: the same text, translated once; it takes
        the joined text when there is one), and one whose first is none of
        those nor pending becomes pending itself. A repeated piece of a
        replaced chunk (``pipeline.store.pieces``) that is settled so may
        complete its parent, which is joined, and stored under ``memory`` as
        a commit would. Returns how many became pending (to be planned)."""
        with self._write() as db:
            waiting = db.execute(
                "SELECT c.idx, f.state, f.translation, f.flag, c.parent FROM chunks c "
                "LEFT JOIN chunks f ON f.job_id = c.job_id AND f.idx = c.dup_of "
                "WHERE c.job_id = ? AND c.state = 'waiting'", (job_id,)).fetchall()
            filled = [(t, flag, job_id, i) for i, state, t, flag, _ in waiting if state == "done"]
            failed = [(job_id, i) for i, state, *_ in waiting if state == "failed"]
            follow = [(t, flag, job_id, i) for i, state, t, flag, _ in waiting
                      if state == "replaced"]
            alone = [(job_id, i) for i, state, *_ in waiting
                     if state not in ("done", "failed", "pending", "replaced")]
            db.conn.executemany("UPDATE chunks SET state = 'replaced', translation = ?, "
                                "flag = ?, reused = 'document' WHERE job_id = ? AND idx = ?",
                                follow)
            db.conn.executemany("UPDATE chunks SET state = 'done', translation = ?, flag = ?, "
                                "reused = 'document' WHERE job_id = ? AND idx = ?", filled)
            db.conn.executemany("UPDATE chunks SET state = 'failed' WHERE job_id = ? AND idx = ?",
                                failed)
            db.conn.executemany("UPDATE chunks SET state = 'pending', dup_of = NULL "
                                "WHERE job_id = ? AND idx = ?", alone)
            parents = {p for _, state, t, _, p in waiting
                       if p is not None and is_delivered(state, t)}
            self._remember(job_id, self._join_parents(job_id, parents), memory)
        return len(alone)

    # -- reading ---------------------------------------------------------------

    def reuse_in_window(self, cutoff: float) -> tuple[int, int, int]:
        """(chunks, from the memory, repeats in their document) over the
        stored chunks of jobs created since ``cutoff`` (``gc`` drops chunks,
        so collected jobs no longer count)."""
        return self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(reused = 'memory'), 0), "
            "COALESCE(SUM(reused = 'document'), 0) FROM chunks "
            "WHERE job_id IN (SELECT id FROM jobs WHERE created_at >= ?)", (cutoff,)).fetchone()

    def memory_summary(self) -> list[MemoryScopeSummary]:
        """Every scope that holds units, with its counts, most units first."""
        rows = self.db.query(
            "SELECT s.*, COUNT(*) AS units, COALESCE(SUM(u.origin = 'imported'), 0) AS imported, "
            "COALESCE(SUM(u.uses), 0) AS uses, MAX(u.used_at) AS last_used_at "
            "FROM memory_scopes s JOIN memory_units u ON u.scope = s.id "
            "GROUP BY s.id ORDER BY units DESC, s.id")
        return [MemoryScopeSummary(_scope(r), r["units"], r["imported"], r["uses"],
                                   r["last_used_at"]) for r in rows]

    def memory_entries(self, *, src_lang: str | None = None, tgt_lang: str | None = None,
                       model: str | None = None) -> Iterator[MemoryEntry]:
        """The memory's units, by scope then source; optionally only one
        language pair or the scopes of one model (as jobs named it)."""
        where, params = [], []
        for column, value in (("src_lang", src_lang), ("tgt_lang", tgt_lang), ("model", model)):
            if value is not None:
                where.append(f"s.{column} = ?")
                params.append(value)
        scopes: dict[int, MemoryScope] = {}
        for r in self.db.query(
                "SELECT s.id AS scope_id, s.identity, s.backend, s.device, s.compute_type, "
                "s.src_lang, s.tgt_lang, s.settings, s.model, u.source, u.translation, u.origin, "
                "u.created_at, u.used_at, u.uses, u.flag FROM memory_units u "
                "JOIN memory_scopes s ON s.id = u.scope"
                + (" WHERE " + " AND ".join(where) if where else "")
                + " ORDER BY s.id, u.source", params):
            scope = scopes.setdefault(r["scope_id"], _scope(r))
            yield MemoryEntry(scope, r["source"], r["translation"], r["origin"],
                              r["created_at"], r["used_at"], r["uses"], r["flag"])

    # -- writing ---------------------------------------------------------------

    def import_memory(self, entries: Iterable[tuple], *, replace: bool = False) -> MemoryImport:
        """Add (scope, source, translation[, flag[, origin]]) units (origin
        ``imported``, or ``human``: a reader's correction exported by
        ``tm export``), all in one transaction: nothing is stored unless
        everything is. A unit already stored with another translation keeps
        the stored one, or takes the imported one (and its flag) with
        ``replace``; a human translation replaces a model's without it."""
        added = same = replaced = kept = 0
        ids: dict[str, int] = {}
        now = self.clock()
        with self._write() as db:
            for scope, source, translation, *rest in entries:
                flag = rest[0] if rest else None
                origin = rest[1] if len(rest) > 1 else "imported"
                if scope.digest not in ids:
                    ids[scope.digest] = self.memory_scope_id(scope)
                scope_id = ids[scope.digest]
                row = db.execute("SELECT translation, origin FROM memory_units WHERE scope = ? "
                                 "AND source = ?", (scope_id, source)).fetchone()
                if row is None:
                    db.execute(
                        "INSERT INTO memory_units (scope, source, translation, flag, origin, "
                        "created_at, used_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (scope_id, source, translation, flag, origin, now, now))
                    added += 1
                elif row[0] == translation:
                    same += 1
                elif replace or (origin == "human" and row[1] == "inferred"):
                    db.execute("UPDATE memory_units SET translation = ?, flag = ?, "
                               "origin = ?, used_at = ? WHERE scope = ? AND source = ?",
                               (translation, flag, origin, now, scope_id, source))
                    replaced += 1
                else:
                    kept += 1
        return MemoryImport(added, same, replaced, kept)

    def prune_memory(self, older_than_s: float) -> int:
        """Drop units neither stored nor reused in the last ``older_than_s``
        seconds, and scopes left empty. Returns the number of units dropped."""
        cutoff = self.clock() - older_than_s
        with self._write() as db:
            n = db.execute("DELETE FROM memory_units WHERE used_at < ?", (cutoff,)).rowcount
            db.execute("DELETE FROM memory_scopes WHERE NOT EXISTS "
                       "(SELECT 1 FROM memory_units WHERE scope = memory_scopes.id)")
        return n
