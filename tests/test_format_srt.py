from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.document import Document
from pipeline.errors import InvalidInput
from pipeline.formats.srt import parse_srt

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
TIMING = re.compile(r"^\d+:\d\d:\d\d,\d+ --> .*$", re.M)


def identity(doc: Document) -> str:
    return doc.render([u.text for u in doc.units])


BASIC = """1
00:00:01,500 --> 00:00:04,500
Hello there,
how are you?

2
00:00:05,000 --> 00:00:07,000  X1:100 X2:200 Y1:050 Y2:100
Fine.
"""


def test_cue_text_is_one_unit_and_the_rest_literal():
    doc = parse_srt(BASIC)
    assert [u.text for u in doc.units] == ["Hello there, how are you?", "Fine."]
    assert doc.render(["Bonjour, ça va ?", "Bien."]) == (
        "1\n00:00:01,500 --> 00:00:04,500\nBonjour, ça va ?\n\n"
        "2\n00:00:05,000 --> 00:00:07,000  X1:100 X2:200 Y1:050 Y2:100\nBien.\n"
    )
    literal = "".join(p for p in doc.parts if isinstance(p, str))
    assert "00:00:05,000 --> 00:00:07,000  X1:100 X2:200 Y1:050 Y2:100\n" in literal


@pytest.mark.parametrize(
    ("cue", "unit", "rendered"),
    [
        ("<i>Italic line\ncontinues</i>", "Italic line continues", "<i>T</i>"),
        ('<font color="red">Red text</font>', "Red text", '<font color="red">T</font>'),
        ("{\\an8}Top of screen", "Top of screen", "{\\an8}T"),
        ("{\\an8}\nTag on its own line", "Tag on its own line", "{\\an8}\nT"),
        ("<b><i>Both</i></b>", "Both", "<b><i>T</i></b>"),
        ("<i>one</i> and <i>two</i>", "one</i> and <i>two", "<i>T</i>"),
        ("Show this: {normal text}", "Show this: {normal text}", "T"),
        ("a 2<3,5>1 b", "a 2<3,5>1 b", "T"),
        ("日本語の\n字幕です", "日本語の字幕です", "T"),
    ],
)
def test_outer_tags_stay_literal(cue, unit, rendered):
    doc = parse_srt(f"1\n00:00:01,000 --> 00:00:02,000\n{cue}\n")
    assert [u.text for u in doc.units] == [unit]
    assert doc.render(["T"]) == f"1\n00:00:01,000 --> 00:00:02,000\n{rendered}\n"


def test_empty_and_textless_cues_stay_as_they_are():
    text = "1\n00:00:01,000 --> 00:00:02,000\n\n2\n00:00:03,000 --> 00:00:04,000\n<i>...</i>\n♪\n\n3\n00:00:05,000 --> 00:00:06,000\nWords\n"
    doc = parse_srt(text)
    assert [u.text for u in doc.units] == ["Words"]
    assert identity(doc) == text


def test_number_as_cue_text_is_text():
    text = "1\n00:00:01,000 --> 00:00:02,000\n42\n\n2\n00:00:03,000 --> 00:00:04,000\nOK\n"
    doc = parse_srt(text)
    assert identity(doc) == text
    assert [u.text for u in doc.units] == ["OK"]


def test_lenient_layouts():
    # No cue numbers, no final newline, no blank line before the next cue,
    # a stray blank line inside a cue, dots instead of commas.
    text = (
        "00:00:01.000 --> 00:00:02.000\nFirst\n"
        "2\n00:00:03,000 --> 00:00:04,000\nSecond\n\ncontinued\n\n"
        "3\n00:00:05,000 --> 00:00:06,000\nThird"
    )
    doc = parse_srt(text)
    assert [u.text for u in doc.units] == ["First", "Second", "continued", "Third"]
    assert identity(doc) == text
    assert doc.render(["1", "2", "3", "4"]).endswith("00:00:06,000\n4")


def test_bom_is_tolerated():
    doc = parse_srt("\ufeff1\n00:00:01,000 --> 00:00:02,000\nHi\n")
    assert doc.bom
    assert identity(doc) == "1\n00:00:01,000 --> 00:00:02,000\nHi\n"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("Just some prose.\nNot subtitles.\n", "line 1"),
        ("\n\nHello\n", "line 3"),
        ("1\nHello\n", "line 2"),
        ("1\n00:00:01,000 --> 00:00:02,000\nHi\n\n2\nno timing here\n", "line 6"),
        ("1\n00:00:01 --> 00:00:02\nHi\n", "line 2"),
    ],
)
def test_not_srt_raises_invalid_input(text, line):
    with pytest.raises(InvalidInput) as err:
        parse_srt(text)
    message = str(err.value)
    assert "\n" not in message
    assert re.search(rf"\b{line}\b", message)
    assert "timing" in message


def test_empty_file():
    assert parse_srt("").parts == []
    assert identity(parse_srt("\n\n")) == "\n\n"


def test_capability_tester_timings_survive():
    path = CORPUS / "subtitles_capability_tester_crlf_bom.srt"
    if not path.exists():
        pytest.skip(f"{path} not found")
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig").replace("\r\n", "\n")
    doc = parse_srt(text)
    doc.eol, doc.bom = "\r\n", raw.startswith(b"\xef\xbb\xbf")
    out = identity(doc)

    timings = TIMING.findall(text)
    assert len(timings) == 37
    assert TIMING.findall(out) == timings
    # Byte for byte, with CRLF and BOM restored.
    encoded = doc.encode(out)
    assert encoded.startswith(b"\xef\xbb\xbf1\r\n")
    raw_timings = re.findall(rb"^\d+:\d\d:\d\d,\d+ --> [^\r\n]*\r\n", raw, re.M)
    assert re.findall(rb"^\d+:\d\d:\d\d,\d+ --> [^\r\n]*\r\n", encoded, re.M) == raw_timings
    assert b"00:00:21,501 --> 00:00:22,500  X1:000 X2:000 Y1:050 Y2:100\r\n" in encoded
    # Cue numbers and blank separators are where they were.
    numbers = re.findall(r"^(\d+)\n(?=\d+:\d\d)", out, re.M)
    assert numbers == [str(n) for n in range(1, 38)]
    assert out.count("\n\n") == text.count("\n\n")
    # One unit per cue with words, each a single line, outer tags outside.
    assert len(doc.units) == 37
    assert all("\n" not in u.text for u in doc.units)
    texts = [u.text for u in doc.units]
    assert "This text should be at the top and horizontally centered" not in texts  # cue 11 has a first line
    assert "This text should be at the middle and horizontally centered" in texts  # {\an5} is literal
    assert "Hidden" in texts
    assert not any(t.startswith(("<", "{\\")) for t in texts)
    assert re.sub(r"\s+", "", out) == re.sub(r"\s+", "", text)
