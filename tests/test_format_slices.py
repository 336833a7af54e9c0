"""A document parsed a slice at a time is the document parsed whole: the same
units in the same order, the same output bytes, for every format, cut
anywhere the format allows (slices of 1 to 7 lines here, thousands in a job)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pipeline.documents.document import Document
from pipeline.errors import InvalidInput
from pipeline.documents.formats import parse_document
from pipeline.documents.formats.slices import SliceParser, check_document, slices
from pipeline.documents.inputs import BOM, InputLines, decode_input, scan_input
from tests.conftest import corpus_file

SIZES = (0, 1, 2, 3, 7)

SAMPLES = {
    "lines": "One line.\nTwo lines.\n\n42\nLast line without an end",
    "text": ("A paragraph\nwrapped over\nthree lines.\n\n  Indented one.\n\n\n"
             "\u3000第一段落です。\n続きの行。\n\u3000第二段落。\n---\n\nEnd.\n"),
    "jsonl": ('{"text": "Hello there."}\n\n{"text": null, "id": 2}\n{"id": 3}\n'
              '{"text": "First.\\n\\nSecond paragraph."}\n{"text": "Bye."}'),
    "srt": ("1\n00:00:01,000 --> 00:00:02,000\n<i>Hello</i> there,\nmy friend.\n\n"
            "2\n00:00:03,000 --> 00:00:04,000\n- Who?\n- Me.\n\n"
            "00:00:05,000 --> 00:00:06,000\nNo number.\n\nA block of its own.\n\n"
            "4\n00:00:07,000 --> 00:00:08,000\n4\n5\n00:00:09,000 --> 00:00:10,000\nNext.\n"),
    "vtt": ("WEBVTT - a title\nKind: captions\n\nNOTE a comment\nover two lines\n\n"
            "STYLE\n::cue { color: red }\n\nid-1\n00:01.000 --> 00:02.000 align:start\n"
            "<v Alba>Hello &amp; welcome.</v>\n\n00:03.000 --> 00:04.000\nFirst cue.\n"
            "00:05.000 --> 00:06.000\nRight after.\n\n00:07.000 --> 00:08.000\n<i>Bye</i>.\n"),
    "markdown": "# Title\n\nA paragraph with a [link][ref].\n\n- item one\n- item two\n\n"
                "[ref]: https://example.org\n",
}


def sliced(path: Path, fmt: str, size: int, *, field: str = "") -> tuple[list, InputLines,
                                                                          list[str]]:
    """(the slices' documents, as stored and read back, with their line
    breaks; the reader; the notes)."""
    reader = InputLines(path, block_bytes=4096)
    parser = SliceParser(fmt, jsonl_field=field)
    docs = []
    for piece in slices(reader, fmt, size=size):
        doc = parser.parse(piece)
        doc.line_ends = piece.ends
        docs.append(Document.from_json(doc.to_json()))
    return docs, reader, parser.finish()


def render(docs: list[Document], reader: InputLines, translations: list[str]) -> bytes:
    """What postprocess writes: each slice with the whole file's line
    endings, its own line breaks only where the file mixes them."""
    out, k = b"", 0
    for i, doc in enumerate(docs):
        tally = reader.tally
        doc.eol, doc.bom = tally.eol, tally.bom and i == 0
        doc.line_ends = doc.line_ends if tally.mixed else ""
        out += doc.output(translations[k:k + len(doc.units)])
        k += len(doc.units)
    return out


def check_same_as_whole(path: Path, fmt: str, *, field: str = "", sizes=SIZES) -> int:
    """Slices at each of ``sizes`` match the whole; returns how many the first made."""
    data = path.read_bytes()
    source = decode_input(path, data)
    whole = parse_document(source.text, fmt, jsonl_field=field)
    whole.eol, whole.bom, whole.line_ends = source.eol, source.bom, source.line_ends
    counts = []
    for size in sizes:
        docs, reader, notes = sliced(path, fmt, size, field=field)
        units = [u for doc in docs for u in doc.units]
        assert units == whole.units, (path.name, fmt, size)
        assert notes == whole.notes
        for translations in ([u.text for u in units],  # untranslated: the input back
                             [u.text.upper() + "\n<i>&</i> |x|" for u in units]):
            assert render(docs, reader, translations) == whole.output(translations), (
                path.name, fmt, size)
        counts.append(len(docs))
    return counts[0]


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
@pytest.mark.parametrize("eol", ["\n", "\r\n", "mixed"])
def test_every_format_sliced_anywhere_gives_the_same_units_and_bytes(tmp_path, fmt, eol):
    text = SAMPLES[fmt]
    if eol == "mixed":
        rng = random.Random(fmt)
        text = "".join(line + rng.choice(["\n", "\r\n", "\r\n"]) for line in text.split("\n"))
    else:
        text = text.replace("\n", eol)
    path = tmp_path / f"doc.{fmt}"
    path.write_bytes((BOM if eol == "\r\n" else b"") + text.encode())
    slices_at_smallest = check_same_as_whole(path, fmt, field="text")
    assert (slices_at_smallest == 1) == (fmt == "markdown")  # Markdown is never cut


CORPUS_FILES = [("flores200_devtest.eng_Latn.txt", "lines"),
                ("gutenberg_1342_pride_and_prejudice_crlf.txt", "text"),
                ("derived_mixed_eol_pride_and_prejudice_ch1-3.txt", "text"),
                ("derived_mixed_eol_pride_and_prejudice_ch1-3.txt", "lines"),
                ("gutenberg_23962_journey_to_the_west_ch01-20.zho_Hant.txt", "text"),
                ("awkward_blns_naughty_strings.txt", "lines"),
                ("subtitles_capability_tester_crlf_bom.srt", "srt"),
                ("webvtt_netflix_las_chicas_del_cable.spa_Latn.vtt", "vtt"),
                ("webvtt_notes_and_comments.vtt", "vtt"),
                ("markdown_rich_README.md", "markdown")]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "fmt"), CORPUS_FILES)
def test_real_files_sliced_give_the_same_units_and_bytes(name, fmt):
    path = corpus_file(name)
    assert (check_same_as_whole(path, fmt, sizes=(1, 40)) > 1) == (fmt != "markdown")


def test_a_jsonl_note_and_check_span_slices(tmp_path):
    records = [{"text": None} if n % 3 == 0 else {"text": f"Line {n}."} for n in range(90)]
    path = tmp_path / "doc.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    whole = parse_document(path.read_text(), "jsonl", jsonl_field="text")
    _, _, notes = sliced(path, "jsonl", 1, field="text")
    assert notes == whole.notes and "30 JSON Lines record(s)" in notes[0]
    assert notes[0].endswith("and 10 more")
    # A slice of nothing but null fields is fine; only a whole file of them is not.
    path.write_text('{"text": null}\n{"text": null}\n{"text": "Hi."}\n')
    assert sliced(path, "jsonl", 1, field="text")[2]
    path.write_text('{"text": null}\n{"text": null}\n')
    with pytest.raises(InvalidInput, match="no line has a field 'text'"):
        sliced(path, "jsonl", 1, field="text")


@pytest.mark.parametrize(("fmt", "text", "message"), [
    ("jsonl", '{"text": "a"}\n' * 5 + "not json\n", "line 6 is not valid JSON"),
    ("srt", "1\n00:00:01,000 --> 00:00:02,000\nHi.\n\n" * 4 + "5\nNo timing.\n",
     "line 18 should be a timing line"),
])
def test_format_errors_name_the_line_in_the_whole_file(tmp_path, fmt, text, message):
    with pytest.raises(InvalidInput, match=message):
        parse_document(text, fmt, jsonl_field="text")
    path = tmp_path / "doc"
    path.write_text(text)
    for source in (decode_input(path, path.read_bytes()), scan_input(path)):
        with pytest.raises(InvalidInput, match=message):
            check_document(source.lines(), fmt, jsonl_field="text")
    with pytest.raises(InvalidInput, match=message):
        sliced(path, fmt, 1, field="text")


def test_a_paragraph_longer_than_a_slice_stays_whole(tmp_path):
    path = tmp_path / "doc.txt"
    path.write_text("a wrapped\nparagraph\nof five\nlines\nin all\n\nnext one\n")
    docs, _, _ = sliced(path, "text", 1)
    assert [u.text for d in docs for u in d.units] == [
        "a wrapped paragraph of five lines in all", "next one"]


def test_reading_in_blocks_decodes_as_the_whole_file_is_decoded(tmp_path):
    rng = random.Random(5)
    path = tmp_path / "doc.txt"
    for _ in range(60):
        pieces = [rng.choice(["abc", "é ü", "", " ", "日本", "x" * rng.randint(0, 9)])
                  + rng.choice(["\n", "\r\n", "\r", "\r\r\n", "\n\n"])
                  for _ in range(rng.randint(1, 25))]
        data = (BOM if rng.random() < 0.3 else b"") + ("".join(pieces) + "end").encode()
        path.write_bytes(data)
        source = decode_input(path, data)
        scanned = scan_input(path)  # the same facts, nothing held
        assert (scanned.sha256, scanned.eol, scanned.bom, scanned.size) == (
            source.sha256, source.eol, source.bom, len(data))
        assert scanned.data is None and scanned.text is None
        assert "".join(line.text for line in scanned.lines()) == source.text
        for block in (1, 2, 5, 1 << 20):
            reader = InputLines(path, block_bytes=block)
            lines = list(reader)
            assert "".join(line.text for line in lines) == source.text
            assert (reader.tally.eol, reader.tally.bom) == (source.eol, source.bom)
            letters = "".join(line.end for line in lines)
            assert (letters if reader.tally.mixed else "") == source.line_ends
            assert lines[-1].end_byte == len(data)
            k = rng.randrange(len(lines))  # read on from any line start
            start = lines[k - 1].end_byte if k else 0
            assert [line.text for line in InputLines(path, start=start, block_bytes=block)] == [
                line.text for line in lines[k:]]


@pytest.mark.parametrize(("data", "message"), [
    (b"fine\n" * 3 + b"caf\xe9\n", r"not valid UTF-8 \(byte 0xe9 at offset 18, line 4\)"),
    (b"a\x00b\n", "binary file"),
    ("hello\n".encode("utf-16"), "UTF-16"),
])
def test_reading_refuses_what_decoding_refuses(tmp_path, data, message):
    path = tmp_path / "doc.txt"
    path.write_bytes(data)
    with pytest.raises(InvalidInput, match=message):
        decode_input(path, data)
    with pytest.raises(InvalidInput, match=message):
        list(InputLines(path, block_bytes=2))
    with pytest.raises(InvalidInput, match=message):
        scan_input(path)
