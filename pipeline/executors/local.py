"""The local executor: the model in this process, one call at a time on a
thread of its own, so the inference stage overlaps its own work with the
engine's.

CTranslate2 and torch release the GIL inside a call, so while the engine
translates batch k on the executor's thread, the stage's thread prepares
batch k+1 (reads its pending chunks, tokenizes them, submits it) and
judges and commits batch k-1, and batch k-1's outputs are detokenized on a
third thread. With a window of 2 the engine never waits for the pipeline's
bookkeeping unless that takes longer than a batch (``benchmarks/scale.py``
measures both). The calls still run one at a time and in plan order, so the
injected-fault draws, the OOM splits and the outputs are those of a
sequential run. Each result says when its model call began and how long it
took (``BatchResult.began``, ``call_s``): the stage stores them on the
batch, so ``show`` and ``benchmarks/scale.py`` can tell the engine's time
from the time it waited for the pipeline.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Protocol

from pipeline.translator import BatchResult, Decoding, Staged, Translator, staged

# Calls outstanding for a model in this process: the one the engine runs and
# the next one, queued behind it. More would only queue.
LOCAL_WINDOW = 2


class Executor(Protocol):
    """Runs translate calls without waiting for them: a handful of verbs, as
    CTranslate2's asynchronous ``translate_batch`` and vLLM's executors."""

    window: int  # calls the inference stage keeps outstanding

    def submit(self, translator: Translator, texts: list[str], src_lang: str, tgt_lang: str,
               decoding: Decoding) -> Future:
        """A future of the call's ``BatchResult``; it never raises: a failed
        call is a result with its ``error``."""

    def close(self) -> None:
        """Let the call in flight finish, drop the queued ones."""


class Submitting(Protocol):
    """A translator that runs calls elsewhere and submits them itself (a
    pool of Ray actors, ``models.ray_pool``): ``describe().concurrency``
    calls at once."""

    def submit(self, texts: list[str], src_lang: str, tgt_lang: str,
               decoding: Decoding) -> Future:
        """A future of the call's ``BatchResult`` (its ``ran_on`` says where
        it ran); it never raises."""


class LocalExecutor:
    """The translator's calls, one at a time, on one thread. A ``Staged``
    translator's call is cut in three: its texts are tokenized here, on the
    caller's (the stage's) thread, the model runs on the engine's thread,
    and its outputs are detokenized on a third, in order; so the engine
    waits for neither (the fast path users meet most). Any other translator
    (a wrapper that injects faults, a test's) is called whole on the
    engine's thread."""

    def __init__(self, window: int = LOCAL_WINDOW):
        self.window = window
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nllb-engine")
        self._decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nllb-decode")

    def submit(self, translator: Translator, texts: list[str], src_lang: str, tgt_lang: str,
               decoding: Decoding) -> Future:
        steps = staged(translator)
        if steps is None:
            return self._pool.submit(_call, translator, texts, src_lang, tgt_lang, decoding)
        try:
            encoded = steps.encode_batch(texts, src_lang)
        except Exception as exc:  # an input over the model's limit: the call's result
            done: Future = Future()
            done.set_result(BatchResult(error=exc))
            return done
        ran = self._pool.submit(_timed, steps.run_encoded, encoded, tgt_lang, decoding)
        return self._decoder.submit(_decoded, steps, ran)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._decoder.shutdown(wait=True, cancel_futures=True)


def _timed(run, *args) -> tuple[object, BatchResult]:
    """``run(*args)`` on the engine's thread: its output, and a result that
    says when the call began and how long it took, with its exception if it
    raised (a value for the stage to classify, on its own thread)."""
    began = time.perf_counter()
    try:
        out, error = run(*args), None
    except Exception as exc:
        out, error = None, exc
    return out, BatchResult(error=error, call_s=time.perf_counter() - began, began=began)


def _call(translator: Translator, texts: list[str], src_lang: str, tgt_lang: str,
          decoding: Decoding) -> BatchResult:
    out, timed = _timed(translator.translate_batch, texts, src_lang, tgt_lang, decoding)
    return timed if timed.error is not None else replace(timed, translations=out)


def _decoded(steps: Staged, ran: Future) -> BatchResult:
    try:
        raw, timed = ran.result()
    except Exception as exc:  # a cancel
        return BatchResult(error=exc)
    if timed.error is not None:  # the model call's error, as ``_call`` gives it
        return timed
    try:
        return replace(timed, translations=steps.decode_batch(raw))
    except Exception as exc:
        return replace(timed, error=exc)


class SubmittingExecutor:
    """The calls of a ``Submitting`` translator: the window is its concurrency."""

    def __init__(self, window: int):
        self.window = window

    def submit(self, translator: Submitting, texts: list[str], src_lang: str, tgt_lang: str,
               decoding: Decoding) -> Future:
        return translator.submit(texts, src_lang, tgt_lang, decoding)

    def close(self) -> None:
        pass


def executor_for(translator: Translator) -> Executor:
    """The executor that runs ``translator``'s calls."""
    concurrency = translator.describe().concurrency
    return SubmittingExecutor(concurrency) if concurrency > 1 else LocalExecutor()
