"""Sinks: where a finished translation goes, and how it gets there once.

``--to`` picks one of three (``grammar`` is the one place that knows their
spellings, ``targets`` reads the command line with it), and ``-o -`` a
fourth:

- ``file:PATH`` (the default: ``-o PATH``, or NAME.<tgt>.EXT next to the
  input, ``outputs``): written atomically (``files``);
- ``dir:DIR``: the same at DIR/NAME.<tgt>.EXT, or, given a base
  (``--relative-to``; a batch passes its working directory), at
  DIR/<the input's directory relative to the base>/NAME.<tgt>.EXT;
- an ``http://`` or ``https://`` URL: PUT (or POST) of the document,
  streamed, with the job's idempotency key (``http``; its failures are
  classed by the table in ``http_errors``); a presigned URL's signature is
  given to the run (``DeliveryOptions.signed_urls``), never stored;
- a storage URL (``s3://bucket/out/``, any fsspec protocol): an object,
  written atomically and once (``objects``);
- ``stdout:``: printed from the store by the command that ran the job.

What a sink delivers is bytes, or the job's output file
(``pipeline.output_file.OutputFile``), which it reads a piece at a time, so
a document is never whole in memory. Before any work, ``writable`` checks
that a file target can be written and holds nothing else. A sink makes one
attempt per ``deliver`` call and raises ``DeliveryError`` with its class;
the upload stage owns the retries. What a sink *is* (target, method) is
part of the job and its idempotency key; how this run reaches it (headers,
timeout, overwrite) is ``DeliveryOptions``, which is never stored: headers
carry credentials.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from pipeline import objects
from pipeline.errors import DeliveryError, ErrorClass
from pipeline.output_file import PIECE_BYTES
from pipeline.sinks.delivery import (RESERVED_HEADERS, DeliveryOptions, Payload, Progress,
                                     Receipt, parse_headers)
from pipeline.sinks.files import FileSink, StdoutSink, write_atomically
from pipeline.sinks.grammar import (HTTP_METHODS, REDACTED, STDOUT, check_sink, check_url,
                                    is_http, is_redacted, redact_url)
from pipeline.sinks.http import CONTENT_TYPES, HttpSink
from pipeline.sinks.storage import ObjectSink
from pipeline.sinks.outputs import default_output, dir_output, resolve_output
from pipeline.sinks.targets import Target, resolve_target
from pipeline.sinks.writable import check_creatable, check_target_free, check_writable

CHUNK_BYTES = PIECE_BYTES  # an HTTP body's pieces
Sink = FileSink | HttpSink | ObjectSink | StdoutSink


def sink_for(params, options: DeliveryOptions = DeliveryOptions(), *,
             clock: Callable[[], float] = time.time) -> Sink:
    """The sink a job's parameters name, reached with this run's options.
    A presigned URL whose signature this run was not given: DeliveryError
    (INVALID_INPUT), before anything is sent."""
    if params.sink == STDOUT:
        return StdoutSink()
    if is_http(params.sink):
        url = options.url_for(params.sink)
        if url is None:
            raise DeliveryError(
                f"the presigned URL {params.sink} is stored without its signature; give the "
                "whole URL again with --signed-url (or translate with the same --to)",
                error_class=ErrorClass.INVALID_INPUT)
        return HttpSink(url, params.http_method or HTTP_METHODS[0], options,
                        content_type=CONTENT_TYPES.get(params.fmt, "application/octet-stream"),
                        clock=clock, shown=params.sink)
    if objects.is_url(params.sink):
        return ObjectSink(params.sink, params.output, overwrite=options.overwrite,
                          storage=options.storage or None)
    return FileSink(params.sink, Path(params.output), overwrite=options.overwrite,
                    make_dirs=params.sink.startswith("dir:"))


__all__ = [
    "CHUNK_BYTES", "CONTENT_TYPES", "HTTP_METHODS", "REDACTED", "RESERVED_HEADERS", "STDOUT",
    "DeliveryError", "DeliveryOptions", "FileSink", "HttpSink", "ObjectSink", "Payload",
    "Progress",
    "Receipt", "StdoutSink", "Target", "check_creatable", "check_sink", "check_target_free",
    "check_url", "check_writable", "default_output", "dir_output", "is_http", "is_redacted",
    "parse_headers",
    "redact_url",
    "resolve_output", "resolve_target", "sink_for", "write_atomically",
]
