"""Who may call the API, and from where: the rules every request passes first.

- **Host.** Served without a token (on a loopback address), the server
  answers only to the host names it is reached by on this machine
  (``localhost``, the loopback addresses, the address it is bound to). A
  page on another site that re-points its own DNS name at 127.0.0.1 (DNS
  rebinding) then gets 403 instead of a same-origin view of the API.
- **Token.** With a token (``--token`` or ``$NLLB_PIPELINE_TOKEN``) every
  call under ``/api/`` (and ``/metrics``) needs ``Authorization: Bearer
  TOKEN`` (the scheme in any case, as RFC 9110 has it), the token compared
  in constant time; a missing or wrong one is 401. The page and its static
  files carry no data and need none.
- **Cross-site requests.** A state-changing call (anything but GET, HEAD,
  OPTIONS) needs the header ``X-Requested-With`` (any value; the page sends
  it) or the bearer token, and one whose ``Origin`` is not this server's is
  refused with 403. A plain HTML form on another site can set neither a
  custom header nor our Origin, so it cannot create, retry or cancel a job;
  a script on another site cannot add the header without a CORS preflight,
  which this server never approves (it sends no CORS headers).
"""

from __future__ import annotations

import hmac
import ipaddress
import urllib.parse

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.api.errors import ApiError, error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """True for a host name or address that only this machine can reach."""
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_hosts(bound: str) -> frozenset[str]:
    """The Host names a server bound to ``bound`` without a token answers to."""
    return LOOPBACK_NAMES | {bound.strip("[]").lower()}


def _host_name(netloc: str) -> str:
    """``example.org:8765`` -> ``example.org``; ``[::1]:8765`` -> ``::1``."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1:].partition("]")[0]
    return netloc.rpartition(":")[0] if netloc.count(":") == 1 else netloc


def _default_port(netloc: str, scheme: str) -> str:
    """The netloc with the scheme's default port spelled out, for comparing."""
    if netloc.endswith("]") or ":" not in netloc.rsplit("]", 1)[-1]:
        return f"{netloc}:{443 if scheme in ('https', 'wss') else 80}"
    return netloc


def check_request(method: str, path: str, headers: Headers, scheme: str, *,
                  token: str | None, allowed_hosts: frozenset[str] | None) -> None:
    """Raise ApiError (401 or 403) unless the request may go on."""
    host = headers.get("host", "")
    if allowed_hosts is not None and _host_name(host) not in allowed_hosts:
        raise ApiError(403, "forbidden_host",
                       f"this server does not answer to host {_host_name(host)!r}; "
                       "open it as http://localhost or serve it with a --token")
    bearer = False
    if (path.startswith("/api/") or path == "/metrics") and token is not None:
        scheme, _, given = headers.get("authorization", "").strip().partition(" ")
        # RFC 9110 11.1: the scheme is case-insensitive ("bearer" is "Bearer")
        bearer = scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode())
        if not bearer:
            raise ApiError(401, "auth", "this server needs a token: send "
                           "'Authorization: Bearer TOKEN'",
                           headers={"WWW-Authenticate": 'Bearer realm="nllb-pipeline"'})
    if method in SAFE_METHODS:
        return
    origin = headers.get("origin")
    if origin is not None:
        parts = urllib.parse.urlsplit(origin)
        ours = _default_port(host.lower(), scheme)
        theirs = _default_port(parts.netloc.lower(), parts.scheme) if parts.netloc else ""
        if theirs != ours:
            raise ApiError(403, "cross_site",
                           f"refused: a request from {origin} to this server changes state")
    if not bearer and "x-requested-with" not in headers:
        raise ApiError(403, "cross_site",
                       "a state-changing request needs the header X-Requested-With (any value) "
                       "or the bearer token")


class Guard:
    """ASGI middleware applying ``check_request`` to every HTTP request."""

    def __init__(self, app: ASGIApp, *, token: str | None,
                 allowed_hosts: frozenset[str] | None):
        self.app, self.token, self.allowed_hosts = app, token, allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                check_request(scope["method"], scope["path"], Headers(scope=scope),
                              scope.get("scheme", "http"), token=self.token,
                              allowed_hosts=self.allowed_hosts)
            except ApiError as refused:
                response = error_response(refused.status, refused.error_class, refused.message,
                                          refused.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
