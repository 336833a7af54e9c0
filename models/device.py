"""Which device and dtype a model runs on."""

from __future__ import annotations

import torch

from pipeline.errors import InvalidInput

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(spec: str) -> torch.device:
    """``auto`` takes CUDA when present; ``cuda:N`` must exist."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InvalidInput(f"--device {spec}: no CUDA device is available (use cpu or auto)")
        try:
            device = torch.device(spec)
        except RuntimeError as exc:
            raise InvalidInput(f"--device {spec}: {exc}") from exc
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise InvalidInput(
                f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
        return torch.device("cuda", index)
    raise InvalidInput(f"unknown device {spec!r} (auto, cpu, cuda or cuda:N)")


def resolve_dtype(spec: str, device: torch.device) -> torch.dtype:
    """Half precision on CUDA (bf16 where the GPU supports it), float32 on CPU."""
    if spec != "auto":
        return _DTYPES[spec]
    if device.type == "cuda":
        with torch.cuda.device(device):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def free_memory(device: torch.device) -> None:
    """Give cached blocks back after an OOM so the split halves can fit."""
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
