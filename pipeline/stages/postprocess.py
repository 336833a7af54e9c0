"""Postprocess: put the translations back into the document's skeleton.

Each chunk's text goes back to its unit in unit-text form: placeholders
restored to their markers (``pipeline.protect``), a replaced chunk as its
pieces joined in order (``pipeline.pieces``). The skeleton then writes each
marker's protected text in its place.

Progress unit: chunks.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from pipeline import protect
from pipeline.document import Document
from pipeline.languages import joins_without_space
from pipeline.store import Chunk

log = logging.getLogger("nllb_pipeline")
MISSING_MARKER = "[untranslated: {source}]"


def clean_translation(translation: str, source: str) -> tuple[str, bool]:
    """One line of text for one chunk; (text, used_source).

    A model can return an empty string (only special tokens): keeping the
    source is better than a hole that silently merges paragraphs. Line
    breaks inside a translation would create paragraphs the input lacks.
    """
    text = " ".join(translation.split())
    return (text, False) if text else (source, True)


class _Assembler:
    """Unit-text form of each chunk's translation."""

    def __init__(self, chunks: list[Chunk], missing: str):
        self.missing = missing
        self.by_idx = {c.idx: c for c in chunks}
        self.pieces: dict[int, list[Chunk]] = defaultdict(list)
        for chunk in chunks:
            if chunk.parent is not None:
                self.pieces[chunk.parent].append(chunk)
        self.empty: list[int] = []  # chunks the model returned empty for

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


def run(ctx) -> None:
    store, job, params = ctx.store, ctx.job, ctx.params
    chunks = store.chunks(job.id)
    run_id = store.start_stage(job.id, "postprocess", units_total=len(chunks), worker=ctx.worker)
    ctx.events.stage_started("postprocess", len(chunks))
    document = Document.from_json(store.artifact(job.id, "skeleton").content.decode())
    pieces: list[list[str]] = [[] for _ in document.units]
    assembler = _Assembler(chunks, params.missing)
    for chunk in chunks:
        if chunk.parent is None:
            pieces[chunk.unit].append(assembler.text(chunk))
    empty = assembler.empty
    if empty:
        log.warning("job %s: %d chunk(s) came back empty from the model; kept their source text",
                    job.id, len(empty))
    separator = "" if joins_without_space(params.tgt_lang) else " "
    output = document.output([separator.join(p).strip() for p in pieces])
    ctx.events.stage_progress("postprocess", len(chunks))
    store.finish_postprocess(job.id, run_id, ctx.worker, output, empty_chunks=empty)
