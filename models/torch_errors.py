"""Torch's exceptions, classified for the transformers backend.

torch raises ``torch.OutOfMemoryError`` for CUDA OOM, but most other device
failures are plain ``RuntimeError``s (or ``torch.AcceleratorError``, a
subclass) that only say what happened in their message: ``CUDA error:
<the CUDA runtime's text>``, a cuBLAS/cuDNN status, or one of torch's own
texts below.
"""

from __future__ import annotations

import torch

from models.errors import CUDA, MessageTable
from pipeline.errors import ErrorClass

# (pattern, class), tried after NVIDIA's texts (models.errors.CUDA).
TORCH: tuple[tuple[str, ErrorClass], ...] = (
    (r"DefaultCPUAllocator: can't allocate memory", ErrorClass.OOM),
    # The CUDA driver API's error names, in torch's "CUDA driver error: ...".
    (r"cudaErrorMemoryAllocation", ErrorClass.OOM),
    (r"cudaErrorLaunchTimeout", ErrorClass.DEVICE_TRANSIENT),
    (r"NCCL .*(timeout|unhandled system error)", ErrorClass.DEVICE_TRANSIENT),
)
TABLE = MessageTable(CUDA, TORCH)


def classify(exc: BaseException) -> ErrorClass:
    """The error class of an exception raised while translating with torch."""
    return TABLE.classify(exc, oom_types=(torch.OutOfMemoryError,))
