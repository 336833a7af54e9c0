"""Protected placeholders through real translate runs on the tiny model.

The tiny model's output is noise, so no placeholder ever survives it: every
chunk that has one falls back to its fragments. What must hold either way:
each protected token comes back byte for byte, in place, and the output
parses to the same structure (markdown-it tokens, SubRip cues) as the input.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest
from markdown_it import MarkdownIt

from pipeline.cli import main
from tests.conftest import corpus_file
from tests.test_format_srt import assert_same_lines, srt_cues

_md = MarkdownIt("commonmark").enable("table").enable("strikethrough")
FAST = ("--beams", "1", "--length-ratio", "0.5", "--length-offset", "4", "--threads", "1")
TOKENS = ["https://rich.readthedocs.io/en/latest/", "www.example.org/a_b", "name@example.org",
          "https://github.com/Textualize/rich", "~/.config/rich/app.toml", "@willmcgugan",
          "1.2.3", "src/rich/console.py"]
SMALL = f"""# Rich *guide*

Read the [documentation]({TOKENS[0]}) or visit {TOKENS[1]} today, and mail {TOKENS[2]}.

The source is at [{TOKENS[3]}]({TOKENS[3]}); edit `{TOKENS[4]}` as @willmcgugan says,
then install version {TOKENS[6]} and open {TOKENS[7]} with **care** and ~~haste~~.
"""


def translate(capsys, tmp_path, src, *extra) -> dict:
    db = str(tmp_path / "jobs.db")
    code = main(["--db", db, "translate", str(src), "--src", "eng_Latn", "--tgt", "fra_Latn",
                 "--json", "--no-progress", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    job = json.loads(out)["job"]
    assert main(["--db", db, "show", job, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def inline_markup(text: str) -> list[list[str]]:
    """Per inline run, its markup tokens in order (the text between ignored)."""
    return [[c.type for c in tok.children if c.type not in ("text", "softbreak", "text_special")]
            for tok in _md.parse(text) if tok.type == "inline"]


def blocks(text: str) -> list[tuple]:
    return [(t.type, t.tag, t.nesting) for t in _md.parse(text)]


def hrefs(text: str) -> list[str]:
    return [c.attrs.get("href") or c.attrs.get("src") for t in _md.parse(text)
            for c in t.children or [] if c.type in ("link_open", "image")]


def test_each_construct_comes_back_byte_for_byte_at_the_defaults(capsys, tmp_path, tiny_model):
    """Beams 4, the default length rule, --quality repair: what users run."""
    src = tmp_path / "small.md"
    src.write_text(SMALL)
    info = translate(capsys, tmp_path, src, "--model", str(tiny_model), "--threads", "1")
    out = (tmp_path / "small.fra_Latn.md").read_text()
    for token in TOKENS:
        assert out.count(token) == SMALL.count(token), token
    assert blocks(out) == blocks(SMALL)
    assert inline_markup(out) == inline_markup(SMALL)
    assert hrefs(out) == hrefs(SMALL)
    assert f"`{TOKENS[4]}`" in out
    # 17 protected pieces; the tiny model kept none, so each chunk with one
    # was translated as fragments instead.
    assert info["placeholders"]["protected"] == 17
    # (the heading and the two paragraphs: one sentence each)
    assert info["placeholders"]["fallbacks"] == 3
    assert info["state"] == "SUCCEEDED"


def test_quality_flag_reports_flags_and_the_job_still_succeeds(capsys, tmp_path, tiny_model):
    src = tmp_path / "note.txt"
    src.write_text("Good morning, everyone.\n\nThe meeting starts at nine, see "
                   "https://example.org/agenda_2024 for the agenda.\n")
    info = translate(capsys, tmp_path, src, "--model", str(tiny_model), "--quality", "flag",
                     *FAST)
    assert info["state"] == "SUCCEEDED"
    quality = info["quality"]
    assert quality["mode"] == "flag" and quality["repairs"] == {}
    # Random weights never stop: every translated chunk is flagged, none repaired.
    assert sum(quality["flags"].values()) == len(quality["flagged"]) >= 3
    assert "https://example.org/agenda_2024" in (tmp_path / "note.fra_Latn.txt").read_text()
    assert main(["--db", str(tmp_path / "jobs.db"), "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["quality"]
    assert stats["flags"] == quality["flags"] and stats["placeholder_fallbacks"] == 1


@pytest.mark.parametrize("name", ["markdown_rich_README.md",
                                  "markdown_subtitleedit_seconv_command_line.md"])
def test_real_markdown_keeps_every_url_and_its_inline_structure(capsys, tmp_path, tiny_model,
                                                                name):
    src = tmp_path / name
    shutil.copy(corpus_file(name), src)
    info = translate(capsys, tmp_path, src, "--model", str(tiny_model), "--quality", "off",
                     *FAST)
    before = src.read_text()
    after = (tmp_path / name.replace(".md", ".fra_Latn.md")).read_text()
    assert blocks(after) == blocks(before)
    assert inline_markup(after) == inline_markup(before)
    assert hrefs(after) == hrefs(before)
    for url in set(re.findall(r"https?://[^\s)\]>\"'`]+", before)):
        assert after.count(url) == before.count(url), url
    assert info["placeholders"]["protected"] > 50
    assert info["placeholders"]["fallbacks"] > 0


def test_subtitle_tags_inside_a_line_stay_balanced(capsys, tmp_path, tiny_model):
    src = tmp_path / "tester.srt"
    shutil.copy(corpus_file("subtitles_capability_tester_crlf_bom.srt"), src)
    info = translate(capsys, tmp_path, src, "--model", str(tiny_model), "--quality", "off",
                     *FAST)
    raw, out = src.read_text(encoding="utf-8-sig"), (
        tmp_path / "tester.fra_Latn.srt").read_text(encoding="utf-8-sig")
    before, after = srt_cues(raw), srt_cues(out)
    assert [c[:2] for c in after] == [c[:2] for c in before]
    assert_same_lines([c[2] for c in before], [c[2] for c in after])
    nested = 'the <font size="35">m<font color="#000000">o</font>st</font> difficult'
    assert nested in raw and re.search(
        r'<font size="35">\S*<font color="#000000">\S*</font>\S*</font>', out)
    assert info["placeholders"]["protected"] >= 5
