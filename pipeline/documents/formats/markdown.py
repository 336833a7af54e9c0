"""Markdown input: translate the prose, copy everything else byte for byte.

The parser is markdown-it-py; its block tokens carry source line maps, so a
line that is not part of a paragraph, heading or table row is copied to the
output untouched (code blocks, link reference definitions, blank lines,
thematic breaks). Translatable blocks are rebuilt from their inline tokens
as literal markup around units of prose. An HTML block outside any list or
quote is read as HTML (``pipeline.documents.formats.html``).

markdown-it-py tells where a block starts but not where an inline token came
from, so a few of its rules are wrapped to record source positions in
``token.meta`` (``markdown_rules.parser``). That is what lets code spans, images, autolinks and link
destinations be copied exactly as written (reference links stay reference
links) instead of being re-serialised from their parsed form.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markdown_it.token import Token

from pipeline.documents import protect
from pipeline.documents.document import MARKDOWN_INLINE_ESCAPED, Document, Unit, has_letters
from pipeline.documents.formats import markdown_rules
from pipeline.documents.formats.html import add_html, inline_tag, never_translated
from pipeline.documents.formats.linebreaks import is_cjk
from pipeline.documents.protect import Escaped, Protected


def parse_markdown(text: str) -> Document:
    """Split a Markdown document into literal markup and translatable units.

    ``text`` has LF line endings (units are NFC-normalised, literal
    markup and code are not). Paragraphs (at any depth
    in lists and block quotes), headings and table cells are translated; a
    paragraph keeps its number of lines (its translation re-wrapped at
    balanced widths, each line after the first with its source line's
    container prefix) and its hard line breaks as written (two spaces or a
    backslash). Within them, code spans, images (less their alt text, a
    detached unit), autolinks, link destinations, footnote references and
    inline math stay literal, as do emphasis markers around their
    translated text, HTML tags (less their readable attributes; an element
    never translated, such as ``<kbd>``, whole), a table cell's escaped
    pipes, an alert's marker line and a task box. HTML blocks at the top
    level are translated as HTML. Every other source line (code and math
    blocks, front matter, HTML blocks inside lists and quotes, reference
    definitions, blank lines) is copied verbatim. Rendering the result with
    the units' own texts gives the input back.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # match markdown-it's line split
    return _Builder(text).build(markdown_rules.parser().parse(text))


class _Builder:
    def __init__(self, text: str) -> None:
        self.text = text
        raw = text.split("\n")
        self.lines = [line + "\n" for line in raw[:-1]] + ([raw[-1]] if raw[-1] else [])
        self.offsets = [0]
        for line in self.lines:
            self.offsets.append(self.offsets[-1] + len(line))
        self.doc = Document()
        self.done = 0  # source lines before this one are already in doc

    def build(self, tokens: list[Token]) -> Document:
        for i, tok in enumerate(tokens):
            if tok.type == "html_block" and tok.level == 0 and tok.map and tok.map[0] >= self.done:
                # HTML is HTML wherever it is: its text and readable attributes
                # are translated as a page's are (pipeline.documents.formats.html).
                self._copy_until(tok.map[0])
                add_html(self.doc, "".join(self.lines[tok.map[0] : tok.map[1]]))
                self.done = tok.map[1]
                continue
            if not tok.map or "starts" not in tok.meta or tok.map[0] < self.done:
                continue
            if tok.type == "paragraph_open":
                parent = tokens[i - 1].type if i else ""
                self._prose(tok, tokens[i + 1], underline=False, parent=parent)
            elif tok.type == "heading_open" and tok.markup.startswith("#"):
                self._atx_heading(tok, tokens[i + 1])
            elif tok.type == "heading_open":
                self._prose(tok, tokens[i + 1], underline=True)
            elif tok.type == "table_open":
                self._table(tok, tokens[i + 1 :])
        self._copy_until(len(self.lines))
        return self.doc

    def _copy_until(self, line: int) -> None:
        self.doc.add_literal("".join(self.lines[self.done : line]))
        self.done = max(self.done, line)

    def _commit(self, block: Document, first: int, end: int) -> None:
        """Use ``block`` for source lines [first, end), or the lines as they
        are when nothing in them is translated, so untranslated blocks keep
        their original wrapping."""
        self._copy_until(first)
        if not block.units:
            self._copy_until(end)
            return
        start = self.doc.begin_original()
        self.doc.absorb(block)
        self.doc.end_original(start, "".join(self.lines[first:end]))
        self.done = end

    def _prefix(self, opener: Token, k: int) -> str:
        """Container markers and indentation of the block's k-th line."""
        line = opener.map[0] + k
        return self.text[self.offsets[line] : opener.meta["starts"][k]]

    def _eol(self, line: int) -> str:
        return "\n" if self.lines[line].endswith("\n") else ""

    def _prose(self, opener: Token, inline: Token, *, underline: bool, parent: str = "") -> None:
        first, end = opener.map
        last = end - 2 if underline else end - 1  # a setext underline is copied as is
        block = Document()
        block.add_literal(self._prefix(opener, 0))
        children = inline.children or []
        lead = markdown_rules.lead_marker(parent, inline.content)
        rest = markdown_rules.drop_lead(children, lead) if lead else None
        if rest is not None:  # an alert's line or a task box, kept as written
            block.add_literal(lead + (self._prefix(opener, 1) if lead.endswith("\n") else ""))
            children = rest
        _render_inline(block, inline, line_prefix=lambda k: self._prefix(opener, k),
                       children=children)
        block.add_literal(self._eol(last))
        if underline:
            block.add_literal(self.lines[end - 1])
        self._commit(block, first, end)

    def _atx_heading(self, opener: Token, inline: Token) -> None:
        line_no = opener.map[0]
        line = self.lines[line_no]
        start = opener.meta["starts"][0] - self.offsets[line_no] + len(opener.markup)
        while line[start : start + 1] in (" ", "\t"):
            start += 1
        end = start + len(inline.content)
        if line[start:end] != inline.content:
            return  # not where the parser said: leave the line verbatim
        block = Document()
        block.add_literal(line[:start])
        _render_inline(block, inline)
        block.add_literal(line[end:])  # the closing #s and the line ending
        self._commit(block, line_no, line_no + 1)

    def _table(self, opener: Token, rest: list[Token]) -> None:
        # Rows are rebuilt from their cells; the delimiter row, between the
        # header and the body, is copied as a gap line.
        row: Token | None = None
        cells: list[Token] = []
        for tok in rest:
            if tok.type == "table_close":
                break
            if tok.type == "tr_open":
                row, cells = tok, []
            elif tok.type == "inline":
                cells.append(tok)
            elif tok.type == "tr_close" and row is not None and row.map:
                line = row.map[0]
                block = Document()
                block.add_literal(self._prefix(opener, line - opener.map[0]) + "|")
                for cell in cells:
                    block.add_literal(" ")
                    _render_inline(block, cell, table_cell=True)
                    block.add_literal(" |")
                block.add_literal(self._eol(line))
                self._commit(block, line, line + 1)


def _render_inline(
    out: Document,
    inline: Token,
    *,
    table_cell: bool = False,
    line_prefix: Callable[[int], str] = lambda k: "",
    children: list[Token] | None = None,
) -> None:
    """Append an inline token's children to ``out`` as units and literals.

    A sentence is one unit with its inline markup inside it as protected
    pieces (``pipeline.documents.protect``): link brackets and destinations, emphasis
    markers, code spans, images, autolinks, raw HTML, footnote references,
    math, entities. Only a hard break ends a unit (it keeps its line).
    ``line_prefix(k)`` is the container prefix of the block's k-th source
    line, needed where a hard break keeps a line of its own. ``children``
    replaces the token's own (less a leading marker).
    """
    src = inline.content
    pieces: list = []  # the sentence so far: text, escapes and protected markup
    breaks: list[str] = []  # its soft line breaks: the prefix of the line each starts
    link_tails: list[str] = []
    in_autolink = False
    kept: list = []  # an element never translated: [name, depth, where it starts]

    def escaped(run: str) -> str:
        # Text with no letters stays literal, but it may hold characters that
        # were escaped in the source (a \* or a \| in a cell), so escape it
        # the way a unit would be.
        return Unit(run, markdown=True, table_cell=table_cell).render(run)

    def flush() -> None:
        if not pieces:
            return
        kind = {"literal": escaped, "markdown": True, "table_cell": table_cell}
        if breaks and not has_letters(protect.build(pieces)[0]):
            # Nothing to translate (a row of badges): each line stays a line.
            line: list = []
            for piece in pieces:
                if piece is _SOFT_BREAK or piece is _NO_SPACE:
                    out.add_unit(line, **kind)
                    out.add_literal("\n" + breaks.pop(0))
                    line = []
                else:
                    line.append(piece)
            out.add_unit(line, **kind)
        else:
            # A translation keeps its source's line count: a reviewer's diff
            # pairs the lines (Unit.render re-wraps it at balanced widths).
            out.add_unit(list(pieces), **kind, lines=len(breaks) + 1 if breaks else 0,
                         prefixes=tuple(breaks))
        pieces.clear()
        breaks.clear()

    def keep(markup: str, role: str = "", key: str = "") -> None:
        # The block is written on one line, and a line ending inside a code
        # span, tag or link title means the same as a space.
        markup = markup.replace("\n", " ")
        if table_cell:
            # markdown-it has already unescaped \| in cells; put it back so
            # the cell is not split.
            markup = markup.replace("|", "\\|")
        pieces.append(Protected(markup, role, key))

    for tok in (inline.children or []) if children is None else children:
        span = tok.meta.get("span")
        written = src[span[0] : span[1]] if span else None
        kind = tok.type
        if kept:
            # Inside <code>, <kbd>, translate="no"...: kept whole, as in a page.
            if kind == "html_inline" and written:
                name = kept[0]
                if re.match(rf"</{name}\s*>", written, re.I):
                    kept[1] -= 1
                elif never_translated(written) == name:
                    kept[1] += 1
                if not kept[1]:
                    keep(src[kept[2] : span[1]])
                    kept.clear()
            continue
        if kind == "html_inline" and written and never_translated(written):
            kept[:] = [never_translated(written), 1, span[0]]
            continue
        if in_autolink:
            in_autolink = kind != "link_close"
        elif kind == "text" and table_cell and "|" in tok.content:
            # An escaped pipe (markdown-it has unescaped it) is protected:
            # a model would drop it, and it is a cell's content.
            for k, piece in enumerate(tok.content.split("|")):
                if k:
                    keep("|")
                pieces.append(piece)
        elif kind == "text":
            pieces.append(tok.content)
        elif kind == "softbreak":
            before = src[: span[0]].rstrip()[-1:] if span else ""
            after = src[span[1] : span[1] + 1] if span else ""
            pieces.append(_NO_SPACE if _no_space(before) and _no_space(after) else _SOFT_BREAK)
            breaks.append(line_prefix(src[: span[1]].count("\n")) if span else "")
        elif kind == "hardbreak":
            flush()
            k = src[: span[1]].count("\n") if span else 0
            out.add_literal(_hard_break(src, span) + line_prefix(k))
        elif kind == "text_special":
            if tok.info == "escape" and _reescaped(tok.content):
                # Unit.render writes this escape back, so the character can
                # stay in the sentence as text.
                pieces.append(Escaped(tok.content))
            else:
                keep(tok.markup)
        elif kind == "link_open" and tok.markup == "autolink":
            keep(written or f"<{tok.attrs.get('href', '')}>")
            in_autolink = True
        elif kind == "link_open":
            keep("[", "open", "link")
            link_tails.append(_link_tail(src, tok, span))
        elif kind == "link_close":
            keep(link_tails.pop() if link_tails else "]", "close", "link")
        elif kind == "code_inline":
            keep(written or f"{tok.markup} {tok.content} {tok.markup}")
        elif kind == "html_inline" and written:
            tag = inline_tag(out, written)  # its alt or title translated, a pair by name
            keep(tag.text, tag.role, tag.key)
        elif kind == "image" and written and tok.meta.get("label_end", -1) > span[0] + 2:
            # The alt text is translated on its own, in its place.
            label_end = tok.meta["label_end"]
            alt = src[span[0] + 2 : label_end].replace("\n", " ")  # the block is re-wrapped
            hole = out.add_detached(alt, _ESCAPE.sub(r"\1", alt), markdown=True,
                                    table_cell=table_cell)
            keep(src[span[0] : span[0] + 2] + hole + src[label_end : span[1]])
        elif kind in ("html_inline", "image"):
            keep(written or tok.content)
        elif kind.endswith("_open"):
            keep(tok.markup, "open", kind[:-5])  # emphasis, strong, strikethrough
        elif kind.endswith("_close"):
            keep(tok.markup, "close", kind[:-6])
        else:
            keep(written or tok.content)
    if kept:  # never closed: the rest of the block as it is
        keep(src[kept[2] :])
    flush()


# A soft line break as the model reads it: a space (none between CJK characters).
_SOFT_BREAK, _NO_SPACE = Escaped(" "), Escaped("")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")  # a backslash escape in Markdown source


def _link_tail(src: str, tok: Token, span: tuple[int, int] | None) -> str:
    """What follows a link's text: ``](url "title")``, ``][ref]`` or the like."""
    label_end = tok.meta.get("label_end", -1)
    if span is None or label_end < 0:
        title = tok.attrs.get("title")
        title_part = f' "{title}"' if title else ""
        return f"](<{tok.attrs.get('href', '')}>{title_part})"
    tail = src[label_end : span[1]]
    if tail in ("]", "][]"):
        # In a shortcut or collapsed reference the text is also the label;
        # name the label explicitly so the link survives translation.
        tail = "][" + src[span[0] + 1 : label_end] + "]"
    return tail


def _reescaped(char: str) -> bool:
    """Unit.render escapes this character wherever it stands in a translation
    (not "|": in a table cell it is literal, see _render_inline)."""
    return char in MARKDOWN_INLINE_ESCAPED


def _no_space(char: str) -> bool:
    return bool(char) and is_cjk(char)


def _hard_break(src: str, span: tuple[int, int] | None) -> str:
    """A hard line break as written: a backslash, or the spaces before it."""
    if span is None:
        return "\\\n"
    if src[span[0]] == "\\":
        return "\\\n"
    spaces = len(src[: span[0]]) - len(src[: span[0]].rstrip(" "))
    return " " * spaces + "\n"
