"""Preprocess: decode the input, keep its skeleton, cut the prose into chunks.

Progress unit: input bytes. Chunks whose translation the memory knows for
this translator and job are written done (reused) with the others, in one
transaction; repeated texts wait on their first occurrence.
"""

from __future__ import annotations

import logging

from pipeline import protect
from pipeline.errors import InvalidInput
from pipeline.formats import parse_document
from pipeline.inputs import read_input
from pipeline.memory.scope import scope_for
from pipeline.segment import chunk_text
from pipeline.store import NewChunk

log = logging.getLogger("nllb_pipeline")


def run(ctx) -> None:
    job, params = ctx.job, ctx.params
    run_id = ctx.store.start_stage(job.id, "preprocess", units_total=job.input_bytes,
                                   worker=ctx.worker)
    ctx.events.stage_started("preprocess", job.input_bytes)
    source = read_input(job.input_path)
    if source.sha256 != job.input_sha256:
        raise InvalidInput(
            f"{job.input_path} changed since job {job.id} was created; "
            "translate it again to start a new job"
        )
    document = parse_document(source.text, params.fmt, jsonl_field=params.jsonl_field)
    document.eol, document.bom, document.line_ends = source.eol, source.bom, source.line_ends
    for note in document.notes:
        log.warning("job %s: %s", job.id, note)

    limit = min(params.max_chunk_tokens, ctx.translator.describe().max_input_tokens)

    def count_tokens(texts: list[str]) -> list[int]:
        # Unit text carries one marker per protected piece; the model sees "[n]".
        return ctx.translator.count_tokens([protect.visible(t) for t in texts])

    texts: list[tuple[int, str, str | None]] = []
    seen_chars, total_chars = 0, max(1, sum(len(u.text) for u in document.units))
    for unit_idx, unit in enumerate(document.units):
        for piece in chunk_text(unit.text, params.src_lang, count_tokens, limit):
            if piece.strip():
                source, spec = protect.chunk_view(piece.strip(), unit.protected)
                texts.append((unit_idx, source, protect.spec_json(spec)))
        seen_chars += len(unit.text)
        if unit_idx % 64 == 0:
            ctx.events.stage_progress("preprocess", job.input_bytes * seen_chars / total_chars)
    counts = ctx.translator.count_tokens([t for _, t, _ in texts])
    chunks = [
        # Nothing to translate in a chunk without letters ("42", "—", a lone
        # placeholder): copy it.
        NewChunk(unit, text, n, done=not any(ch.isalpha() for ch in protect.PLACEHOLDER.sub(
            "", text)), protected=spec)
        for (unit, text, spec), n in zip(texts, counts)
    ]
    memory = None
    if ctx.store.memory_mode(job.id) != "off":
        memory = ctx.store.memory_scope_id(scope_for(params, ctx.translator.describe()))
    ctx.store.finish_preprocess(job.id, run_id, ctx.worker, document.to_json(), chunks,
                                memory=memory)
