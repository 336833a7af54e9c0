"""Serving ``/metrics``: in ``serve``'s app (with its HTTP requests'
metrics), and on a port of its own for a worker started by hand
(``worker --metrics-port``).

Each has its own ``CollectorRegistry`` (nothing is registered globally): the
store's collector, and, in ``serve``, the requests this process answered,
by route template (``/api/jobs/{job_id}``; never a job id) and status, with
the time to the response's first byte.
"""

from __future__ import annotations

import hmac
import http.server
import threading
import time
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from pipeline.monitoring.collector import PREFIX, StoreCollector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def store_registry(store: Callable[[], object]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return registry


class RequestMetrics:
    """ASGI middleware counting requests by route template, method and status."""

    def __init__(self, app, *, registry: CollectorRegistry, routes: Callable[[], list]):
        self.app, self.routes = app, routes
        self.requests = Counter(f"{PREFIX}_http_requests", "HTTP requests answered, by route "
                                "template, method and status.", ["route", "method", "status"],
                                registry=registry)
        self.latency = Histogram(f"{PREFIX}_http_request_duration_seconds", "Time to the "
                                 "response's first byte, by route template and method.",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=registry)

    def route_of(self, scope) -> str:
        from starlette.routing import Match

        for route in self.routes():
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return getattr(route, "path", "") or "/"
        return "unmatched"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, seen = time.perf_counter(), {}
        route, method = self.route_of(scope), scope["method"]
        if method not in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
            method = "other"

        async def sending(message):
            if message["type"] == "http.response.start" and "status" not in seen:
                seen["status"] = message["status"]
                self.latency.labels(route, method).observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.requests.labels(route, method, str(seen.get("status", 500))).inc()


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: "_Server"

    def do_GET(self):  # noqa: N802 - the http.server API
        if self.path.split("?")[0] not in ("/metrics", "/"):
            return self._send(404, b"not found: try /metrics\n", "text/plain")
        token = self.server.token
        if token is not None and not hmac.compare_digest(
                self.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()):
            return self._send(401, b"this endpoint needs 'Authorization: Bearer TOKEN'\n",
                              "text/plain")
        try:
            body = render(self.server.registry)
        except Exception as exc:  # noqa: BLE001 - a scrape fails, the worker goes on
            return self._send(500, f"cannot read the store: {exc}\n".encode(), "text/plain")
        self._send(200, body, CONTENT_TYPE_LATEST)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass  # a scrape every 15 s is not news


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    registry: CollectorRegistry
    token: str | None


def serve_metrics(host: str, port: int, registry: CollectorRegistry,
                  token: str | None = None) -> _Server:
    """Serve ``registry`` at ``http://host:port/metrics`` on a daemon thread;
    with ``token``, a scrape needs ``Authorization: Bearer TOKEN``. Raises
    OSError when the address cannot be bound. ``.shutdown()`` stops it."""
    server = _Server((host, port), _Handler)
    server.registry, server.token = registry, token
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
