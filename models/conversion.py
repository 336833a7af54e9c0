"""A transformers checkpoint converted to CTranslate2's format, once.

CTranslate2 runs its own format, written by its own converter
(``ctranslate2.converters.TransformersConverter``). The pipeline converts a
checkpoint the first time the CTranslate2 backend loads it and keeps the
result in the cache::

    $XDG_CACHE_HOME/nllb-pipeline/ct2/<fingerprint>-<quantization>/

keyed by the checkpoint's content (``models.fingerprint``), not its name,
and by the weights' number format. What makes this safe:

- the converter writes into a temporary directory beside the target, which
  is renamed into place only when complete (with a marker file inside): a
  target that exists is a whole conversion;
- the conversion runs under an exclusive lock on ``.<target>.lock``: a second
  process that wants the same model waits for the first and then uses its
  result instead of converting again. The kernel releases the lock of a
  killed process, and the next conversion removes the temporary
  directories that killed conversions left behind (no other process can be
  writing them while the lock is held), so an interrupted conversion is
  redone, never used.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from models.checkpoint import is_converted
from pipeline.config import NOTE
from pipeline.errors import Unsupported

log = logging.getLogger("nllb_pipeline.models")
MARKER = "nllb_pipeline_conversion.json"
# Weight formats the converter writes. Every int8 compute type loads int8
# weights, so they share one conversion; the others need their own (int8
# weights run as float32 would keep int8's rounding).
QUANTIZATIONS = ("int8", "int16", "float16", "bfloat16", "float32")


def quantization_for(compute_type: str) -> str:
    """The weight format to convert to for a CTranslate2 compute type."""
    return "int8" if compute_type.startswith("int8") else compute_type


def _say(message: str) -> None:
    log.log(NOTE, message)  # shown without -v: a conversion takes a while


def converted_model(model_id: str, fingerprint: str, quantization: str, cache_root: Path, *,
                    say: Callable[[str], None] = _say) -> Path:
    """The directory of ``model_id`` converted to ``quantization``: from the
    cache, or converted now (saying so, and how long it took)."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}")
    root = cache_root / "ct2"
    target = root / f"{fingerprint}-{quantization}"
    if is_complete(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive(root / f".{target.name}.lock"):
        if is_complete(target):  # converted by another process while we waited
            return target
        _remove_leftovers(root, target)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=root))
        try:
            say(f"converting {model_id} to CTranslate2 ({quantization} weights) into {target}; "
                "this happens once")
            started = time.monotonic()
            out = work / "model"
            convert(model_id, out, quantization)
            (out / MARKER).write_text(json.dumps({"model": model_id, "fingerprint": fingerprint,
                                                  "quantization": quantization}))
            out.rename(target)
            say(f"converted {model_id} in {time.monotonic() - started:.1f} s")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def is_complete(directory: Path) -> bool:
    return (directory / MARKER).is_file() and is_converted(directory)


def convert(model_id: str, out: Path, quantization: str) -> None:
    """Run CTranslate2's converter; its failures become Unsupported."""
    from ctranslate2.converters import TransformersConverter

    from models.fingerprint import hub_revision

    # A hub id is converted from exactly the snapshot it was fingerprinted
    # by: its cached directory (no request to the hub), else by revision.
    source, revision = model_id, None
    if not Path(model_id).is_dir():
        from models.hub import cached_snapshot

        snapshot = cached_snapshot(model_id)
        source, revision = (str(snapshot), None) if snapshot else (model_id,
                                                                  hub_revision(model_id))
    try:
        TransformersConverter(source, revision=revision, low_cpu_mem_usage=True).convert(
            str(out), quantization=quantization)
    except (ValueError, NotImplementedError, OSError, KeyError) as exc:
        text = str(exc).strip()
        raise Unsupported(f"CTranslate2 cannot convert {model_id}: "
                          f"{text.splitlines()[0] if text else type(exc).__name__} "
                          "(use --backend hf)") from exc


def _remove_leftovers(root: Path, target: Path) -> None:
    for partial in root.glob(f".{target.name}.*.partial"):
        log.info("removing %s, left by an interrupted conversion", partial)
        shutil.rmtree(partial, ignore_errors=True)
    if target.exists():  # not ours (we rename whole conversions): never trust it
        log.warning("%s is incomplete; converting again", target)
        shutil.rmtree(target)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
