"""Foreign exceptions mapped to error classes, in one place.

A foreign library often says what went wrong only in a message (CUDA
errors always do). Those messages are matched against tables, one per
library, and nowhere else:

- ``CUDA``: the texts of NVIDIA's libraries (``cudaGetErrorString`` and the
  cuBLAS and cuDNN status names), which torch and CTranslate2 both pass on,
  each inside its own wording;
- ``TORCH``: what torch adds;
- ``CT2``: what CTranslate2 adds.

Each backend has one entry point, ``classify_torch`` (transformers) and
``classify_ct2`` (CTranslate2): by type first, then NVIDIA's table (a
poisoned context must win over anything else the message says), then its
library's. Every pattern has a test with the real message text
(tests/test_model_errors.py).

torch raises ``torch.OutOfMemoryError`` for CUDA OOM, but most other device
failures are plain ``RuntimeError``s (or ``torch.AcceleratorError``, a
subclass) that only say what happened: ``CUDA error: <the CUDA runtime's
text>``, a cuBLAS/cuDNN status, or one of torch's own texts.

CTranslate2 is C++ behind pybind11: ``std::runtime_error`` arrives as
``RuntimeError``, ``std::invalid_argument`` as ``ValueError`` and
``std::bad_alloc`` as ``MemoryError``. Its CUDA failures are runtime errors
whose message wraps NVIDIA's text (``src/cuda/utils.h``: ``CUDA failed with
error <cudaGetErrorString>``, ``cuBLAS failed with status <name>``,
``cuDNN failed with status <name>``; debug builds prefix ``file:line:``);
its CPU allocators add two texts (``src/cpu/allocator.cc``). Nothing here
needs torch to classify a CTranslate2 error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pipeline.errors import ErrorClass, PipelineError

# NVIDIA's own texts, whoever wraps them: the CUDA runtime's
# cudaGetErrorString (torch: "CUDA error: out of memory", CTranslate2: "CUDA
# failed with error out of memory") and the cuBLAS/cuDNN status names (torch:
# "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling ...", CTranslate2:
# "cuBLAS failed with status CUBLAS_STATUS_ALLOC_FAILED").
CUDA: tuple[tuple[str, ErrorClass], ...] = (
    # A device-side assert or a bad access poisons the CUDA context: every
    # later call on that device fails. Not just "device-side assert": every
    # torch CUDA error ends with "Compile with `TORCH_USE_CUDA_DSA` to enable
    # device-side assertions."
    (r"device-side assert triggered", ErrorClass.DEVICE_FATAL),
    (r"illegal memory access", ErrorClass.DEVICE_FATAL),
    (r"illegal instruction", ErrorClass.DEVICE_FATAL),
    (r"out of memory", ErrorClass.OOM),
    (r"launch timed out", ErrorClass.DEVICE_TRANSIENT),
    (r"ECC error", ErrorClass.DEVICE_TRANSIENT),
    (r"unspecified launch failure", ErrorClass.DEVICE_TRANSIENT),
    (r"busy or unavailable", ErrorClass.DEVICE_TRANSIENT),
    (r"CUBLAS_STATUS_ALLOC_FAILED", ErrorClass.OOM),
    (r"CUDNN_STATUS_ALLOC_FAILED", ErrorClass.OOM),
    (r"CUDNN_STATUS_NOT_ENOUGH_WORKSPACE", ErrorClass.OOM),
    (r"CUBLAS_STATUS_EXECUTION_FAILED", ErrorClass.DEVICE_TRANSIENT),
    (r"CUBLAS_STATUS_INTERNAL_ERROR", ErrorClass.DEVICE_TRANSIENT),
    (r"CUDNN_STATUS_EXECUTION_FAILED", ErrorClass.DEVICE_TRANSIENT),
)


class MessageTable:
    """Patterns, matched case-insensitively in order: the first match wins."""

    def __init__(self, *tables: Iterable[tuple[str, ErrorClass]]):
        self.entries = tuple(entry for table in tables for entry in table)
        self._compiled = tuple((re.compile(p, re.IGNORECASE), c) for p, c in self.entries)

    def first_match(self, message: str) -> tuple[str, ErrorClass] | None:
        for (pattern, error_class), (compiled, _) in zip(self.entries, self._compiled):
            if compiled.search(message):
                return pattern, error_class
        return None

    def classify(self, exc: BaseException, *, oom_types: tuple[type, ...] = (),
                 message_types: tuple[type, ...] = (RuntimeError,)) -> ErrorClass:
        """By type first (the pipeline's own errors, out-of-memory types),
        then by message for ``message_types``; everything else is INTERNAL."""
        if isinstance(exc, PipelineError):
            return exc.error_class
        if isinstance(exc, (MemoryError, *oom_types)):
            return ErrorClass.OOM
        if isinstance(exc, message_types):
            match = self.first_match(str(exc))
            if match is not None:
                return match[1]
        return ErrorClass.INTERNAL


# (pattern, class), tried after NVIDIA's texts.
TORCH: tuple[tuple[str, ErrorClass], ...] = (
    (r"DefaultCPUAllocator: can't allocate memory", ErrorClass.OOM),
    # The CUDA driver API's error names, in torch's "CUDA driver error: ...".
    (r"cudaErrorMemoryAllocation", ErrorClass.OOM),
    (r"cudaErrorLaunchTimeout", ErrorClass.DEVICE_TRANSIENT),
    (r"NCCL .*(timeout|unhandled system error)", ErrorClass.DEVICE_TRANSIENT),
)
CT2: tuple[tuple[str, ErrorClass], ...] = (
    (r"aligned_alloc: failed to allocate memory", ErrorClass.OOM),
    (r"mkl_malloc: failed to allocate memory", ErrorClass.OOM),
)
TORCH_TABLE = MessageTable(CUDA, TORCH)
CT2_TABLE = MessageTable(CUDA, CT2)


def classify_torch(exc: BaseException) -> ErrorClass:
    """The error class of an exception raised while translating with torch."""
    import torch

    return TORCH_TABLE.classify(exc, oom_types=(torch.OutOfMemoryError,))


def classify_ct2(exc: BaseException) -> ErrorClass:
    """The error class of an exception raised while translating with CTranslate2."""
    return CT2_TABLE.classify(exc)
