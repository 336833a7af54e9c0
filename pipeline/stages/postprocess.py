"""Postprocess: put the translations back into the document's skeleton.

Each chunk's text goes back to its unit in unit-text form: placeholders
restored to their markers (``pipeline.documents.protect``), a replaced chunk as its
pieces joined in order (``pipeline.documents.pieces``). The skeleton then writes each
marker's protected text in its place.

The skeleton is read a slice at a time, as preprocess wrote it
(``pipeline.store.slices``), with that slice's chunks and the pieces of
those replaced, so memory holds one slice, and the output is written as it
is rendered to the job's output file (``Store.output_file``): a temporary
file, fsynced and renamed once whole (``pipeline.output_file``). The store
records its path, size and checksum; upload delivers from it. Cancel,
SIGTERM and the lease are checked as chunks are put back (``checkpoint``).

Progress unit: chunks.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline.documents import protect
from pipeline.documents.document import Document
from pipeline.languages import joins_without_space
from pipeline.output_file import AtomicFile
from pipeline.documents.pieces import clean_translation
from pipeline.errors import StorageError
from pipeline.stages.retrying import attempted
from pipeline.store import Chunk

log = logging.getLogger("nllb_pipeline")
MISSING_MARKER = "[untranslated: {source}]"
_AT_ONCE = 500  # chunk numbers per read of first occurrences


class _Assembler:
    """Unit-text form of each chunk's translation, a slice of chunks at a time."""

    def __init__(self, store, job_id: str, missing: str, checkpoint=lambda: None):
        self.store, self.job_id, self.missing = store, job_id, missing
        self.checkpoint = checkpoint  # called for every chunk: a slice may be a whole document
        self.by_idx: dict[int, Chunk] = {}
        self.pieces: dict[int, list[Chunk]] = defaultdict(list)
        self.empty: list[int] = []  # chunks the model returned empty for

    def unit_texts(self, part: _Slice, separator: str) -> list[str]:
        """The translation of each unit of ``part``, in order."""
        chunks = self.store.top_level_chunks(self.job_id, part.first_chunk,
                                             part.first_chunk + part.chunks)
        self._load(chunks)
        texts: list[list[str]] = [[] for _ in part.document.units]
        for chunk in chunks:
            texts[chunk.unit - part.first_unit].append(self.text(chunk))
            self.checkpoint()
        return [separator.join(t).strip() for t in texts]

    def _load(self, chunks: list[Chunk]) -> None:
        """Hold these chunks, the pieces of those replaced (and of their
        pieces), and the first occurrence of a replaced repeat, whose pieces
        it shares; nothing of an earlier slice."""
        self.by_idx = {c.idx: c for c in chunks}
        self.pieces = defaultdict(list)
        replaced = [c for c in chunks if c.state == "replaced"]
        while replaced:
            found = self.store.pieces_of(self.job_id, [c.idx for c in replaced])
            for piece in found:
                self.by_idx[piece.idx] = piece
                self.pieces[piece.parent].append(piece)
            firsts = sorted({c.dup_of for c in replaced if c.dup_of is not None
                             and not self.pieces[c.idx] and c.dup_of not in self.by_idx})
            for start in range(0, len(firsts), _AT_ONCE):
                for chunk in self.store.chunks(self.job_id, firsts[start:start + _AT_ONCE]):
                    self.by_idx[chunk.idx] = chunk
                    found.append(chunk)
            replaced = [c for c in found if c.state == "replaced"]

    def text(self, chunk: Chunk, spec: list | None = None) -> str:
        """``spec``: the placeholders of the chunk this one is a piece of (or
        a repeat of): the pieces that carry placeholders carry its numbering."""
        spec = protect.load_spec(chunk.protected) if spec is None else spec
        if chunk.state == "replaced":
            if chunk.dup_of is not None and not self.pieces[chunk.idx]:
                # A repeat of a chunk that was replaced: the same pieces, with
                # its own placeholders (the same text, other URLs maybe).
                return self.text(self.by_idx[chunk.dup_of], spec)
            return "".join(self.text(p, spec if p.protected else None)
                           for p in self.pieces[chunk.idx])
        if chunk.state == "done" and chunk.parent is not None and chunk.n_tokens == 0:
            return protect.restore(chunk.source, spec)  # a copied piece: exactly as it is
        if chunk.state != "done":
            missing = MISSING_MARKER.format(source=chunk.source)
            return protect.restore(missing if self.missing == "marker" else chunk.source, spec)
        text, used_source = clean_translation(chunk.translation, chunk.source)
        if used_source:
            self.empty.append(chunk.idx)
        if protect.check(text, spec):
            # Committed translations were checked; this one was not (a store
            # written by hand, or an older version): keep the source.
            log.warning("chunk %d: placeholders lost; kept its source text", chunk.idx)
            text = chunk.source
        return protect.restore(text, spec)


@dataclass(frozen=True)
class _Slice:
    document: Document  # ready to render: the whole file's line endings and BOM set
    first_unit: int
    first_chunk: int
    chunks: int  # its chunks are first_chunk .. first_chunk + chunks - 1


def _skeleton(store, job_id: str) -> tuple[int, Iterator[_Slice]]:
    """(chunks in all, the skeleton's slices, read one at a time)."""
    stored = json.loads(store.artifact(job_id, "skeleton").content)
    if "version" not in stored:
        # One Document for the whole file: written by finish_preprocess, or
        # by a version before preprocess wrote slices.
        whole = Document.from_json(json.dumps(stored))
        total = sum(store.chunk_counts(job_id).values())
        return total, iter([_Slice(whole, 0, 0, 1 << 62)])

    def read() -> Iterator[_Slice]:
        for seq in range(stored["slices"]):
            row = store.skeleton_slice(job_id, seq)
            document = Document.from_json(row.skeleton)
            document.eol, document.bom = stored["eol"], stored["bom"] and seq == 0
            if not stored["mixed"]:
                document.line_ends = ""  # one kind of line break: the file's, everywhere
            yield _Slice(document, row.first_unit, row.first_chunk, row.chunks)

    return stored["chunks"], read()


def _write_parquet(ctx, out, slices, assembler, separator: str, total: int) -> None:
    """A Parquet output: the input's row groups with the translated columns
    (``pipeline.documents.formats.parquet``); the input is read again, checked first."""
    from pipeline.documents.formats.parquet import write_translated
    from pipeline.stages.preprocess import check_unchanged, input_storage

    params = ctx.params
    check_unchanged(ctx)

    def parts():
        for part in slices:
            text = part.document.render(assembler.unit_texts(part, separator))
            ctx.events.stage_progress("postprocess", min(total, part.first_chunk + part.chunks))
            yield text.count("\n"), text

    write_translated(ctx.job.input_path, out, parts(), params.columns.split(","),
                     tgt_lang=params.tgt_lang, in_place=params.in_place,
                     progress=lambda rows: ctx.checkpoint(), storage=input_storage(ctx))


def run(ctx) -> None:
    """Render the output file from the store. A Parquet output reads the
    input again: a transient failure reading it at a storage URL is retried
    by the run's policy (``pipeline.stages.retrying``), the file rendered
    again from its start."""
    store, job = ctx.store, ctx.job
    total, _ = _skeleton(store, job.id)
    run_id = store.start_stage(job.id, "postprocess", units_total=total, worker=ctx.worker)
    ctx.events.stage_started("postprocess", total)
    path = store.output_file(job.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    out, empty = attempted(ctx, "postprocess", lambda: _render(ctx, path), failure=StorageError)
    if empty:
        log.warning("job %s: %d chunk(s) came back empty from the model; kept their source text",
                    job.id, len(empty))
    store.finish_postprocess(job.id, run_id, ctx.worker, path=str(path), sha256=out.sha256,
                             nbytes=out.size, empty_chunks=empty)


def _render(ctx, path) -> tuple[AtomicFile, list[int]]:
    """The output written whole to ``path`` (the file, the chunks that came back empty)."""
    store, job, params = ctx.store, ctx.job, ctx.params
    total, slices = _skeleton(store, job.id)
    assembler = _Assembler(store, job.id, params.missing, ctx.checkpoint)
    separator = "" if joins_without_space(params.tgt_lang) else " "
    with AtomicFile(path, tmp_name=f".{path.name}.part") as out:
        if params.fmt == "parquet":
            _write_parquet(ctx, out, slices, assembler, separator, total)
        else:
            for part in slices:
                out.write(part.document.output(assembler.unit_texts(part, separator)))
                ctx.events.stage_progress("postprocess",
                                          min(total, part.first_chunk + part.chunks))
    return out, assembler.empty
