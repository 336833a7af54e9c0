"""HTTP failures as error classes: the one place that knows httpx's exceptions.

Two tables, read top to bottom: ``EXCEPTION_CLASSES`` for what httpx raises
(checked with ``isinstance``, most specific first) and ``STATUS_CLASSES``
for what a server answers, with ``CLASS_BY_HUNDRED`` for codes the table
does not name. A test walks every row and checks that every exception httpx
exports is covered, the way httpx's own ``map_httpcore_exceptions`` is tested.

Messages name the method, the URL and the status, never a header value or a
response body: a body can echo the request's headers (httpbin does), and the
headers carry the user's credentials.
"""

from __future__ import annotations

import email.utils
import http
import time
from collections.abc import Mapping
from datetime import timezone
from types import MappingProxyType

import httpx

from pipeline.errors import DeliveryError, ErrorClass

EXCEPTION_CLASSES: tuple[tuple[type[Exception], ErrorClass], ...] = (
    (httpx.TimeoutException, ErrorClass.TIMEOUT),  # connect, read, write or pool timeout
    (httpx.NetworkError, ErrorClass.NETWORK),  # refused, reset, broken pipe, DNS
    (httpx.RemoteProtocolError, ErrorClass.NETWORK),  # the server hung up mid-exchange
    (httpx.ProxyError, ErrorClass.NETWORK),
    (httpx.LocalProtocolError, ErrorClass.INTERNAL),  # we built a bad request: a bug
    (httpx.UnsupportedProtocol, ErrorClass.INVALID_INPUT),  # not http:// or https://
    (httpx.InvalidURL, ErrorClass.INVALID_INPUT),
    (httpx.TooManyRedirects, ErrorClass.INVALID_INPUT),
    (httpx.DecodingError, ErrorClass.SERVER),  # a response body that does not decode
    (httpx.HTTPStatusError, ErrorClass.SERVER),  # not raised by us; see status_error()
    (httpx.StreamError, ErrorClass.INTERNAL),  # a body read twice: a bug
    (httpx.CookieConflict, ErrorClass.INTERNAL),
    (httpx.TransportError, ErrorClass.NETWORK),  # any other transport failure
    (httpx.RequestError, ErrorClass.NETWORK),
)

STATUS_CLASSES: Mapping[int, ErrorClass] = MappingProxyType({
    400: ErrorClass.INVALID_INPUT,
    401: ErrorClass.AUTH,
    403: ErrorClass.AUTH,
    404: ErrorClass.INVALID_INPUT,
    407: ErrorClass.AUTH,  # proxy authentication
    408: ErrorClass.TIMEOUT,  # the server gave up waiting for our request
    # "Idempotency-Key" draft (IETF httpapi): 409 = a request with this key is
    # still being processed. Our crashed predecessor's request, typically:
    # come back later, with the patient backoff.
    409: ErrorClass.RATE_LIMITED,
    413: ErrorClass.INVALID_INPUT,
    425: ErrorClass.RATE_LIMITED,  # too early
    429: ErrorClass.RATE_LIMITED,
    500: ErrorClass.SERVER,
    501: ErrorClass.INVALID_INPUT,  # the method is not supported: retrying cannot help
    502: ErrorClass.SERVER,
    # The server is down or overloaded, whatever it says about when to come
    # back: SERVER, with its own budget; a Retry-After is honoured all the
    # same (every retryable class waits at least that long).
    503: ErrorClass.SERVER,
    504: ErrorClass.SERVER,
})

# Codes the table does not name. A 3xx is a failure because redirects are
# not followed: a streamed body cannot be replayed to the new location.
CLASS_BY_HUNDRED: Mapping[int, ErrorClass] = MappingProxyType({
    1: ErrorClass.SERVER,
    3: ErrorClass.INVALID_INPUT,
    4: ErrorClass.INVALID_INPUT,
    5: ErrorClass.SERVER,
})


def class_of_exception(exc: BaseException) -> ErrorClass:
    for exc_type, error_class in EXCEPTION_CLASSES:
        if isinstance(exc, exc_type):
            return error_class
    return ErrorClass.INTERNAL


def class_of_status(status: int) -> ErrorClass:
    return STATUS_CLASSES.get(status) or CLASS_BY_HUNDRED.get(status // 100, ErrorClass.SERVER)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP
    date (RFC 9110, 10.2.3). None when absent or unreadable; never negative."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


def exception_error(exc: BaseException, method: str, url: str, timeout_s: float) -> DeliveryError:
    """A DeliveryError for an exception httpx raised while sending."""
    error_class = class_of_exception(exc)
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    if error_class is ErrorClass.TIMEOUT:
        message = f"{method} {url} timed out after {timeout_s:g} s ({name})"
    else:
        message = f"{method} {url} failed: {name}" + (f": {detail}" if detail else "")
    return DeliveryError(message, error_class=error_class)


def status_error(response: httpx.Response, url: str, *,
                 now: float | None = None) -> DeliveryError | None:
    """None for a 2xx answer; else a DeliveryError naming the status."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    wait = retry_after_seconds(response.headers.get("Retry-After"),
                               time.time() if now is None else now)
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = response.reason_phrase or "Unknown"
    message = f"HTTP {status} {phrase} from {url}"
    if wait is not None:
        message += f" (Retry-After: {wait:g} s)"
    if 300 <= status < 400:
        message += "; redirects are not followed: give the final URL"
    return DeliveryError(message, error_class=class_of_status(status), retry_after_s=wait)
