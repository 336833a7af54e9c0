"""Error classes: every failure is classified once, where it is caught.

``ErrorClass`` says what kind of failure happened and whether trying again
can help. Exceptions raised by the pipeline itself carry their class;
foreign exceptions (torch, CUDA, HTTP) are mapped to a class at the one
boundary that knows them (``models.errors`` for torch).
"""

from __future__ import annotations

import enum


class ErrorClass(enum.Enum):
    OOM = "oom"
    DEVICE_TRANSIENT = "device_transient"
    DEVICE_FATAL = "device_fatal"
    TIMEOUT = "timeout"
    NETWORK = "network"
    RATE_LIMITED = "rate_limited"
    SERVER = "server"
    DISK_FULL = "disk_full"  # ENOSPC/EDQUOT writing the output or the job database
    # The process (or node) running a batch went away under it: a Ray actor
    # or node died, or the batch's result was lost. The batch runs again
    # elsewhere; nothing is wrong with the batch itself.
    WORKER_LOST = "worker_lost"
    # A translation failed the output checks (pipeline.quality): never raised,
    # it is the class of the repair ladder's attempt rows, each with a reason.
    QUALITY = "quality"
    INVALID_INPUT = "invalid_input"
    UNSUPPORTED = "unsupported"
    AUTH = "auth"
    INTERNAL = "internal"

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE


_RETRYABLE = frozenset(
    {
        ErrorClass.OOM,
        ErrorClass.DEVICE_TRANSIENT,
        ErrorClass.TIMEOUT,
        ErrorClass.NETWORK,
        ErrorClass.RATE_LIMITED,
        ErrorClass.SERVER,
        ErrorClass.DISK_FULL,
        ErrorClass.QUALITY,
        ErrorClass.WORKER_LOST,
    }
)


class PipelineError(Exception):
    """An error the pipeline understands: a class and a one-line message."""

    error_class = ErrorClass.INTERNAL
    exit_code = 1

    def __init__(self, message: str, *, error_class: ErrorClass | None = None):
        super().__init__(message)
        if error_class is not None:
            self.error_class = error_class


class InvalidInput(PipelineError):
    """Bad input or bad parameters: nothing to retry, exit code 2."""

    error_class = ErrorClass.INVALID_INPUT
    exit_code = 2


class JobNotFound(InvalidInput):
    """No job has this id (or unique id prefix)."""


class AmbiguousJob(JobNotFound):
    """An id prefix that starts several jobs' ids: no one job is named."""


class JobConflict(InvalidInput):
    """The job is in a state where the verb has nothing to do: retrying a
    job that is queued or already delivered, cancelling one that ended,
    downloading an output that is not there yet."""


class KeyReused(InvalidInput):
    """A caller's idempotency key already names a job with other parameters
    or another input; nothing was written."""


class Unsupported(PipelineError):
    """A model or language the model cannot handle."""

    error_class = ErrorClass.UNSUPPORTED
    exit_code = 2


class JobBusy(PipelineError):
    """The job is running in another live process."""

    exit_code = 2


class LeaseLost(PipelineError):
    """Another worker took this job over; stop without writing."""


class JobFailed(PipelineError):
    """The job ended FAILED; the message says why."""


class JobCanceled(PipelineError):
    """A cancel was requested; the worker stops at its next check (within a
    second or two; a model call in flight finishes first)."""


class WorkerStopping(PipelineError):
    """The worker was asked to stop (SIGTERM/SIGINT); the job goes back to the queue."""


class AttemptFailed(PipelineError):
    """One failed attempt at something outside this process, classified
    where it was caught: a delivery, a read of a storage object. The stage
    that made it decides about the next one (``pipeline.stages.retrying``):
    ``retry_after_s`` is the server's Retry-After; ``attempt`` is set there
    (the attempt number within its class) so the job's record shows it."""

    def __init__(self, message: str, *, error_class: ErrorClass,
                 retry_after_s: float | None = None, attempt: int = 1):
        super().__init__(message, error_class=error_class)
        self.retry_after_s = retry_after_s
        self.attempt = attempt


class DeliveryError(AttemptFailed):
    """One failed delivery attempt, classified (``pipeline.sinks``)."""


class StorageError(AttemptFailed):
    """One failed read (or listing) of a storage object, classified by
    ``pipeline.objects.errors``: a retryable class, or AUTH. A missing
    object or bucket is InvalidInput instead."""
