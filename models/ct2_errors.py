"""CTranslate2's exceptions, classified for the CTranslate2 backend.

CTranslate2 is C++ behind pybind11: ``std::runtime_error`` arrives as
``RuntimeError``, ``std::invalid_argument`` as ``ValueError`` and
``std::bad_alloc`` as ``MemoryError``. Its CUDA failures are runtime errors
whose message wraps NVIDIA's text (``src/cuda/utils.h``: ``CUDA failed with
error <cudaGetErrorString>``, ``cuBLAS failed with status <name>``,
``cuDNN failed with status <name>``; debug builds prefix ``file:line:``),
so ``models.errors.CUDA`` classifies them; its CPU allocators add the two
texts below (``src/cpu/allocator.cc``).
"""

from __future__ import annotations

from models.errors import CUDA, MessageTable
from pipeline.errors import ErrorClass

# (pattern, class), tried after NVIDIA's texts (models.errors.CUDA).
CT2: tuple[tuple[str, ErrorClass], ...] = (
    (r"aligned_alloc: failed to allocate memory", ErrorClass.OOM),
    (r"mkl_malloc: failed to allocate memory", ErrorClass.OOM),
)
TABLE = MessageTable(CUDA, CT2)


def classify(exc: BaseException) -> ErrorClass:
    """The error class of an exception raised while translating with CTranslate2."""
    return TABLE.classify(exc)
