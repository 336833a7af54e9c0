"""What every sink shares: this run's delivery options, what a delivery
delivers, and the receipt it leaves."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

from pipeline.errors import InvalidInput
from pipeline.output_file import OutputFile

Progress = Callable[[int], None]  # bytes delivered so far
Payload = bytes | OutputFile  # what a sink delivers

# Set by the HTTP sink itself; a --header cannot replace them.
RESERVED_HEADERS = frozenset(
    {"content-digest", "content-length", "host", "idempotency-key", "transfer-encoding"})


@dataclass(frozen=True)
class DeliveryOptions:
    """How this run delivers; never stored, never part of the job."""

    # (name, value) pairs; the values are secrets, so repr leaves them out
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    timeout_s: float = 30.0  # connect, read and write timeout of one HTTP attempt
    overwrite: bool = False  # a file sink may replace a different existing file
    # Presigned http(s) URLs given whole this run (the job stores them
    # redacted: pipeline.sinks.grammar.redact_url); secrets, like headers.
    signed_urls: tuple[str, ...] = field(default=(), repr=False)
    # fsspec storage options per protocol, from the config file's [storage]
    storage: Mapping[str, Mapping] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (self.timeout_s > 0 and self.timeout_s != float("inf")):
            raise InvalidInput(f"--http-timeout must be a finite number > 0, not {self.timeout_s}")

    def given(self, to: str | None) -> DeliveryOptions:
        """These options, with ``to`` among the signed URLs if it is one."""
        from pipeline.sinks.grammar import is_http, redact_url

        if not (to and is_http(to) and redact_url(to) != to):
            return self
        return replace(self, signed_urls=(*self.signed_urls, to))

    def url_for(self, sink: str) -> str | None:
        """The whole URL to send to for a stored (maybe redacted) URL sink;
        None when its signature was not given this run."""
        from pipeline.sinks.grammar import is_redacted, redact_url

        if not is_redacted(sink):
            return sink
        return next((url for url in self.signed_urls if redact_url(url) == sink), None)

    @property
    def header_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.headers)


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_ENV_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def parse_headers(specs: Sequence[str],
                  environ: Mapping[str, str] = os.environ) -> tuple[tuple[str, str], ...]:
    """``--header 'Name: value'`` options, with ``$VAR`` and ``${VAR}`` in
    values taken from the environment. Errors name the header and the
    variable, never the value."""
    headers = []
    for spec in specs:
        name, sep, value = spec.partition(":")
        name = name.strip()
        if not sep or not _HEADER_NAME.match(name):
            raise InvalidInput("--header must look like 'Name: value' (a header name, a colon, "
                               "then the value)")
        if name.lower() in RESERVED_HEADERS:
            raise InvalidInput(f"--header {name}: nllb-pipeline sets this header itself")

        def expand(match: re.Match, name=name) -> str:
            var = match.group(1) or match.group(2)
            if var not in environ:
                raise InvalidInput(f"--header {name}: environment variable ${var} is not set")
            return environ[var]

        value = _ENV_VAR.sub(expand, value.strip())
        if "\r" in value or "\n" in value:
            raise InvalidInput(f"--header {name}: the value contains a line break")
        headers.append((name, value))
    return tuple(headers)


@dataclass(frozen=True)
class Receipt:
    """What one successful delivery left behind."""

    sink: str
    target: str  # the file written, or the URL
    status: int | None = None  # HTTP status; None for a file
    response_id: str | None = None  # the response's JSON "id", Location or ETag

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, data: str | bytes | None, *, sink: str, target: str) -> Receipt:
        fields = json.loads(data) if data else {}
        return cls(**{"sink": sink, "target": target, **fields})
