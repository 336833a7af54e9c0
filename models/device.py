"""Which device and number format a model runs on.

The device grammar (``auto``, ``cpu``, ``cuda``, ``cuda:N``) is shared by
every backend; each backend asks its own library how many GPUs it sees (a
CPU build of torch next to CTranslate2's CUDA wheel sees none), and each
has its own number formats: torch dtypes for transformers, compute types
for CTranslate2 (``models.ct2``).
"""

from __future__ import annotations

from models.backends import check_compute_type
from pipeline.errors import InvalidInput



def parse_device(spec: str, cuda_count: int) -> tuple[str, int]:
    """``(kind, index)`` for a device spec: ``auto`` takes the first GPU when
    there is one; ``cuda:N`` must exist. The index of ``cpu`` is 0."""
    if spec == "auto":
        return ("cuda", 0) if cuda_count else ("cpu", 0)
    if spec == "cpu":
        return "cpu", 0
    if spec == "cuda" or spec.startswith("cuda:"):
        if not cuda_count:
            raise InvalidInput(f"--device {spec}: no CUDA device is available (use cpu or auto)")
        index_text = spec.partition(":")[2] or "0"
        if not index_text.isdigit():
            raise InvalidInput(f"--device {spec}: the index after cuda: must be a number")
        index = int(index_text)
        if index >= cuda_count:
            raise InvalidInput(f"--device {spec}: only {cuda_count} CUDA device(s) present")
        return "cuda", index
    raise InvalidInput(f"unknown device {spec!r} (auto, cpu, cuda or cuda:N)")


def cuda_devices(backend: str) -> int:
    """How many CUDA devices the library of ``backend`` sees (``auto``: the
    most that either sees). Asks without loading a model."""
    counts = [0]
    if backend in ("auto", "ctranslate2"):
        try:
            import ctranslate2
        except ImportError:
            pass
        else:
            counts.append(ctranslate2.get_cuda_device_count())
    if backend in ("auto", "hf"):
        import torch

        counts.append(torch.cuda.device_count() if torch.cuda.is_available() else 0)
    return max(counts)


def check_devices(settings) -> None:
    """Refuse a ``--device`` or ``--fallback-device`` this machine lacks
    (``cuda`` without CUDA, ``cuda:3`` with two GPUs), before a job is
    created or claimed: InvalidInput, exit 2."""
    named = [spec for spec in (settings.device, settings.fallback_device) if spec]
    if not any(spec.startswith("cuda") for spec in named):
        return  # auto and cpu are there on every machine: no library to ask
    count = cuda_devices(settings.backend)
    parse_device(settings.device, count)
    if settings.fallback_device:
        try:
            parse_device(settings.fallback_device, count)
        except InvalidInput as exc:
            raise InvalidInput(str(exc).replace("--device", "--fallback-device", 1)) from None


def device_name(kind: str, index: int) -> str:
    """How a device is recorded: ``cpu`` or ``cuda:N``."""
    return "cpu" if kind == "cpu" else f"{kind}:{index}"


def resolve_device(spec: str):
    """The torch device for a spec (``auto`` takes CUDA when torch sees it)."""
    import torch

    kind, index = parse_device(spec, torch.cuda.device_count() if torch.cuda.is_available()
                               else 0)
    return torch.device("cpu") if kind == "cpu" else torch.device(kind, index)


def resolve_dtype(spec: str, device):
    """Half precision on CUDA (bf16 where the GPU supports it), float32 on CPU."""
    import torch

    if spec != "auto":
        check_compute_type("hf", spec)
        return getattr(torch, spec)
    if device.type == "cuda":
        with torch.cuda.device(device):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def free_memory(device) -> None:
    """Give cached blocks back after an OOM so the split halves can fit."""
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
