"""The CTranslate2 backend on the tiny model: the same contract as the
transformers backend (budget, batching, language codes), the same
translations in float32, and the choice between the two."""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, replace

import pytest

from models.backends import open_translator
from models.ct2 import Ct2Translator, resolve_compute_type
from models.hf import HfTranslator
from pipeline.batching import plan_batches
from pipeline.config import JobParams, RunSettings
from pipeline.errors import InvalidInput, Unsupported
from pipeline.samples import sentence
from pipeline.translator import Decoding

SRC, TGT = "eng_Latn", "fra_Latn"
SENTENCES = [
    "The cat sat on the mat.",
    "Hi.",
    "Hello world.",
    "A much longer sentence, with a comma, walks slowly through the quiet town at night.",
]
CPU32 = RunSettings(device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def hf(tiny_model):
    return HfTranslator(str(tiny_model), RunSettings(device="cpu"))


@pytest.fixture(scope="module")
def ct2(tiny_model, tmp_path_factory):
    # The module's translators share one conversion cache (autouse fixtures
    # give every test its own XDG_CACHE_HOME, so convert before they run).
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("ct2-cache")))
    translator = Ct2Translator(str(tiny_model), CPU32)
    translator.load()
    yield translator
    mp.undo()


def test_the_budget_counts_the_language_code_as_in_transformers(hf, ct2):
    for budget in (1, 2, 5, 24):
        decoding = Decoding(beams=2, max_new_tokens=budget)
        ours = ct2.translate_batch(SENTENCES[:2], SRC, TGT, decoding)
        theirs = hf.translate_batch(SENTENCES[:2], SRC, TGT, decoding)
        assert [(t.tokens, t.stopped) for t in ours] == [(budget - 1, False)] * 2
        assert [t.tokens for t in ours] == [t.tokens for t in theirs]


@pytest.mark.parametrize("beams", [1, 4])
def test_output_depends_on_the_input_and_nothing_else(ct2, beams):
    decoding = Decoding(beams=beams, max_new_tokens=24)
    alone = [ct2.translate_batch([s], SRC, TGT, decoding)[0] for s in SENTENCES]
    assert len({t.text for t in alone}) == len(SENTENCES)
    batch = ct2.translate_batch(SENTENCES[::-1], SRC, TGT, decoding)
    assert [t.text for t in batch] == [t.text for t in alone][::-1]


@dataclass(frozen=True)
class _Chunk:
    idx: int
    n_tokens: int


def _translate_planned(translator, texts, beams):
    """Every text, in the batches the pipeline plans at the default rules."""
    params = JobParams(model="m", src_lang=SRC, tgt_lang=TGT, fmt="text", output="/x")
    counts = translator.count_tokens(texts)

    def budget(n):
        return params.output_budget(n, translator.describe().max_output_tokens)

    out = {}
    for batch in plan_batches([_Chunk(i, n) for i, n in enumerate(counts)], 2048, 256, budget):
        decoding = Decoding(beams=beams, max_new_tokens=budget(batch[0].n_tokens))
        results = translator.translate_batch([texts[c.idx] for c in batch], SRC, TGT, decoding)
        out.update({c.idx: t for c, t in zip(batch, results)})
    return [out[i] for i in range(len(texts))]


@pytest.mark.slow
@pytest.mark.parametrize("beams", [1, 4])
def test_float32_translations_agree_with_transformers(hf, ct2, beams, capsys):
    """300 sentences of mixed lengths at the default length rule: the same
    token counts everywhere (the budget maps exactly) and the same text for
    at least 99% (the rest is float rounding deciding a near tie)."""
    rng = random.Random(1)
    texts = [sentence(rng) for _ in range(300)]
    ours, theirs = _translate_planned(ct2, texts, beams), _translate_planned(hf, texts, beams)
    assert [t.tokens for t in ours] == [t.tokens for t in theirs]
    same = sum(a.text == b.text for a, b in zip(ours, theirs))
    with capsys.disabled():
        print(f"\n[agreement] beams={beams}: {same}/300 identical ({same / 3:.1f}%)")
    assert same >= 297


def test_describe_and_compute_types(tiny_model):
    info = Ct2Translator(str(tiny_model), RunSettings(device="cpu")).describe()
    assert (info.backend, info.device, info.compute_type) == ("ctranslate2", "cpu", "int8")
    assert info.max_output_tokens == info.max_input_tokens - 2 == 1022
    assert resolve_compute_type("auto", "cuda", {"int8_float16", "float16", "float32"}) == (
        "int8_float16")
    assert resolve_compute_type("auto", "cuda", {"float16", "float32"}) == "float16"
    assert resolve_compute_type("int8_float32", "cpu", {"int8_float32", "float32"}) == (
        "int8_float32")
    with pytest.raises(InvalidInput, match="does not run on cpu"):
        resolve_compute_type("bfloat16", "cpu", {"int8", "float32"})
    with pytest.raises(InvalidInput, match="unknown dtype"):
        resolve_compute_type("int4", "cpu", {"int8", "float32"})
    with pytest.raises(InvalidInput, match="no CUDA device"):
        Ct2Translator(str(tiny_model), RunSettings(device="cuda"))


def test_int8_runs_the_same_contract(tiny_model):
    translator = Ct2Translator(str(tiny_model), RunSettings(device="cpu"))
    out = translator.translate_batch(SENTENCES, SRC, TGT, Decoding(beams=4, max_new_tokens=12))
    assert [(t.tokens, t.stopped) for t in out] == [(11, False)] * len(SENTENCES)
    with pytest.raises(Unsupported, match="does not know language"):
        translator.check_language("xxx_Latn")
    with pytest.raises(InvalidInput, match="exceeds the model's limit"):
        translator.translate_batch(["word " * 1100], SRC, TGT, Decoding(max_new_tokens=4))


def _convert_by_hand(tiny_model, out, *, tokenizer_files: bool):
    from ctranslate2.converters import TransformersConverter

    TransformersConverter(str(tiny_model)).convert(str(out), quantization="float32")
    if tokenizer_files:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(tiny_model / name, out / name)
    return out


@pytest.mark.fresh_cache
def test_an_already_converted_directory_is_used_as_is(tiny_model, ct2, tmp_path):
    converted = _convert_by_hand(tiny_model, tmp_path / "ct2", tokenizer_files=True)
    translator = open_translator(str(converted), CPU32)
    assert isinstance(translator, Ct2Translator)
    assert translator.prepare() == str(converted)
    assert not (tmp_path / "cache" / "nllb-pipeline" / "ct2").exists()  # nothing converted
    decoding = Decoding(beams=4, max_new_tokens=20)
    assert translator.translate_batch(SENTENCES, SRC, TGT, decoding) == ct2.translate_batch(
        SENTENCES, SRC, TGT, decoding)
    with pytest.raises(InvalidInput, match="converted CTranslate2 model"):
        open_translator(str(converted), replace(CPU32, backend="hf"))


def test_a_converted_directory_without_a_tokenizer_needs_one(tiny_model, tmp_path):
    converted = _convert_by_hand(tiny_model, tmp_path / "ct2", tokenizer_files=False)
    with pytest.raises(InvalidInput, match="--tokenizer"):
        open_translator(str(converted), CPU32)
    translator = open_translator(str(converted), replace(CPU32, tokenizer=str(tiny_model)))
    # The limits come from the original checkpoint named by --tokenizer.
    assert translator.describe().max_input_tokens == 1024
    out = translator.translate_batch(SENTENCES[:1], SRC, TGT, Decoding(max_new_tokens=6))
    assert out[0].tokens == 5


def test_auto_picks_ctranslate2_when_it_can_and_transformers_otherwise(tiny_model, tmp_path,
                                                                       monkeypatch):
    import ctranslate2

    import models.ct2

    assert open_translator(str(tiny_model), CPU32).describe().backend == "ctranslate2"
    assert open_translator(str(tiny_model), replace(CPU32, backend="hf")).describe().backend == "hf"
    # A model CTranslate2 has no converter for (NLLB-MoE): transformers.
    from transformers import NllbMoeConfig

    moe = tmp_path / "moe"
    moe.mkdir()
    NllbMoeConfig(vocab_size=100, d_model=16, encoder_layers=1, decoder_layers=1).save_pretrained(
        moe)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model / name, moe / name)
    assert open_translator(str(moe), CPU32).describe().backend == "hf"
    with pytest.raises(Unsupported, match="cannot convert"):
        open_translator(str(moe), replace(CPU32, backend="ctranslate2"))
    # A number format this device runs only with torch: transformers.
    monkeypatch.setattr(ctranslate2, "get_supported_compute_types", lambda kind: {"int8",
                                                                                 "float32"})
    bf16 = RunSettings(device="cpu", dtype="bfloat16")
    assert open_translator(str(tiny_model), bf16).describe().backend == "hf"
    # Not installed: transformers, and the explicit choice says what is missing.
    monkeypatch.setattr(models.ct2, "available", lambda: False)
    assert open_translator(str(tiny_model), CPU32).describe().backend == "hf"
    with pytest.raises(Unsupported, match="pip install ctranslate2"):
        open_translator(str(tiny_model), replace(CPU32, backend="ctranslate2"))
    with pytest.raises(InvalidInput, match="unknown backend"):
        RunSettings(backend="onnx")


def test_repetition_controls_map_to_the_same_greedy_search(hf, ct2):
    """no_repeat_ngram_size and repetition_penalty pass through; greedy, the
    two libraries apply them the same way. (In beam search they do not:
    transformers applies them to log-probabilities, CTranslate2 to logits
    before normalising; see models/ct2.py.)"""
    for decoding in (Decoding(beams=1, max_new_tokens=30, no_repeat_ngram_size=3),
                     Decoding(beams=1, max_new_tokens=30, repetition_penalty=1.3)):
        ours = ct2.translate_batch(SENTENCES, SRC, TGT, decoding)
        assert ours == hf.translate_batch(SENTENCES, SRC, TGT, decoding)
        assert ours != ct2.translate_batch(SENTENCES, SRC, TGT, replace(
            decoding, no_repeat_ngram_size=0, repetition_penalty=1.0))  # they did something
