"""The 202 FLORES-200 codes, the hints for wrong ones, and the tiny tokenizer."""

from __future__ import annotations

import pytest

from pipeline.errors import InvalidInput
from pipeline.languages import (
    FLORES_CODES,
    ISO639_1,
    iso639_1,
    joins_without_space,
    suggest,
    validate_language,
)


def test_exactly_the_202_codes_of_transformers_in_its_order():
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    assert len(FLORES_CODES) == 202
    assert len(set(FLORES_CODES)) == 202
    assert list(FLORES_CODES) == list(FAIRSEQ_LANGUAGE_CODES)


def test_every_code_validates_as_itself():
    for code in FLORES_CODES:
        assert validate_language(code) == code


def test_iso639_1_table_points_at_real_codes():
    assert set(ISO639_1.values()) <= set(FLORES_CODES)
    assert iso639_1("fra_Latn") == "fr"
    assert iso639_1("ace_Arab") == "ace"  # no two-letter code: the ISO 639-3 part


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("fr", "unknown language code 'fr' (did you mean fra_Latn?)"),
        ("fra_latn", "unknown language code 'fra_latn' (did you mean fra_Latn?)"),
        ("FRA-LATN", "unknown language code 'FRA-LATN' (did you mean fra_Latn?)"),
        ("zh", "unknown language code 'zh' (did you mean zho_Hans?)"),
        ("deu", "unknown language code 'deu' (did you mean deu_Latn?)"),
        ("zh_Hant", "unknown language code 'zh_Hant' (did you mean zho_Hant?)"),
        ("qqqqqq", "unknown language code 'qqqqqq' (see 'nllb-pipeline languages')"),
        ("klingon", "unknown language code 'klingon' (see 'nllb-pipeline languages')"),
    ],
)
def test_unknown_codes_get_a_one_line_hint(code, message):
    with pytest.raises(InvalidInput) as info:
        validate_language(code)
    assert str(info.value) == message
    assert info.value.exit_code == 2


def test_suggest_never_proposes_a_code_that_does_not_exist():
    for code in ["fr", "de", "zh", "deu", "eng", "fra_latn", "zho_hant", "spa_Latm", "xx"]:
        hint = suggest(code)
        assert hint is None or hint in FLORES_CODES


@pytest.mark.parametrize(
    ("code", "expected"),
    [("zho_Hans", True), ("zho_Hant", True), ("yue_Hant", True), ("jpn_Jpan", True),
     ("tha_Thai", True), ("khm_Khmr", True), ("eng_Latn", False), ("kor_Hang", False),
     ("arb_Arab", False), ("hin_Deva", False)],
)
def test_joins_without_space(code, expected):
    assert joins_without_space(code) is expected


def test_tiny_tokenizer_knows_every_code_as_its_own_token(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    ids = [tokenizer.convert_tokens_to_ids(code) for code in FLORES_CODES]
    assert tokenizer.unk_token_id not in ids
    assert None not in ids
    assert len(set(ids)) == 202
    assert tokenizer.convert_tokens_to_ids("xxx_Yyyy") == tokenizer.unk_token_id
    # The source language code is what the tokenizer puts first.
    tokenizer.src_lang = "fra_Latn"
    assert tokenizer("Hello.")["input_ids"][0] == tokenizer.convert_tokens_to_ids("fra_Latn")


@pytest.mark.parametrize(("code", "hint"), [
    ("en_US", "eng_Latn"), ("pt-BR", "por_Latn"), ("zh-CN", "zho_Hans"), ("zh-TW", "zho_Hant"),
])
def test_locale_style_codes_get_a_suggestion(code, hint):
    from pipeline.errors import InvalidInput
    from pipeline.languages import validate_language

    with pytest.raises(InvalidInput, match=f"did you mean {hint}"):
        validate_language(code)
