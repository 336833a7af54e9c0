"""Inference: translate pending chunks batch by batch, committing each batch.

Progress unit: source tokens. The batch plan is stored before the first
batch runs, so a resumed job runs exactly the batches that were not
committed, with the same members: its output is the same as an
uninterrupted run's.
"""

from __future__ import annotations

from pipeline.batching import plan_batches


def run(ctx) -> None:
    store, job = ctx.store, ctx.job
    done_tokens, total_tokens = store.token_counts(job.id)
    run_id = store.start_stage(
        job.id, "inference", units_total=total_tokens, worker=ctx.worker,
        device=getattr(ctx.translator, "device_name", None),
        model=ctx.params.model,
    )
    ctx.events.stage_started("inference", total_tokens, done_tokens)
    _plan_uncovered(ctx)
    for batch in store.pending_batches(job.id):
        ctx.check_running()
        chunks = [c for c in store.chunks(job.id, batch.chunk_idxs) if c.state == "pending"]
        if chunks:
            store.mark_batch_started(batch.id, ctx.worker)
            translations = ctx.translator.translate_batch(
                [c.source for c in chunks], ctx.params.src_lang, ctx.params.tgt_lang
            )
            store.commit_batch(job.id, batch.id, {c.idx: t for c, t in zip(chunks, translations)},
                               ctx.worker)
        else:
            store.commit_batch(job.id, batch.id, {}, ctx.worker)
        done_tokens += sum(c.n_tokens for c in chunks)
        ctx.events.stage_progress("inference", done_tokens)
    store.finish_stage(job.id, run_id, "postprocess", ctx.worker)


def _plan_uncovered(ctx) -> None:
    """Plan batches for pending chunks that no pending batch holds yet."""
    store, job = ctx.store, ctx.job
    covered = {i for b in store.pending_batches(job.id) for i in b.chunk_idxs}
    uncovered = [c for c in store.pending_chunks(job.id) if c.idx not in covered]
    if uncovered:
        budget = getattr(ctx.translator, "default_batch_tokens", lambda: 4096)()
        store.add_batches(job.id, plan_batches(uncovered, budget, ctx.settings.max_batch_size))
