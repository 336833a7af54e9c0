"""The review loop: a reader marks a delivered chunk wrong and types a
correction; the memory keeps it as a human translation and the job's
output is rendered and delivered again.

The verbs the CLI (``nllb-pipeline review``) and the API
(``/api/jobs/{id}/chunks``) share. Chunks are shown as the model saw and
wrote them: ``[1]``, ``[2]``... stand for what it must not touch (links,
inline markup, characters it cannot read), and a correction must keep them,
each once, as the model's translations must (``pipeline.documents.protect``).
"""

from __future__ import annotations

from pipeline.config import JobParams
from pipeline.documents import protect
from pipeline.errors import InvalidInput, JobConflict, JobNotFound
from pipeline.memory.scope import OUTPUT_RULES, canonical_settings, output_settings
from pipeline.store import Chunk, Store

MAX_PAGE = 200
MAX_CORRECTION = 4000  # characters; a chunk is a sentence or a piece of one
REVIEWABLE = ("SUCCEEDED",)


def chunk_view(chunk: Chunk, review) -> dict:
    return {"idx": chunk.idx, "source": chunk.source, "translation": chunk.translation,
            "flag": chunk.flag, "reused": chunk.reused, "state": chunk.state,
            "review": None if review is None else {
                "correction": review.correction, "was": review.was, "at": review.at}}


def chunks_for_review(store: Store, job_id: str, *, offset: int = 0, limit: int = 50) -> dict:
    """A page of the job's chunks, source beside translation, flagged first."""
    from pipeline.service import find_job

    if not 0 <= offset:
        raise InvalidInput(f"offset must be >= 0, not {offset}")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1-{MAX_PAGE}, not {limit}")
    job = find_job(store, job_id)
    page = store.review_page(job.id, offset, limit)
    return {"job": job.id, "state": job.state, "total": page.total, "flagged": page.flagged,
            "offset": offset, "limit": limit,
            "chunks": [chunk_view(c, r) for c, r in page.chunks]}


def check_correction(text: str, chunk: Chunk) -> str:
    """The correction as stored, or InvalidInput saying what is wrong with it."""
    if not isinstance(text, str):
        raise InvalidInput("correction must be a string")
    text = text.strip()
    if not text:
        raise InvalidInput("correction is empty; to mark a chunk wrong without one, leave it out")
    if len(text) > MAX_CORRECTION:
        raise InvalidInput(f"correction is {len(text)} characters; at most {MAX_CORRECTION}")
    if not text.isprintable():
        raise InvalidInput("correction must be one line of printable text")
    problem = protect.check(text, protect.load_spec(chunk.protected))
    if problem:
        held = sorted(set(protect.PLACEHOLDER.findall(chunk.source)), key=int)
        raise InvalidInput(f"correction must keep the placeholders "
                           f"{', '.join(f'[{n}]' for n in held)} as the source has them "
                           f"(they stand for links, markup or symbols): {problem}")
    return text


def review_chunk(store: Store, job_id: str, idx: int, *, correction: str | None = None) -> dict:
    """Mark chunk ``idx`` of the job wrong, with a correction or without.
    A correction becomes the chunk's translation (and its repeats'), goes
    into the memory as a human translation, and queues the job to deliver
    its output again."""
    from pipeline.service import find_job

    job = find_job(store, job_id)
    if job.state not in REVIEWABLE:
        raise JobConflict(f"job {job.id} is {job.state}; chunks can be reviewed once it has "
                          "succeeded")
    chunk = store.document_chunk(job.id, idx)
    if chunk is None:
        raise JobNotFound(f"job {job.id} has no chunk {idx} (its chunks are listed by "
                          "GET /api/jobs/{id}/chunks or 'nllb-pipeline review JOB')")
    if chunk.state not in ("done", "replaced") or chunk.translation is None:
        raise JobConflict(f"chunk {idx} of job {job.id} was not translated ({chunk.state}); "
                          "retry the job instead")
    scope = None
    if correction is not None:
        correction = check_correction(correction, chunk)
        params = JobParams.from_json(job.params)
        settings = canonical_settings({**output_settings(params), "rules": OUTPUT_RULES})
        scope = store.review_scope(params.model, params.src_lang, params.tgt_lang, settings,
                                   *store.batch_profile(chunk.batch_id))
    queued = store.record_review(chunk, correction, scope)
    after = store.document_chunk(job.id, idx)
    review = store.latest_reviews(job.id, [idx])[idx]
    return {"job": job.id, "chunk": chunk_view(after, review), "memory": scope is not None,
            "redelivery": "queued" if queued else None}

