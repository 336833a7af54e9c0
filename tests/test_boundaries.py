"""The module boundaries: torch stays in models/, the public face is pinned,
and foreign errors are classified in one table with an example per pattern."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import pipeline
from pipeline.errors import ErrorClass, InvalidInput, LeaseLost
from pipeline.store import Store
from tests.conftest import ROOT, cli_env

HEAVY = ("torch", "transformers", "tokenizers", "sentencepiece", "models")


def python(code: str, *flags: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *flags, "-c", code], capture_output=True, text=True, cwd=ROOT,
        env=env, timeout=120,
    )


IMPORT_AND_REPORT = (
    "import sys\n"
    "import pipeline, pipeline.cli, pipeline.runner, pipeline.stages, "
    "pipeline.formats.markdown\n"
    "{extra}"
    f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
)


def test_importing_the_orchestration_does_not_import_torch(tmp_path):
    proc = python(IMPORT_AND_REPORT.format(extra=""), env=cli_env(tmp_path / "jobs.db"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_check_above_would_see_torch(tmp_path):
    # A stand-in torch (cheap to import) proves the report catches it.
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "torch.py").write_text("OutOfMemoryError = MemoryError\n")
    env = cli_env(tmp_path / "jobs.db")
    env["PYTHONPATH"] = f"{fake}{os.pathsep}{env['PYTHONPATH']}"
    proc = python(IMPORT_AND_REPORT.format(extra="import models.errors\n"), env=env)
    assert proc.returncode == 0, proc.stderr
    reported = proc.stdout.strip()
    assert "'torch'" in reported and "'models.errors'" in reported


def test_public_names_are_sorted_and_pinned():
    assert pipeline.__all__ == sorted(pipeline.__all__)
    assert pipeline.__all__ == [
        "ErrorClass",
        "InvalidInput",
        "JobParams",
        "PipelineError",
        "RunSettings",
        "Store",
        "Translator",
        "run_job",
    ]
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None


def test_status_answers_without_importing_torch(tmp_path):
    db = tmp_path / "jobs.db"
    Store(db).close()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pipeline", "status"],
        capture_output=True, text=True, cwd=ROOT, env=cli_env(db), timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "no jobs\n"
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "pipeline.cli" in imported  # importtime really reported the imports
    assert not {m for m in imported if m.split(".")[0] in HEAVY}
    assert "torch" not in proc.stderr
    assert db.is_file()


# -- error classification -----------------------------------------------------

# A realistic message for every pattern of models.errors.MESSAGE_TABLE, and
# the class it must map to.
EXAMPLES: list[tuple[str, ErrorClass]] = [
    ("CUDA error: device-side assert triggered\nCUDA kernel errors might be asynchronously "
     "reported at some other API call, so the stacktrace below might be incorrect.",
     ErrorClass.DEVICE_FATAL),
    ("CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be "
     "asynchronously reported at some other API call", ErrorClass.DEVICE_FATAL),
    ("CUDA error: an illegal instruction was encountered", ErrorClass.DEVICE_FATAL),
    ("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
     "you tried to allocate 123 bytes. Error code 12 (Cannot allocate memory)", ErrorClass.OOM),
    ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.10 GiB "
     "of which 1.06 GiB is free.", ErrorClass.OOM),
    ("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`",
     ErrorClass.OOM),
    ("cuDNN error: CUDNN_STATUS_ALLOC_FAILED", ErrorClass.OOM),
    ("cuDNN error: CUDNN_STATUS_NOT_ENOUGH_WORKSPACE", ErrorClass.OOM),
    ("CUDA driver error: cudaErrorMemoryAllocation", ErrorClass.OOM),
    ("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported",
     ErrorClass.OOM),
    ("MPS backend out of memory (MPS allocated: 17.00 GB, other allocations: 1.20 GB, max "
     "allowed: 18.13 GB). Tried to allocate 256.00 MB on private pool.", ErrorClass.OOM),
    ("CUDA error: the launch timed out and was terminated", ErrorClass.DEVICE_TRANSIENT),
    ("CUDA driver error: cudaErrorLaunchTimeout", ErrorClass.DEVICE_TRANSIENT),
    ("CUDA error: uncorrectable ECC error encountered", ErrorClass.DEVICE_TRANSIENT),
    ("CUDA error: unspecified launch failure", ErrorClass.DEVICE_TRANSIENT),
    ("CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasSgemm( handle, opa, opb, "
     "m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc)`", ErrorClass.DEVICE_TRANSIENT),
    ("CUDA error: CUBLAS_STATUS_INTERNAL_ERROR when calling `cublasGemmEx( handle, opa, opb, "
     "m, n, k, &falpha, a, CUDA_R_16F, lda, b, CUDA_R_16F, ldb, &fbeta, c, CUDA_R_16F, ldc, "
     "CUDA_R_32F, CUBLAS_GEMM_DFALT_TENSOR_OP)`", ErrorClass.DEVICE_TRANSIENT),
    ("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED", ErrorClass.DEVICE_TRANSIENT),
    ("CUDA error: CUDA-capable device(s) is/are busy or unavailable",
     ErrorClass.DEVICE_TRANSIENT),
    ("NCCL communicator was aborted on rank 0. Original reason for failure was: [Rank 0] "
     "Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1, OpType=ALLREDUCE) ran "
     "for 600000 milliseconds before timing out.", ErrorClass.DEVICE_TRANSIENT),
    ("NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1269, unhandled "
     "system error, NCCL version 2.14.3", ErrorClass.DEVICE_TRANSIENT),
]


def first_pattern(message: str) -> str | None:
    from models.errors import MESSAGE_TABLE

    for pattern, _ in MESSAGE_TABLE:
        if re.search(pattern, message, re.IGNORECASE):
            return pattern
    return None


@pytest.mark.parametrize(("message", "expected"), EXAMPLES,
                         ids=[m.split("\n")[0][:40] for m, _ in EXAMPLES])
def test_runtime_error_messages_map_to_their_class(message, expected):
    from models.errors import MESSAGE_TABLE, classify

    assert classify(RuntimeError(message)) is expected
    pattern = first_pattern(message)
    assert pattern is not None
    assert dict(MESSAGE_TABLE)[pattern] is expected


def test_every_pattern_has_an_example_that_reaches_it():
    """Adding a pattern to MESSAGE_TABLE means adding an example above; a
    pattern shadowed by an earlier one has no example that reaches it."""
    from models.errors import MESSAGE_TABLE

    reached = {first_pattern(message) for message, _ in EXAMPLES}
    missing = [p for p, _ in MESSAGE_TABLE if p not in reached]
    assert missing == []


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
    from models.errors import classify

    assert classify(RuntimeError(message + DSA_TAIL)) is expected


def test_patterns_match_case_insensitively():
    from models.errors import classify

    assert classify(RuntimeError("cuda OUT OF MEMORY")) is ErrorClass.OOM


def test_classification_by_type():
    import torch

    from models.errors import classify

    assert classify(torch.OutOfMemoryError("x")) is ErrorClass.OOM
    assert classify(MemoryError()) is ErrorClass.OOM
    accelerator_error = getattr(torch, "AcceleratorError", None)
    if accelerator_error is not None:
        assert classify(accelerator_error("CUDA error: device-side assert triggered")) is (
            ErrorClass.DEVICE_FATAL)
    assert classify(InvalidInput("bad")) is ErrorClass.INVALID_INPUT
    assert classify(LeaseLost("gone")) is ErrorClass.INTERNAL


def test_everything_else_is_internal():
    from models.errors import classify

    assert classify(ValueError("CUDA out of memory")) is ErrorClass.INTERNAL  # by type first
    assert classify(RuntimeError("shape mismatch: [4, 3] vs [4, 5]")) is ErrorClass.INTERNAL
    assert classify(KeyError("x")) is ErrorClass.INTERNAL
