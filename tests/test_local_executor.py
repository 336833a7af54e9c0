"""The local executor's three threads (``pipeline.executors.LocalExecutor``).

A ``Staged`` translator's call is tokenized on the caller's thread, run on
the engine's and detokenized on a third, so the engine's thread runs the
model and nothing else; any other translator is called whole. The outputs
must be those of ``translate_batch``, in order, at the defaults (beams 4).
"""

from __future__ import annotations

import threading

import pytest

from pipeline.config import RunSettings
from pipeline.executors.local import LocalExecutor
from pipeline.translator import Decoding, Translation, staged

DEFAULTS = Decoding()  # beams 4, as users run it


class StagedFake:
    """Records which thread ran each step; ``fail`` names a step that raises."""

    def __init__(self, fail: str = ""):
        self.threads: dict[str, set[str]] = {"encode": set(), "run": set(), "decode": set()}
        self.fail = fail

    def _step(self, name: str) -> None:
        self.threads[name].add(threading.current_thread().name)
        if self.fail == name:
            raise RuntimeError(f"{name} failed")

    def encode_batch(self, texts, src_lang):
        self._step("encode")
        return [t.split() for t in texts]

    def run_encoded(self, encoded, tgt_lang, decoding):
        self._step("run")
        return [list(reversed(words)) for words in encoded]

    def decode_batch(self, raw):
        self._step("decode")
        return [Translation(" ".join(words), len(words), True) for words in raw]

    def translate_batch(self, texts, src_lang, tgt_lang, decoding):
        return self.decode_batch(self.run_encoded(self.encode_batch(texts, src_lang),
                                                  tgt_lang, decoding))


class Delegating:
    """A wrapper as fault injection and the tests' counters are: it overrides
    ``translate_batch`` and hands everything else to the inner translator."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def translate_batch(self, texts, src_lang, tgt_lang, decoding):
        self.calls += 1
        return [Translation("wrapped", 1, True) for _ in texts]


@pytest.fixture
def executor():
    ex = LocalExecutor()
    yield ex
    ex.close()


def test_each_step_runs_on_its_own_thread_and_results_come_in_order(executor):
    fake = StagedFake()
    futures = [executor.submit(fake, [f"a{i} b{i}", f"c{i} d{i} e{i}"], "eng_Latn", "fra_Latn",
                               DEFAULTS) for i in range(20)]
    results = [f.result(timeout=10) for f in futures]
    assert [r.translations[0].text for r in results] == [f"b{i} a{i}" for i in range(20)]
    assert fake.threads["encode"] == {threading.current_thread().name}
    assert {name.split("_")[0] for name in fake.threads["run"]} == {"nllb-engine"}
    assert {name.split("_")[0] for name in fake.threads["decode"]} == {"nllb-decode"}


@pytest.mark.parametrize("step", ["encode", "run", "decode"])
def test_a_step_that_raises_is_the_calls_error_not_the_callers(executor, step):
    result = executor.submit(StagedFake(fail=step), ["x y"], "eng_Latn", "fra_Latn",
                             DEFAULTS).result(timeout=10)
    assert result.translations is None
    assert str(result.error) == f"{step} failed"


def test_a_wrapper_that_delegates_is_called_whole(executor):
    wrapper = Delegating(StagedFake())
    assert staged(wrapper) is None  # the inner translator's steps would skip its override
    result = executor.submit(wrapper, ["x y", "z"], "eng_Latn", "fra_Latn",
                             DEFAULTS).result(timeout=10)
    assert [t.text for t in result.translations] == ["wrapped", "wrapped"]
    assert wrapper.calls == 1


def test_a_translate_batch_replaced_on_the_instance_is_called_whole(executor):
    """``benchmarks/throughput.py`` times the model by replacing the
    instance's ``translate_batch``: through the steps its timer never ran."""
    translator, calls = StagedFake(), []
    translator.translate_batch = lambda *a: calls.append(a) or [
        Translation("timed", 1, True) for _ in a[0]]
    assert staged(translator) is None
    result = executor.submit(translator, ["x y"], "eng_Latn", "fra_Latn",
                             DEFAULTS).result(timeout=10)
    assert [t.text for t in result.translations] == ["timed"] and len(calls) == 1


@pytest.mark.parametrize("backend", ["ctranslate2", "hf"])
def test_the_three_steps_give_translate_batchs_bytes(executor, trained_model, backend):
    """On the trained model, at beams 4: through the executor's threads, a
    batch comes out as ``translate_batch`` gives it whole."""
    if backend == "ctranslate2":
        from models.ct2 import Ct2Translator as Backend
    else:
        from models.hf import HfTranslator as Backend
    translator = Backend(str(trained_model), RunSettings(device="cpu", threads=1))
    assert staged(translator) is translator
    texts = ["The manual has 12 pages.", "Anna reads the second chapter today.",
             "Press the red button twice."]
    whole = translator.translate_batch(texts, "eng_Latn", "fra_Latn", DEFAULTS)
    futures = [executor.submit(translator, texts, "eng_Latn", "fra_Latn", DEFAULTS)
               for _ in range(3)]
    for future in futures:
        assert future.result(timeout=120).translations == whole
    translator.close()
