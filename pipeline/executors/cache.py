"""The translators a process keeps: one per model and backend, shared by
every job that names them (decoding settings come with each call)."""

from __future__ import annotations

import logging
import threading

from pipeline.config import JobParams, RunSettings
from pipeline.translator import Translator

log = logging.getLogger("nllb_pipeline")


class TranslatorCache:
    """One translator per model and backend (decoding settings come with
    each call), built on first use, its languages checked for every job it
    serves. A job that moved to the fallback device got its translator from
    ``on_device``, which keeps it: the next job that needs it does not load
    the weights again."""

    def __init__(self, settings: RunSettings, *, inject_faults: str | None = None):
        self.settings, self.inject_faults = settings, inject_faults
        self._translators: dict[tuple[str, str], Translator] = {}
        self._lock = threading.Lock()  # a worker's job threads share the cache

    def __call__(self, params: JobParams) -> Translator:
        key = (params.model, self.settings.backend)
        with self._lock:
            if key not in self._translators:
                self._translators[key] = self._build(params.model)
            translator = self._translators[key]
        translator.check_language(params.src_lang)
        translator.check_language(params.tgt_lang)
        return translator

    def check(self) -> None:
        """Refuse, before any job is claimed or created, what this run's
        settings ask of the machine and it lacks (a CUDA device)."""
        from models.device import check_devices

        check_devices(self.settings)

    def _build(self, model: str) -> Translator:
        from models import open_translator

        translator = open_translator(model, self.settings)
        if self.inject_faults:
            from models.faults import FaultInjectingTranslator, FaultSpec

            spec = FaultSpec.parse(self.inject_faults)
            log.warning("fault injection is ON (%s); failures are simulated", spec)
            translator = FaultInjectingTranslator(translator, spec)
        return translator

    def close(self) -> None:
        """Close every translator built here (the process is done with them)."""
        with self._lock:
            translators, self._translators = list(self._translators.values()), {}
        for translator in translators:
            translator.close()
