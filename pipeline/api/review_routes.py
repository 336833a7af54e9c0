"""The review loop over HTTP (``pipeline.quality.review``): a job's chunks source
beside translation, flagged first and paged; a chunk marked wrong, with a
correction that the memory keeps and the job delivers again."""

from __future__ import annotations

import json
import time

from starlette.requests import Request
from starlette.responses import JSONResponse

from pipeline import views
from pipeline.quality import review
from pipeline.api.routes import NO_CACHE, _in_thread, endpoint
from pipeline.errors import InvalidInput
from pipeline.store import Store

MAX_BODY = 64 * 1024


def _integer(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, not {value!r}") from None


@endpoint
async def job_chunks(request: Request, api) -> JSONResponse:
    query = request.query_params
    offset = _integer(query.get("offset"), "offset", 0)
    limit = _integer(query.get("limit"), "limit", 50)
    body = await _in_thread(api, lambda store: review.chunks_for_review(
        store, request.path_params["job_id"], offset=offset, limit=limit))
    return JSONResponse(body, headers=NO_CACHE)


@endpoint
async def review_chunk(request: Request, api) -> JSONResponse:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise InvalidInput(f"a review is at most {MAX_BODY} bytes")
    try:
        given = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the body must be JSON: {\"correction\": \"...\"} or {}") from None
    if not isinstance(given, dict) or set(given) - {"correction"}:
        raise InvalidInput("the body is {\"correction\": \"...\"} (or {} to mark the chunk "
                           "wrong without one)")

    idx = _integer(request.path_params["idx"], "the chunk number", 0)

    def mark(store: Store) -> dict:
        done = review.review_chunk(store, request.path_params["job_id"], idx,
                                   correction=given.get("correction"))
        return {**done, "job": views.job_view(store, store.job(done["job"]), time.time())}

    return JSONResponse(await _in_thread(api, mark))
