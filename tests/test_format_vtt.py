"""WebVTT: cue text translated with its lines, tags and speakers; the rest byte for byte."""

from __future__ import annotations

import re

import pytest

from pipeline.documents.document import Document
from pipeline.errors import InvalidInput
from pipeline.documents.formats import detect_format, parse_document
from pipeline.documents.formats.vtt import parse_vtt
from pipeline.documents.protect import visible
from tests.conftest import corpus_file
from tests.test_format_srt import assert_same_lines

MARK = "\u2063"  # invisible: a "translation" that differs from its source
CORPUS_FILES = [
    "webvtt_karaoke_timestamps.vtt",
    "webvtt_notes_and_comments.vtt",
    "webvtt_style_blocks.vtt",
    "webvtt_netflix_las_chicas_del_cable.spa_Latn.vtt",
]
TAG = re.compile(r"<[^<>\n]+>")


def identity(doc: Document) -> str:
    return doc.render([u.text for u in doc.units])


def translated(doc: Document) -> str:
    return doc.render([u.text + MARK for u in doc.units]).replace(MARK, "")


def hostile(text: str) -> str:
    return f"{text.upper()} <b>bold</b> & <00:01.000> --> x\n\nNOTE y"


def blocks(text: str) -> list[list[str]]:
    """The file's blocks, as a player splits them (at blank lines)."""
    return [b.split("\n") for b in re.split(r"\n[ \t]*\n", text.lstrip("\ufeff").strip("\n"))]


def vtt_cues(text: str) -> list[tuple[list[str], str, list[str]]]:
    """(lines before the timing, timing line, text lines) for every cue."""
    cues = []
    for block in blocks(text)[1:]:
        at = next((k for k, line in enumerate(block) if "-->" in line), None)
        if at is not None and not re.match(r"(NOTE|STYLE|REGION)\b", block[0]):
            cues.append((block[:at], block[at], block[at + 1 :]))
    return cues


def other_blocks(text: str) -> list[list[str]]:
    """The header and every NOTE, STYLE and REGION block."""
    found = blocks(text)
    return found[:1] + [b for b in found[1:] if re.match(r"(NOTE|STYLE|REGION)\b", b[0])]


def tag_lines(lines: list[str]) -> list[tuple[int, str]]:
    return [(k, m.group()) for k, line in enumerate(lines) for m in TAG.finditer(line)]


def assert_same_cues(source: str, output: str) -> None:
    before, after = vtt_cues(source), vtt_cues(output)
    assert [c[:2] for c in after] == [c[:2] for c in before]  # identifiers, timings, settings
    assert_same_lines([c[2] for c in before], [c[2] for c in after], TAG)
    assert other_blocks(output) == other_blocks(source)


SAMPLE = """WEBVTT - A film with <tags> in its title
Kind: captions

NOTE
A comment over two lines
with --> in it is still a comment.

STYLE
::cue(.yellow) { color: yellow; }

REGION
id:fred width:40% lines:3

NOTE a one-line note

intro
00:00:01.000 --> 00:00:04.000 position:50%,middle align:middle line:84%
<v Alba>The moon <00:02.500>hits <c.yellow>your eye</c>
like a big pizza pie.

00:04.000 --> 00:06.000
- Tom &amp; Jerry?
- <i>No, thanks.</i>

3
00:06.000 --> 00:08.000 region:fred
Two lines that make
one sentence &lt;here&gt;.
00:08.000 --> 00:09.000
Right after, no blank line.
"""


def test_everything_but_cue_text_is_copied():
    doc = parse_vtt(SAMPLE)
    # A class span inside a line stays in its sentence; a karaoke timestamp cuts it.
    assert [(visible(u.text), u.lines, u.cue) for u in doc.units] == [
        ("The moon", 1, "vtt"), ("hits [1]your eye[2] like a big pizza pie.", 2, "vtt"),
        ("Tom & Jerry?", 1, "vtt"),
        ("No, thanks.", 1, "vtt"), ("Two lines that make one sentence <here>.", 2, "vtt"),
        ("Right after, no blank line.", 1, "vtt"),
    ]
    assert identity(doc) == SAMPLE
    for out in (translated(doc), doc.render([hostile(u.text) for u in doc.units])):
        assert_same_cues(SAMPLE, out)
        assert out.startswith(SAMPLE[: SAMPLE.index("intro")])  # header, NOTE, STYLE, REGION
    out = translated(doc)
    assert "- Tom &amp; Jerry?\n- <i>No, thanks.</i>\n" in out
    assert "Two lines that make one\nsentence &lt;here&gt;.\n" in out
    # Re-wrapped at balanced widths, the span going with its words.
    assert "<v Alba>The moon <00:02.500>hits <c.yellow>your eye</c> like\na big pizza pie.\n" in out


def test_a_hostile_translation_is_escaped():
    doc = parse_vtt("WEBVTT\n\n00:01.000 --> 00:02.000\nHello <b>there</b>\n")
    out = doc.render([hostile(u.text) for u in doc.units])
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;00:01.000&gt;" in out
    assert "\n\n" not in out.split("-->", 1)[1].rstrip("\n")  # the cue did not end early
    assert_same_cues("WEBVTT\n\n00:01.000 --> 00:02.000\nHello <b>there</b>\n", out)


@pytest.mark.parametrize("text", [
    "", "WEBVTTX\n\n00:01.000 --> 00:02.000\nHi\n", "1\n00:00:01,000 --> 00:00:02,000\nHi\n",
    " WEBVTT\n", "webvtt\n",
])
def test_a_file_without_the_signature_is_refused(text):
    with pytest.raises(InvalidInput) as err:
        parse_vtt(text)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("not a WebVTT (.vtt) file: line 1 should start with 'WEBVTT'")


def test_signature_variants_and_bom():
    for head in ("WEBVTT", "WEBVTT\tx", "\ufeffWEBVTT"):
        doc = parse_vtt(f"{head}\n\n00:01.000 --> 00:02.000\nHi there\n")
        assert [u.text for u in doc.units] == ["Hi there"]
    assert parse_vtt("\ufeffWEBVTT\n").bom
    assert detect_format("movie.VTT") == "vtt"
    assert parse_document("WEBVTT\n\n00:01.000 --> 00:02.000\nOK then\n", "vtt").units


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_real_files_round_trip(name):
    text = corpus_file(name).read_text(encoding="utf-8")
    doc = parse_vtt(text)
    assert doc.units
    assert identity(doc) == text
    for out in (translated(doc), doc.render([hostile(u.text) for u in doc.units])):
        assert_same_cues(text, out)


def test_netflix_file_keeps_settings_dialogue_and_italics():
    text = corpus_file("webvtt_netflix_las_chicas_del_cable.spa_Latn.vtt").read_text(encoding="utf-8")
    doc = parse_vtt(text)
    cues = vtt_cues(text)
    assert len(cues) == 865
    out = translated(doc)
    after = vtt_cues(out)
    dashed = [k for k, c in enumerate(cues) if sum(line.startswith("- ") for line in c[2]) == 2]
    assert len(dashed) > 50
    for k in dashed:  # two speakers stay two lines, each with its dash
        assert [line[:2] for line in after[k][2]] == ["- ", "- "]
    italic_lines = sum(line.startswith("<i>") and line.endswith("</i>") for c in cues for line in c[2])
    assert italic_lines > 100
    assert italic_lines == sum(
        line.startswith("<i>") and line.endswith("</i>") for c in after for line in c[2])
    assert "position:50.00%,middle  align:middle size:80.00%  line:84.67% \n" in out
