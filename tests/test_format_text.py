from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from pipeline.documents.document import Document
from pipeline.documents.formats import detect_format, parse_document
from pipeline.documents.formats.text import join_lines, parse_text
from tests.conftest import corpus_file

CJK_SPACE_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef] +[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def identity(doc: Document) -> str:
    return doc.render([u.text for u in doc.units])


MARK = "\u2063"  # invisible: a "translation" that differs from its source


def translated(doc: Document) -> str:
    """Rendered as if every unit were translated (so joined, not as written)."""
    return doc.render([u.text + MARK for u in doc.units]).replace(MARK, "")


def shape(text: str) -> list[tuple[bool, int]]:
    """(is_blank, line count) for each run of blank / non-blank lines."""
    return [
        (blank, len(list(run)))
        for blank, run in itertools.groupby(text.split("\n"), key=lambda line: not line.strip())
    ]


def read(name: str) -> str:
    return corpus_file(name).read_bytes().decode("utf-8-sig").replace("\r\n", "\n")


def test_hard_wrapped_paragraphs_become_one_unit_each():
    text = "It is a truth universally\nacknowledged, that a single man.\n\nHowever little\nknown.\n"
    doc = parse_text(text)
    assert [u.text for u in doc.units] == [
        "It is a truth universally acknowledged, that a single man.",
        "However little known.",
    ]
    assert all(not u.markdown for u in doc.units)
    assert doc.parts == [0, "\n\n", 1, "\n"]
    assert doc.render(["A", "B"]) == "A\n\nB\n"


def test_blank_lines_are_copied_exactly():
    text = "One.\n  \n\u3000\u3000\n\t\n\nTwo.\n\n\n"
    doc = parse_text(text)
    assert len(doc.units) == 2
    assert doc.render(["1", "2"]) == "1\n  \n\u3000\u3000\n\t\n\n2\n\n\n"


def test_indentation_is_a_literal_prefix():
    doc = parse_text("    Indented paragraph\n    continues here.\n")
    assert [u.text for u in doc.units] == ["Indented paragraph continues here."]
    assert doc.render(["X"]) == "    X\n"


def test_cjk_lines_join_without_space():
    text = "\u3000\u3000蓋聞天地之數，有十二萬九千六百歲為一元。將一元分為十二會，乃子、丑、寅\n、卯、辰\n巳午。\n"
    doc = parse_text(text)
    assert [u.text for u in doc.units] == [
        "蓋聞天地之數，有十二萬九千六百歲為一元。將一元分為十二會，乃子、丑、寅、卯、辰巳午。"
    ]
    assert doc.render(["T"]) == "\u3000\u3000T\n"


@pytest.mark.parametrize(
    ("lines", "joined"),
    [
        (["漢字", "English"], "漢字 English"),
        (["English", "漢字"], "English 漢字"),
        (["かな", "カナ"], "かなカナ"),
        (["終わり。", "「次」"], "終わり。「次」"),
        (["한국어 문장이", "이어집니다"], "한국어 문장이 이어집니다"),  # Korean uses spaces
        (["word   ", "   next"], "word next"),
        (["  lead", "tail  "], "  lead tail  "),
    ],
)
def test_join_lines(lines, joined):
    assert join_lines(lines) == joined


def test_ideographic_indent_starts_a_new_paragraph():
    # Chinese texts start paragraphs and verse lines with U+3000 and no blank line.
    text = "\u3000\u3000詩曰：\n\u3000\u3000\u3000\u3000混沌未分天地亂，\n茫茫渺渺無人見。\n\u3000\u3000一朝天氣炎熱。\n"
    doc = parse_text(text)
    assert [u.text for u in doc.units] == ["詩曰：", "混沌未分天地亂，茫茫渺渺無人見。", "一朝天氣炎熱。"]
    assert identity(doc) == text
    assert translated(doc) == (
        "\u3000\u3000詩曰：\n\u3000\u3000\u3000\u3000混沌未分天地亂，茫茫渺渺無人見。\n\u3000\u3000一朝天氣炎熱。\n"
    )


def test_no_final_newline_stays_without_one():
    doc = parse_text("First.\n\nLast line\nwrapped")
    assert doc.render(["A", "B"]) == "A\n\nB"
    doc = parse_text("Only")
    assert doc.parts == [0]


def test_paragraph_without_letters_is_kept_verbatim():
    text = "Chapter.\n\n* * *\n  1 2 3\n\nEnd.\n"
    doc = parse_text(text)
    assert [u.text for u in doc.units] == ["Chapter.", "End."]
    assert doc.render(["C", "E"]) == "C\n\n* * *\n  1 2 3\n\nE\n"


def test_empty_and_blank_documents():
    assert parse_text("").parts == []
    doc = parse_text("\n \n")
    assert doc.units == [] and identity(doc) == "\n \n"


def test_other_line_separators_are_content():
    # Only LF ends a line: a form feed or U+2028 inside a line is kept in it.
    text = "Page one\x0cpage two\u2028same line\n"
    doc = parse_text(text)
    assert len(doc.units) == 1
    assert identity(doc) == text


def test_detect_format_and_dispatch():
    assert detect_format("book.md") == "markdown"
    assert detect_format("/x/README.MARKDOWN") == "markdown"
    assert detect_format(Path("film.SRT")) == "srt"
    assert detect_format("notes.txt") == "text"
    assert detect_format("no_extension") == "text"
    assert parse_document("Hello\nworld\n", "text").units[0].text == "Hello world"
    assert parse_document("1\n00:00:01,000 --> 00:00:02,000\nHi\n", "srt").units[0].text == "Hi"
    with pytest.raises(ValueError):
        parse_document("x", "docx")


# ------------------------------------------------------------ real corpora


def test_pride_and_prejudice_keeps_its_paragraphs():
    text = read("gutenberg_1342_pride_and_prejudice_crlf.txt")
    doc = parse_text(text)
    assert identity(doc) == text
    out = translated(doc)
    before, after = shape(text), shape(out)
    # Same sequence of paragraphs and blank runs; blank runs are unchanged.
    assert [b for b, _ in before] == [b for b, _ in after]
    assert [n for b, n in before if b] == [n for b, n in after if b]
    paragraphs = sum(1 for b, _ in before if not b)
    assert len(doc.units) > 0.9 * paragraphs > 2000
    assert all("\n" not in u.text for u in doc.units)
    first = "It is a truth universally acknowledged, that a single man in possession of a good fortune must be in want of a wife."
    assert first in [u.text for u in doc.units]
    # Nothing but line breaks (and the wrapping's spaces) changed.
    assert re.sub(r"\s+", "", out) == re.sub(r"\s+", "", text)
    assert out.endswith("\n") == text.endswith("\n")


def test_pride_and_prejudice_wrapped_paragraphs_are_one_line():
    text = read("gutenberg_1342_pride_and_prejudice_crlf.txt")
    out = translated(parse_text(text))
    multi_line_before = sum(1 for b, n in shape(text) if not b and n > 1)
    multi_line_after = sum(1 for b, n in shape(out) if not b and n > 1)
    assert multi_line_before > 1000
    # Only paragraphs with no letters at all (ornaments, "]") keep their lines.
    assert multi_line_after < 10


def test_journey_to_the_west_cjk_wrapping():
    text = read("gutenberg_23962_journey_to_the_west_ch01-20.zho_Hant.txt")
    doc = parse_text(text)
    assert identity(doc) == text
    out = translated(doc)
    # No space was put between CJK characters that were not spaced before.
    assert set(CJK_SPACE_CJK.findall(out)) <= set(CJK_SPACE_CJK.findall(text))
    assert out.count(" ") <= text.count(" ")
    assert re.sub(r"\s+", "", out) == re.sub(r"\s+", "", text)
    # Full-width indentation is kept on every line that had it.
    indented = [line for line in text.split("\n") if line.startswith("\u3000") and line.strip()]
    assert len(indented) > 100
    out_indented = [line for line in out.split("\n") if line.startswith("\u3000") and line.strip()]
    assert len(out_indented) == len(indented)
    assert all(new.startswith(old) for new, old in zip(out_indented, indented))
    # The wrapped prose became far fewer, longer lines.
    assert len(out.split("\n")) < 0.5 * len(text.split("\n"))
    assert any(u.text.startswith("蓋聞天地之數") and u.text.endswith("故曰，人生於寅。") for u in doc.units)
    # Blank runs (including lines of full-width spaces) are unchanged.
    assert [n for b, n in shape(text) if b] == [n for b, n in shape(out) if b]


# ------------------------------------------------------ line-aligned text


def test_lines_format_translates_each_line_on_its_own_line():
    text = "One sentence.\n\n  Two  spaced words.  \n---\nThree\n"
    doc = parse_document(text, "lines")
    assert [(u.text, u.lines) for u in doc.units] == [
        ("One sentence.", 1), ("Two  spaced words.", 1), ("Three", 1)]
    assert identity(doc) == text
    # Whatever the model returns, line i stays line i.
    out = doc.render(["Une\nphrase.", "Deux\n\nmots.", "Trois\r\n"])
    assert out == "Une phrase.\n\n  Deux mots.  \n---\nTrois\n"
    assert len(out.split("\n")) == len(text.split("\n"))


def test_lines_format_without_final_newline_and_blank_only_lines():
    text = "\n \nLast line"
    doc = parse_document(text, "lines")
    assert doc.render(["Dernière"]) == "\n \nDernière"


def test_detect_format_reads_a_file_without_blank_lines_as_lines(tmp_path, caplog):
    aligned = tmp_path / "corpus.txt"
    aligned.write_text("First sentence.\nSecond sentence.\nThird.\n")
    prose = tmp_path / "prose.txt"
    prose.write_text("A paragraph\nwrapped.\n\nAnother.\n")
    one = tmp_path / "one.txt"
    one.write_text("Just one line.\n")
    with caplog.at_level("WARNING", logger="nllb_pipeline"):
        assert detect_format(aligned) == "lines"
    assert "no blank lines" in caplog.text and "--format text" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="nllb_pipeline"):
        assert detect_format(prose) == "text"
        assert detect_format(one) == "text"
        assert detect_format(tmp_path / "missing.txt") == "text"
        assert detect_format(tmp_path / "subs.vtt") == "vtt"
        assert detect_format("x.txt", "a\nb\n") == "lines"
    assert "no blank lines" in caplog.text  # only for the last one
    assert caplog.text.count("no blank lines") == 1


def test_flores_is_read_line_by_line():
    path = corpus_file("flores200_devtest.zho_Hans.txt")
    assert detect_format(path) == "lines"
    text = path.read_text(encoding="utf-8")
    doc = parse_document(text, "lines")
    assert len(doc.units) == 1012 == text.count("\n")
    assert identity(doc) == text
    out = doc.render([f"{i}\n{u.text}" for i, u in enumerate(doc.units)])
    lines = out.split("\n")
    assert len(lines) == 1013 and lines[-1] == ""
    assert all(line.startswith(f"{i} ") for i, line in enumerate(lines[:-1]))


# ------------------------------------------------------ mixed line endings


def _endings(data: bytes) -> list[bytes]:
    return re.findall(rb"\r\n|\n", data)


def test_each_line_keeps_its_own_ending(tmp_path):
    from pipeline.documents.inputs import read_input

    data = b"Para one\r\nwrapped.\n\r\nSecond.\r\n\nThird.\n"
    path = tmp_path / "mixed.txt"
    path.write_bytes(data)
    src = read_input(path)
    for fmt, name, expected in (
        # The joined paragraph keeps the ending of its last line.
        ("text", "P", b"P1\n\r\nP2\r\n\nP3\n"),
        ("lines", "L", b"L1\r\nL2\n\r\nL3\r\n\nL4\n"),
    ):
        doc = parse_document(src.text, fmt)
        doc.eol, doc.line_ends = src.eol, src.line_ends
        assert doc.output([u.text for u in doc.units]) == data
        names = [f"{name}{i + 1}" for i in range(len(doc.units))]
        assert doc.output(names) == expected
        # Without a record of each line, the majority: what other formats get.
        doc.line_ends = ""
        assert doc.output(names) == expected.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_real_file_with_mixed_line_endings_keeps_them():
    path = corpus_file("derived_mixed_eol_pride_and_prejudice_ch1-3.txt")
    from pipeline.documents.inputs import read_input

    src = read_input(path)
    doc = parse_document(src.text, "text")
    doc.eol, doc.line_ends = src.eol, src.line_ends
    data = path.read_bytes()
    assert doc.output([u.text for u in doc.units]) == data
    out = doc.output([u.text + MARK for u in doc.units]).decode().replace(MARK, "").encode()
    # Expected: each blank line its own ending, each paragraph its last line's.
    expected, raw_lines = [], re.findall(rb"[^\r\n]*(?:\r\n|\n)", data)
    for k, line in enumerate(raw_lines):
        last_of_block = k + 1 == len(raw_lines) or not raw_lines[k + 1].strip() or not line.strip()
        if last_of_block:
            expected.append(b"\r\n" if line.endswith(b"\r\n") else b"\n")
    assert _endings(out) == expected
    assert b"\r\n" in out and re.search(rb"[^\r]\n", out)
    text = out.decode()
    assert "CHAPTER II.\n" in text and "CHAPTER III.\r\n" in text


def test_an_autolink_comes_back_whole_in_plain_text():
    """It lost both angle brackets, and the URL was glued to the next word."""
    doc = parse_text("See <https://fsf.org/> for more,\nand <https://www.gnu.org/x/>.\n")
    (unit,) = doc.units
    assert [text for text, _ in unit.protected] == ["<https://fsf.org/>",
                                                    "<https://www.gnu.org/x/>"]
    translation = unit.text.replace("See", "Voir").replace("for more", "pour plus")
    assert doc.render([translation]) == (
        "Voir <https://fsf.org/> pour plus, and <https://www.gnu.org/x/>.\n")
