"""Cutting a chunk into pieces (pipeline.documents.pieces): lossless, placeholders
copied, clauses or halves translated."""

from __future__ import annotations

from pipeline.documents.pieces import Piece, fragments, split


def texts(pieces: list[Piece]) -> list[tuple[str, bool]]:
    return [(p.text, p.translate) for p in pieces]


def test_fragments_are_the_text_between_placeholders():
    source = "See the [1]docs[2] and [3]."
    assert texts(fragments(source)) == [
        ("See the", True), (" [1]", False), ("docs", True), ("[2] ", False), ("and", True),
        (" [3].", False)]
    assert fragments("No placeholders here.") is None


def test_split_cuts_at_clauses_and_placeholders_and_joins_short_clauses():
    source = ("The first clause is long enough, the second one too; yes, and a third [1] "
              "follows here.")
    cut = split(source)
    assert "".join(p.text for p in cut) == source
    assert texts(cut) == [
        ("The first clause is long enough,", True), (" ", False),
        ("the second one too; yes, and a third", True),  # "yes," and "and a third" are short
        (" [1] ", False), ("follows here.", True)]


def test_a_single_clause_is_cut_in_two_at_the_middle_space():
    source = "an unpunctuated run of words that goes on and on without any stop"
    cut = split(source)
    assert texts(cut) == [("an unpunctuated run of words that", True), (" ", False),
                          ("goes on and on without any stop", True)]
    cjk = "这是一个没有任何标点符号的很长的句子需要切开"
    halves = split(cjk)
    assert "".join(p.text for p in halves) == cjk and len(halves) == 2


def test_what_cannot_be_cut_is_not():
    assert split("Short.") is None
    assert split("Yes, no.") is None  # two clauses, both too short alone
