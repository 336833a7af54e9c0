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
