"""Postprocess: put the translations back into the document's skeleton.

Progress unit: chunks.
"""

from __future__ import annotations

from pipeline.document import Document
from pipeline.languages import joins_without_space

MISSING_MARKER = "[untranslated: {source}]"


def run(ctx) -> None:
    store, job, params = ctx.store, ctx.job, ctx.params
    chunks = store.chunks(job.id)
    run_id = store.start_stage(job.id, "postprocess", units_total=len(chunks), worker=ctx.worker)
    ctx.events.stage_started("postprocess", len(chunks))
    document = Document.from_json(store.artifact(job.id, "skeleton").content.decode())
    pieces: list[list[str]] = [[] for _ in document.units]
    for chunk in chunks:
        if chunk.state == "done":
            pieces[chunk.unit].append(chunk.translation)
        elif params.missing == "marker":
            pieces[chunk.unit].append(MISSING_MARKER.format(source=chunk.source))
        else:
            pieces[chunk.unit].append(chunk.source)
    separator = "" if joins_without_space(params.tgt_lang) else " "
    text = document.render([separator.join(p).strip() for p in pieces])
    ctx.events.stage_progress("postprocess", len(chunks))
    store.finish_postprocess(job.id, run_id, ctx.worker, document.encode(text))
