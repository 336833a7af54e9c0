"""The output checks against literal examples: each reason found where it
should be, and legitimate output (CJK, Arabic, repetition the source has,
lists, names) never flagged."""

from __future__ import annotations

import pytest

from pipeline.quality.checks import Thresholds, inspect, tandem, weighted_length
from pipeline.quality.scripts import script_of


def reasons(source: str, text: str, tgt: str = "fra_Latn", *, src: str = "eng_Latn",
            stopped: bool = True) -> list[str]:
    return [f.reason for f in inspect(source, text, stopped=stopped, budget=64, src_lang=src,
                                      tgt_lang=tgt)]


CLEAN = [
    ("The cat sleeps on the mat.", "Le chat dort sur le tapis.", "fra_Latn"),
    ("The cat sleeps on the mat.", "猫在垫子上睡觉。", "zho_Hans"),
    ("The cat sleeps on the mat.", "القط ينام على الحصيرة.", "arb_Arab"),
    ("The cat sleeps on the mat.", "Кошка спит на коврике.", "rus_Cyrl"),
    ("The cat sleeps on the mat.", "बिल्ली चटाई पर सोती है।", "hin_Deva"),
    ("The cat sleeps on the mat.", "猫はマットの上で寝ています。", "jpn_Jpan"),
    ("The cat sleeps on the mat.", "고양이가 매트 위에서 잔다.", "kor_Hang"),
    # Latin-script names and code inside a non-Latin target are not judged.
    ("Install Rich with pip on Windows.", "Установите Rich с помощью pip в Windows.", "rus_Cyrl"),
    ("Rich works with Python 3.8 and Jupyter.", "Rich 适用于 Python 3.8 和 Jupyter。", "zho_Hans"),
    ("Microsoft Windows Server 2019", "Microsoft Windows Server 2019", "rus_Cyrl"),
    # Repetition the source has, and lists.
    ("Ha ha ha.", "Ja ja ja.", "spa_Latn"),
    ("Ha ha ha ha ha ha ha ha!", "Ja ja ja ja ja ja ja ja !", "spa_Latn"),
    ("Ha ha ha.", "哈哈哈。", "zho_Hans"),
    ("Red, green, red, green, red and green again.",
     "Rouge, vert, rouge, vert, rouge et encore vert.", "fra_Latn"),
    ("No, no, no, I said no.", "Non, non, non, j'ai dit non.", "fra_Latn"),
    ("Please, please, please let me go.", "Por favor, por favor, por favor, déjame ir.",
     "spa_Latn"),
    # Short sources may come back unchanged (a name, "OK").
    ("OK", "OK", "fra_Latn"),
    ("Rich", "Rich", "zho_Hans"),
]


@pytest.mark.parametrize(("source", "text", "tgt"), CLEAN)
def test_legitimate_translations_are_never_flagged(source, text, tgt):
    assert reasons(source, text, tgt) == []


def test_a_loop_is_found_in_words_and_in_characters():
    src = "I am sorry, but I cannot come today."
    assert reasons(src, "Je suis désolé, mais je suis désolé, mais je suis désolé, mais je "
                        "suis désolé, mais je suis désolé, mais") == ["loop"]
    assert reasons(src, "对不起对不起对不起对不起对不起对不起", "zho_Hans")[0] == "loop"
    assert reasons("Ha ha ha.", "Ja ja ja ja ja ja ja ja ja ja ja ja.", "spa_Latn") == ["loop"]
    assert reasons(src, "آسف آسف آسف آسف آسف آسف آسف آسف آسف", "arb_Arab")[0] == "loop"


def test_a_long_output_that_compresses_like_a_loop_is_one():
    src = "We walked to the old harbour in the evening and watched the boats come in slowly."
    loop = ("nous avons marché vers le port, puis le port, le vieux port du soir, puis le "
            "port encore, le vieux port du soir, puis le port encore, le vieux port du soir, "
            "puis le port encore, le vieux port du soir")
    assert tandem(loop.split()) < (4, 2)  # not back-to-back enough for the n-gram test
    assert "loop" in reasons(src, loop)


def test_running_into_the_budget_is_found():
    assert reasons("Hello there.", "Bonjour là", stopped=False) == ["budget"]


@pytest.mark.parametrize(("text", "tgt"), [
    ("The cat sleeps on the mat today.", "rus_Cyrl"),  # answered in English
    ("Le chat dort sur le tapis.", "zho_Hans"),  # answered in French
    ("Кошка спит на коврике.", "fra_Latn"),
    ("猫在垫子上睡觉。", "arb_Arab"),
    ("القط ينام على الحصيرة.", "hin_Deva"),
])
def test_the_wrong_script_is_found(text, tgt):
    assert "script" in reasons("Die Katze schläft heute auf der Matte.", text, tgt, src="deu_Latn")


def test_a_copy_of_the_source_is_found():
    src = "The weather will be sunny tomorrow in the north."
    assert reasons(src, src) == ["copy"]
    assert reasons(src, "The weather will be sunny tomorrow in the north!") == ["copy"]
    assert reasons(src, src, src="eng_Latn", tgt="eng_Latn") == []  # same language: fine


def test_implausible_lengths_are_found_weighted_by_script():
    src = "The committee approved the new budget after a long discussion on Monday."
    assert reasons(src, "Oui.") == ["length"]
    assert reasons("Yes.", "Oui, " + "c'est bien cela que je voulais dire, " * 3) == ["length"]
    # Chinese says in few characters what English says in many: not too short.
    assert weighted_length("委员会周一经过长时间讨论后批准了新预算。") > 0.5 * weighted_length(src)
    assert reasons(src, "委员会周一经过长时间讨论后批准了新预算。", "zho_Hans") == []


def test_scripts_of_letters():
    assert [script_of(c) for c in "aЖا中あア한अ1,ー々"] == [
        "LATIN", "CYRILLIC", "ARABIC", "CJK", "HIRAGANA", "KATAKANA", "HANGUL", "DEVANAGARI",
        None, None, "KATAKANA", "CJK"]


def test_thresholds_are_settings():
    assert Thresholds().as_dict()["zlib_ratio"] == 2.4
    loose = Thresholds(loop_repeats=20)
    src = "I am sorry, but I cannot come today."
    looped = "désolé " * 10
    assert inspect(src, looped, stopped=True, budget=9, src_lang="eng_Latn", tgt_lang="fra_Latn",
                   thresholds=loose) == []


def _tandem_by_definition(tokens, max_n=8):
    """tandem's meaning, written plainly: from every start, count the
    back-to-back repeats of each n-gram; keep the one covering most tokens."""
    best = (1, 0)
    for n in range(1, min(max_n, len(tokens) // 2) + 1):
        i = 0
        while i + 2 * n <= len(tokens):
            reps, j = 1, i
            while j + 2 * n <= len(tokens) and tokens[j:j + n] == tokens[j + n:j + 2 * n]:
                reps, j = reps + 1, j + n
            if reps > 1 and (reps * n, reps) > (best[0] * best[1], best[0]):
                best = (reps, n)
            i = j + 1 if reps > 1 else i + 1
    return best


def test_tandem_finds_what_its_definition_finds_on_random_token_lists():
    import random

    rng = random.Random(0)
    for _ in range(20_000):
        tokens = [str(rng.randint(1, rng.randint(1, 5))) for _ in range(rng.randint(0, 40))]
        if rng.random() < 0.3:
            unit = [str(rng.randint(1, 9)) for _ in range(rng.randint(1, 5))]
            cut = rng.randint(0, len(tokens))
            tokens = tokens[:cut] + unit * rng.randint(2, 8) + tokens[cut:]
        max_n = rng.randint(1, 9)
        assert tandem(tokens, max_n) == _tandem_by_definition(tokens, max_n), (tokens, max_n)
