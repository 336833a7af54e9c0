"""The HTTP sink: PUT (or POST) of the document to a URL.

The body is streamed in 64 KiB pieces, with the job's idempotency key in an
``Idempotency-Key`` header so that the receiver can drop the repeats that
retries and resumes send, and a ``Content-Digest`` of the whole document.
One request per ``deliver``, no redirects (a streamed body cannot be
replayed to a new location). What fails is classed by the table in
``pipeline.sinks.http_errors``; the upload stage owns the retries.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

from pipeline.errors import DeliveryError, ErrorClass
from pipeline.output_file import pieces, sha256_of, size_of
from pipeline.sinks.delivery import DeliveryOptions, Payload, Progress, Receipt

CONTENT_TYPES = {
    "text": "text/plain; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "lines": "text/plain; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "po": "text/x-gettext-translation; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


class HttpSink:
    """PUT or POST to a URL; one request per ``deliver``, no redirects."""

    def __init__(self, url: str, method: str, options: DeliveryOptions, *, content_type: str,
                 clock: Callable[[], float] = time.time, transport=None,
                 shown: str | None = None):
        # ``url`` is sent to; ``shown`` (its signature redacted) is what
        # messages and the receipt name, since both are stored.
        self.url, self.method, self.options = url, method, options
        self.shown = shown or url
        self.content_type, self.clock, self.transport = content_type, clock, transport
        self._client = None

    def deliver(self, data: Payload, *, key: str, progress: Progress = lambda n: None,
                previous_sha256: str | None = None) -> Receipt:
        # httpx is imported on the first delivery, not by every command.
        import httpx

        from pipeline.sinks.http_errors import EXCEPTION_CLASSES, exception_error, status_error

        digest = base64.b64encode(bytes.fromhex(sha256_of(data))).decode()
        headers = {"Content-Type": self.content_type, **dict(self.options.headers),
                   "Content-Length": str(size_of(data)), "Content-Digest": f"sha-256=:{digest}:",
                   "Idempotency-Key": key}
        if self._client is None:
            self._client = httpx.Client(timeout=self.options.timeout_s, follow_redirects=False,
                                        transport=self.transport)
        try:
            response = self._client.request(self.method, self.url, headers=headers,
                                            content=pieces(data, progress))
        except tuple(t for t, _ in EXCEPTION_CLASSES) as exc:
            error = exception_error(exc, self.method, self.shown, self.options.timeout_s)
            raise DeliveryError(str(error).replace(self.url, self.shown),
                                error_class=error.error_class) from exc
        error = status_error(response, self.shown, now=self.clock())
        if error is not None:
            if error.error_class is ErrorClass.AUTH:
                names = ", ".join(self.options.header_names)
                raise DeliveryError(
                    f"{error}; check the credentials "
                    + (f"(headers sent: {names})" if names else "(no --header given)"),
                    error_class=ErrorClass.AUTH)
            raise error
        from pipeline.sinks.grammar import redact_url

        response_id = _response_id(response)  # a Location may echo a signed URL
        return Receipt(self.shown, self.shown, response.status_code,
                       redact_url(response_id) if response_id else None)

    def still_delivered(self, sha256: str | None) -> bool:
        return sha256 is not None  # a recorded HTTP delivery cannot be checked from here

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _response_id(response) -> str | None:
    if "json" in response.headers.get("Content-Type", ""):
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("id") is not None:
            return str(body["id"])[:200]
    return response.headers.get("Location") or response.headers.get("ETag")
