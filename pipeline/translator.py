"""The one thing the pipeline knows about a model: the Translator protocol.

A backend (``models.hf.HfTranslator``, ``models.ct2.Ct2Translator``) is bound
to a model and a device, never to a job: decoding settings come with every call
(as CTranslate2's ``translate_batch`` takes them), so one loaded model serves
every job that names it.

The contract that keeps translations independent of batching lives here too:
every text of one ``translate_batch`` call shares one output budget
(``Decoding.max_new_tokens``). Beam search is not prefix-consistent, so a
sentence's search must end at its own budget; the pipeline plans batches so
that every member's own budget is the batch's (``pipeline.batching``), and a
backend must not cut or extend any member's search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pipeline.errors import ErrorClass, InvalidInput


@dataclass(frozen=True)
class Decoding:
    """How one batch is decoded. Every field may change the output."""

    beams: int = 4  # beam width; 1 is greedy
    max_new_tokens: int = 256  # output budget of every text in the call, language code included
    no_repeat_ngram_size: int = 0  # 0: off; else no n-gram of this size occurs twice
    repetition_penalty: float = 1.0  # 1.0: off; > 1 discourages repeated tokens

    def __post_init__(self) -> None:
        if self.beams < 1 or self.max_new_tokens < 1:
            raise InvalidInput("decoding needs beams >= 1 and an output budget >= 1")
        if self.no_repeat_ngram_size < 0 or not self.repetition_penalty > 0:
            raise InvalidInput("no_repeat_ngram_size must be >= 0 and repetition_penalty > 0")


@dataclass(frozen=True)
class Translation:
    """One output of ``translate_batch``."""

    text: str
    tokens: int  # tokens generated, special tokens (language code, EOS) excluded
    stopped: bool  # True: the model ended it; False: it ran into its budget

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class TranslatorInfo:
    """What a translator is and where it runs: the profile that progress
    weights and ETAs learn from, and the defaults the pipeline plans with."""

    backend: str  # "hf" (transformers) or "ctranslate2"
    model: str  # hub id or absolute directory, as in the job parameters
    device: str  # "cpu", "cuda:0", ...
    compute_type: str  # float32, bfloat16, int8, ...
    default_batch_tokens: int  # padded source tokens per batch when the run sets none
    max_input_tokens: int  # longest input, special tokens included
    max_output_tokens: int  # no output budget is larger than this
    # What identifies the weights ``model`` names: a hub id's resolved
    # revision, or a directory's file contents (models.fingerprint); "" for
    # no model. Two translators with one fingerprint run the same weights.
    fingerprint: str = ""
    # Batches it can run at once. 1: a local model, called in turn on the
    # local executor's thread. More (a pool of Ray actors, a
    # ``pipeline.executors.Submitting`` translator): the inference stage keeps
    # that many ``submit`` calls in flight.
    concurrency: int = 1


@dataclass(frozen=True)
class BatchResult:
    """What one submitted call came to (``pipeline.executors``): its
    translations, or the exception it raised, and where it ran when that was
    not this process (a Ray actor and its node, recorded on the batch or on
    the failed attempt), and how long the model call took there. A value:
    nothing is set on a list or an exception."""

    translations: list[Translation] | None = None  # None: the call failed
    error: BaseException | None = None
    ran_on: str | None = None
    # Seconds the model call took where it ran: the engine's step alone for
    # a staged translator in this process (not its tokenizing or
    # detokenizing), the whole call otherwise; None where nobody timed it.
    call_s: float | None = None
    # When the call began on this process's engine thread
    # (``time.perf_counter``), so the stage can tell how long the engine sat
    # idle between calls; None for a call that ran elsewhere (a Ray actor).
    began: float | None = None


class Translator(Protocol):
    """A model behind the pipeline. Everything the pipeline uses is declared
    here; nothing is reached through ``getattr`` with a fallback."""

    def describe(self) -> TranslatorInfo:
        """Backend, model, device and limits. Cheap: never loads weights."""

    def load(self) -> None:
        """Load the weights now (otherwise the first ``translate_batch`` does)."""

    def check_language(self, code: str) -> None:
        """Raise ``Unsupported`` if the model does not know this FLORES code."""

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text, special tokens (language code, EOS) included."""

    def unknown_characters(self, texts: list[str]) -> set[str]:
        """The characters of ``texts`` the model cannot read: its tokenizer
        maps them to the unknown token, and they would vanish from the
        translation (most emoji, ♪, rare symbols and letters). Never
        whitespace. Preprocess carries them through as protected pieces."""

    def translate_batch(self, texts: list[str], src_lang: str, tgt_lang: str,
                        decoding: Decoding) -> list[Translation]:
        """One translation per text, in order, each searched with the same
        budget. May raise anything; see ``classify``."""

    def classify(self, exc: BaseException) -> ErrorClass:
        """The class of an exception raised by ``translate_batch``."""

    def recover(self, error_class: ErrorClass) -> None:
        """Clean up after a failure of this class (free memory after an OOM)."""

    def on_device(self, device: str) -> Translator:
        """The same model and backend on another device (``cpu``, ``cuda:N``):
        where a run goes on after its device failed for good. The same
        translator is returned for the same device, so a second switch does
        not load the weights again. Cheap: the weights load on first use."""

    def close(self) -> None:
        """Let go of the weights (and of any translator ``on_device`` made):
        the process that built it is done with it. Calls after it fail."""


class Staged(Protocol):
    """A translator whose ``translate_batch`` is three steps that can run
    on three threads (``pipeline.executors.LocalExecutor``): the engine's
    thread then runs only the model call, while the stage's thread
    tokenizes the next batch and another thread detokenizes the last one.
    ``translate_batch(texts, ...)`` must equal
    ``decode_batch(run_encoded(encode_batch(texts, src), tgt, decoding))``
    byte for byte. Found on the translator's class, never through a
    wrapper's ``__getattr__``: a wrapper that overrides ``translate_batch``
    (fault injection, a test's counter) is called whole."""

    def encode_batch(self, texts: list[str], src_lang: str) -> object:
        """The call's inputs, tokenized (and checked against the model's limit)."""

    def run_encoded(self, encoded: object, tgt_lang: str, decoding: Decoding) -> object:
        """The model call alone: the engine's raw outputs."""

    def decode_batch(self, raw: object) -> list[Translation]:
        """The raw outputs as translations, in order."""


def staged(translator: object) -> Staged | None:
    """``translator`` as a ``Staged`` one when its class is one, else None:
    also None where ``translate_batch`` was replaced on the instance itself
    (a benchmark's timer, a test's counter), which the steps would skip."""
    kind = type(translator)
    if "translate_batch" in getattr(translator, "__dict__", {}):
        return None
    if all(callable(getattr(kind, name, None))
           for name in ("encode_batch", "run_encoded", "decode_batch")):
        return translator  # type: ignore[return-value]
    return None


class NoModel:
    """Stands in for the model when only postprocess and upload are left
    (a retry after a failed delivery): nothing is loaded, and a stage that
    asked it to translate would be a bug."""

    def describe(self) -> TranslatorInfo:
        return TranslatorInfo("none", "", "none", "none", 2048, 0, 0)

    def load(self) -> None:
        pass

    def check_language(self, code: str) -> None:
        pass

    def count_tokens(self, texts: list[str]) -> list[int]:
        raise RuntimeError("no model was loaded for this run")

    def unknown_characters(self, texts: list[str]) -> set[str]:
        raise RuntimeError("no model was loaded for this run")

    def translate_batch(self, texts: list[str], src_lang: str, tgt_lang: str,
                        decoding: Decoding) -> list[Translation]:
        raise RuntimeError("no model was loaded for this run")

    def classify(self, exc: BaseException) -> ErrorClass:
        return ErrorClass.INTERNAL

    def recover(self, error_class: ErrorClass) -> None:
        pass

    def on_device(self, device: str) -> NoModel:
        return self

    def close(self) -> None:
        pass
