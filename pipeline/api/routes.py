"""The endpoints: parse the request, call a ``pipeline.service`` verb, render.

Nothing here decides anything about jobs; each handler is the HTTP face of
one verb the CLI has too (``submit``, ``status``, ``show``, ``logs``,
``retry``, ``cancel``). Store work runs in the thread pool, one store
connection per thread; the list's ETag is computed on the event loop, since
it is two small reads and answers most polls with a 304 on its own.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
import urllib.parse

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from pipeline import config, service, views
from pipeline.api.errors import response_for
from pipeline.api.events import JobWatcher, event_stream
from pipeline.api.uploads import form_options, read_form
from pipeline.errors import InvalidInput, JobConflict
from pipeline.sinks import CONTENT_TYPES
from pipeline.store import Store

SHOWN_STATES = ("QUEUED", "RUNNING", views.INTERRUPTED, "SUCCEEDED", "FAILED", "CANCELED")
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
NO_CACHE = {"Cache-Control": "no-cache"}


def endpoint(handler):
    """An API handler ``(request, api) -> Response``; whatever it raises
    becomes the JSON error with its status."""
    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        try:
            return await handler(request, request.app.state.api)
        except Exception as exc:  # noqa: BLE001 - every error is rendered, bugs as 500
            return response_for(exc)
    return run


def _in_thread(api, fn, *args):
    """Run ``fn(store, *args)`` in the thread pool with that thread's store."""
    return run_in_threadpool(lambda: fn(api.stores.get(), *args))


# -- the list -------------------------------------------------------------------------


def parse_states(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    states = tuple(s.strip().upper() for s in text.split(",") if s.strip())
    unknown = [s for s in states if s not in SHOWN_STATES]
    if unknown:
        raise InvalidInput(f"unknown state {unknown[0]!r} (one of {', '.join(SHOWN_STATES)})")
    return states


def parse_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {text!r}")
    return int(text)


def interrupted_ids(store: Store, now: float) -> list[str]:
    """Running jobs whose worker is gone: they turn INTERRUPTED without any
    write to the store, so the list's ETag must see them too."""
    return sorted(j.id for j in store.jobs_in_states(("RUNNING",), 10_000)
                  if views.shown_state(j, now) == views.INTERRUPTED)


def list_etag(store: Store, now: float, states: tuple[str, ...], limit: int) -> str:
    key = json.dumps([store.revision(), interrupted_ids(store, now), states, limit])
    return 'W/"' + hashlib.blake2s(key.encode(), digest_size=10).hexdigest() + '"'


def not_modified(request: Request, etag: str) -> bool:
    given = request.headers.get("if-none-match")
    if not given:
        return False
    tags = {t.strip() for t in given.split(",")}
    return "*" in tags or etag in tags or etag.removeprefix("W/") in tags


def list_body(store: Store, states: tuple[str, ...], limit: int, now: float) -> dict:
    stored = tuple(dict.fromkeys("RUNNING" if s == views.INTERRUPTED else s for s in states))
    jobs = store.jobs_in_states(stored, limit) if states else store.jobs(limit)
    histories: dict = {}
    shown = [views.job_view(store, j, now, histories) for j in jobs]
    if states:
        shown = [v for v in shown if v["state"] in states]
    counts = {s: 0 for s in SHOWN_STATES}
    counts.update(store.jobs_by_state(float("-inf")))
    counts[views.INTERRUPTED] = len(interrupted_ids(store, now))
    counts["RUNNING"] -= counts[views.INTERRUPTED]
    return {"jobs": shown, "counts": counts, "now": now}


@endpoint
async def list_jobs(request: Request, api) -> Response:
    states = parse_states(request.query_params.get("state"))
    limit = parse_limit(request.query_params.get("limit"))
    now = time.time()
    etag = list_etag(api.stores.get(), now, states, limit)
    headers = {"ETag": etag, **NO_CACHE}
    if not_modified(request, etag):
        return Response(status_code=304, headers=headers)
    body = await _in_thread(api, list_body, states, limit, now)
    return JSONResponse(body, headers=headers)


# -- one job ----------------------------------------------------------------------------


@endpoint
async def get_job(request: Request, api) -> Response:
    def detail(store: Store, job_id: str) -> dict:
        return views.job_detail(store, service.find_job(store, job_id), time.time())

    return JSONResponse(await _in_thread(api, detail, request.path_params["job_id"]),
                        headers=NO_CACHE)


@endpoint
async def job_logs(request: Request, api) -> Response:
    def logs(store: Store, job_id: str) -> dict:
        job = service.find_job(store, job_id)
        return {"job": job.id, "attempts": views.job_logs(store, job)}

    return JSONResponse(await _in_thread(api, logs, request.path_params["job_id"]),
                        headers=NO_CACHE)


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
               **NO_CACHE}
    return Response(found.data, media_type=media_type, headers=headers)


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
    options, priority = form_options(form.fields, default_model=api.settings.default_model)

    def submit(store: Store):
        done = api.uploads.submit(store, form, options, priority=priority, key=key)
        return done.created, views.job_view(store, done.job, time.time())

    created, view = await _in_thread(api, submit)
    return JSONResponse(view, status_code=201 if created else 200,
                        headers={"Location": f"/api/jobs/{view['id']}"})


# -- the server -------------------------------------------------------------------------


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("nllb-pipeline")
    except PackageNotFoundError:  # run from a checkout
        return "unknown"


@endpoint
async def info(request: Request, api) -> Response:
    from pipeline.languages import FLORES_CODES, language_name

    supervisor = api.supervisor
    return JSONResponse({
        "version": version(),
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
