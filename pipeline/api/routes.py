"""The endpoints: parse the request, call a ``pipeline.service`` verb, render.

Nothing here decides anything about jobs; each handler is the HTTP face of
one verb the CLI has too (``submit``, ``status``, ``show``, ``logs``,
``retry``, ``cancel``). Store work runs in the thread pool, one store
connection per thread; the list's ETag is computed on the event loop, since
it is two small reads and answers most polls with a 304 on its own.
"""

from __future__ import annotations

import functools
import json
import os
import time
import urllib.parse

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from pipeline import config, job_actions, service, views
from pipeline.api import listing
from pipeline.api.errors import class_of, for_the_page, response_for, status_of
from pipeline.api.events import JobWatcher, event_stream
from pipeline.api.uploads import form_options, read_form
from pipeline.errors import InvalidInput, JobConflict
from pipeline.sinks import CONTENT_TYPES
from pipeline.store import Store

NO_CACHE = {"Cache-Control": "no-cache"}


def endpoint(handler):
    """An API handler ``(request, api) -> Response``; whatever it raises
    becomes the JSON error with its status."""
    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        try:
            return await handler(request, request.app.state.api)
        except Exception as exc:  # noqa: BLE001 - every error is rendered, bugs as 500
            return response_for(exc, request.app.state.api.settings.files_dir)
    return run


def _in_thread(api, fn, *args):
    """Run ``fn(store, *args)`` in the thread pool with that thread's store."""
    return run_in_threadpool(lambda: fn(api.stores.get(), *args))


# -- the list -------------------------------------------------------------------------


@endpoint
async def list_jobs(request: Request, api) -> Response:
    params = request.query_params
    states = listing.parse_states(params.get("state"))
    limit = listing.parse_limit(params.get("limit"))
    query = listing.parse_query(params.get("q"))
    cursor = params.get("cursor") or None
    after = listing.parse_cursor(cursor)
    now = time.time()
    etag = listing.list_etag(api.stores.get(), now, states, limit, query, cursor)
    held = request.headers.get("if-none-match")
    if listing.matches(held, etag):
        return Response(status_code=304, headers={"ETag": etag, **NO_CACHE})

    async def render() -> bytes:
        return await _in_thread(api, listing.list_json, states, limit, now, query, after,
                                api.fragments)

    # A poll may get the rendering in hand while another request makes the
    # next one (pipeline.api.rendered); it always comes with its own ETag.
    poll = bool(held) and "no-cache" not in request.headers.get("cache-control", "").lower()
    found = await api.lists.get(etag, render, question=listing.question(states, limit, query,
                                                                         cursor), poll=poll)
    headers = {"ETag": found.etag, **NO_CACHE}
    if found.etag != etag and listing.matches(held, found.etag):
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type="application/json", headers=headers)


async def json_ids(request: Request) -> list[str]:
    """The ``{"ids": [...]}`` body of a bulk request."""
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise InvalidInput("send a JSON body: {\"ids\": [\"JOB\", ...]}") from None
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidInput("send a JSON body: {\"ids\": [\"JOB\", ...]} (job ids as strings)")
    return ids


def _bulk(verb):
    @endpoint
    async def handler(request: Request, api) -> Response:
        ids = await json_ids(request)

        def run(store: Store) -> dict:
            now, files = time.time(), api.settings.files_dir
            done = verb(store, ids)
            # The queue's order read once for the whole answer, not once a job
            # (each read walks the queue): a bulk of 20 cost 20 walks.
            positions = store.queue_positions()
            results = [
                {"id": r.id, "ok": True, "outcome": r.outcome,
                 "job": views.job_view(store, r.job, now, positions=positions)} if r.ok else
                {"id": r.id, "ok": False, "error": {"class": class_of(r.error),
                                                     "status": status_of(r.error),
                                                     "message": for_the_page(str(r.error), files)}}
                for r in done]
            return {"results": results, "ok": sum(r["ok"] for r in results),
                    "refused": sum(not r["ok"] for r in results)}

        return JSONResponse(await _in_thread(api, run))
    return handler


bulk_retry = _bulk(job_actions.retry_many)
bulk_cancel = _bulk(job_actions.cancel_many)


# -- one job ----------------------------------------------------------------------------


@endpoint
async def get_job(request: Request, api) -> Response:
    def detail(store: Store, job_id: str) -> dict:
        return views.job_detail(store, service.find_job(store, job_id), time.time())

    return JSONResponse(await _in_thread(api, detail, request.path_params["job_id"]),
                        headers=NO_CACHE)


@endpoint
async def job_logs(request: Request, api) -> Response:
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "text"):
        raise InvalidInput(f"format is json or text, not {fmt!r}")

    def logs(store: Store, job_id: str):
        job = service.find_job(store, job_id)
        if fmt == "text":
            return job, job_actions.log_text(store, job)
        return job, {"job": job.id, "attempts": views.job_logs(store, job)}

    job, body = await _in_thread(api, logs, request.path_params["job_id"])
    if fmt == "json":
        return JSONResponse(body, headers=NO_CACHE)
    name = f"{os.path.splitext(os.path.basename(job.input_path))[0]}.{job.id}.log.txt"
    return Response(for_the_page(body, api.settings.files_dir),
                    media_type="text/plain; charset=utf-8",
                    headers={"Content-Disposition": content_disposition("attachment", name),
                             "X-Content-Type-Options": "nosniff", **NO_CACHE})


@endpoint
async def delete_job(request: Request, api) -> Response:
    def delete(store: Store, job_id: str) -> dict:
        job = job_actions.delete(store, job_id, files=api.settings.files_dir)
        return {"deleted": job.id, "name": os.path.basename(job.input_path)}

    return JSONResponse(await _in_thread(api, delete, request.path_params["job_id"]))


@endpoint
async def wake_job(request: Request, api) -> Response:
    def wake(store: Store, job_id: str) -> dict:
        job, waiting = job_actions.wake(store, job_id)
        return {"outcome": "requested", "ended_wait": waiting,
                "job": views.job_view(store, store.job(job.id), time.time())}

    return JSONResponse(await _in_thread(api, wake, request.path_params["job_id"]),
                        status_code=202)


@endpoint
async def retry_job(request: Request, api) -> Response:
    def retry(store: Store, job_id: str) -> dict:
        done = service.requeue(store, job_id)
        return {"outcome": done.what, "chunks_reset": done.chunks,
                "job": views.job_view(store, done.job, time.time())}

    return JSONResponse(await _in_thread(api, retry, request.path_params["job_id"]))


@endpoint
async def cancel_job(request: Request, api) -> Response:
    def cancel(store: Store, job_id: str) -> dict:
        job, outcome = service.cancel(store, job_id)
        if outcome not in ("canceled", "requested"):
            raise JobConflict(f"job {job.id} already {outcome}; nothing to cancel")
        return {"outcome": outcome, "job": views.job_view(store, store.job(job.id), time.time())}

    body = await _in_thread(api, cancel, request.path_params["job_id"])
    return JSONResponse(body, status_code=202 if body["outcome"] == "requested" else 200)


def content_disposition(kind: str, name: str) -> str:
    """RFC 6266: an ASCII fallback and the exact UTF-8 name (RFC 5987)."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"


@endpoint
async def job_output(request: Request, api) -> Response:
    found = await _in_thread(api, service.output, request.path_params["job_id"])
    inline = request.query_params.get("inline") in ("1", "true", "yes")
    media_type = ("text/plain; charset=utf-8" if inline else
                  CONTENT_TYPES.get(found.fmt, "application/jsonl; charset=utf-8"))
    headers = {"Content-Disposition": content_disposition("inline" if inline else "attachment",
                                                          found.name),
               "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
               "Content-Length": str(found.size), **NO_CACHE}
    return StreamingResponse(found.pieces, media_type=media_type, headers=headers)


# -- submitting -------------------------------------------------------------------------


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 200 or not key.isprintable():
        raise InvalidInput("Idempotency-Key must be 1 to 200 printable characters")
    return key


@endpoint
async def submit_job(request: Request, api) -> Response:
    key = idempotency_key(request)
    form = await read_form(request, api.settings.max_upload_bytes)
    try:
        options, priority = form_options(form.fields, default_model=api.settings.default_model)

        def submit(store: Store):
            done = api.uploads.submit(store, form, options, priority=priority, key=key)
            return done.created, views.job_view(store, done.job, time.time())

        created, view = await _in_thread(api, submit)
    finally:
        form.close()
    return JSONResponse(view, status_code=201 if created else 200,
                        headers={"Location": f"/api/jobs/{view['id']}"})


# -- the server -------------------------------------------------------------------------


@endpoint
async def info(request: Request, api) -> Response:
    from pipeline.languages import FLORES_CODES, language_name

    supervisor = api.supervisor
    return JSONResponse({
        "version": config.package_version(),
        "default_model": api.settings.default_model or config.default_model(),
        "formats": ["auto", *config.FORMATS],
        "languages": [{"code": c, "name": language_name(c)} for c in FLORES_CODES],
        "max_upload_bytes": api.settings.max_upload_bytes,
        "workers": supervisor.status() if supervisor is not None else None,
    })


@endpoint
async def openapi(request: Request, api) -> Response:
    from pipeline.api.openapi import describe

    return JSONResponse(describe())


@endpoint
async def events(request: Request, api) -> Response:
    job_id = request.query_params.get("job")
    if job_id:
        job_id = (await _in_thread(api, service.find_job, job_id)).id  # 404 before streaming
    watcher = JobWatcher(api.stores.get, job_id)
    await run_in_threadpool(watcher.prime)
    return StreamingResponse(event_stream(watcher, api.stopping, poll_s=api.settings.poll_s),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
