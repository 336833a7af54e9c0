"""The one thing the pipeline knows about a model."""

from __future__ import annotations

from typing import Protocol

from pipeline.errors import ErrorClass


class Translator(Protocol):
    """A model behind the pipeline. ``models.NllbTranslator`` is the real one;
    tests wrap it to count calls or inject faults."""

    max_input_tokens: int  # longest input, special tokens included

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text, special tokens (language code, EOS) included."""

    def translate_batch(self, texts: list[str], src_lang: str, tgt_lang: str) -> list[str]:
        """One translation per text, in order. May raise anything; see classify."""

    def classify(self, exc: BaseException) -> ErrorClass:
        """The class of an exception raised by translate_batch."""

    def recover(self, error_class: ErrorClass) -> None:
        """Clean up after a failure of this class (free memory after an OOM)."""


class NoModel:
    """Stands in for the model when only postprocess and upload are left
    (a retry after a failed delivery): nothing is loaded, and a stage that
    asked it to translate would be a bug."""

    max_input_tokens = 0

    def count_tokens(self, texts: list[str]) -> list[int]:
        raise RuntimeError("no model was loaded for this run")

    def translate_batch(self, texts: list[str], src_lang: str, tgt_lang: str) -> list[str]:
        raise RuntimeError("no model was loaded for this run")

    def classify(self, exc: BaseException) -> ErrorClass:
        return ErrorClass.INTERNAL

    def recover(self, error_class: ErrorClass) -> None:
        pass
