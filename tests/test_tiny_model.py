"""The tiny test model: deterministic, a real NLLB checkpoint, and a model
whose output depends on its input but not on the batch around it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

import models.tiny as tiny
from models.tiny import build_tiny_model, ensure_tiny_model, is_tiny_model


def digests(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*")) if p.is_file()
    }


@pytest.mark.fresh_cache  # its folder must hold the new build only
def test_two_builds_are_byte_identical(tiny_model, tmp_path):
    again = build_tiny_model(tmp_path / "again")
    first, second = digests(tiny_model), digests(again)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "nllb_pipeline_tiny.json"} <= set(first)
    assert first == second
    assert [p.name for p in tmp_path.iterdir()] == ["again"]  # no temporary left behind


def test_it_is_a_real_nllb_checkpoint(tiny_model):
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, NllbTokenizer

    config = AutoConfig.from_pretrained(str(tiny_model))
    assert config.model_type == "m2m_100"
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    assert isinstance(tokenizer, NllbTokenizer)
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id,
            tokenizer.unk_token_id) == (0, 1, 2, 3)  # NLLB's fairseq ids
    model = AutoModelForSeq2SeqLM.from_pretrained(str(tiny_model))
    assert type(model).__name__ == "M2M100ForConditionalGeneration"
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.decoder_start_token_id == tokenizer.eos_token_id


def test_is_tiny_model(tiny_model, tmp_path):
    assert is_tiny_model(tiny_model)
    assert not is_tiny_model(tmp_path)  # an empty directory
    assert not is_tiny_model(tmp_path / "missing")
    stale = tmp_path / "stale"
    shutil.copytree(tiny_model, stale)
    (stale / "nllb_pipeline_tiny.json").write_text(json.dumps({"version": tiny.TINY_VERSION + 1}))
    assert not is_tiny_model(stale)
    (stale / "nllb_pipeline_tiny.json").write_text("not json")
    assert not is_tiny_model(stale)


def test_ensure_does_not_rebuild_an_existing_model(tiny_model, tmp_path):
    copy = tmp_path / "tiny"
    shutil.copytree(tiny_model, copy)
    before = {p.name: p.stat().st_mtime_ns for p in copy.iterdir()}
    before_dir = copy.stat().st_mtime_ns
    assert ensure_tiny_model(copy) == copy
    assert {p.name: p.stat().st_mtime_ns for p in copy.iterdir()} == before
    assert copy.stat().st_mtime_ns == before_dir


def test_ensure_builds_a_missing_or_stale_model(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(tiny, "build_tiny_model", built.append)
    ensure_tiny_model(tmp_path / "missing")
    stale = tmp_path / "stale"
    stale.mkdir()
    (stale / "nllb_pipeline_tiny.json").write_text(json.dumps({"version": 0}))
    ensure_tiny_model(stale)
    assert built == [tmp_path / "missing", stale]


def test_a_failed_build_leaves_nothing(tmp_path, monkeypatch):
    def boom(path, vocab_size, extra_text=()):
        Path(path).write_bytes(b"half a model")
        raise RuntimeError("killed")

    monkeypatch.setattr(tiny, "_train_sentencepiece", boom)
    with pytest.raises(RuntimeError, match="killed"):
        build_tiny_model(tmp_path / "tiny")
    assert list(tmp_path.iterdir()) == []


# -- generation ---------------------------------------------------------------

SENTENCES = [
    "The cat sat on the mat.",
    "Hi.",
    "Hello world.",
    "A much longer sentence, with a comma, walks slowly through the quiet town at night.",
]


@pytest.fixture(scope="module")
def translator(tiny_model):
    from models import HfTranslator
    from pipeline.config import RunSettings

    return HfTranslator(str(tiny_model), RunSettings(device="cpu"))


def texts(out):
    return [t.text for t in out]


@pytest.mark.parametrize("beams", [1, 4])
def test_output_depends_on_the_input_and_nothing_else(translator, beams):
    from pipeline.translator import Decoding

    decoding = Decoding(beams=beams, max_new_tokens=24)
    alone = [translator.translate_batch([s], "eng_Latn", "fra_Latn", decoding)[0]
             for s in SENTENCES]
    assert all(t.text and t.tokens == 23 and not t.stopped for t in alone)  # random weights
    assert len({t.text for t in alone}) == len(SENTENCES)
    again = translator.translate_batch([SENTENCES[0]], "eng_Latn", "fra_Latn", decoding)
    assert again == alone[:1]  # repeatable
    # Padded to the longest and searched side by side with the same budget:
    # the neighbours change nothing, at greedy and at the default beam 4.
    batch = translator.translate_batch(SENTENCES[::-1], "eng_Latn", "fra_Latn", decoding)
    assert texts(batch) == texts(alone)[::-1]


def test_the_budget_counts_the_language_code_and_is_reported(translator):
    from pipeline.translator import Decoding

    out = translator.translate_batch(SENTENCES[:2], "eng_Latn", "fra_Latn",
                                     Decoding(beams=2, max_new_tokens=5))
    assert [(t.tokens, t.stopped) for t in out] == [(4, False), (4, False)]
    info = translator.describe()
    assert (info.backend, info.device, info.compute_type) == ("hf", "cpu", "float32")
    assert info.max_output_tokens == info.max_input_tokens - 2 == 1022


def test_token_counts_are_the_same_before_and_after_a_padded_batch(translator):
    """count_tokens calls the Rust tokenizer directly; a translation pads
    its batch through the same tokenizer, whose padding is its state. A
    count after one must not include the padding."""
    from pipeline.translator import Decoding

    before = translator.count_tokens(SENTENCES)
    assert before == [len(ids) for ids in translator.checkpoint.encode(SENTENCES)]
    translator.translate_batch(SENTENCES, "eng_Latn", "fra_Latn",
                               Decoding(beams=1, max_new_tokens=4))
    assert translator.count_tokens(SENTENCES) == before
    assert len(set(before)) > 1
