"""What a log record says besides its message: the job it is about, and for
a failure its batch, trace id, error class and decision.

``--log-format json`` writes every record as one JSON object a line with
the same keys, each null where it does not apply::

    {"time": 1764998400.123, "level": "warning", "logger": "nllb_pipeline",
     "job": "1a2b3c4d5e6f", "batch": "12.1", "trace_id": "9f8e7d6c",
     "error_class": "oom", "decision": "split", "message": "..."}

The job comes from the context the runner sets while it runs one
(``job_context``: a context variable, so each of a worker's job threads has
its own); the rest from the record's ``extra`` (``failure(...)``). The text
format is unchanged: ``nllb-pipeline: warning: ...``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

FIELDS = ("job", "batch", "trace_id", "error_class", "decision")
_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("nllb_job", default=None)


@contextlib.contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Records logged in this thread meanwhile are about ``job_id``."""
    token = _job.set(job_id)
    try:
        yield
    finally:
        _job.reset(token)


def current_job() -> str | None:
    return _job.get()


def failure(*, batch: str | None = None, trace_id: str | None = None,
            error_class=None, decision: str | None = None) -> dict:
    """``extra=`` for a record about a failed attempt."""
    return {"extra": {"batch": batch, "trace_id": trace_id,
                      "error_class": getattr(error_class, "value", error_class),
                      "decision": decision}}


def fields_of(record=None, **given) -> dict:
    """The structured fields of a record (or of a line with no record:
    ``given``), every key present."""
    out = {name: getattr(record, name, None) if record is not None else None for name in FIELDS}
    out.update({k: v for k, v in given.items() if k in FIELDS and v is not None})
    if out["job"] is None:
        out["job"] = current_job()
    return out
