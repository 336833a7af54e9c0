from __future__ import annotations

import re

import pytest
from markdown_it import MarkdownIt

from pipeline.documents.document import Document
from pipeline.documents.formats.markdown import parse_markdown
from pipeline.documents.protect import visible
from tests.conftest import corpus_file

CORPUS_FILES = [
    "markdown_rich_README.md",
    "markdown_subtitleedit_seconv_command_line.md",
]

_md = MarkdownIt("commonmark").enable("table").enable("strikethrough")


def identity(doc: Document) -> str:
    return doc.render([u.text for u in doc.units])


MARK = "\u2063"  # invisible: a "translation" that differs from its source


def translated(doc: Document) -> str:
    """Rendered as if every unit were translated (so joined, not as written)."""
    return doc.render([u.text + MARK for u in doc.units]).replace(MARK, "")


def shout(text: str) -> str:
    """A hostile "translation": every character that could start markup."""
    return f"{text.upper()} *x* [y] | z_w <v> `u` \\ ~~t~~"


def blocks(text: str) -> list[tuple]:
    return [(t.type, t.tag, t.nesting, t.level, t.hidden) for t in _md.parse(text)]


def code(text: str) -> list[tuple[str, str, str]]:
    toks = _md.parse(text)
    return [(t.type, t.info, t.content) for t in toks if t.type in ("fence", "code_block")]


def targets(text: str) -> list[str]:
    found = []
    for tok in _md.parse(text):
        for child in tok.children or []:
            if child.type == "link_open":
                found.append(child.attrs["href"])
            elif child.type == "image":
                found.append(child.attrs["src"])
    return found


def headings(text: str) -> list[str]:
    return [t.tag for t in _md.parse(text) if t.type == "heading_open"]


def table_rows(text: str) -> list[int]:
    rows, cells = [], 0
    for tok in _md.parse(text):
        if tok.type == "tr_open":
            cells = 0
        elif tok.type in ("th_open", "td_open"):
            cells += 1
        elif tok.type == "tr_close":
            rows.append(cells)
    return rows


def cell_texts(text: str) -> list[str]:
    toks = _md.parse(text)
    return [toks[i + 1].content for i, t in enumerate(toks) if t.type in ("th_open", "td_open")]


def html(text: str) -> str:
    return re.sub(r"\s+", " ", _md.render(text))


def assert_same_structure(source: str, output: str) -> None:
    assert blocks(output) == blocks(source)
    assert code(output) == code(source)
    assert targets(output) == targets(source)
    assert headings(output) == headings(source)
    assert table_rows(output) == table_rows(source)


def units(text: str) -> list[str]:
    return [u.text for u in parse_markdown(text).units]


def test_atx_headings_keep_level_and_closing_hashes():
    src = "# One\n## Two ##\n### Three ###   \n#### Four\n##### Five\n###### Six #\n"
    doc = parse_markdown(src)
    assert [u.text for u in doc.units] == ["One", "Two", "Three", "Four", "Five", "Six"]
    assert identity(doc) == src
    out = doc.render(["Eins", "Zwei", "Drei", "Vier", "Fünf", "Sechs"])
    assert out.splitlines()[2] == "### Drei ###   "
    assert headings(out) == ["h1", "h2", "h3", "h4", "h5", "h6"]


def test_setext_heading_keeps_its_lines_and_the_underline():
    src = "Title\n=====\n\nSub title\nover two lines\n---\n"
    doc = parse_markdown(src)
    assert [u.text for u in doc.units] == ["Title", "Sub title over two lines"]
    assert identity(doc) == src
    assert translated(doc) == src
    assert headings(translated(doc)) == ["h1", "h2"]


def test_nested_lists_keep_markers_and_continuation_lines():
    src = (
        "- one\n  continued\n- two\n  1) first\n  2) second\n     - deep *item*\n"
        "       lazy more\n\n  para in item\n"
    )
    doc = parse_markdown(src)
    assert identity(doc) == src
    out = translated(doc)
    assert out.startswith(
        "- one\n  continued\n- two\n  1) first\n  2) second\n     - deep *item*\n"
        "       lazy more\n"
    )
    assert "\n  para in item\n" in out
    assert_same_structure(src, out)
    assert_same_structure(src, doc.render([shout(u.text) for u in doc.units]))


def test_block_quotes_nested_and_multi_line():
    src = "> outer\n> quote\n>\n> > inner\n> > quote\n> > - item\n"
    doc = parse_markdown(src)
    assert [u.text for u in doc.units] == ["outer quote", "inner quote", "item"]
    assert identity(doc) == src
    assert translated(doc) == src  # each line in its quote
    assert doc.render(["a b", "c d", "e"]) == "> a\n> b\n>\n> > c\n> > d\n> > - e\n"
    assert_same_structure(src, doc.render([shout(u.text) for u in doc.units]))


def test_table_rows_are_rebuilt_and_the_delimiter_row_copied():
    src = (
        "| Name | Value |\n"
        "|:---|---:|\n"
        "| a \\| b | `x\\|y` |\n"
        "| plain | **bold** text |\n"
        "| 1 | 2 |\n"
    )
    doc = parse_markdown(src)
    assert identity(doc) == src
    out = translated(doc)
    lines = out.splitlines()
    assert lines[1] == "|:---|---:|"
    assert lines[4] == "| 1 | 2 |"  # nothing to translate: copied as written
    assert cell_texts(out) == cell_texts(src)
    # The escaped pipe is protected inside its cell: a model would drop it.
    assert [(visible(u.text), u.table_cell) for u in doc.units] == [
        ("Name", True), ("Value", True), ("a [1] b", True), ("plain", True),
        ("[1]bold[2] text", True)]
    assert lines[2] == "| a \\| b | `x\\|y` |"
    shouted = doc.render([shout(u.text) for u in doc.units])
    assert_same_structure(src, shouted)
    assert _md.parse(shouted)[1].type == "thead_open"


def test_table_in_a_block_quote_keeps_the_quote_prefix():
    src = "> | a | b |\n> |---|---|\n> | c | d |\n"
    doc = parse_markdown(src)
    assert identity(doc) == src
    assert_same_structure(src, doc.render([shout(u.text) for u in doc.units]))


FENCED = """\
Intro text.

```python title="x"
# not a heading
- not a list
| not | a table |
[not a link](http://x) *not emphasis*   

    still code
```

~~~
``` inner fence
<div>raw</div>
~~~

    indented code
    # also not a heading

Outro.
"""


def test_code_blocks_are_copied_byte_for_byte():
    doc = parse_markdown(FENCED)
    assert [u.text for u in doc.units] == ["Intro text.", "Outro."]
    out = doc.render(["Einleitung.", "Schluss."])
    assert out == FENCED.replace("Intro text.", "Einleitung.").replace("Outro.", "Schluss.")
    assert code(out) == code(FENCED)
    assert [info for _, info, _ in code(out)] == ['python title="x"', "", ""]


def test_link_image_and_autolink_targets_are_kept_verbatim():
    src = (
        'See [the docs](https://example.com/a_b?x=1&y=2 "Docs title"), '
        "![a logo](img/logo.png 'Logo') and <https://auto.example/x_y>.\n"
    )
    doc = parse_markdown(src)
    # One sentence: the link's brackets and destination, the image and the
    # autolink are protected inside it.
    assert [visible(u.text) for u in doc.units] == ["a logo", "See [1]the docs[2], [3] and [4]."]
    out = doc.render([shout(u.text) for u in doc.units])
    assert '](https://example.com/a_b?x=1&y=2 "Docs title")' in out
    assert "![A LOGO" in out and "](img/logo.png 'Logo')" in out  # the alt text translated
    assert "<https://auto.example/x_y>" in out
    assert targets(out) == targets(src)


def test_inline_code_and_html_stay_literal():
    src = "Run `pip install *x*` then <kbd>Ctrl</kbd> and <!-- note --> go.\n"
    doc = parse_markdown(src)
    # A <kbd> is never translated, in Markdown as in a page: it is one piece.
    assert [visible(u.text) for u in doc.units] == ["Run [1] then [2] and [3] go."]
    out = doc.render([shout(u.text) for u in doc.units])
    assert "`pip install *x*`" in out
    assert "<kbd>Ctrl</kbd>" in out and "<!-- note -->" in out


def test_emphasis_markers_are_kept_around_their_text():
    src = "Some *em* and _em_, **strong** and __strong__, ~~gone~~ text.\n"
    doc = parse_markdown(src)
    assert identity(doc) == src
    out = doc.render([u.text.upper() for u in doc.units])
    assert out == "SOME *EM* AND _EM_, **STRONG** AND __STRONG__, ~~GONE~~ TEXT.\n"


def test_escapes_and_entities_stay_as_written():
    src = "1\\. Not a list \\# here, a\\*b, snake\\_case &amp; &copy; ok.\n"
    doc = parse_markdown(src)
    # \* and \_ stay inside the sentence as text because Unit.render writes
    # them back; \. and \# would not be, so they are protected, and so are
    # the entities.
    assert [visible(u.text) for u in doc.units] == [
        "1[1] Not a list [2] here, a*b, snake_case [3] [4] ok."]
    assert identity(doc) == src
    upper = doc.render([u.text.upper() for u in doc.units])
    assert upper == "1\\. NOT A LIST \\# HERE, A\\*B, SNAKE\\_CASE &amp; &copy; OK.\n"


def test_escaped_markup_without_letters_stays_escaped():
    src = "\\*42\\*\n\n| a | b |\n|---|---|\n| x | 1 \\| 2 |\n"
    doc = parse_markdown(src)
    assert [u.text for u in doc.units] == ["a", "b", "x"]
    out = identity(doc)
    assert html(out) == html(src)
    assert table_rows(out) == [2, 2]


def test_blocks_that_interrupt_a_paragraph_still_do():
    src = "Foo bar\n# baz\nBar foo\n```\ncode\n```\nEnd\n> quote\n"
    out = identity(parse_markdown(src))
    assert out == src
    assert_same_structure(src, out)


def test_hard_breaks_are_kept_and_so_are_soft_ones():
    src = "one  \ntwo\\\nthree\nfour\n\n> quoted  \n> hard\n"
    doc = parse_markdown(src)
    assert [u.text for u in doc.units] == ["one", "two", "three four", "quoted", "hard"]
    assert identity(doc) == src
    out = translated(doc)
    # Each hard break as it was written: two spaces, or a backslash.
    assert out == src
    breaks = [c.type for t in _md.parse(out) for c in t.children or [] if c.type == "hardbreak"]
    assert len(breaks) == 3


def test_reference_links_still_resolve_after_translation():
    src = (
        "A [full][ref], a [Short] and a [collapsed][] link.\n\n"
        "[ref]: http://a.example\n[short]: http://b.example\n[collapsed]: http://c.example\n"
    )
    doc = parse_markdown(src)
    out = doc.render([shout(u.text) for u in doc.units])
    assert targets(out) == ["http://a.example", "http://b.example", "http://c.example"]
    assert "][ref]" in out and "][Short]" in out and "][collapsed]" in out
    assert out.endswith(src[src.index("[ref]:") :])  # definitions copied as they were


def test_cjk_soft_breaks_join_without_space():
    src = "中文第一行\n第二行。\nEnglish\nline\n\n한국어\n문장\n"
    assert units(src) == ["中文第一行第二行。 English line", "한국어 문장"]


def test_lines_outside_translatable_blocks_are_copied():
    src = (
        "<div align=\"center\">\n  <b>raw html</b>\n</div>\n\n"
        "***\n\n"
        "[id]: http://example.com  'Title'\n\n"
        "Text.\n\n\n"
    )
    doc = parse_markdown(src)
    assert [visible(u.text) for u in doc.units] == ["[1]raw html[2]", "Text."]  # HTML's text
    assert identity(doc) == src


def test_untranslatable_paragraph_keeps_its_line_wrapping():
    src = "[![a](b.svg)](c)\n[![d](e.svg)](f)\n"
    doc = parse_markdown(src)
    assert [u.text for u in doc.units] == ["a", "d"]  # only the alt texts
    assert identity(doc) == src
    assert doc.render(["x", "y"]) == "[![x](b.svg)](c)\n[![y](e.svg)](f)\n"


def test_units_are_markdown_and_only_cells_escape_pipes():
    doc = parse_markdown("# T\n\nP.\n\n| C |\n|---|\n| D |\n")
    assert [(u.text, u.markdown, u.table_cell) for u in doc.units] == [
        ("T", True, False),
        ("P.", True, False),
        ("C", True, True),
        ("D", True, True),
    ]


def test_empty_and_unterminated_input():
    assert identity(parse_markdown("")) == ""
    doc = parse_markdown("last line")
    assert identity(doc) == "last line"


MIXED = """\
# Guide *one* #

Intro with `code`, a [link](http://x.example/a "t") and ![img](i.png).
Continued  
after break.

Setext
------

1) first
2) second
   - nested with [ref link][r]

> quote with **bold**
> > inner

| Left | Center | Right |
|:-----|:------:|------:|
| a \\| b | `c\\|d` | e |

```sh
echo "# not a heading" | grep x
```

[r]: http://r.example
"""


def test_hostile_translation_cannot_change_structure():
    doc = parse_markdown(MIXED)
    out = doc.render([shout(u.text) for u in doc.units])
    assert_same_structure(MIXED, out)
    assert "HEADING" not in "".join(c for _, _, c in code(out))


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_real_world_files_round_trip(name: str):
    src = corpus_file(name).read_text(encoding="utf-8")
    doc = parse_markdown(src)
    assert doc.units
    out = identity(doc)
    assert_same_structure(src, out)
    assert html(out) == html(src)
    for _, _, content in code(src):
        assert content in out
    for target in targets(src):
        assert target in out


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_real_world_files_survive_hostile_translation(name: str):
    src = corpus_file(name).read_text(encoding="utf-8")
    doc = parse_markdown(src)
    assert_same_structure(src, doc.render([shout(u.text) for u in doc.units]))


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_real_world_files_come_back_exactly_when_untranslated(name: str):
    src = corpus_file(name).read_text(encoding="utf-8")
    doc = parse_markdown(src)
    assert identity(doc) == src
    out = translated(doc)
    assert out != src  # joined paragraphs, re-escaped prose: the test has teeth
    assert_same_structure(src, out)
    assert html(out) == html(src)


# ------------------------------------------------- extensions in wide use

FRONT_MATTER = [
    "---\ntitle: \"Guide: *one*\"\ntags: [a, b]\n# a YAML comment\n- list: item\n---\n",
    "---\nlayout: post\n...\n",
    "+++\ntitle = \"Guide\"\n[params]\nlink = \"[x](http://y)\"\n+++\n",
]


@pytest.mark.parametrize("head", FRONT_MATTER)
def test_front_matter_passes_through_byte_for_byte(head):
    src = head + "\n# Title\n\nSome text.\n"
    doc = parse_markdown(src)
    assert [u.text for u in doc.units] == ["Title", "Some text."]
    out = doc.render([shout(u.text) for u in doc.units])
    assert out.startswith(head + "\n# TITLE")
    assert _md.parse(out)[0].type == _md.parse(src)[0].type  # what CommonMark makes of it


def test_dashes_that_are_not_front_matter_stay_markdown():
    # Not at the very top, or never closed: a thematic break and prose.
    src = "Intro.\n\n---\ntitle: x\n---\n"
    assert units(src) == ["Intro.", "title: x"]
    assert units("---\nNot closed.\n") == ["Not closed."]


ALERTS = """\
> [!NOTE]
> Useful information that users should know.

> [!tip]  
> Helpful advice
> over two lines.

> [!CAUTION]

Text after.

> [!NOTICE] is not an alert marker.
"""


def test_github_alert_marker_lines_survive_exactly():
    doc = parse_markdown(ALERTS)
    assert [u.text for u in doc.units] == [
        "Useful information that users should know.", "Helpful advice over two lines.",
        "Text after.", "[!NOTICE] is not an alert marker."]
    out = doc.render([shout(u.text) for u in doc.units])
    lines = out.splitlines()
    for marker in ("> [!NOTE]", "> [!tip]  ", "> [!CAUTION]"):
        assert marker in lines
    assert blocks(out) == blocks(ALERTS)
    # Each alert's marker is still the first line of its quote's paragraph.
    firsts = [t.content.split("\n")[0].rstrip() for i, t in enumerate(_md.parse(out))
              if t.type == "inline" and _md.parse(out)[i - 2].type == "blockquote_open"]
    assert firsts[:3] == ["[!NOTE]", "[!tip]", "[!CAUTION]"]


TASKS = "- [ ] todo item\n- [x] done item\n* [X] also done\n1. [ ] numbered\n- [] not a box\n"


def test_task_list_boxes_stay_unescaped():
    doc = parse_markdown(TASKS)
    assert [u.text for u in doc.units] == [
        "todo item", "done item", "also done", "numbered", "[] not a box"]
    out = doc.render([shout(u.text) for u in doc.units])
    items = [t.content[:4] for t in _md.parse(out) if t.type == "inline"]
    assert items[:4] == ["[ ] ", "[x] ", "[X] ", "[ ] "]
    assert blocks(out) == blocks(TASKS)


FOOTNOTES = """\
Text with a note[^1] and a named one[^long-note].

[^1]: The first footnote.
[^long-note]: A longer note
    that runs on, with `code`.

    And a second paragraph.

After.
"""


def test_footnote_labels_are_kept_and_definitions_translated():
    doc = parse_markdown(FOOTNOTES)
    assert [visible(u.text) for u in doc.units] == [
        "Text with a note[1] and a named one[2].", "The first footnote.",
        "A longer note that runs on, with [1].", "And a second paragraph.", "After."]
    assert identity(doc) == FOOTNOTES
    out = doc.render([shout(u.text) for u in doc.units])
    assert out.count("[^1]") == 2 and out.count("[^long-note]") == 2
    assert "\n[^1]: THE FIRST FOOTNOTE." in out
    assert "\n[^long-note]: A LONGER NOTE THAT RUNS ON, WITH " in out
    assert "\n    AND A SECOND PARAGRAPH." in out
    assert "\\[^" not in out


def test_math_is_never_translated():
    src = (
        "Energy $E = mc^2$ and $$\\sum_i x_i$$ inline, but $5 and $10 or US$5 are money.\n\n"
        "$$\nE = mc^2 \\quad \\text{where } m \\text{ is mass}\n$$\n\n"
        "- item\n\n  $$\n  a_b * c_d\n  $$\n\n"
        "$$ x_1 = y_2 $$\n"
    )
    doc = parse_markdown(src)
    texts = [visible(u.text) for u in doc.units]
    assert texts == ["Energy [1] and [2] inline, but $5 and $10 or US$5 are money.", "item"]
    out = doc.render([shout(u.text) for u in doc.units])
    for math in ("$E = mc^2$", "$$\\sum_i x_i$$", "$$\nE = mc^2 \\quad \\text{where } m \\text{ is mass}\n$$\n",
                 "  $$\n  a_b * c_d\n  $$\n", "$$ x_1 = y_2 $$\n"):
        assert math in out


def test_code_is_never_normalised_but_prose_is():
    nfd = "cafe\u0301"
    src = f"A {nfd} here.\n\n```\nprint('{nfd}')\n```\n\n    {nfd} indented\n\nInline `{nfd}` too.\n"
    doc = parse_markdown(src)
    assert doc.units[0].text == "A caf\u00e9 here."
    assert identity(doc) == src
    out = doc.render([shout(u.text) for u in doc.units])
    assert f"print('{nfd}')" in out and f"    {nfd} indented" in out and f"`{nfd}`" in out
    assert code(out) == code(src)


def test_escaped_pipes_in_a_real_table_survive():
    path = corpus_file("markdown_subtitleedit_seconv_command_line.md")
    src = path.read_text(encoding="utf-8")
    doc = parse_markdown(src)
    rows = [line for line in src.splitlines() if line.startswith("|") and "\\|" in line]
    assert len(rows) >= 3
    out = translated(doc)
    assert [c.count("|") for c in cell_texts(out)] == [c.count("|") for c in cell_texts(src)]
    assert table_rows(out) == table_rows(src)
    for row in rows:  # no translation sees the pipe: it sits between units
        assert row in out.splitlines()


# ------------------------------------------------- the fidelity losses of issue 21


def test_table_cells_that_need_no_escape_are_not_escaped():
    """58 numeric cells of a README came back as 209\\.2."""
    src = "| Size | Note |\n|---|---|\n| 209.2 | 1. first |\n| 3) | - dash |\n"
    doc = parse_markdown(src)
    out = translated(doc)
    assert "| 209.2 |" in out and "| 1. first |" in out and "| - dash |" in out
    assert "\\" not in out
    assert_same_structure(src, out)


def test_a_paragraph_keeps_its_line_count():
    """Hard-wrapped paragraphs came back joined: 277 lines in, 274 out."""
    src = ("A first line of a wrapped paragraph\nthat goes on over a second line\n"
           "and ends on a third.\n\n- An item that\n  wraps once.\n")
    doc = parse_markdown(src)
    out = doc.render(["Une première ligne d'un paragraphe replié qui continue sur une "
                      "deuxième ligne et finit sur une troisième.", "Un élément qui se replie."])
    assert out.count("\n") == src.count("\n")
    assert out.split("\n")[4].startswith("- Un") and out.split("\n")[5].startswith("  ")
    assert_same_structure(src, out)


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_wrap_reflow_writes_each_paragraph_on_one_line(fmt):
    """--wrap keep (the default) keeps a paragraph's line count; --wrap
    reflow joins it, inside a list item and a quote too."""
    from pipeline.documents.formats import FormatOptions, parse_document

    if fmt == "markdown":
        src = ("A first line of a wrapped paragraph\nthat goes on over a second line.\n\n"
               "- An item that\n  wraps once.\n\n> A quote that\n> wraps too.\n")
    else:
        src = ("<p>A first line of a wrapped paragraph\nthat goes on over a second line.</p>\n"
               "<ul><li>An item that\n  wraps once.</li></ul>\n")
    keep = parse_document(src, fmt, options=FormatOptions(tgt_lang="fra_Latn"))
    reflow = parse_document(src, fmt, options=FormatOptions(tgt_lang="fra_Latn", wrap="reflow"))
    words = ["Une ligne repliée qui continue sur une deuxième ligne.", "Un élément replié.",
             "Une citation repliée aussi."]
    kept = keep.render(words[:len(keep.units)])
    joined = reflow.render(words[:len(reflow.units)])
    assert kept.count("\n") == src.count("\n")
    wrapped = 3 if fmt == "markdown" else 2  # paragraphs that had a second line
    assert joined.count("\n") == src.count("\n") - wrapped
    for text in words[:len(reflow.units)]:
        assert text in joined  # each on a line of its own making


def test_wrap_is_a_job_option_of_markdown_and_html_only():
    from pipeline.config import JobParams
    from pipeline.errors import InvalidInput

    base = dict(model="m", src_lang="eng_Latn", tgt_lang="fra_Latn", output="/o")
    keep = JobParams(fmt="markdown", **base)
    reflow = JobParams(fmt="markdown", wrap="reflow", **base)
    assert "wrap" not in keep.canonical_json()  # keys made before it existed still match
    assert reflow.canonical_json() != keep.canonical_json()
    with pytest.raises(InvalidInput, match="--wrap applies to markdown and html input"):
        JobParams(fmt="text", wrap="reflow", **base)
    with pytest.raises(InvalidInput, match="--wrap must be keep or reflow"):
        JobParams(fmt="markdown", wrap="squeeze", **base)


def test_a_wrapped_line_never_starts_a_block():
    src = "One two three four\nfive six seven.\n"
    doc = parse_markdown(src)
    for bad in ("Un deux trois - quatre cinq six", "Un deux trois 1. quatre cinq six",
                "Un deux trois # quatre cinq six", "Un deux trois ~~~ quatre cinq"):
        out = doc.render([bad])
        assert out.count("\n") == 2
        assert_same_structure(src, out)


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_real_readmes_keep_their_line_count(name: str):
    src = corpus_file(name).read_text(encoding="utf-8")
    out = translated(parse_markdown(src))
    assert out.count("\n") == src.count("\n")


def test_html_blocks_in_markdown_are_translated():
    """All 11 <summary> titles of one README and an <h3><p> tagline stayed English."""
    src = ('<h3 align="center"><p>The fast <em>and</em> friendly tool</p></h3>\n\n'
           "<details>\n<summary>Logging Handler</summary>\n\nSome **text**.\n\n</details>\n\n"
           '<p align="center"><img src="logo.svg" alt="The logo" width=20></p>\n\n'
           "<pre>\nkept as it is\n</pre>\n")
    doc = parse_markdown(src)
    found = [visible(u.text) for u in doc.units]
    assert found == ["The fast [1]and[2] friendly tool", "Logging Handler", "Some [1]text[2].",
                     "The logo"]
    assert identity(doc) == src
    out = doc.render([u.text.upper() for u in doc.units])
    assert "<summary>LOGGING HANDLER</summary>" in out and 'alt="THE LOGO"' in out
    assert "<p>THE FAST <em>AND</em> FRIENDLY TOOL</p>" in out and "kept as it is" in out
    assert_same_structure(src, out)


def test_the_rich_readmes_summaries_are_translated():
    src = corpus_file("markdown_rich_README.md").read_text(encoding="utf-8")
    found = [u.text for u in parse_markdown(src).units]
    for title in ("Log", "Logging Handler", "Emoji", "Tables", "Progress Bars", "Status",
                  "Tree", "Columns", "Markdown", "Syntax Highlighting", "Tracebacks"):
        assert title in found


def test_inline_html_and_image_alt_texts_are_translated():
    src = ('Press <kbd>Ctrl</kbd>-<kbd>C</kbd>, see ![A cat](cat.png "Cat") and '
           '<img src="x.png" alt=\'A dog\'> <b title="Bold">here</b>.\n')
    doc = parse_markdown(src)
    found = [visible(u.text) for u in doc.units]
    assert "A cat" in found and "Bold" in found and "A dog" in found
    sentence = next(t for t in found if t.startswith("Press"))
    assert sentence == "Press [1]-[2], see [3] and [4] [5]here[6]."
    unit = next(u for u in doc.units if u.text.startswith("Press"))
    assert [text for text, _ in unit.protected][:2] == ["<kbd>Ctrl</kbd>", "<kbd>C</kbd>"]
    assert [partner for _, partner in unit.protected][4:] == [5, 4]  # <b> and </b> pair up
    assert identity(doc) == src
    out = doc.render([u.text.upper() for u in doc.units])
    assert '![A CAT](cat.png "Cat")' in out and "alt='A DOG'" in out
    assert '<b title="BOLD">HERE</b>' in out and "<kbd>Ctrl</kbd>-<kbd>C</kbd>" in out
