"""HTML pages: what a reader reads is translated, every other byte kept.

``structure`` is the checker: it reads a page with the standard library's
tokenizer and lists its tags with their attributes (less those translated
and ``lang``), its comments and declarations, and every byte inside an
element that is never translated. Input and output must list the same.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.documents.document import Document
from pipeline.documents.formats import detect_format, parse_document
from pipeline.documents.formats.html import parse_html
from pipeline.languages import bcp47
from tests.conftest import corpus_file

DATA = Path(__file__).parent / "data"
REAL_PAGE = DATA / "libffi_memory_usage.html"
TRANSLATED = {"alt", "title", "placeholder", "aria-label", "lang", "xml:lang"}
NEVER = {"script", "style", "code", "pre", "kbd", "samp", "textarea", "svg", "math", "var"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr"}
MARK = "\u2063"  # invisible separator: what a "translation" appends to see where it went


class _Structure(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.items: list[tuple] = []
        self.open: list[tuple[str, bool]] = []  # (tag, never translated from here in)

    def _kept(self) -> bool:
        return bool(self.open) and self.open[-1][1]

    def _attrs(self, tag, attrs):
        values = dict(attrs)
        kept = []
        for name, value in attrs:
            if name in TRANSLATED and not self._kept():
                continue
            if name == "content" and tag == "meta" and (values.get("name") or "") == "description":
                continue
            if name == "value" and tag == "input" and values.get("type") in ("submit", "button"):
                continue
            kept.append((name, value))
        return kept

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        never = (self._kept() or tag in NEVER or values.get("translate") == "no"
                 or "notranslate" in (values.get("class") or "").split())
        self.items.append(("start", tag, self._attrs(tag, attrs), self.get_starttag_text()
                           if never and self._kept() else None))
        if tag not in VOID:
            if self.open and self.open[-1][0] == tag == "p":
                self.open.pop()
            self.open.append((tag, never))

    def handle_startendtag(self, tag, attrs):
        self.items.append(("startend", tag, self._attrs(tag, attrs)))

    def handle_endtag(self, tag):
        self.items.append(("end", tag))
        for k in range(len(self.open) - 1, -1, -1):
            if self.open[k][0] == tag:
                del self.open[k:]
                break

    def handle_data(self, data):
        if self._kept():
            self.items.append(("kept", data))

    def handle_entityref(self, name):
        if self._kept():
            self.items.append(("kept", "&" + name))

    def handle_charref(self, name):
        if self._kept():
            self.items.append(("kept", "&#" + name))

    def handle_comment(self, data):
        self.items.append(("comment", data))

    def handle_decl(self, decl):
        self.items.append(("decl", decl))

    def handle_pi(self, data):
        self.items.append(("pi", data))


def structure(text: str) -> list[tuple]:
    """The page's tags (with the attributes never translated), comments,
    declarations, and the bytes of what is never translated, in order."""
    parser = _Structure()
    parser.feed(text)
    parser.close()
    return parser.items


def same_text(doc: Document) -> str:
    return doc.render([u.text for u in doc.units])


def marked(doc: Document) -> str:
    """Every unit "translated": upper case, and a mark at its end."""
    return doc.render([u.text.upper() + MARK for u in doc.units])


def lang_free(text: str) -> str:
    return re.sub(r'(<(?:html|body)\b[^>]*?)\s+lang="[^"]*"', r"\1", text, count=2)


def assert_same_structure(source: str, out: str) -> None:
    assert structure(out) == structure(source)
    assert out.count("\n") == source.count("\n")  # every text keeps its line count


def texts(doc: Document) -> list[str]:
    return [u.text for u in doc.units]


# -- a real page, in the repository --------------------------------------------------------


def test_a_real_page_comes_back_byte_for_byte_but_for_its_lang():
    source = REAL_PAGE.read_text(encoding="utf-8")
    doc = parse_html(source, "fra_Latn")
    out = same_text(doc)
    assert out != source and out.replace('<html lang="fr">', "<html>", 1).replace(
        '<body lang="fr">', '<body lang="en">', 1) == source


def test_a_real_page_translates_what_a_reader_reads_and_keeps_the_rest():
    source = REAL_PAGE.read_text(encoding="utf-8")
    doc = parse_html(source, "fra_Latn")
    found = texts(doc)
    assert "Memory Usage (libffi: the portable foreign function interface library)" in found
    assert any(t.startswith("Note that memory allocated by") for t in found)
    assert "Index" in found  # the title attribute of the [Index] link
    joined = " ".join(found)
    for never in ("ffi_closure_alloc", "visibility: hidden", "Permission is hereby granted"):
        assert never not in joined  # code, the <style>, a comment
    out = marked(doc)
    assert_same_structure(source, out)
    assert '<meta name="description" content="MEMORY USAGE (LIBFFI' in out
    assert 'title="INDEX' in out and '<link href="Index.html" rel="index" title="Index">' in out
    assert "<code>ffi_closure_alloc</code>" in out and "USER’S HOME DIRECTORY" in out
    assert "&nbsp; [" in out  # an entity between units stays as written
    assert out.startswith('<!DOCTYPE html PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN"')


def test_the_python_tutorial_page_keeps_its_code_navigation_and_scripts():
    source = corpus_file("python_docs_tutorial_interpreter.html").read_text(encoding="utf-8")
    doc = parse_html(source, "deu_Latn")
    found = texts(doc)
    joined = " ".join(found)
    assert "Quick search" in found and "Permalink to this heading" in found
    assert any("Using the Python Interpreter" in t for t in found)
    for never in ("/usr/local/bin", "the_world_is_flat", "Control", "jquery", "@media"):
        assert never not in joined
    out = marked(doc)
    assert_same_structure(source, out)
    assert '<html lang="de">' in out
    assert lang_free(same_text(doc)) == lang_free(source)


def test_html_is_detected_by_its_suffix():
    assert detect_format("page.HTML") == detect_format("page.htm") == "html"
    doc = parse_document("<p>Hello there.</p>", "html", target="zho_Hant")
    assert texts(doc) == ["Hello there."]
    assert same_text(parse_document("<html><p>Hi you.</p>", "html", target="zho_Hant")
                     ).startswith('<html lang="zh-Hant">')


@pytest.mark.parametrize("code,tag", [("fra_Latn", "fr"), ("zho_Hans", "zh-Hans"),
                                      ("kas_Deva", "ks-Deva"), ("ace_Latn", "ace-Latn"),
                                      ("fur_Latn", "fur")])
def test_the_lang_tag_of_a_flores_code(code, tag):
    assert bcp47(code) == tag


# -- edge cases -------------------------------------------------------------------------


EDGES = """<!DOCTYPE html>
<html lang='en' xml:lang="en"><head>
<title>Rivers &amp; stones</title>
<meta name="description" content="A page about rivers">
<meta name="keywords" content="rivers, stones">
<script>if (a < b && c) { document.write("<p>Not text</p>"); }</script>
<style>p::before { content: "Not text"; }</style>
</head>
<body>
<!-- A comment that stays English -->
<div class="box notranslate"><p>Brand <span translate="yes">Name</span> stays.</p>
<div><p>Nested too.</p></div></div>
<p>The <a href='/a?x=1&amp;y=2' title='Open the river page'>river page</a> and
the <b class=big>stone</b> page &mdash; both are <em>nice</em>.</p>
<p>Type <kbd>Ctrl</kbd>-<kbd>C</kbd> or call <code>os.path.join()</code> now.
<p>An unclosed paragraph with an <img src=x.png alt=Picture> inside.
<p translate="no">Never this one.</p>
<p>First line<br>second line of the same sentence.</p>
<input placeholder="Your name" value="John" type="text"><input type="submit" value="Send it">
<p aria-label="A label">5 &lt; 6 &amp; 7 &gt; 3 &#169; caf&eacute;</p>
</body></html>
"""


def test_edge_cases_translate_only_what_a_reader_reads():
    doc = parse_html(EDGES, "fra_Latn")
    found = texts(doc)
    assert "Rivers & stones" in found and "A page about rivers" in found
    assert "Open the river page" in found and "Picture" in found
    assert "Your name" in found and "Send it" in found and "A label" in found
    assert "First line" in found and "second line of the same sentence." in found
    joined = " ".join(found)
    for never in ("Not text", "Brand", "Name", "Nested", "Ctrl", "os.path", "Never this",
                  "comment", "rivers, stones", "John"):
        assert never not in joined, never
    sentence = next(t for t in found if t.startswith("The "))
    assert "river page" in sentence and "stone" in sentence and "nice" in sentence
    assert "—" in sentence  # &mdash; decoded for the model
    assert "5 < 6 & 7 > 3 © café" in found


def test_edge_cases_keep_every_untranslated_byte():
    doc = parse_html(EDGES, "fra_Latn")
    assert same_text(doc) == EDGES.replace("""<html lang='en' xml:lang="en">""",
                                           """<html lang='fr' xml:lang="fr">""")
    out = marked(doc)
    assert_same_structure(EDGES, out)
    assert "<html lang='fr' xml:lang=\"fr\">" in out
    for kept in ('<script>if (a < b && c) { document.write("<p>Not text</p>"); }</script>',
                 "<!-- A comment that stays English -->",
                 '<div class="box notranslate"><p>Brand <span translate="yes">Name</span> '
                 "stays.</p>\n<div><p>Nested too.</p></div></div>",
                 "<kbd>Ctrl</kbd>-<kbd>C</kbd>", "<code>os.path.join()</code>",
                 '<p translate="no">Never this one.</p>', "<a href='/a?x=1&amp;y=2' title='",
                 "<b class=big>", 'value="John"', '<meta name="keywords" content="rivers, stones">'):
        assert kept in out, kept


def test_translations_are_escaped_where_they_go():
    doc = parse_html(EDGES, "fra_Latn")
    hostile = {
        "Open the river page": "It's \"quoted\" & <b>",
        "Picture": "Une image",
        "Rivers & stones": "Fleuves & <pierres>",
        "5 < 6 & 7 > 3 © café": "5 < 6 & 7 > 3 © café\xa0!",
    }
    out = doc.render([hostile.get(t, t) for t in texts(doc)])
    assert "title='It&#39;s \"quoted\" &amp; &lt;b>'" in out
    assert "alt=\"Une image\"" in out  # an unquoted value that now needs quotes
    assert "<title>Fleuves &amp; &lt;pierres></title>" in out
    assert "5 &lt; 6 &amp; 7 > 3 © café&nbsp;!" in out
    assert_same_structure(EDGES, out)


def test_inline_elements_travel_with_their_sentence():
    doc = parse_html(EDGES, "fra_Latn")
    unit = next(u for u in doc.units if u.text.startswith("The "))
    pieces = [text for text, _ in unit.protected]
    assert pieces[1] == "</a>" and pieces[2] == "<b class=big>" and pieces[3] == "</b>"
    assert pieces[0].startswith("<a href='/a?x=1&amp;y=2' title='")
    # The model may move the pieces: the sentence comes back in its new order.
    moved = unit.text.replace("\U000f0004nice\U000f0005", "").replace(
        "The ", "The \U000f0004nice\U000f0005 ")
    out = doc.render([moved if u is unit else u.text for u in doc.units])
    assert "<p>The <em>nice</em> <a href='/a?x=1&amp;y=2'" in out


def test_a_text_keeps_its_line_count_and_indentation():
    source = "<ul>\n  <li>One two three four five six seven\n      eight nine ten.</li>\n</ul>\n"
    doc = parse_html(source)
    (unit,) = doc.units
    assert unit.text == "One two three four five six seven eight nine ten."
    out = doc.render(["Un deux trois quatre cinq six sept huit neuf dix onze douze."])
    assert out.count("\n") == source.count("\n")
    assert "\n      " in out


def test_a_page_nothing_can_be_read_from_stays_whole():
    source = "<!doctype html>\n<p>&nbsp;<img src=a.png> 42 &#8212; <a href=x>→</a></p>\n"
    doc = parse_html(source)
    assert doc.units == [] and same_text(doc) == source


@pytest.mark.parametrize("broken", [
    "<p>Stray </b> close and <i>open italic.</p>",
    "<p>Text with a lone < sign and & too.</p>",
    "<p>An <!-- inline --> comment.</p><![CDATA[ x ]]>",
    "<p>Unclosed <span>span at the end",
    "<p title=unquoted>Ends in an unclosed <script>var a = '<p>';",
    "<div>Text</>more</div>",
])
def test_broken_markup_comes_back_as_it_was(broken):
    doc = parse_html(broken)
    assert same_text(doc) == broken
    assert structure(marked(doc)) == structure(broken)


# -- through the whole pipeline, on the trained model at the defaults ----------------------


def _translate(capsys, tmp_path, trained_model, src: Path, *extra: str) -> str:
    import json

    from pipeline.cli import main

    out_path = tmp_path / ("out" + src.suffix)
    code = main(["--db", str(tmp_path / "jobs.db"), "translate", str(src), "--src", "eng_Latn",
                 "--tgt", "fra_Latn", "--model", str(trained_model), "--json", "--no-progress",
                 "--threads", "1", "-o", str(out_path), *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["job"]
    return out_path.read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("page", ["real", "edges", "python-docs"])
def test_a_page_translated_at_the_defaults_keeps_its_structure(capsys, tmp_path, trained_model,
                                                               page):
    src = tmp_path / "page.html"
    source = {"real": lambda: REAL_PAGE.read_text(encoding="utf-8"), "edges": lambda: EDGES,
              "python-docs": lambda: corpus_file("python_docs_tutorial_interpreter.html")
              .read_text(encoding="utf-8")}[page]()
    src.write_text(source, encoding="utf-8")
    out = _translate(capsys, tmp_path, trained_model, src)  # beams 4, --quality repair
    assert_same_structure(source, out)
    assert '<html lang="fr">' in out or "<html lang='fr'" in out
    assert out != source


MARKDOWN_WITH_HTML = """# The river guide

<h3 align="center"><p>A small guide to the river and its stones</p></h3>

<details>
<summary>The morning light</summary>

The river runs past the old stone bridge in the morning light,
and the garden by the road is quiet until the city wakes up
and the first horse walks to the field.

</details>

![A stone by the river](img/stone.png "Stone")

| Size | Note |
|---|---|
| 209.2 | The river is wide. |

Read <https://fsf.org/> and edit `__init__.py` or snake_case_name :rocket: today.
"""


def _md_blocks(text: str) -> list[tuple]:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")
    return [(t.type, t.tag, t.nesting) for t in md.parse(text)]


@pytest.mark.slow
def test_markdown_with_html_translated_at_the_defaults_keeps_its_shape(capsys, tmp_path,
                                                                       trained_model):
    src = tmp_path / "guide.md"
    src.write_text(MARKDOWN_WITH_HTML, encoding="utf-8")
    out = _translate(capsys, tmp_path, trained_model, src)  # beams 4, --quality repair
    assert _md_blocks(out) == _md_blocks(MARKDOWN_WITH_HTML)
    assert out.count("\n") == MARKDOWN_WITH_HTML.count("\n")  # every paragraph its lines
    assert structure(out) == structure(MARKDOWN_WITH_HTML)  # the HTML blocks' tags
    assert "| 209.2 |" in out and "<https://fsf.org/>" in out and "](img/stone.png \"Stone\")" in out
    assert "`__init__.py`" in out and "snake_case_name" in out and ":rocket:" in out
    assert "<summary>The morning light</summary>" not in out  # translated, not copied


@pytest.mark.slow
def test_an_autolink_in_plain_text_comes_back_whole_at_the_defaults(capsys, tmp_path,
                                                                    trained_model):
    src = tmp_path / "licence.txt"
    source = ("The river runs past <https://fsf.org/> and the stone bridge.\n\n"
              "See <https://www.gnu.org/licenses/> for the garden road.\n")
    src.write_text(source, encoding="utf-8")
    out = _translate(capsys, tmp_path, trained_model, src)
    assert out.count("<https://fsf.org/>") == 1
    assert out.count("<https://www.gnu.org/licenses/>") == 1
    assert re.search(r"<https://fsf\.org/>\S", out) is None  # not glued to the next word


def test_an_attribute_over_several_lines_is_one_line_for_the_model():
    source = '<img src=x alt="A   long\n   alt &amp; text">'
    doc = parse_html(source)
    assert texts(doc) == ["A long alt & text"]
    assert same_text(doc) == source
    assert doc.render(["Un texte"]) == '<img src=x alt="Un texte">'
