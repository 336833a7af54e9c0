"""The ASGI application: routes, the page, and the rules in front of them.

``create_app(ApiSettings(db=...))`` is everything ``nllb-pipeline serve``
runs under uvicorn, and what the tests drive with Starlette's TestClient or
serve on a port of their own. It holds no state of its own besides one
store connection per thread: the SQLite store is the truth, shared with the
CLI and with workers in other processes.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pipeline.api import review_routes, routes
from pipeline.api.errors import error_response
from pipeline.api.rendered import JobFragments, RenderedLists
from pipeline.api.security import Guard
from pipeline.api.uploads import Uploads
from pipeline.monitoring import exposition
from pipeline.store import Store

# The page loads only its own files and talks only to its own server.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")


@dataclass(frozen=True)
class ApiSettings:
    db: Path  # the job database, shared with the CLI and the workers
    files: Path | None = None  # uploads/ and outputs/; default: the database's directory
    token: str | None = None  # every /api/ call needs "Authorization: Bearer <token>"
    max_upload_bytes: int = 50 * 2**20
    allowed_hosts: frozenset[str] | None = None  # Host names answered; None: any
    default_model: str | None = None  # for a form without a model; None: as the CLI
    poll_s: float = 0.5  # how often an event stream looks at the store
    # fsspec options per protocol for a form's storage URL (the config file's
    # [storage.PROTOCOL]); checked with them, delivered by the workers with theirs
    storage: Mapping[str, Mapping] = field(default_factory=dict, repr=False)

    @property
    def files_dir(self) -> Path:
        return Path(self.files) if self.files else Path(self.db).resolve().parent


class Stores:
    """One Store (one SQLite connection) per thread, opened on first use."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()

    def get(self) -> Store:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = Store(self.path)
        return store


@dataclass
class Api:
    """What every handler reaches as ``request.app.state.api``."""

    settings: ApiSettings
    stores: Stores
    uploads: Uploads
    supervisor: object | None = None  # pipeline.api.supervisor.WorkerSupervisor
    lists: RenderedLists = field(default_factory=RenderedLists)
    fragments: JobFragments = field(default_factory=JobFragments)  # job views, for lists
    stopping: threading.Event = field(default_factory=threading.Event)
    metrics: object = None  # the CollectorRegistry /metrics renders


def static_dir() -> Path:
    return Path(str(resources.files("pipeline.api") / "static"))


def page(request: Request) -> Response:
    html = (static_dir() / "index.html").read_bytes()
    return Response(html, media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache",
                             "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


async def metrics(request: Request) -> Response:
    """Prometheus's text format: the store's figures and this process's requests."""
    from starlette.concurrency import run_in_threadpool

    body = await run_in_threadpool(exposition.render, request.app.state.api.metrics)
    return Response(body, media_type=exposition.CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-cache"})


async def http_error(request: Request, exc: HTTPException) -> Response:
    name = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = {404: f"no such route: {request.method} {request.url.path}",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(
        exc.status_code, str(exc.detail))
    return error_response(exc.status_code, name, message, dict(exc.headers or {}))


def create_app(settings: ApiSettings, *, supervisor=None) -> Starlette:
    """The application over ``settings.db``; ``supervisor`` (the workers
    ``serve`` runs) is only reported by ``GET /api/info``."""
    # Create or migrate the database before the first request; a damaged one is refused.
    Store(settings.db, check=True).close()
    api = Api(settings, Stores(settings.db), Uploads(settings.files_dir, settings.storage), supervisor)
    api.metrics = exposition.store_registry(api.stores.get)
    routes_of: list = []
    app = Starlette(
        routes=[
            Route("/", page),
            Route("/jobs/{job_id}", page),  # the page, opening that job
            Route("/api/info", routes.info),
            Route("/api/openapi.json", routes.openapi),
            Route("/api/jobs", routes.list_jobs, methods=["GET"]),
            Route("/api/jobs", routes.submit_job, methods=["POST"]),
            Route("/api/jobs/retry", routes.bulk_retry, methods=["POST"]),
            Route("/api/jobs/cancel", routes.bulk_cancel, methods=["POST"]),
            Route("/api/jobs/{job_id}", routes.get_job, methods=["GET"]),
            Route("/api/jobs/{job_id}", routes.delete_job, methods=["DELETE"]),
            Route("/api/jobs/{job_id}/retry-now", routes.wake_job, methods=["POST"]),
            Route("/api/jobs/{job_id}/logs", routes.job_logs),
            Route("/api/jobs/{job_id}/output", routes.job_output),
            Route("/api/jobs/{job_id}/retry", routes.retry_job, methods=["POST"]),
            Route("/api/jobs/{job_id}/cancel", routes.cancel_job, methods=["POST"]),
            Route("/api/jobs/{job_id}/chunks", review_routes.job_chunks),
            Route("/api/jobs/{job_id}/chunks/{idx}/review", review_routes.review_chunk,
                  methods=["POST"]),
            Route("/api/events", routes.events),
            Route("/metrics", metrics),
            Mount("/static", StaticFiles(directory=static_dir()), name="static"),
        ],
        middleware=[Middleware(exposition.RequestMetrics, registry=api.metrics,
                               routes=lambda: routes_of),
                    Middleware(Guard, token=settings.token,
                               allowed_hosts=settings.allowed_hosts)],
        exception_handlers={HTTPException: http_error},
    )
    app.state.api = api
    routes_of.extend(app.routes)
    return app
