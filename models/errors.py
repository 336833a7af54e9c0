"""Torch and CUDA exceptions mapped to error classes, in one place.

torch raises ``torch.OutOfMemoryError`` for CUDA OOM, but most other device
failures are plain ``RuntimeError``s (or ``torch.AcceleratorError``) that
only say what happened in their message. Those messages are matched here,
against one table, and nowhere else.
"""

from __future__ import annotations

import re

import torch

from pipeline.errors import ErrorClass, PipelineError

# (pattern, class): first match wins; patterns are matched case-insensitively.
MESSAGE_TABLE: tuple[tuple[str, ErrorClass], ...] = (
    # A device-side assert poisons the CUDA context: every later call fails.
    # Not just "device-side assert": every CUDA error ends with "Compile with
    # `TORCH_USE_CUDA_DSA` to enable device-side assertions."
    (r"device-side assert triggered", ErrorClass.DEVICE_FATAL),
    (r"illegal memory access", ErrorClass.DEVICE_FATAL),
    (r"illegal instruction", ErrorClass.DEVICE_FATAL),
    (r"DefaultCPUAllocator: can't allocate memory", ErrorClass.OOM),
    (r"CUDA out of memory", ErrorClass.OOM),
    (r"CUBLAS_STATUS_ALLOC_FAILED", ErrorClass.OOM),
    (r"CUDNN_STATUS_ALLOC_FAILED", ErrorClass.OOM),
    (r"CUDNN_STATUS_NOT_ENOUGH_WORKSPACE", ErrorClass.OOM),
    (r"cudaErrorMemoryAllocation", ErrorClass.OOM),
    (r"out of memory", ErrorClass.OOM),
    (r"launch timed out", ErrorClass.DEVICE_TRANSIENT),
    (r"cudaErrorLaunchTimeout", ErrorClass.DEVICE_TRANSIENT),
    (r"ECC error", ErrorClass.DEVICE_TRANSIENT),
    (r"unspecified launch failure", ErrorClass.DEVICE_TRANSIENT),
    (r"CUBLAS_STATUS_EXECUTION_FAILED", ErrorClass.DEVICE_TRANSIENT),
    (r"CUBLAS_STATUS_INTERNAL_ERROR", ErrorClass.DEVICE_TRANSIENT),
    (r"CUDNN_STATUS_EXECUTION_FAILED", ErrorClass.DEVICE_TRANSIENT),
    (r"busy or unavailable", ErrorClass.DEVICE_TRANSIENT),
    (r"NCCL .*(timeout|unhandled system error)", ErrorClass.DEVICE_TRANSIENT),
)
_COMPILED = tuple((re.compile(p, re.IGNORECASE), c) for p, c in MESSAGE_TABLE)

FATAL_HINT = "the CUDA context is corrupted; restart the process to continue the job"


def classify(exc: BaseException) -> ErrorClass:
    """The error class of an exception raised while translating."""
    if isinstance(exc, PipelineError):
        return exc.error_class
    if isinstance(exc, torch.OutOfMemoryError):
        return ErrorClass.OOM
    if isinstance(exc, MemoryError):
        return ErrorClass.OOM
    if isinstance(exc, RuntimeError):
        message = str(exc)
        for pattern, error_class in _COMPILED:
            if pattern.search(message):
                return error_class
    return ErrorClass.INTERNAL
