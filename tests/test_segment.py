from __future__ import annotations

import io
import random
import re
import unicodedata
from pathlib import Path

import pytest

from pipeline.documents.segment import chunk_text, split_sentences, split_to_fit
from tests.conftest import corpus_file



def words(texts: list[str]) -> list[int]:
    """Fake tokenizer: a token per whitespace-separated word, plus 2 specials."""
    return [len(t.split()) + 2 for t in texts]


def chars(texts: list[str]) -> list[int]:
    """Fake tokenizer: a token per 4 characters, plus 2 specials."""
    return [len(t) // 4 + 2 for t in texts]


def per_char(texts: list[str]) -> list[int]:
    return [len(t) + 2 for t in texts]


class Counting:
    """Wraps a fake tokenizer and records how it was called."""

    def __init__(self, fn):
        self.fn, self.calls, self.texts = fn, 0, 0

    def __call__(self, texts: list[str]) -> list[int]:
        self.calls += 1
        self.texts += len(texts)
        return self.fn(texts)


# ---------------------------------------------------------------- sentences


def check(pieces: list[str], text: str) -> None:
    assert "".join(pieces) == text
    assert all(pieces)


@pytest.mark.parametrize(
    "text",
    [
        "Mr. Smith went to Washington. He stayed.",
        "We moved to the U.S.A. last year. It was cold.",
        "Bring fruit, e.g. apples or pears. Then leave.",
    ],
)
def test_abbreviations_do_not_end_sentences(text):
    pieces = split_sentences(text, "eng_Latn")
    check(pieces, text)
    assert len(pieces) == 2
    assert pieces[1] in ("He stayed.", "It was cold.", "Then leave.")


def test_decimal_numbers_do_not_end_sentences():
    text = "It costs 3.50 dollars. The city has 1.000.000 people. Fine."
    pieces = split_sentences(text, "eng_Latn")
    check(pieces, text)
    assert pieces == ["It costs 3.50 dollars. ", "The city has 1.000.000 people. ", "Fine."]


def test_quoted_sentence_stays_inside():
    text = 'He said "Stop." and left. Then he came back.'
    assert split_sentences(text, "eng_Latn") == ['He said "Stop." and left. ', "Then he came back."]


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("我很好。你呢？真的！好", "zho_Hans", ["我很好。", "你呢？", "真的！", "好"]),
        ("我很好。你呢？", "zho_Hant", ["我很好。", "你呢？"]),
        ("日本語です。次の文！", "jpn_Jpan", ["日本語です。", "次の文！"]),
        ("यह एक वाक्य है। यह दूसरा है।", "hin_Deva", ["यह एक वाक्य है। ", "यह दूसरा है।"]),
        ("هل أنت بخير؟ نعم.", "arb_Arab", ["هل أنت بخير؟ ", "نعم."]),
    ],
)
def test_non_latin_sentence_punctuation(text, lang, expected):
    assert split_sentences(text, lang) == expected


def test_text_without_punctuation_is_one_sentence():
    text = "no punctuation here at all just words"
    assert split_sentences(text, "eng_Latn") == [text]


def test_whitespace_stays_with_the_previous_sentence():
    text = "  First one.   \n  Second one.  "
    pieces = split_sentences(text, "eng_Latn")
    check(pieces, text)
    assert pieces == ["  First one.   \n  ", "Second one.  "]


def test_leading_whitespace_joins_the_first_sentence():
    assert split_sentences("\n\nHello. World.", "eng_Latn") == ["\n\nHello. ", "World."]


def test_unknown_language_code_still_splits():
    text = "One thing. Another thing."
    pieces = split_sentences(text, "xyz_Latn")
    check(pieces, text)
    assert len(pieces) == 2


def test_enumeration_is_not_a_sentence_boundary():
    # sentencex alone cuts before "(2)"; a sentence never ends with a comma.
    text = "तीन बातें: (1) प्रवाह, (2) घनत्व, और (3) गति।"
    pieces = split_sentences(text, "hin_Deva")
    check(pieces, text)
    assert not any(p.rstrip().endswith(",") for p in pieces)


def test_degenerate_inputs():
    assert split_sentences("", "eng_Latn") == []
    assert split_sentences("   ", "eng_Latn") == ["   "]
    assert split_sentences("...", "eng_Latn") == ["..."]


# -------------------------------------------------------------- split_to_fit


def test_short_text_is_returned_whole():
    assert split_to_fit("a b c", words, 10) == ["a b c"]
    assert split_to_fit("", words, 10) == []


def test_prefers_clause_punctuation():
    text = "one two three, four five six; seven eight nine: ten"
    pieces = split_to_fit(text, words, 6)
    check(pieces, text)
    assert pieces == ["one two three, ", "four five six; ", "seven eight nine: ten"]


def test_packs_clauses_greedily():
    text = "a, b, c, d, e, f, g, h"
    pieces = split_to_fit(text, words, 6)
    check(pieces, text)
    assert pieces == ["a, b, c, d, ", "e, f, g, h"]


def test_falls_back_to_whitespace_and_packs_greedily():
    text = " ".join(f"w{i}" for i in range(23))
    pieces = split_to_fit(text, words, 7)
    check(pieces, text)
    assert [len(p.split()) for p in pieces] == [5, 5, 5, 5, 3]
    assert all(p.endswith(" ") for p in pieces[:-1])  # trailing space kept


def test_long_clause_is_cut_but_other_clauses_stay_whole():
    text = "short clause, " + " ".join(["x"] * 20) + "; tail words here"
    pieces = split_to_fit(text, words, 8)
    check(pieces, text)
    assert pieces[0] == "short clause, "
    assert pieces[-1] == "tail words here"
    assert max(words(pieces)) <= 8


def test_cjk_clause_punctuation_needs_no_space():
    text = "天地玄黃，宇宙洪荒、日月盈昃；辰宿列張：寒來暑往"
    pieces = split_to_fit(text, per_char, 9)
    check(pieces, text)
    assert pieces == ["天地玄黃，", "宇宙洪荒、", "日月盈昃；", "辰宿列張：", "寒來暑往"]


def test_text_without_spaces_splits_between_characters():
    text = "天地玄黃宇宙洪荒日月盈昃辰宿列張" * 10
    pieces = split_to_fit(text, per_char, 22)
    check(pieces, text)
    assert [len(p) for p in pieces] == [20] * 8


def test_never_splits_combining_sequences():
    # e + combining acute, a family emoji (ZWJ), a flag, a heart + VS16, Devanagari conjunct
    clusters = ["e\u0301", "👨\u200d👩\u200d👧", "🇫🇷", "❤\ufe0f", "क्ष", "a"]
    text = "".join(clusters * 15)
    pieces = split_to_fit(text, per_char, 12)
    check(pieces, text)
    assert max(per_char(pieces)) <= 12
    for piece in pieces:
        first, last = piece[0], piece[-1]
        assert not unicodedata.combining(first) and first not in "\u200d\ufe0f"
        assert last != "\u200d" and unicodedata.combining(last) != 9
    cuts = {sum(len(p) for p in pieces[:k]) for k in range(1, len(pieces))}
    cluster_starts = {sum(len(c) for c in (clusters * 15)[:k]) for k in range(len(clusters) * 15)}
    assert cuts <= cluster_starts


def test_indivisible_piece_over_limit_raises():
    def emoji_heavy(texts):
        return [sum(4 if ord(c) > 0xFFFF else 1 for c in t) + 2 for t in texts]

    with pytest.raises(ValueError):
        split_to_fit("ab 😀 cd", emoji_heavy, 5)


def test_pathological_cluster_is_cut_rather_than_failing():
    text = "Z" + "\u0301" * 40 + " ok"
    pieces = split_to_fit(text, per_char, 12)
    check(pieces, text)
    assert max(per_char(pieces)) <= 12


def test_batched_calls_not_per_word():
    text = " ".join(f"w{i}" for i in range(5000))
    count = Counting(words)
    pieces = split_to_fit(text, count, 100)
    check(pieces, text)
    assert max(words(pieces)) <= 100
    # 98 words each: as full as the limit allows
    assert [len(p.split()) for p in pieces] == [98] * 51 + [2]
    assert count.calls < 3 * len(pieces)
    assert count.texts < 20 * len(pieces) + 5000 + 10


def test_nonadditive_token_counts_are_verified():
    # Counting a concatenation is not the sum of its parts: here a piece
    # costs its words plus one extra token per 10 words.
    def seams(texts):
        return [len(t.split()) + len(t.split()) // 10 + 2 for t in texts]

    text = " ".join(["word"] * 1000)
    count = Counting(seams)
    pieces = split_to_fit(text, count, 50)
    check(pieces, text)
    assert max(seams(pieces)) <= 50
    assert min(seams(pieces[:-1])) >= 49
    # The estimate is recalibrated after each piece, so most pieces are found
    # with a single batch of probes.
    assert count.calls < 1.5 * len(pieces) + 3


def test_real_sentencepiece_tokenizer_on_5000_words():
    spm = pytest.importorskip("sentencepiece")
    import pipeline

    sources = sorted(Path(pipeline.__file__).parent.rglob("*.py")) + [Path(__file__)]
    training = [line for p in sources for line in p.read_text("utf-8").splitlines() if line.strip()]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(training),
        model_writer=model,
        vocab_size=1000,
        model_type="bpe",
        hard_vocab_limit=False,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())

    def encode(texts: list[str]) -> list[int]:
        return [len(ids) + 2 for ids in sp.encode(texts)]

    count = Counting(encode)

    vocab = sorted(set(re.findall(r"[A-Za-z]{2,}", "\n".join(training))))
    rnd = random.Random(1342)
    text = " ".join(rnd.choice(vocab) for _ in range(5000))
    assert count([text])[0] > 2000

    count.calls = count.texts = 0
    pieces = split_to_fit(text, count, 128)
    calls, texts = count.calls, count.texts

    assert "".join(pieces) == text
    sizes = count(pieces)
    assert max(sizes) <= 128
    # Greedy: every piece but the last is close to full.
    assert min(sizes[:-1]) >= 100
    # the work is counted, not timed: a few tokenizer calls per piece, and
    # texts in proportion to the words, not to words times pieces
    assert calls < 3 * len(pieces), (calls, len(pieces))
    assert texts < 20 * len(pieces) + 5000 + 10, (texts, len(pieces))


# ---------------------------------------------------------------- chunk_text


def test_chunk_text_splits_only_long_sentences():
    long = " ".join(["blah"] * 30) + "."
    text = f"Short one. {long} Another short one."
    chunks = chunk_text(text, "eng_Latn", words, 12)
    check(chunks, text)
    assert chunks[0] == "Short one. "
    assert chunks[-1] == "Another short one."
    assert len(chunks) > 3
    assert max(words(chunks)) <= 12


def test_chunk_text_empty():
    assert chunk_text("", "eng_Latn", words, 10) == []


# ------------------------------------------------------------ real corpora

TERMINAL = {"zho_Hans": "。！？!?…", "hin_Deva": "।?!.", "arb_Arab": ".؟!?"}


@pytest.mark.parametrize("lang", ["zho_Hans", "hin_Deva", "arb_Arab"])
def test_flores_sentences(lang):
    path = corpus_file(f"flores200_devtest.{lang}.txt")
    lines = [line for line in path.read_text("utf-8").split("\n") if line]
    assert len(lines) > 1000
    sizes, cuts, clean_cuts = [], 0, 0
    for line in lines:
        pieces = split_sentences(line, lang)
        check(pieces, line)
        sizes.append(len(pieces))
        for piece in pieces[:-1]:
            cuts += 1
            core = piece.rstrip().rstrip("\"'”’」』）)»")
            clean_cuts += bool(core) and core[-1] in TERMINAL[lang]
    # FLORES lines are one sentence, sometimes two or three.
    assert sum(1 <= n <= 3 for n in sizes) >= 0.99 * len(lines)
    assert sum(n == 1 for n in sizes) >= 0.75 * len(lines)
    assert sum(n >= 2 for n in sizes) >= 0.05 * len(lines)  # the script's stops are seen
    assert clean_cuts >= 0.98 * cuts  # cuts come after sentence punctuation


def test_naughty_strings_are_lossless():
    path = corpus_file("awkward_blns_naughty_strings.txt")
    for line in path.read_text("utf-8").split("\n"):
        if line:
            check(split_sentences(line, "eng_Latn"), line)
            check(chunk_text(line, "eng_Latn", chars, 8), line)
