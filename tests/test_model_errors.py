"""Foreign errors are classified at one boundary, in one table per library
(NVIDIA's texts, torch's, CTranslate2's), with a real message for every
pattern and the class it must map to."""

from __future__ import annotations

import pytest

from models.errors import CT2, CUDA, TORCH, MessageTable, classify_ct2, classify_torch
from pipeline.errors import ErrorClass, InvalidInput, LeaseLost

# NVIDIA's texts as torch wraps them (C10_CUDA_CHECK: "CUDA error: <text>",
# cuBLAS: "CUDA error: <status> when calling `...`", cuDNN: "cuDNN error: <status>").
TORCH_CUDA_EXAMPLES: list[tuple[str, ErrorClass]] = [
    ("CUDA error: device-side assert triggered\nCUDA kernel errors might be asynchronously "
     "reported at some other API call, so the stacktrace below might be incorrect.",
     ErrorClass.DEVICE_FATAL),
    ("CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be "
     "asynchronously reported at some other API call", ErrorClass.DEVICE_FATAL),
    ("CUDA error: an illegal instruction was encountered", ErrorClass.DEVICE_FATAL),
    ("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported",
     ErrorClass.OOM),
    ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.10 GiB "
     "of which 1.06 GiB is free.", ErrorClass.OOM),
    ("MPS backend out of memory (MPS allocated: 17.00 GB, other allocations: 1.20 GB, max "
     "allowed: 18.13 GB). Tried to allocate 256.00 MB on private pool.", ErrorClass.OOM),
    ("CUDA error: the launch timed out and was terminated", ErrorClass.DEVICE_TRANSIENT),
    ("CUDA error: uncorrectable ECC error encountered", ErrorClass.DEVICE_TRANSIENT),
    ("CUDA error: unspecified launch failure", ErrorClass.DEVICE_TRANSIENT),
    ("CUDA error: CUDA-capable device(s) is/are busy or unavailable",
     ErrorClass.DEVICE_TRANSIENT),
    ("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
     ErrorClass.OOM),
    ("cuDNN error: CUDNN_STATUS_ALLOC_FAILED", ErrorClass.OOM),
    ("cuDNN error: CUDNN_STATUS_NOT_ENOUGH_WORKSPACE", ErrorClass.OOM),
    ("CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasSgemm( handle, opa, opb, "
     "m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc)`", ErrorClass.DEVICE_TRANSIENT),
    ("CUDA error: CUBLAS_STATUS_INTERNAL_ERROR when calling `cublasGemmEx( handle, opa, opb, "
     "m, n, k, &falpha, a, CUDA_R_16F, lda, b, CUDA_R_16F, ldb, &fbeta, c, CUDA_R_16F, ldc, "
     "CUDA_R_32F, CUBLAS_GEMM_DFALT_TENSOR_OP)`", ErrorClass.DEVICE_TRANSIENT),
    ("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED", ErrorClass.DEVICE_TRANSIENT),
]
# torch's own texts.
TORCH_EXAMPLES: list[tuple[str, ErrorClass]] = [
    ("CUDA driver error: cudaErrorMemoryAllocation", ErrorClass.OOM),
    ("CUDA driver error: cudaErrorLaunchTimeout", ErrorClass.DEVICE_TRANSIENT),
    ("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
     "you tried to allocate 123 bytes. Error code 12 (Cannot allocate memory)", ErrorClass.OOM),
    ("NCCL communicator was aborted on rank 0. Original reason for failure was: [Rank 0] "
     "Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1, OpType=ALLREDUCE) ran "
     "for 600000 milliseconds before timing out.", ErrorClass.DEVICE_TRANSIENT),
    ("NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1269, unhandled "
     "system error, NCCL version 2.14.3", ErrorClass.DEVICE_TRANSIENT),
]
# CTranslate2's texts, as its source builds them: src/cuda/utils.h
# (CUDA_CHECK, CUBLAS_CHECK, CUDNN_CHECK) around cudaGetErrorString and the
# status names, src/cpu/allocator.cc; debug builds prefix "file:line: ".
CT2_EXAMPLES: list[tuple[str, ErrorClass]] = [
    ("CUDA failed with error out of memory", ErrorClass.OOM),
    ("/root/CTranslate2/src/cuda/allocator.cc:62: CUDA failed with error out of memory",
     ErrorClass.OOM),
    ("cuBLAS failed with status CUBLAS_STATUS_ALLOC_FAILED", ErrorClass.OOM),
    ("cuDNN failed with status CUDNN_STATUS_ALLOC_FAILED", ErrorClass.OOM),
    ("cuDNN failed with status CUDNN_STATUS_NOT_ENOUGH_WORKSPACE", ErrorClass.OOM),
    ("aligned_alloc: failed to allocate memory", ErrorClass.OOM),
    ("mkl_malloc: failed to allocate memory", ErrorClass.OOM),
    ("CUDA failed with error an illegal memory access was encountered", ErrorClass.DEVICE_FATAL),
    ("CUDA failed with error device-side assert triggered", ErrorClass.DEVICE_FATAL),
    ("CUDA failed with error an illegal instruction was encountered", ErrorClass.DEVICE_FATAL),
    ("CUDA failed with error the launch timed out and was terminated",
     ErrorClass.DEVICE_TRANSIENT),
    ("CUDA failed with error unspecified launch failure", ErrorClass.DEVICE_TRANSIENT),
    ("CUDA failed with error uncorrectable ECC error encountered", ErrorClass.DEVICE_TRANSIENT),
    ("CUDA failed with error CUDA-capable device(s) is/are busy or unavailable",
     ErrorClass.DEVICE_TRANSIENT),
    ("cuBLAS failed with status CUBLAS_STATUS_EXECUTION_FAILED", ErrorClass.DEVICE_TRANSIENT),
    ("cuBLAS failed with status CUBLAS_STATUS_INTERNAL_ERROR", ErrorClass.DEVICE_TRANSIENT),
    ("cuDNN failed with status CUDNN_STATUS_EXECUTION_FAILED", ErrorClass.DEVICE_TRANSIENT),
]

BACKENDS = {  # backend's classify, its table, the examples written in its library's words
    "torch": (classify_torch, MessageTable(CUDA, TORCH), TORCH_CUDA_EXAMPLES + TORCH_EXAMPLES),
    "ctranslate2": (classify_ct2, MessageTable(CUDA, CT2), CT2_EXAMPLES),
}
CASES = [(lib, m, c) for lib, (_, _, examples) in BACKENDS.items() for m, c in examples]


@pytest.mark.parametrize(("library", "message", "expected"), CASES,
                         ids=[f"{lib}:{m.splitlines()[0][:40]}" for lib, m, _ in CASES])
def test_runtime_error_messages_map_to_their_class(library, message, expected):
    classify, table, _ = BACKENDS[library]
    assert classify(RuntimeError(message)) is expected
    assert table.first_match(message)[1] is expected


@pytest.mark.parametrize("library", list(BACKENDS))
def test_every_pattern_has_an_example_that_reaches_it(library):
    """Adding a pattern means adding an example above; a pattern shadowed
    by an earlier one has no example that reaches it."""
    _, table, examples = BACKENDS[library]
    own = {p for p, _ in (TORCH if library == "torch" else CT2)}
    reached = {table.first_match(message)[0] for message, _ in examples}
    assert own - reached == set()
    assert {p for p, _ in CUDA} - reached == set()  # each library wraps every NVIDIA text


def test_a_poisoned_context_wins_over_what_else_the_message_says():
    message = ("CUDA failed with error an illegal memory access was encountered "
               "(while handling: out of memory)")
    assert classify_ct2(RuntimeError(message)) is ErrorClass.DEVICE_FATAL


# What torch's C10_CUDA_CHECK really raises: every message ends with this
# line (wheels are built without TORCH_USE_CUDA_DSA).
DSA_TAIL = (
    "\nCUDA kernel errors might be asynchronously reported at some other API call, so the "
    "stacktrace below might be incorrect.\nFor debugging consider passing "
    "CUDA_LAUNCH_BLOCKING=1\nCompile with `TORCH_USE_CUDA_DSA` to enable device-side "
    "assertions.\n"
)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("CUDA error: device-side assert triggered", ErrorClass.DEVICE_FATAL),
        ("CUDA error: an illegal memory access was encountered", ErrorClass.DEVICE_FATAL),
        # The tail's "enable device-side assertions" must not make these fatal.
        ("CUDA error: out of memory", ErrorClass.OOM),
        ("CUDA error: unspecified launch failure", ErrorClass.DEVICE_TRANSIENT),
        ("CUDA error: the launch timed out and was terminated", ErrorClass.DEVICE_TRANSIENT),
        ("CUDA error: uncorrectable ECC error encountered", ErrorClass.DEVICE_TRANSIENT),
        ("CUDA error: CUDA-capable device(s) is/are busy or unavailable",
         ErrorClass.DEVICE_TRANSIENT),
    ],
)
def test_real_torch_cuda_messages_with_their_standard_tail(message, expected):
    assert classify_torch(RuntimeError(message + DSA_TAIL)) is expected


def test_patterns_match_case_insensitively():
    assert classify_torch(RuntimeError("cuda OUT OF MEMORY")) is ErrorClass.OOM
    assert classify_ct2(RuntimeError("CUDA FAILED WITH ERROR OUT OF MEMORY")) is ErrorClass.OOM


def test_classification_by_type():
    import torch

    assert classify_torch(torch.OutOfMemoryError("x")) is ErrorClass.OOM
    assert classify_torch(MemoryError()) is ErrorClass.OOM
    accelerator_error = getattr(torch, "AcceleratorError", None)
    if accelerator_error is not None:
        assert classify_torch(accelerator_error("CUDA error: device-side assert triggered")) is (
            ErrorClass.DEVICE_FATAL)
    # pybind11 turns CTranslate2's std::bad_alloc into MemoryError.
    assert classify_ct2(MemoryError("std::bad_alloc")) is ErrorClass.OOM
    for classify in (classify_torch, classify_ct2):
        assert classify(InvalidInput("bad")) is ErrorClass.INVALID_INPUT
        assert classify(LeaseLost("gone")) is ErrorClass.INTERNAL


def test_everything_else_is_internal():
    for classify in (classify_torch, classify_ct2):
        assert classify(ValueError("CUDA out of memory")) is ErrorClass.INTERNAL  # by type first
        assert classify(RuntimeError("shape mismatch: [4, 3] vs [4, 5]")) is ErrorClass.INTERNAL
        assert classify(KeyError("x")) is ErrorClass.INTERNAL
    # CTranslate2's std::invalid_argument: a bug of ours, not the device.
    assert classify_ct2(ValueError("Unsupported compute type: int4")) is ErrorClass.INTERNAL


def test_the_ctranslate2_classification_does_not_need_torch(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT, cli_env

    code = ("import sys, models.errors\n"
            "models.errors.classify_ct2(RuntimeError('CUDA failed with error out of memory'))\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=cli_env(tmp_path / "jobs.db"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
