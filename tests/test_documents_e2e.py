"""Documents come back whole: real `nllb-pipeline translate` runs on the tiny
model, with the output's structure compared to the input's by a parser.

The tiny model has random weights: what it writes is noise, so nothing here
looks at translated words, only at what must not change (front matter,
code, URLs, cue lines and tags, line alignment, line endings).
"""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from pipeline.cli import main
from pipeline.store import Store
from tests.conftest import corpus_file, run_cli
from tests.test_format_markdown import table_rows
from tests.test_format_srt import assert_same_lines, srt_cues
from tests.test_format_vtt import assert_same_cues

# Random weights never stop early: keep each chunk's output budget short. One
# thread: on a busy two-core machine more threads make torch spin, not work.
SHORT = ("--length-ratio", "0.5", "--length-offset", "4", "--threads", "1")
_md = MarkdownIt("commonmark").enable("table").enable("strikethrough")
NFD = unicodedata.normalize("NFD", "café")

FRONT = '---\ntitle: "A *guide*: [x](http://front.example)"\nlist:\n  - one\n---\n'
CODE = f"```python\n# not a heading: {NFD}\nprint('{NFD}')  # [link](http://code.example)\n```\n"
MATH = "$$\n\\frac{a}{b} = c \\text{ and more}\n$$\n"
MD_DOC = f"""{FRONT}
# Guide to the *tool*

Read [the docs](https://docs.example.org/a_b?x=1&y=2 "Docs") or <https://auto.example/x>,
see ![logo](img/logo.png) and `{NFD}` in code; the cost is $x_1 + y$ here.[^1]

> [!WARNING]
> Back up your files first.

- [ ] Install the package.
- [x] Read the guide.

| Option | Meaning |
|---|---|
| `--mode` | `fast` \\| `slow`, see <https://table.example> |
| a \\| b | Pipes stay. |

{CODE}
{MATH}
First line  
second line of a hard break.

[^1]: The footnote explains [more](https://note.example).
"""


def cli_translate(tmp_path: Path, src: Path, model: Path, *extra: str):
    db = tmp_path / "jobs.db"
    return run_cli("--db", str(db), "translate", str(src), "--src", "eng_Latn", "--tgt",
                   "fra_Latn", "--model", str(model), "--no-progress", "--json", *SHORT, *extra,
                   db=db)


def inproc_translate(capsys, tmp_path: Path, src: Path, model: Path, *extra: str) -> dict:
    code = main(["--db", str(tmp_path / "jobs.db"), "translate", str(src), "--src", "eng_Latn",
                 "--tgt", "fra_Latn", "--model", str(model), "--beams", "1", "--json",
                 "--no-progress", *SHORT, *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def blocks(text: str) -> list[tuple]:
    return [(t.type, t.tag, t.nesting, t.level) for t in _md.parse(text)]


def fences(text: str) -> list[str]:
    return [t.content for t in _md.parse(text) if t.type in ("fence", "code_block")]


def urls(text: str) -> list[str]:
    found = []
    for tok in _md.parse(text):
        for child in tok.children or []:
            if child.type == "link_open":
                found.append(child.attrs["href"])
            elif child.type == "image":
                found.append(child.attrs["src"])
    return found


def test_markdown_keeps_front_matter_code_urls_and_extensions(tmp_path, tiny_model):
    src = tmp_path / "guide.md"
    src.write_bytes(MD_DOC.encode())
    cli_translate(tmp_path, src, tiny_model, "--beams", "1")
    out_bytes = (tmp_path / "guide.fra_Latn.md").read_bytes()
    out = out_bytes.decode()
    assert out_bytes.startswith(FRONT.encode() + b"\n#")  # front matter, byte for byte
    assert fences(out) == fences(MD_DOC) and CODE.encode() in out_bytes  # NFD bytes kept
    assert f"`{NFD}`".encode() in out_bytes
    assert MATH in out and "$x_1 + y$" in out
    assert blocks(out) == blocks(MD_DOC)
    # (Plain CommonMark reads the front matter as a setext heading.)
    assert urls(out) == urls(MD_DOC) == [
        "http://front.example", "https://docs.example.org/a_b?x=1&y=2", "https://auto.example/x", "img/logo.png",
        "https://table.example", "https://note.example"]
    lines = out.split("\n")
    assert "> [!WARNING]" in lines
    assert [line[:6] for line in lines if line.startswith("- [")] == ["- [ ] ", "- [x] "]
    assert out.count("[^1]") == 2 and re.search(r"^\[\^1\]: \S", out, re.M)
    assert "| `--mode` | `fast` \\| `slow`" in out  # escaped pipes between literals
    assert table_rows(out) == table_rows(MD_DOC) == [2, 2, 2]  # no cell was split
    assert out.count("\\|") >= MD_DOC.count("\\|")
    assert re.search(r"\S  \n", out)  # the two-space hard break, not a backslash
    assert "\\\n" not in out


def test_real_markdown_keeps_its_structure(capsys, tmp_path, tiny_model):
    src = tmp_path / "README.md"
    shutil.copy(corpus_file("markdown_rich_README.md"), src)
    inproc_translate(capsys, tmp_path, src, tiny_model)
    before, after = src.read_text(), (tmp_path / "README.fra_Latn.md").read_text()
    assert blocks(after) == blocks(before)
    assert fences(after) == fences(before)
    assert urls(after) == urls(before) and len(urls(before)) > 20


def test_real_subtitles_keep_every_cue_line_and_tag(tmp_path, tiny_model):
    """The capability tester at the default beam width (4)."""
    src = tmp_path / "tester.srt"
    shutil.copy(corpus_file("subtitles_capability_tester_crlf_bom.srt"), src)
    cli_translate(tmp_path, src, tiny_model)
    raw, out = src.read_bytes(), (tmp_path / "tester.fra_Latn.srt").read_bytes()
    assert out.startswith(b"\xef\xbb\xbf1\r\n")
    assert out.count(b"\r\n") == out.count(b"\n")  # CRLF throughout
    before, after = srt_cues(raw.decode("utf-8")), srt_cues(out.decode("utf-8"))
    assert len(after) == len(before) == 37
    assert [c[:2] for c in after] == [c[:2] for c in before]  # numbers and timings
    assert_same_lines([c[2] for c in before], [c[2] for c in after])
    for tag in ("<i>", "<u>", "</font>", "{\\an8}"):
        assert out.count(tag.encode()) == raw.count(tag.encode()) > 0


SRT_DOC = """1
00:00:01,000 --> 00:00:03,000
- Where are you going?
- Home, where else?

2
00:00:03,500 --> 00:00:06,000
{\\an8}<i>A sentence that is wrapped
over two lines of the cue.</i>

3
00:00:06,500 --> 00:00:09,000
<b>Bold opens here
and closes on the next line</b>
<font color="red">Red.</font> Plain.
"""


def test_small_subtitles_keep_speakers_and_wrapped_tags(capsys, tmp_path, tiny_model):
    src = tmp_path / "film.srt"
    src.write_text(SRT_DOC)
    inproc_translate(capsys, tmp_path, src, tiny_model)
    out = (tmp_path / "film.fra_Latn.srt").read_text()
    before, after = srt_cues(SRT_DOC), srt_cues(out)
    assert [c[:2] for c in after] == [c[:2] for c in before]
    assert_same_lines([c[2] for c in before], [c[2] for c in after])
    assert [line[:2] for line in after[0][2]] == ["- ", "- "]


@pytest.mark.slow
def test_real_webvtt_keeps_blocks_settings_and_cues(capsys, tmp_path, tiny_model):
    src = tmp_path / "chicas.vtt"
    shutil.copy(corpus_file("webvtt_netflix_las_chicas_del_cable.spa_Latn.vtt"), src)
    code = main(["--db", str(tmp_path / "jobs.db"), "translate", str(src), "--src", "spa_Latn",
                 "--tgt", "eng_Latn", "--model", str(tiny_model), "--beams", "1", "--json",
                 "--no-progress", *SHORT])
    assert code == 0, capsys.readouterr().err
    assert_same_cues(src.read_text(), (tmp_path / "chicas.eng_Latn.vtt").read_text())


def test_lines_stay_aligned_and_the_reading_is_said(capsys, caplog, tmp_path, tiny_model):
    long_line = " ".join(["This line is far too long for one chunk, so it is cut"] * 6) + "."
    text = f"First line.\n{long_line}\nThird line.\n12345\nLast one.\n"
    src = tmp_path / "aligned.txt"
    src.write_text(text)
    with caplog.at_level("WARNING", logger="nllb_pipeline"):  # stderr, in the CLI
        result = inproc_translate(capsys, tmp_path, src, tiny_model, "--max-chunk-tokens", "24")
    # Auto-detected (a .txt without blank lines would be one paragraph) and said so.
    assert "no blank lines" in caplog.text and "--format text" in caplog.text
    out = (tmp_path / "aligned.fra_Latn.txt").read_text()
    assert out.count("\n") == text.count("\n")
    assert all(line.strip() for line in out.split("\n")[:-1])
    assert out.split("\n")[3] == "12345"
    store = Store(tmp_path / "jobs.db")
    assert json.loads(store.job(result["job"]).params)["fmt"] == "lines"
    assert [c.unit for c in store.chunks(result["job"])].count(1) > 1  # the long line was split


def test_jsonl_keeps_paragraphs_and_skips_null_fields(capsys, caplog, tmp_path, tiny_model):
    records = [{"id": 1, "text": "One paragraph.\n\nAnother one."}, {"id": 2, "text": None},
               {"id": 3}, {"id": 4, "text": "Last."}]
    src = tmp_path / "data.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    with caplog.at_level("WARNING", logger="nllb_pipeline"):
        inproc_translate(capsys, tmp_path, src, tiny_model, "--jsonl", "text")
    lines = (tmp_path / "data.fra_Latn.jsonl").read_text().split("\n")
    assert lines[1:3] == src.read_text().split("\n")[1:3]
    first = json.loads(lines[0])["translation"]
    assert first.count("\n\n") == 1 and all(p.strip() for p in first.split("\n\n"))
    assert "line(s) 2, 3" in caplog.text


def line_blocks(data: bytes) -> list[tuple[bool, list[bytes]]]:
    """(blank, line endings) for each blank line and each run of non-blank lines."""
    found: list[tuple[bool, list[bytes]]] = []
    for content, ending in re.findall(rb"([^\r\n]*)(\r\n|\n)", data):
        blank = not content.strip()
        if found and not blank and not found[-1][0]:
            found[-1][1].append(ending)
        else:
            found.append((blank, [ending]))
    return found


def test_mixed_line_endings_survive_a_real_job(capsys, tmp_path, tiny_model):
    src = tmp_path / "mixed.txt"
    shutil.copy(corpus_file("derived_mixed_eol_pride_and_prejudice_ch1-3.txt"), src)
    inproc_translate(capsys, tmp_path, src, tiny_model)
    before = line_blocks(src.read_bytes())
    after = line_blocks((tmp_path / "mixed.fra_Latn.txt").read_bytes())
    assert [blank for blank, _ in after] == [blank for blank, _ in before]
    for (blank, was), (_, now) in zip(before, after):
        # A translated paragraph is one line ending as its last line did; one
        # the model gave back unchanged keeps its lines, each with its own.
        assert now == was if (blank or len(now) > 1) else now == was[-1:]
    assert {e for _, ends in after for e in ends} == {b"\r\n", b"\n"}


@pytest.mark.parametrize("name", [
    "subtitles_capability_tester_crlf_bom.srt", "webvtt_style_blocks.vtt"])
def test_untranslated_subtitles_come_back_byte_for_byte(tmp_path, name):
    """--missing source with every chunk failed is the identity: exact bytes."""
    from pipeline.documents.formats import detect_format, parse_document
    from pipeline.documents.inputs import read_input

    source = read_input(corpus_file(name))
    doc = parse_document(source.text, detect_format(source.path))
    doc.eol, doc.bom, doc.line_ends = source.eol, source.bom, source.line_ends
    assert doc.output([u.text for u in doc.units]) == source.data
