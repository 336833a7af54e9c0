from __future__ import annotations

import re
import unicodedata
import pytest

from pipeline.documents.document import Document
from pipeline.errors import InvalidInput
from pipeline.documents.formats.srt import parse_srt
from pipeline.documents.protect import visible
from tests.conftest import corpus_file

TIMING = re.compile(r"^\d+:\d\d:\d\d,\d+ --> .*$", re.M)


def identity(doc: Document) -> str:
    return doc.render([u.text for u in doc.units])


MARK = "\u2063"  # invisible: a "translation" that differs from its source
# Every tag a SubRip player knows, and ASS overrides; counted per cue.
TAG = re.compile(r"</?(?:i|b|u|s|font)\b[^>]*>|\{\\[^}]*\}", re.I)


def translated(doc: Document) -> str:
    """Rendered as if every unit were translated (so re-wrapped, not as written)."""
    return doc.render([u.text + MARK for u in doc.units]).replace(MARK, "")


def hostile(text: str) -> str:
    """A "translation" that tries to add tags, line breaks and an empty line."""
    return f"{text.upper()} <b>bold</b> {{\\an8}} line\n\nbreak </i>"


def srt_cues(text: str) -> list[tuple[list[str], str, list[str]]]:
    """(lines before the timing, timing line, text lines) of every cue, read
    the way a player does: blocks between blank lines, independently of
    pipeline.documents.formats.srt."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    cues = []
    for block in re.split(r"\n[ \t]*\n", text.strip("\n")):
        lines = block.split("\n")
        at = next(k for k, line in enumerate(lines) if "-->" in line)
        cues.append((lines[:at], lines[at], lines[at + 1 :]))
    return cues


def tag_lines(lines: list[str], tag=TAG) -> list[tuple[int, str]]:
    """(line index, tag) for every tag in a cue: equal lists mean the same
    tags, in the same order, each opening and closing on the same line."""
    return [(k, m.group().split()[0].lower()) for k, line in enumerate(lines)
            for m in tag.finditer(line)]


def edge_tags(lines: list[str], tag=TAG) -> list[int | None]:
    """Per tag of a cue, in order: its line if it starts or ends its line (a
    literal part), None if it stands inside the line (a protected piece of
    its sentence, which may be re-wrapped onto another of the cue's lines)."""
    found = []
    for k, line in enumerate(lines):
        for m in tag.finditer(line):
            before = tag.sub("", line[: m.start()]).strip().lstrip("-‐‑–—―").strip()
            after = tag.sub("", line[m.end() :]).strip()
            found.append(k if not before or not after else None)
    return found


def assert_same_lines(before: list[list[str]], after: list[list[str]], tag=TAG) -> None:
    """Cue by cue: as many lines as before, the same tags in the same order,
    and each tag that started or ended a line on that same line. The one
    exception is a translation too short to fill its lines (a one-letter
    answer for a two-line cue, or a run of combining marks from the random
    model): no line is ever left empty, so that cue has fewer lines, and
    still the same tags in the same order."""
    assert len(after) == len(before)
    for was, now in zip(before, after):
        assert [t for _, t in tag_lines(now, tag)] == [t for _, t in tag_lines(was, tag)]
        if len(now) == len(was):
            lines_now = [k for k, _ in tag_lines(now, tag)]
            assert all(line is None or line == lines_now[i]
                       for i, line in enumerate(edge_tags(was, tag))), (was, now)
            continue
        shortest = min(_base_characters(tag.sub("", line)) for line in now)
        assert len(now) < len(was) and shortest < len(was), (was, now)


def _base_characters(text: str) -> int:
    """Characters a line may break before (not combining marks)."""
    return sum(unicodedata.category(ch) not in ("Mn", "Me", "Cf") for ch in text.strip())


BASIC = """1
00:00:01,500 --> 00:00:04,500
Hello there,
how are you?

2
00:00:05,000 --> 00:00:07,000  X1:100 X2:200 Y1:050 Y2:100
Fine.
"""


def test_cue_text_is_one_unit_rewrapped_onto_its_lines():
    doc = parse_srt(BASIC)
    assert [(u.text, u.lines) for u in doc.units] == [("Hello there, how are you?", 2), ("Fine.", 1)]
    assert identity(doc) == BASIC
    assert doc.render(["Bonjour, comment allez-vous ?", "Bien."]) == (
        "1\n00:00:01,500 --> 00:00:04,500\nBonjour, comment\nallez-vous ?\n\n"
        "2\n00:00:05,000 --> 00:00:07,000  X1:100 X2:200 Y1:050 Y2:100\nBien.\n"
    )
    literal = "".join(p for p in doc.parts if isinstance(p, str))
    assert "00:00:05,000 --> 00:00:07,000  X1:100 X2:200 Y1:050 Y2:100\n" in literal


@pytest.mark.parametrize(
    ("cue", "units", "rendered"),
    [
        ("<i>Italic line\ncontinues</i>", ["Italic line continues"], "<i>T\nT</i>"),
        ('<font color="red">Red text</font>', ["Red text"], '<font color="red">T T</font>'),
        ("{\\an8}Top of screen", ["Top of screen"], "{\\an8}T T"),
        ("{\\an8}\nTag on its own line", ["Tag on its own line"], "{\\an8}\nT T"),
        ("<b><i>Both</i></b>", ["Both"], "<b><i>T T</i></b>"),
        # A tag inside a line stays inside its sentence, and so does its pair.
        ("<i>one</i> and <i>two</i>", ["[1]one[2] and [3]two[4]"], "<i>T</i> T <i>T</i>"),
        ("I said <b>no</b>\nto him", ["I said [1]no[2] to him"], "T T\n<b>T</b> T T"),
        ("<u>Both lines\nshould be underline</u>", ["Both lines should be underline"],
         "<u>T\nT</u>"),
        ("Show this: {normal text}", ["Show this: {normal text}"], "T T"),
        ("a 2<3,5>1 b", ["a 2<3,5>1 b"], "T T"),
        ("日本語の\n字幕です", ["日本語の字幕です"], "T\nT"),
        ("Hello\n♪\nworld", ["Hello", "world"], "T T\n♪\nT T"),
        ("A\\h\\hB word", ["A", "B word"], "T T\\h\\hT T"),
    ],
)
def test_tags_stay_literal_where_they_were(cue, units, rendered):
    doc = parse_srt(f"1\n00:00:01,000 --> 00:00:02,000\n{cue}\n")
    assert [visible(u.text) for u in doc.units] == units
    # "T T" for each unit; each word a "T" where it has protected tags.
    out = doc.render(["T\u3000T" if "日" in u.text else re.sub(
        "[^\\s\U000F0000-\U000FFFFD]+", "T", u.text) if u.protected else "T T"
        for u in doc.units])
    assert out == f"1\n00:00:01,000 --> 00:00:02,000\n{rendered}\n"


@pytest.mark.parametrize(
    ("cue", "units", "rendered"),
    [
        ("- Ta en kopp varmt te.\n- Det är inte varmt.", ["Ta en kopp varmt te.", "Det är inte varmt."],
         "- ONE TWO THREE\n- ONE TWO THREE"),
        ("<i>- Hi.</i>\n<i>-Hello, you.</i>", ["Hi.", "Hello, you."],
         "<i>- ONE TWO THREE</i>\n<i>-ONE TWO THREE</i>"),
        ("– Una frase que sigue\nen otra línea.\n– Sí.", ["Una frase que sigue en otra línea.", "Sí."],
         "– ONE TWO\nTHREE\n– ONE TWO THREE"),
        ("-30 degrees\noutside", ["-30 degrees outside"], "ONE TWO\nTHREE"),
    ],
)
def test_dialogue_dashes_keep_each_speaker_on_a_line(cue, units, rendered):
    doc = parse_srt(f"1\n00:00:01,000 --> 00:00:02,000\n{cue}\n")
    assert [u.text for u in doc.units] == units
    out = doc.render(["ONE TWO THREE"] * len(doc.units))
    assert out == f"1\n00:00:01,000 --> 00:00:02,000\n{rendered}\n"


def test_a_translation_cannot_add_tags_lines_or_end_the_cue():
    doc = parse_srt(BASIC)
    out = doc.render([hostile(u.text) for u in doc.units])
    assert [len(c[2]) for c in srt_cues(out)] == [2, 1]
    assert [tag_lines(c[2]) for c in srt_cues(out)] == [[], []]
    assert "an8" not in out and "\n\n2\n" in out


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
    path = corpus_file("subtitles_capability_tester_crlf_bom.srt")
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig").replace("\r\n", "\n")
    doc = parse_srt(text)
    doc.eol, doc.bom = "\r\n", raw.startswith(b"\xef\xbb\xbf")
    assert doc.encode(identity(doc)) == raw  # byte for byte, CRLF and BOM restored
    for out in (translated(doc), doc.render([hostile(u.text) for u in doc.units])):
        timings = TIMING.findall(text)
        assert len(timings) == 37
        assert TIMING.findall(out) == timings
        encoded = doc.encode(out)
        assert encoded.startswith(b"\xef\xbb\xbf1\r\n")
        assert b"00:00:21,501 --> 00:00:22,500  X1:000 X2:000 Y1:050 Y2:100\r\n" in encoded
        before, after = srt_cues(text), srt_cues(out)
        assert [c[:2] for c in after] == [c[:2] for c in before]  # numbers and timings
        assert [len(c[2]) for c in after] == [len(c[2]) for c in before]
        assert [tag_lines(c[2]) for c in after] == [tag_lines(c[2]) for c in before]
    assert sum(len(tag_lines(c[2])) for c in before) == 68  # the test has teeth
    texts = [u.text for u in doc.units]
    assert "This text should be at the top and horizontally centered" in texts  # {\an8} is literal
    assert ("Both lines should be underline", 2) in [(u.text, u.lines) for u in doc.units]
    assert not any(TAG.search(t) for t in texts)
    assert re.sub(r"\s+", "", translated(doc)) == re.sub(r"\s+", "", text)
