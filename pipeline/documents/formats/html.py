"""HTML input: translate what a reader reads, copy every other byte.

Translated: text nodes, and the attributes people read (``alt``, ``title``,
``placeholder``, ``aria-label``, the ``content`` of ``<meta
name="description">`` and of its Open Graph and Twitter twins, the
``value`` of a submit, reset or button ``<input>``). Never translated:
``<script>``, ``<style>``, ``<code>``, ``<pre>``, ``<kbd>``, ``<samp>``,
``<textarea>``, ``<svg>``, ``<math>``, and an element with
``translate="no"`` or ``class="notranslate"``, with everything inside them.

A sentence is one unit with its inline elements (``<a>``, ``<em>``,
``<code>``, ``<img>``…) inside it as protected pieces, as Markdown's inline
markup is: the model sees ``[1]``…``[2]`` and moves them with the words. An
element that is not translated travels whole as one piece. A block element
(``<p>``, ``<li>``, ``<div>``, ``<td>``…) ends a unit, and so does ``<br>``
(as a hard break does in Markdown: each line keeps its own). An attribute to
translate inside a tag is a detached unit whose hole stands in the tag
(``pipeline.documents.document``). ``lang`` (and ``xml:lang``) on
``<html>`` is set to the target language, and added where it is missing;
on ``<body>`` it is set where it is there.

Everything else comes back byte for byte: the doctype, comments, the tags
with their attribute quoting and case, entities, whitespace. A text's
entities are decoded for the model, and its translation is escaped again
(``&`` and ``<``; and the quote in an attribute). A text whose units all
come back unchanged is written as it was, entities included. A text's line
breaks are kept: a translation is written on as many lines as its source,
each with its source line's indentation.

The tokenizer is the standard library's ``html.parser``: it is the
tolerant HTML tokenizer Python ships (no new dependency), it reads broken
markup (unclosed ``<p>``, stray ``</b>``, ``<`` in text) without raising,
and it reports where each token starts (``getpos()``) and the exact text of
each start tag (``get_starttag_text()``), so every byte of the input is
accounted for and copied from the source, never re-serialised. (lxml and
html5lib build a tree and write it back, normalising quotes, entities and
whitespace; BeautifulSoup does the same on top of them.) An attribute's
value is found in its tag's text with the module's own attribute pattern,
the one ``parse_starttag`` uses, so the two never disagree.
"""

from __future__ import annotations

import html
import html.parser
from dataclasses import dataclass, field

from pipeline.documents.document import Document
from pipeline.documents.formats.linebreaks import is_cjk
from pipeline.documents.protect import Protected
from pipeline.languages import bcp47

# Elements whose content is never translated.
SKIPPED = frozenset("script style code pre kbd samp textarea svg math var".split())
# Elements that sit inside a sentence; any other element ends one.
INLINE = frozenset(
    "a abbr b bdi bdo big br cite code data del dfn em font i img ins kbd mark nobr q s samp "
    "small span strike strong sub sup time tt u var wbr".split())
VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
# An element of these names cannot hold another of its name: a second one
# closes the first (<p>a<p>b).
_NO_NESTING = frozenset("p li dt dd option tr td th".split())
_READ_ATTRIBUTES = frozenset({"alt", "title", "placeholder", "aria-label"})
_META_NAMES = frozenset({"description", "og:description", "og:title", "twitter:description",
                         "twitter:title"})
_BUTTON_TYPES = frozenset({"submit", "reset", "button"})


def parse_html(text: str, target: str = "") -> Document:
    """Split an HTML page into literal markup and translatable units; with
    ``target`` (a FLORES-200 code), ``<html lang>`` names that language."""
    doc = Document()
    add_html(doc, text, target)
    return doc


def add_html(doc: Document, text: str, target: str = "") -> None:
    """Add ``text``, a page or a fragment of HTML, to ``doc``."""
    events = _Tokens.read(text)
    builder = _Builder(doc, target)
    for k, (start, kind, data) in enumerate(events):
        end = events[k + 1][0] if k + 1 < len(events) else len(text)
        builder.event(kind, data, text[start:end])
    builder.finish()


def inline_tag(doc: Document, written: str) -> Protected:
    """One tag of inline HTML inside Markdown as a protected piece: an open
    or a close of a pair (by name), its readable attributes detached units
    of ``doc``."""
    events = _Tokens.read(written)
    if len(events) != 1 or events[0][1] not in ("start", "startend", "end"):
        return Protected(written)
    _, kind, (tag, attrs) = events[0]
    if kind == "end":
        return Protected(written, "close", "html:" + tag)
    role = "open" if kind == "start" and tag not in VOID else ""
    return Protected(_with_holes(doc, tag, attrs, written), role, "html:" + tag if role else "")


class _Tokens(html.parser.HTMLParser):
    """The tokens of an HTML text with where each starts."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=False)
        self.offsets = [0]
        for line in text.split("\n")[:-1]:
            self.offsets.append(self.offsets[-1] + len(line) + 1)
        self.events: list[tuple[int, str, object]] = []

    @classmethod
    def read(cls, text: str) -> list[tuple[int, str, object]]:
        tokens = cls(text)
        tokens.feed(text)
        tokens.close()
        if not tokens.events or tokens.events[0][0] > 0:
            tokens.events.insert(0, (0, "data", ""))
        return tokens.events

    def _add(self, kind: str, data) -> None:
        line, col = self.getpos()
        self.events.append((self.offsets[line - 1] + col, kind, data))

    def handle_starttag(self, tag, attrs):
        self._add("start", (tag, attrs))

    def handle_startendtag(self, tag, attrs):
        self._add("startend", (tag, attrs))

    def handle_endtag(self, tag):
        self._add("end", (tag, None))

    def handle_data(self, data):
        self._add("data", data)

    def handle_entityref(self, name):
        self._add("entity", name)

    def handle_charref(self, name):
        self._add("entity", name)

    def handle_comment(self, data):
        self._add("other", data)

    def handle_decl(self, decl):
        self._add("other", decl)

    def handle_pi(self, data):
        self._add("other", data)

    def unknown_decl(self, data):
        self._add("other", data)


@dataclass
class _Skip:
    tag: str
    depth: int
    inline: bool
    written: list[str] = field(default_factory=list)


class _Builder:
    def __init__(self, doc: Document, target: str) -> None:
        self.doc, self.target = doc, target
        self.run: list[tuple[str, str, Protected | None]] = []  # (text, written, markup)
        self.skip: _Skip | None = None

    def event(self, kind: str, data, written: str) -> None:
        if self.skip is not None:
            self._skipped(kind, data, written)
        elif kind == "data":
            self.run.append((data, data, None))
            if written != data:  # bytes the tokenizer passed over ("</>")
                self._markup(Protected(written[len(data):]))
        elif kind == "entity":
            decoded = html.unescape(written.rstrip("\n")) if written.startswith("&") else written
            if decoded == written:
                self._markup(Protected(written))  # not an entity after all: as written
            else:
                self.run.append((decoded, written, None))
        elif kind in ("start", "startend"):
            self._start(kind, *data, written)
        elif kind == "end":
            tag = data[0]
            if tag in INLINE:
                self._markup(Protected(written, "close", tag))
            else:
                self._literal(written)
        elif self.run:  # a comment inside a sentence stays where it is
            self._markup(Protected(written))
        else:
            self._literal(written)

    def _start(self, kind: str, tag: str, attrs: list, written: str) -> None:
        values = dict(attrs)
        if (tag in SKIPPED or (values.get("translate") or "").lower() == "no"
                or "notranslate" in (values.get("class") or "").split()):
            inline = tag in INLINE or tag not in _BLOCKS_WE_KNOW and any(
                markup is not None or text.strip() for text, _, markup in self.run)
            if kind == "startend" or tag in VOID:
                self._markup(Protected(written)) if inline else self._literal(written)
                return
            if not inline:
                self._flush()
            self.skip = _Skip(tag, 1, inline, [written])
            return
        if tag in ("html", "body") and self.target:
            written = _with_lang(tag, attrs, written, bcp47(self.target), add=tag == "html")
        tagged = _with_holes(self.doc, tag, attrs, written)
        if tag == "br":  # a line of its own, as a Markdown hard break
            self._literal(tagged)
        elif tag in INLINE:
            role = "" if kind == "startend" or tag in VOID else "open"
            self._markup(Protected(tagged, role, tag if role else ""))
        else:
            self._literal(tagged)

    def _skipped(self, kind: str, data, written: str) -> None:
        skip = self.skip
        tag = data[0] if kind in ("start", "startend", "end") else None
        if skip.tag in _NO_NESTING and skip.depth == 1 and tag and tag != skip.tag and (
                tag in _BLOCKS_WE_KNOW if kind == "end" else
                skip.tag == "p" and tag in _BLOCKS_WE_KNOW):
            self._end_skip()  # closed by what follows: </ul> closes an <li>
            self.event(kind, data, written)
            return
        if tag == skip.tag and kind == "start" and tag in _NO_NESTING:
            self._end_skip()  # a second <p> closes the first
            self.event(kind, data, written)
            return
        skip.written.append(written)
        if tag == skip.tag and kind == "start":
            skip.depth += 1
        elif tag == skip.tag and kind == "end":
            skip.depth -= 1
        if not skip.depth:
            self._end_skip()

    def _end_skip(self) -> None:
        skip, self.skip = self.skip, None
        whole = "".join(skip.written)
        self._markup(Protected(whole)) if skip.inline else self._literal(whole)

    def _markup(self, piece: Protected) -> None:
        self.run.append(("", piece.text, piece))

    def _literal(self, text: str) -> None:
        self._flush()
        self.doc.add_literal(text)

    def finish(self) -> None:
        if self.skip is not None:  # never closed: copied to the end
            self._end_skip()
        self._flush()

    def _flush(self) -> None:
        run, self.run = self.run, []
        if not run:
            return
        lead, core, trail = _trimmed(run)
        doc = self.doc
        doc.add_literal("".join(w for _, w, _ in lead))
        if core:
            pieces, lines, prefixes = _unit_pieces(core)
            source = "".join(w for _, w, _ in core)
            start = doc.begin_original()
            doc.add_unit(pieces, source=source, html="text", lines=lines if lines > 1 else 0,
                         prefixes=tuple(prefixes))
            doc.end_original(start, source)
        doc.add_literal("".join(w for _, w, _ in trail))


_BLOCKS_WE_KNOW = frozenset(
    "address article aside blockquote body dd details dialog div dl dt fieldset figcaption "
    "figure footer form h1 h2 h3 h4 h5 h6 head header hr html li main nav ol p pre section "
    "summary table tbody td tfoot th thead tr ul".split())


def _trimmed(run: list) -> tuple[list, list, list]:
    """The run as (leading whitespace, core, trailing whitespace), each a
    list of run items; a text item is cut where its whitespace ends."""
    def blank(item) -> bool:
        return item[2] is None and not item[0].strip()

    start = 0
    while start < len(run) and blank(run[start]):
        start += 1
    end = len(run)
    while end > start and blank(run[end - 1]):
        end -= 1
    lead, core, trail = list(run[:start]), list(run[start:end]), list(run[end:])
    if core and core[0][2] is None and core[0][0] == core[0][1]:
        text = core[0][0]
        cut = len(text) - len(text.lstrip())
        if cut:
            lead.append((text[:cut], text[:cut], None))
            core[0] = (text[cut:], text[cut:], None)
    if core and core[-1][2] is None and core[-1][0] == core[-1][1]:
        text = core[-1][0]
        cut = len(text.rstrip())
        if cut < len(text):
            trail.insert(0, (text[cut:], text[cut:], None))
            core[-1] = (text[:cut], text[:cut], None)
    return lead, core, trail


def _unit_pieces(core: list) -> tuple[list, int, list[str]]:
    """What the model reads of a run: its text with each run of whitespace
    one space (none across a line break between two CJK characters), its
    markup protected; and its line count and the indentation of each line
    after the first (what a translation is written with)."""
    pieces: list = []
    lines, prefixes = 1, []
    for text, _written, markup in core:
        if markup is not None:
            pieces.append(markup)
            continue
        out, k = [], 0
        while k < len(text):
            if not text[k].isspace() or text[k] in "\xa0\u3000":
                out.append(text[k])
                k += 1
                continue
            end = k
            while end < len(text) and text[end].isspace() and text[end] not in "\xa0\u3000":
                end += 1
            gap = text[k:end]
            if "\n" in gap:
                lines += gap.count("\n")
                prefixes += [""] * (gap.count("\n") - 1) + [gap[gap.rindex("\n") + 1:]]
            before = out[-1] if out else ""
            after = text[end] if end < len(text) else ""
            out.append("" if "\n" in gap and before and after and is_cjk(before)
                       and is_cjk(after) else " ")
            k = end
        pieces.append("".join(out))
    return pieces, lines, prefixes


def _attribute_spans(written: str):
    """(name, value start, value end) of each attribute with a value in a
    start tag's text, the quotes outside the span; found as
    ``HTMLParser.parse_starttag`` finds them."""
    match = html.parser.tagfind_tolerant.match(written, 1)
    k = match.end() if match else len(written)
    while k < len(written):
        m = html.parser.attrfind_tolerant.match(written, k)
        if not m or m.end() == k:
            break
        if m.group(2):
            start, end = m.span(3)
            if written[start:start + 1] in ("'", '"') and written[end - 1:end] == written[start]:
                start, end = start + 1, end - 1
            yield m.group(1).lower(), start, end
        k = m.end()


def _readable(tag: str, name: str, values: dict) -> bool:
    if name in _READ_ATTRIBUTES:
        return tag not in ("link", "meta", "script", "style", "html", "head")
    if tag == "meta" and name == "content":
        key = (values.get("name") or values.get("property") or "").lower()
        return key in _META_NAMES
    if tag == "input" and name == "value":
        return (values.get("type") or "").lower() in _BUTTON_TYPES
    return False


def _with_holes(doc: Document, tag: str, attrs: list, written: str) -> str:
    """The tag's text with each readable attribute's value a detached unit."""
    values = dict(attrs)
    out, pos = [], 0
    for name, start, end in _attribute_spans(written):
        if not _readable(tag, name, values) or start >= end:
            continue
        quote = written[start - 1] if start and written[start - 1] in "'\"" else "="
        raw = written[start:end]
        out += [written[pos:start], doc.add_detached(raw, html.unescape(raw), html=quote)]
        pos = end
    out.append(written[pos:])
    return "".join(out)


def _with_lang(tag: str, attrs: list, written: str, code: str, add: bool) -> str:
    """The tag with ``lang`` (and ``xml:lang``) naming ``code``; ``add``:
    given one if it has none."""
    out, pos, found = [], 0, False
    for name, start, end in _attribute_spans(written):
        if name in ("lang", "xml:lang"):
            out += [written[pos:start], code]
            pos, found = end, found or name == "lang"
    out.append(written[pos:])
    text = "".join(out)
    if add and not found:
        at = len("<" + tag)
        text = text[:at] + f' lang="{code}"' + text[at:]
    return text
