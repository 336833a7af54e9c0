"""The transformers backend's own decoding loop gives generate()'s token ids.

``models/hf_search.py`` replaces ``generate()`` on the CPU for its per-step
overhead; its contract is the same ids, which these tests check against
``generate()`` itself, whatever transformers version is installed."""

from __future__ import annotations

import json

import pytest

from models import HfTranslator
from pipeline.config import RunSettings
from pipeline.translator import Decoding

TEXTS = ["Hi.", "The river runs past 12 old mills.",
         "Visit [1] in Kyoto, then the long road north to York and the old bridge.",
         "A name such as Vienna comes through as it is.", "Yes", "5 15 25 50 55 500 5000"]

DECODINGS = [Decoding(1, 12), Decoding(4, 12), Decoding(3, 9),
             Decoding(1, 16, no_repeat_ngram_size=3, repetition_penalty=1.3),
             Decoding(4, 16, no_repeat_ngram_size=3, repetition_penalty=1.3)]


def both(tr: HfTranslator, texts: list[str], decoding: Decoding) -> tuple[list, list]:
    encoded = tr.encode_batch(texts, "eng_Latn")
    assert tr._lean
    lean = tr.run_encoded(encoded, "fra_Latn", decoding)
    tr._lean = False
    try:
        return lean, tr.run_encoded(encoded, "fra_Latn", decoding)
    finally:
        tr._lean = True


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("which", ["trained_model", "tiny_model"])
def test_the_loop_gives_generates_ids(which, dtype, request):
    tr = HfTranslator(str(request.getfixturevalue(which)),
                      RunSettings(device="cpu", threads=1, dtype=dtype))
    for fixed_length in (False, True):  # True: EOS held back until the budget, as benchmarks run
        tr.fixed_length = fixed_length
        for decoding in DECODINGS:
            for texts in (TEXTS[:1], TEXTS[1:2], TEXTS):  # alone, and padded in a batch
                lean, generated = both(tr, texts, decoding)
                assert lean == generated, (which, dtype, fixed_length, decoding, texts)


def test_the_trained_model_ends_its_sentences_on_both_paths(trained_model):
    """The comparison above is not vacuous: the trained model stops before
    its budget, so the loop's EOS handling and padding are exercised."""
    tr = HfTranslator(str(trained_model), RunSettings(device="cpu", threads=1))
    for beams in (1, 4):
        lean, generated = both(tr, TEXTS, Decoding(beams, 40))
        assert lean == generated
        assert any(2 in row[2:] and len(row) < 41 for row in lean)
        assert len({len(row) for row in lean}) == 1  # padded to the longest, as generate()


def test_a_generation_config_it_does_not_mirror_goes_through_generate(tiny_model, tmp_path):
    """A checkpoint whose generation config changes the search (here a length
    penalty) decodes with generate(), which honours it."""
    import shutil

    model = tmp_path / "penalised"
    shutil.copytree(tiny_model, model)
    path = model / "generation_config.json"
    config = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**config, "length_penalty": 2.0}))
    tr = HfTranslator(str(model), RunSettings(device="cpu", threads=1))
    tr.load()
    assert not tr._lean
    plain = HfTranslator(str(tiny_model), RunSettings(device="cpu", threads=1))
    plain.load()
    assert plain._lean
