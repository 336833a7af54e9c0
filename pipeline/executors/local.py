"""The local executor: the model in this process, one call at a time on a
thread of its own, so the inference stage overlaps its own work with the
engine's.

CTranslate2 and torch release the GIL inside a call, so while the engine
translates batch k on the executor's thread, the stage's thread prepares
batch k+1 (reads its pending chunks, submits it) and judges and commits
batch k-1. With a window of 2 the engine never waits for the pipeline's
bookkeeping unless that takes longer than a batch (``benchmarks/scale.py``
measures both). The calls still run one at a time and in plan order, so the
injected-fault draws, the OOM splits and the outputs are those of a
sequential run.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from pipeline.translator import Decoding, Translator

# Calls outstanding for a model in this process: the one the engine runs and
# the next one, queued behind it. More would only queue.
LOCAL_WINDOW = 2


class Executor(Protocol):
    """Runs translate calls without waiting for them."""

    window: int  # calls the inference stage keeps outstanding

    def submit(self, translator: Translator, texts: list[str], src_lang: str, tgt_lang: str,
               decoding: Decoding) -> Future:
        """A future of ``translator.translate_batch(...)``'s result or exception."""

    def close(self) -> None:
        """Let the call in flight finish, drop the queued ones."""


class LocalExecutor:
    """The translator's calls, one at a time, on one thread."""

    def __init__(self, window: int = LOCAL_WINDOW):
        self.window = window
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nllb-engine")

    def submit(self, translator: Translator, texts: list[str], src_lang: str, tgt_lang: str,
               decoding: Decoding) -> Future:
        return self._pool.submit(translator.translate_batch, texts, src_lang, tgt_lang, decoding)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class SubmittingExecutor:
    """A translator that submits its own calls (a pool of Ray actors):
    the window is its concurrency."""

    def __init__(self, window: int):
        self.window = window

    def submit(self, translator: Translator, texts: list[str], src_lang: str, tgt_lang: str,
               decoding: Decoding) -> Future:
        return translator.submit(texts, src_lang, tgt_lang, decoding)

    def close(self) -> None:
        pass


def executor_for(translator: Translator) -> Executor:
    """The executor that runs ``translator``'s calls."""
    concurrency = translator.describe().concurrency
    return SubmittingExecutor(concurrency) if concurrency > 1 else LocalExecutor()
