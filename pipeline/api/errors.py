"""Every refusal the API makes, as JSON with the status that says what it is.

The body of every error is ``{"error": {"class": ..., "message": ...}}``.
``class`` is the pipeline's ``ErrorClass`` value for errors the pipeline
raised (``invalid_input``, ``unsupported``, ...) and one of the names below
for refusals of the HTTP layer itself. Statuses:

====  ==============================================================
400   bad input: a binary or non-UTF-8 file, an unknown language code
      (with the CLI's "did you mean" hint), a bad option, a bad form
401   a token is required and the request did not carry it
403   a state-changing request from another site (or without
      ``X-Requested-With``), or a Host this server does not answer to
404   no such job, no such route
405   the route exists, the method does not
409   the job's state does not allow it (retry a running or queued job,
      cancel a finished one, download an output that is not there, delete
      a running job); a job id prefix that starts several jobs (the message
      names them); another live job already delivers to the same place
413   the request body is over ``--max-upload-mb``
422   an ``Idempotency-Key`` reused with another document or parameters
500   a bug; the message names the exception, the log has the traceback
====  ==============================================================
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from starlette.responses import JSONResponse

from pipeline.errors import (AmbiguousJob, JobBusy, JobConflict, JobNotFound, KeyReused,
                             PipelineError, Unsupported)
from pipeline.monitoring.logs import failure

log = logging.getLogger("nllb_pipeline")


class ApiError(Exception):
    """A refusal of the HTTP layer: status, class and a one-line message."""

    def __init__(self, status: int, error_class: str, message: str,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.error_class, self.message = status, error_class, message
        self.headers = headers or {}


def error_response(status: int, error_class: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"class": error_class, "message": message}}, status_code=status,
                        headers={"Cache-Control": "no-store", **(headers or {})})


def status_of(exc: PipelineError) -> int:
    """The HTTP status of an error the pipeline raised."""
    if isinstance(exc, AmbiguousJob):
        return 409
    if isinstance(exc, JobNotFound):
        return 404
    if isinstance(exc, (JobConflict, JobBusy)):
        return 409
    if isinstance(exc, KeyReused):
        return 422
    if isinstance(exc, Unsupported):
        return 400
    return 400 if exc.exit_code == 2 else 500


def class_of(exc: PipelineError) -> str:
    if isinstance(exc, AmbiguousJob):
        return "ambiguous_id"
    if isinstance(exc, JobNotFound):
        return "not_found"
    if isinstance(exc, (JobConflict, JobBusy)):
        return "conflict"
    if isinstance(exc, KeyReused):
        return "idempotency_key_reused"
    return exc.error_class.value


def response_for(exc: BaseException, files: Path | None = None) -> JSONResponse:
    """The JSON response for anything a route raised; messages as a user of
    the API reads them (``for_the_page``)."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.error_class, for_the_page(exc.message, files),
                              exc.headers)
    if isinstance(exc, PipelineError):
        return error_response(status_of(exc), class_of(exc), for_the_page(str(exc), files))
    log.exception("internal error in the API", **failure(error_class="internal"))
    return error_response(500, "internal", f"internal error: {type(exc).__name__}")


# The CLI's words for what the form calls otherwise.
FLAG_NAMES = {"jsonl": "jsonl_field", "tm": "tm", "max-upload-mb": "the server's upload limit",
              "output-dir": "output", "output": "output"}
_FLAG = re.compile(r"(?<![\w-])(?:-o/)?--([a-z][a-z0-9-]*)(?: FIELD)?")
_SEE_CLI = re.compile(r" ?\(see 'nllb-pipeline [^']*'\)")
_STORED = re.compile(r"(?:uploads/[0-9a-f]{2}/[0-9a-f]{64}|uploads/\.[0-9a-f]{32}\.part"
                     r"|outputs/[0-9a-f]{20})/")


def for_the_page(message: str, files: Path | None = None) -> str:
    """A message the pipeline wrote for the command line, as the API says it:
    the form's field names instead of the CLI's flags, and no path on the
    server (an upload or an output is named by its file name alone; any
    other path under the files directory by where it is in it)."""
    message = _SEE_CLI.sub("", message)
    message = _FLAG.sub(lambda m: FLAG_NAMES.get(m.group(1), m.group(1).replace("-", "_")),
                        message)
    if files is not None:
        for root in {str(files), str(Path(files).resolve())}:
            message = message.replace(root.rstrip("/") + "/", "")
    message = _STORED.sub("", message)
    return message
