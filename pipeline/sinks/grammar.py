"""The target grammar: what ``--to`` and ``-o`` may say, and what a job stores.

A job's sink is one of

- ``file:/abs/path``: the output file (``-o PATH``, or NAME.<tgt>.EXT next
  to the input when neither ``-o`` nor ``--to`` is given);
- ``dir:/abs/dir``: a directory; the job's output is then the file in it;
- an ``http://`` or ``https://`` URL without credentials, with a method
  (PUT, the default, or POST); a presigned URL's signature parameters
  (``SIGNATURE_PARAMS``) are stored as ``REDACTED`` (``redact_url``): the
  run that delivers is given the whole URL again, like its headers;
- a storage URL (``s3://bucket/out/x.md``, any fsspec protocol:
  ``pipeline.objects``); one that ends with ``/`` is a prefix, and the
  job's output is then the object under it;
- ``stdout:`` (``-o -``): the command that runs the job prints the
  translation from the store.

This module is the one place that knows these spellings: ``JobParams``
checks a stored sink with ``check_sink``, and ``resolve_target``
(``pipeline.sinks.targets``) turns the command line's words into one,
before any work. It imports nothing but the error classes, so that
``pipeline.config`` can use it.
"""

from __future__ import annotations

import urllib.parse

from pipeline import objects
from pipeline.errors import InvalidInput

STDOUT = "stdout:"  # the sink of -o -: the command that ran the job prints the translation
HTTP_SCHEMES = ("http://", "https://")
HTTP_METHODS = ("PUT", "POST")  # the first is the default


# Query parameters that carry a presigned URL's signature or credential
# (S3 SigV2/SigV4, Google Cloud Storage V2/V4, Azure SAS, CloudFront), in
# lower case: the job stores REDACTED in their place, shows only that, and
# its key never depends on them.
SIGNATURE_PARAMS = frozenset({
    "x-amz-signature", "x-amz-credential", "x-amz-security-token",
    "x-goog-signature", "x-goog-credential", "googleaccessid",
    "awsaccesskeyid", "signature", "sig", "se", "st", "sv", "skoid", "sktid", "token",
    "access_token", "expires", "policy", "key-pair-id",
})
REDACTED = "REDACTED"


def is_http(spec: str | None) -> bool:
    return bool(spec) and spec.startswith(HTTP_SCHEMES)


def redact_url(url: str) -> str:
    """The URL with the values of its signature parameters replaced by
    REDACTED; the same URL when it has none."""
    parts = urllib.parse.urlsplit(url)
    if not parts.query:
        return url
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if not any(name.lower() in SIGNATURE_PARAMS for name, _ in pairs):
        return url
    query = urllib.parse.urlencode([(name, REDACTED if name.lower() in SIGNATURE_PARAMS else value)
                                    for name, value in pairs], safe="/:")
    return urllib.parse.urlunsplit(parts._replace(query=query))


def is_redacted(url: str) -> bool:
    return redact_url(url) != url or f"={REDACTED}" in url


def check_sink(sink: str, http_method: str) -> str:
    """A stored sink and its method, checked; returns the method to store
    (PUT for a URL that names none). ``JobParams`` calls it."""
    http = is_http(sink)
    if (not http and not objects.is_url(sink) and not sink.startswith(("file:", "dir:"))
            and sink != STDOUT):
        raise InvalidInput(f"a sink is file:PATH, dir:DIR, an http(s):// URL, a storage URL "
                           f"or {STDOUT}")
    if http and not http_method:
        http_method = HTTP_METHODS[0]
    if (http_method not in HTTP_METHODS) if http else http_method:
        raise InvalidInput(f"--http-method is {' or '.join(HTTP_METHODS)}, and only for an "
                           "http(s):// sink")
    return http_method


def check_url(url: str) -> str:
    """The URL, if it can be a sink; credentials belong in --header, not here.
    A presigned URL's signature is the one secret it may hold: ``redact_url``
    keeps it out of the job."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidInput("--to is not a valid URL") from None
    if parts.username is not None or parts.password is not None:
        # Not echoed: the URL holds a password.
        raise InvalidInput("--to URL contains a user name or password; pass credentials with "
                           "--header 'Authorization: ...' instead (they are never stored)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"--to {url!r} is not an http(s) URL with a host")
    return urllib.parse.urlunsplit(parts._replace(fragment=""))
