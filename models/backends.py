"""Which backend runs a model: ``--backend auto|hf|ctranslate2``.

``auto`` takes CTranslate2 when it is installed, the model converts and the
device runs the asked number format; else transformers. A converted
CTranslate2 directory runs only on CTranslate2. The backend is a run
setting, like the device: it is not part of a job, so a job started on one
backend can resume on the other.
"""

from __future__ import annotations

import logging

from models.checkpoint import Checkpoint
from pipeline.config import RunSettings
from pipeline.errors import InvalidInput, Unsupported

log = logging.getLogger("nllb_pipeline.models")

# What each backend accepts for --dtype besides "auto": transformers takes
# torch dtypes, CTranslate2 its compute types (docs: quantization.md; which
# of them a device runs is asked of ctranslate2.get_supported_compute_types).
# Read by pipeline.settings before a job exists, so this module imports no
# model library; each backend checks against its own row when it loads.
COMPUTE_TYPES = {
    "hf": ("float32", "float16", "bfloat16"),
    "ctranslate2": ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16",
                    "float16", "bfloat16", "float32"),
}
BACKEND_NAMES = {"hf": "transformers", "ctranslate2": "CTranslate2"}


def check_compute_type(backend: str, dtype: str) -> None:
    """``dtype`` is ``auto`` or one of ``backend``'s compute types (with
    ``auto`` for the backend: one of any backend's). InvalidInput otherwise,
    naming what the backend runs."""
    if dtype == "auto":
        return
    known = [name for name, types in COMPUTE_TYPES.items() if dtype in types]
    if not known:
        every = dict.fromkeys(t for types in COMPUTE_TYPES.values() for t in types)
        raise InvalidInput(f"unknown dtype {dtype!r} (auto, {', '.join(every)})")
    if backend != "auto" and backend not in known:
        raise InvalidInput(
            f"--dtype {dtype} is a {BACKEND_NAMES[known[0]]} compute type; the "
            f"{BACKEND_NAMES[backend]} backend runs {', '.join(COMPUTE_TYPES[backend])} "
            f"(or use --backend {known[0]})")


def open_translator(model: str, settings: RunSettings = RunSettings(), *,
                    fixed_length: bool = False):
    """A translator for ``model`` on ``settings.backend`` (with
    ``settings.tokenizer`` if given), ready to load: for CTranslate2 the
    checkpoint is converted now if the cache has none (printing what it
    does), so a model that does not convert is known before a job starts.
    Loads the tokenizer, not the weights."""
    from models.ct2 import Ct2Translator, available
    from models.device import check_devices
    from models.hf import HfTranslator

    check_devices(settings)  # before the checkpoint: a device it lacks is the user's to fix
    backend = settings.backend
    checkpoint = Checkpoint(model, settings.tokenizer or None)
    if backend == "hf":
        return HfTranslator(model, settings, fixed_length=fixed_length, checkpoint=checkpoint)
    if backend == "auto" and not checkpoint.converted and not available():
        return HfTranslator(model, settings, fixed_length=fixed_length, checkpoint=checkpoint)
    try:
        translator = Ct2Translator(model, settings, fixed_length=fixed_length,
                                   checkpoint=checkpoint)
        translator.prepare()
    except (Unsupported, InvalidInput) as exc:
        if backend == "ctranslate2" or checkpoint.converted:
            raise
        log.warning("%s; using transformers", exc)
        return HfTranslator(model, settings, fixed_length=fixed_length, checkpoint=checkpoint)
    return translator
