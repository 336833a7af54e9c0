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
      cancel a finished one, download an output that is not there)
413   the request body is over ``--max-upload-mb``
422   an ``Idempotency-Key`` reused with another document or parameters
500   a bug; the message names the exception, the log has the traceback
====  ==============================================================
"""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse

from pipeline.errors import JobBusy, JobConflict, JobNotFound, KeyReused, PipelineError, Unsupported
from pipeline.logs import failure

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
    if isinstance(exc, JobNotFound):
        return "not_found"
    if isinstance(exc, (JobConflict, JobBusy)):
        return "conflict"
    if isinstance(exc, KeyReused):
        return "idempotency_key_reused"
    return exc.error_class.value


def response_for(exc: BaseException) -> JSONResponse:
    """The JSON response for anything a route raised."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.error_class, exc.message, exc.headers)
    if isinstance(exc, PipelineError):
        return error_response(status_of(exc), class_of(exc), str(exc))
    log.exception("internal error in the API", **failure(error_class="internal"))
    return error_response(500, "internal", f"internal error: {type(exc).__name__}: {exc}")
