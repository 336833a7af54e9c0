"""Postprocess: put the translations back into the document's skeleton.

Progress unit: chunks.
"""

from __future__ import annotations

import logging

from pipeline.document import Document
from pipeline.languages import joins_without_space

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


def run(ctx) -> None:
    store, job, params = ctx.store, ctx.job, ctx.params
    chunks = store.chunks(job.id)
    run_id = store.start_stage(job.id, "postprocess", units_total=len(chunks), worker=ctx.worker)
    ctx.events.stage_started("postprocess", len(chunks))
    document = Document.from_json(store.artifact(job.id, "skeleton").content.decode())
    pieces: list[list[str]] = [[] for _ in document.units]
    empty = 0
    for chunk in chunks:
        if chunk.state == "done":
            text, used_source = clean_translation(chunk.translation, chunk.source)
            empty += used_source
            pieces[chunk.unit].append(text)
        elif params.missing == "marker":
            pieces[chunk.unit].append(MISSING_MARKER.format(source=chunk.source))
        else:
            pieces[chunk.unit].append(chunk.source)
    if empty:
        log.warning("job %s: %d chunk(s) came back empty from the model; kept their source text",
                    job.id, empty)
    separator = "" if joins_without_space(params.tgt_lang) else " "
    output = document.output([separator.join(p).strip() for p in pieces])
    ctx.events.stage_progress("postprocess", len(chunks))
    store.finish_postprocess(job.id, run_id, ctx.worker, output)
