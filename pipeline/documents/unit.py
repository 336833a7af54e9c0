"""A unit: a run of prose to translate, and how its translation is written.

Where a translation goes decides how it is written: escaped for Markdown,
HTML, JSON or a subtitle; re-wrapped to its source's line count; with the
protected pieces (``pipeline.documents.protect``) put back in place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pipeline.documents import protect
from pipeline.documents.formats.linebreaks import wrap_lines

# Characters that start Markdown syntax anywhere in running text; Unit.render
# escapes each of them wherever it occurs (and "|" in table cells).
MARKDOWN_INLINE_ESCAPED = frozenset("\\`*_[]<>")
_MARKDOWN_ACTIVE = str.maketrans({c: "\\" + c for c in MARKDOWN_INLINE_ESCAPED})
# Text that starts a block at the start of a line: a heading, a list item or
# a quote ("1." only before a space: "209.2" is a number), a fence, or a
# line that would underline the one before it (a setext heading).
_BLOCK_START = re.compile(r"^(?:#{1,6}|[-+=>]|(\d{1,9})[.)])(?=\s|$)|^~{3,}|^(?:=+|-+)[ \t]*$")
_HTML_ESCAPES = {"": {}, '"': {'"': "&quot;"}, "'": {"'": "&#39;"}, "=": {'"': "&quot;"}}
_HTML_ESCAPES = {q: str.maketrans({"&": "&amp;", "<": "&lt;", "\xa0": "&nbsp;", **more})
                 for q, more in _HTML_ESCAPES.items()}
_NEEDS_QUOTES = re.compile(r"[\s\"'=<>`]|^$")
# Markup that starts a block when a line of a paragraph starts with it.
_OPENS_BLOCK = re.compile(
    r"\$\$|\[\^|</?(?:address|article|aside|blockquote|center|details|dialog|div|dl|dt|dd|"
    r"fieldset|figcaption|figure|footer|form|h[1-6]|header|hr|li|main|nav|ol|p|pre|script|"
    r"section|style|summary|table|tbody|td|th|thead|tr|ul)(?![\w-])", re.I)
# Subtitle markup, by dialect. SubRip: an HTML-like tag (a name starting with
# a letter, so "2<3,5>1" is text), an ASS override block ("{\an8}"; "{normal
# text}" is shown, so it is text) or an ASS code (\N, \n break a line, \h is
# a hard space). WebVTT: tags (c, i, b, u, v, lang, ruby, rt) and karaoke
# timestamps. A cue's own markup is literal parts (pipeline.documents.formats.cues), so
# SubRip markup a model invents is dropped, and WebVTT's is escaped.
SUBTITLE_TAGS = {
    "srt": re.compile(r"</?[A-Za-z][^<>\n]*>|\{\\[^{}\n]*\}|\\[Nnh]"),
    "vtt": re.compile(r"</?[A-Za-z][^<>\n]*>|<\d+(?::\d{2}){1,2}\.\d{3}>"),
}
_VTT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


@dataclass(frozen=True)
class Unit:
    """A run of prose to translate.

    ``text`` never starts or ends with whitespace: the whitespace around a
    unit belongs to the neighbouring literal parts.
    ``markdown``: the translation is inserted into Markdown, so characters that
    would start markup are escaped. ``table_cell``: also escape ``|``.
    ``json``: inside a JSON string, escaped as JSON.
    ``lines``: when > 0 the translation is written on that many lines (a
    subtitle's line count, one line of a line-aligned corpus), re-wrapped at
    balanced widths; any line break the model returned counts as a space.
    Only a translation with fewer characters than lines gets fewer lines (no
    line is ever empty: an empty line would end a subtitle cue).
    ``cue``: "srt" or "vtt" for subtitle text: tag-like text in a SubRip
    translation is dropped, WebVTT's ``& < >`` are escaped. For a table's
    cell (``pipeline.documents.formats.csv``): "csv" inside a quoted cell
    (``"`` doubled), "csv" + the delimiter for a bare cell (quoted when
    its translation holds the delimiter, a quote or a line break), "tsv"
    (tabs and line breaks become spaces).
    ``protected``: what each marker in ``text`` stands for
    (``pipeline.documents.protect``): its output text, written as it is, and its
    partner's index (-1 none; -2, -3 the close or open of a pair whose other
    end is in another unit). A translation holds the same markers; the rules
    above apply to the text between them.
    ``html``: the translation goes into HTML: "text" for an element's text
    (``&`` and ``<`` escaped), the quote (``"`` or ``'``) of the attribute
    value it is, "=" for an unquoted value (quoted if it needs to be).
    ``prefixes``: where ``lines`` > 1, what each line after the first starts
    with (a Markdown paragraph's container markers, the indentation of an
    HTML text's lines), so a paragraph keeps its line count.
    """

    text: str
    markdown: bool = False
    table_cell: bool = False
    json: bool = False
    lines: int = 0
    cue: str = ""
    protected: tuple[tuple[str, int], ...] = ()
    html: str = ""
    prefixes: tuple[str, ...] = ()

    def render(self, translation: str, fill=None) -> str:
        """``fill``: what writes the holes a protected text holds (the Document's)."""
        pieces = protect.split_markers(translation) if self.protected else [translation]
        if self.cue.startswith(("csv", "tsv")):
            return _table_cell(self.cue, "".join(self._restored(p, fill) if isinstance(p, int) else p
                                                 for p in pieces))
        if self.json:
            return "".join(self._restored(p, fill) if isinstance(p, int)
                           else json.dumps(p, ensure_ascii=False)[1:-1] for p in pieces)
        # The text between markers is escaped; markers stay in place (through
        # the re-wrapping of a subtitle, too) until their text goes in last.
        out = "".join(protect.marker(p) if isinstance(p, int) else self._escaped(p)
                      for p in pieces)
        if self.lines:
            wide = self.markdown or self.html
            lines = wrap_lines(out, self.lines, self._width if wide and self.protected else None,
                               spaces_first=bool(wide))
            if self.markdown:
                lines = self._markdown_lines(lines)
            prefixes = self.prefixes
            out = lines[0] + "".join("\n" + (prefixes[k] if k < len(prefixes) else "") + line
                                     for k, line in enumerate(lines[1:]))
        elif self.markdown and not self.table_cell:
            out = _unblock(out)
        if self.protected:
            out = "".join(self._restored(p, fill) if isinstance(p, int) else p
                          for p in protect.split_markers(out))
        if self.html == "=" and _NEEDS_QUOTES.search(out):
            out = '"' + out + '"'
        return out

    def _escaped(self, text: str) -> str:
        if self.cue == "srt":
            return SUBTITLE_TAGS["srt"].sub("", text)
        if self.cue == "vtt":
            return text.translate(_VTT_ESCAPES)
        if self.html:
            return " ".join(text.split("\n")).translate(_HTML_ESCAPES[self._quote])
        if self.markdown:
            text = " ".join(text.split("\n")).translate(_MARKDOWN_ACTIVE)
            return text.replace("|", "\\|") if self.table_cell else text
        return text

    def _markdown_lines(self, lines: list[str]) -> list[str]:
        """Lines of a paragraph that start no block: escaped where text would
        (``_unblock``), joined to the line before where a protected piece
        would (an HTML block's tag, a math block, a footnote definition)."""
        out: list[str] = []
        for line in lines:
            k = ord(line[0]) - protect.MARKER_BASE if line else -1
            if out and 0 <= k < len(self.protected) and _OPENS_BLOCK.match(self.protected[k][0]):
                out[-1] += " " + line
            else:
                out.append(_unblock(line))
        return out

    @property
    def _quote(self) -> str:
        return "" if self.html == "text" else self.html

    def _width(self, ch: str) -> int | None:
        """A marker is as wide as what it stands for (a link's URL)."""
        k = ord(ch) - protect.MARKER_BASE
        return len(self.protected[k][0]) if 0 <= k < len(self.protected) else None

    def _restored(self, k: int, fill=None) -> str:
        text = self.protected[k][0] if k < len(self.protected) else ""
        return fill(text) if fill else text

    def render_token(self, token: str) -> str:
        """How a protected token found in this unit's text is written: as
        literal text is where this unit goes (as written in Markdown, where
        prose tokens come from the source unescaped)."""
        if self.json:
            return json.dumps(token, ensure_ascii=False)[1:-1]
        if self.cue == "vtt":
            return token.translate(_VTT_ESCAPES)
        if self.html:
            return token.translate(_HTML_ESCAPES[self._quote])
        return token


def _unblock(line: str) -> str:
    """A line of a Markdown translation that begins like "- x", "# x", "1. x"
    or "~~~" must not turn its paragraph into a list, a heading or a fence."""
    match = _BLOCK_START.match(line)
    if not match:
        return line
    if match.group(1):  # "1." -> "1\\."
        return match.group(1) + "\\" + line[len(match.group(1)):]
    return "\\" + line


def _table_cell(cue: str, text: str) -> str:
    if cue == "tsv":
        return " ".join(text.replace("\t", " ").splitlines())
    if cue == "csv":
        return text.replace('"', '""')
    if any(c in text for c in (cue[3:], '"', "\n", "\r")):
        return '"' + text.replace('"', '""') + '"'
    return text
