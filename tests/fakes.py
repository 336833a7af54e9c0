"""A deterministic translator for tests about the pipeline around the model.

It implements the whole ``Translator`` protocol. Its "translation" is the
source upper-cased; it runs out of memory on every call with more than
``oom_above`` texts, fails any call containing a text in ``fail`` with a
transient device error, returns an empty string for texts in ``empty``, and
cannot read (nor write) the characters in ``unknown``, as a real model drops
what its tokenizer maps to the unknown token.
Tests that need a real model's behaviour use the tiny model instead.
"""

from __future__ import annotations

from pipeline.errors import ErrorClass
from pipeline.retry import Backoff, RetryPolicy
from pipeline.translator import Translation, TranslatorInfo

# No waits at any level: tests record delays instead of sleeping them.
NO_WAITS = RetryPolicy(backoff=Backoff(0, 1, 0), batch_backoff=Backoff(0, 1, 0))


class FakeOOM(Exception):
    pass


class FakeTransient(Exception):
    pass


class FakeTranslator:
    def __init__(self, *, oom_above: int | None = None, fail=(), empty=(), unknown=""):
        self.oom_above, self.fail, self.empty = oom_above, set(fail), set(empty)
        self.unknown = set(unknown)
        self.calls: list[list[str]] = []

    def describe(self) -> TranslatorInfo:
        return TranslatorInfo("fake", "fake", "cpu", "float32", default_batch_tokens=64,
                              max_input_tokens=200, max_output_tokens=256)

    def load(self) -> None:
        pass

    def check_language(self, code: str) -> None:
        pass

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) + 2 for t in texts]

    def unknown_characters(self, texts: list[str]) -> set[str]:
        return {ch for t in texts for ch in t if ch in self.unknown}

    def translate_batch(self, texts, src_lang, tgt_lang, decoding):
        self.calls.append(list(texts))
        if self.oom_above is not None and len(texts) > self.oom_above:
            raise FakeOOM(f"out of memory on {len(texts)} texts")
        if self.fail & set(texts):
            raise FakeTransient("device hiccup")
        return [Translation("" if t in self.empty else self._unread(t).upper(), 3, True)
                for t in texts]

    def _unread(self, text: str) -> str:
        return "".join(ch for ch in text if ch not in self.unknown)

    def classify(self, exc: BaseException) -> ErrorClass:
        return {FakeOOM: ErrorClass.OOM, FakeTransient: ErrorClass.DEVICE_TRANSIENT}.get(
            type(exc), ErrorClass.INTERNAL)

    def recover(self, error_class: ErrorClass) -> None:
        pass

    def close(self) -> None:
        pass


class WordSwapTranslator(FakeTranslator):
    """A fake whose output the quality guards accept: each word becomes an
    invented one (reversed, plus "a"), numbers are copied, and every
    translation ends before its budget, as a trained model's does."""

    def translate_batch(self, texts, src_lang, tgt_lang, decoding):
        self.calls.append(list(texts))
        return [Translation(" ".join(w if w.isdigit() else w[::-1].lower() + "a"
                                     for w in t.split()), len(t.split()), True)
                for t in texts]
