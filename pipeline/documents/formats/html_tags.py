"""HTML tags, one at a time: what an element is, where a start tag's
attribute values are, and which of them a reader reads.

The tokens come from the standard library's ``html.parser`` with where each
starts (``getpos()``); an attribute's value is found in its tag's text with
the module's own attribute pattern, the one ``parse_starttag`` uses, so the
two never disagree (``pipeline.documents.formats.html`` says why this
tokenizer).
"""

from __future__ import annotations

import html
import html.parser

from pipeline.documents.document import Document
from pipeline.documents.protect import Protected

# Elements whose content is never translated.
SKIPPED = frozenset("script style code pre kbd samp textarea svg math var".split())
# Elements that sit inside a sentence; any other element ends one.
INLINE = frozenset(
    "a abbr b bdi bdo big br cite code data del dfn em font i img ins kbd mark nobr q s samp "
    "small span strike strong sub sup time tt u var wbr".split())
VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
# An element of these names cannot hold another of its name: a second one
# closes the first (<p>a<p>b).
NO_NESTING = frozenset("p li dt dd option tr td th".split())
_READ_ATTRIBUTES = frozenset({"alt", "title", "placeholder", "aria-label"})
_META_NAMES = frozenset({"description", "og:description", "og:title", "twitter:description",
                         "twitter:title"})
_BUTTON_TYPES = frozenset({"submit", "reset", "button"})
# Block elements: one starting closes an open <p>; one ending, an open <li>.
BLOCKS = frozenset(
    "address article aside blockquote body dd details dialog div dl dt fieldset figcaption "
    "figure footer form h1 h2 h3 h4 h5 h6 head header hr html li main nav ol p pre section "
    "summary table tbody td tfoot th thead tr ul".split())


def inline_tag(doc: Document, written: str) -> Protected:
    """One tag of inline HTML inside Markdown as a protected piece: an open
    or a close of a pair (by name), its readable attributes detached units
    of ``doc``."""
    events = Tokens.read(written)
    if len(events) != 1 or events[0][1] not in ("start", "startend", "end"):
        return Protected(written)
    _, kind, (tag, attrs) = events[0]
    if kind == "end":
        return Protected(written, "close", "html:" + tag)
    role = "open" if kind == "start" and tag not in VOID else ""
    return Protected(with_holes(doc, tag, attrs, written), role, "html:" + tag if role else "")


def never_translated(written: str) -> str:
    """The name of the element a start tag opens if nothing in it is ever
    translated (``<code>``, ``<kbd>``, ``translate="no"``…), else ""."""
    events = Tokens.read(written)
    if len(events) != 1 or events[0][1] != "start":
        return ""
    tag, attrs = events[0][2]
    return tag if never(tag, dict(attrs)) and tag not in VOID else ""


def never(tag: str, values: dict) -> bool:
    return (tag in SKIPPED or (values.get("translate") or "").lower() == "no"
            or "notranslate" in (values.get("class") or "").split())


class Tokens(html.parser.HTMLParser):
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


def with_holes(doc: Document, tag: str, attrs: list, written: str) -> str:
    """The tag's text with each readable attribute's value a detached unit."""
    values = dict(attrs)
    out, pos = [], 0
    for name, start, end in _attribute_spans(written):
        if not _readable(tag, name, values) or start >= end:
            continue
        quote = written[start - 1] if start and written[start - 1] in "'\"" else "="
        raw = written[start:end]
        text = " ".join(html.unescape(raw).split())
        out += [written[pos:start], doc.add_detached(raw, text, html=quote)]
        pos = end
    out.append(written[pos:])
    return "".join(out)


def with_lang(tag: str, attrs: list, written: str, code: str, add: bool) -> str:
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
