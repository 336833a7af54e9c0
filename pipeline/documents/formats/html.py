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
from dataclasses import dataclass, field

from pipeline.documents.document import Document
from pipeline.documents.formats.html_tags import (
    BLOCKS, INLINE, NO_NESTING, VOID, Tokens, inline_tag, never, never_translated, with_holes,
    with_lang)
from pipeline.documents.formats.linebreaks import is_cjk
from pipeline.documents.protect import Protected
from pipeline.languages import bcp47

__all__ = ["add_html", "inline_tag", "never_translated", "parse_html"]


def parse_html(text: str, target: str = "") -> Document:
    """Split an HTML page into literal markup and translatable units; with
    ``target`` (a FLORES-200 code), ``<html lang>`` names that language."""
    doc = Document()
    add_html(doc, text, target)
    return doc


def add_html(doc: Document, text: str, target: str = "") -> None:
    """Add ``text``, a page or a fragment of HTML, to ``doc``."""
    events = Tokens.read(text)
    builder = _Builder(doc, target)
    for k, (start, kind, data) in enumerate(events):
        end = events[k + 1][0] if k + 1 < len(events) else len(text)
        builder.event(kind, data, text[start:end])
    builder.finish()


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
            decoded = html.unescape(written)
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
        if never(tag, dict(attrs)):
            inline = tag in INLINE or tag not in BLOCKS and any(
                markup is not None or text.strip() for text, _, markup in self.run)
            if kind == "startend" or tag in VOID:
                self._markup(Protected(written)) if inline else self._literal(written)
                return
            if not inline:
                self._flush()
            self.skip = _Skip(tag, 1, inline, [written])
            return
        if tag in ("html", "body") and self.target:
            written = with_lang(tag, attrs, written, bcp47(self.target), add=tag == "html")
        tagged = with_holes(self.doc, tag, attrs, written)
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
        if skip.tag in NO_NESTING and skip.depth == 1 and tag and tag != skip.tag and (
                tag in BLOCKS if kind == "end" else
                skip.tag == "p" and tag in BLOCKS):
            self._end_skip()  # closed by what follows: </ul> closes an <li>
            self.event(kind, data, written)
            return
        if tag == skip.tag and kind == "start" and tag in NO_NESTING:
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
