"""The skeleton of a document: literal text with holes that get translations.

Every input format is parsed into a :class:`Document`: a list of *parts*, each
either a literal string that is copied to the output byte for byte (Markdown
markup, code blocks, blank lines, subtitle timings) or the index of a
:class:`Unit`, a run of prose that is translated. Postprocess fills each hole
with the unit's translation, so the output keeps the input's shape by
construction rather than by reconstruction.

Two records make the output exact where nothing was translated:

- *originals*: a run of parts (a paragraph, a cue) remembers how it was
  written. When every unit in it comes back unchanged (the model copied it,
  or it failed and ``--missing source`` kept it) the run is written as it
  was, with its own line wrapping, instead of as joined prose. Rendering
  with the units' own texts therefore gives the input back.
- *line origins*: which input line each part starts on, so a file that mixes
  line endings keeps each line's own (see :meth:`Document.output`).

Only unit texts are NFC-normalised, never literal parts: code, markup and
timings stay byte for byte what the input held.

The skeleton is stored as JSON in the store, a slice of the document at a
time (``pipeline.documents.formats.slices``, ``pipeline.store.slices``), so
postprocess never needs the input file again.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field

from pipeline.documents import protect
from pipeline.documents.formats.linebreaks import join_lines, wrap_lines

# Characters that start Markdown syntax anywhere in running text; Unit.render
# escapes each of them wherever it occurs (and "|" in table cells).
MARKDOWN_INLINE_ESCAPED = frozenset("\\`*_[]<>")
_MARKDOWN_ACTIVE = str.maketrans({c: "\\" + c for c in MARKDOWN_INLINE_ESCAPED})
# Text that starts a block (heading, list item, quote) at the start of a line.
_BLOCK_START = re.compile(r"^(#{1,6}|[-+=>]|\d{1,9}(?=[.)]))(?=\s|$|[.)])")
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
# Line endings, one letter each in Document.line_ends.
_EOL_CODES = {"\n": "n", "\r\n": "r", "\r": "c"}
_EOL_OF_CODE = {v: k for k, v in _EOL_CODES.items()}


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
    """

    text: str
    markdown: bool = False
    table_cell: bool = False
    json: bool = False
    lines: int = 0
    cue: str = ""
    protected: tuple[tuple[str, int], ...] = ()

    def render(self, translation: str) -> str:
        pieces = protect.split_markers(translation) if self.protected else [translation]
        if self.cue.startswith(("csv", "tsv")):
            return _table_cell(self.cue, "".join(self._restored(p) if isinstance(p, int) else p
                                                 for p in pieces))
        if self.json:
            return "".join(self._restored(p) if isinstance(p, int)
                           else json.dumps(p, ensure_ascii=False)[1:-1] for p in pieces)
        # The text between markers is escaped; markers stay in place (through
        # the re-wrapping of a subtitle, too) until their text goes in last.
        out = "".join(protect.marker(p) if isinstance(p, int) else self._escaped(p)
                      for p in pieces)
        if self.lines:
            out = "\n".join(wrap_lines(out, self.lines))
        elif self.markdown:
            # A translation that begins like "- x", "# x" or "1. x" must not
            # turn its paragraph into a list or a heading.
            match = _BLOCK_START.match(out)
            if match:
                marker = match.group(1)
                if marker[0].isdigit():
                    out = marker + "\\" + out[len(marker):]
                else:
                    out = "\\" + out
        if not self.protected:
            return out
        return "".join(self._restored(p) if isinstance(p, int) else p
                       for p in protect.split_markers(out))

    def _escaped(self, text: str) -> str:
        if self.cue == "srt":
            return SUBTITLE_TAGS["srt"].sub("", text)
        if self.cue == "vtt":
            return text.translate(_VTT_ESCAPES)
        if self.markdown and not self.lines:
            text = " ".join(text.split("\n")).translate(_MARKDOWN_ACTIVE)
            return text.replace("|", "\\|") if self.table_cell else text
        return text

    def _restored(self, k: int) -> str:
        return self.protected[k][0] if k < len(self.protected) else ""

    def render_token(self, token: str) -> str:
        """How a protected token found in this unit's text is written: as
        literal text is where this unit goes (as written in Markdown, where
        prose tokens come from the source unescaped)."""
        if self.json:
            return json.dumps(token, ensure_ascii=False)[1:-1]
        if self.cue == "vtt":
            return token.translate(_VTT_ESCAPES)
        return token


@dataclass
class Document:
    """Literal parts and translatable units, plus how the file was encoded.

    ``originals``: ``(first, end, source)``: parts[first:end] were written as
    ``source``. ``line_at``: ``{part: input line}`` where a parser said which
    input line (0-based) a part starts on. ``line_ends``: one letter per input
    line break (n LF, r CRLF, c CR), kept only when the input mixed them.
    ``notes``: what the parser wants the user to know (lines it skipped).
    """

    parts: list[str | int] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    eol: str = "\n"  # the input's dominant line ending, restored on output
    bom: bool = False  # the input started with a UTF-8 byte order mark
    originals: list[tuple[int, int, str]] = field(default_factory=list)
    line_at: dict[int, int] = field(default_factory=dict)
    line_ends: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._fence = len(self.parts)  # literals never merge into parts before it
        self._open = False  # between begin_original and end_original
        # (first, parts counted, their breaks) of the last _breaks call: a
        # document of n lines would otherwise count O(n^2) parts.
        self._break_cache = (-1, 0, 0)

    def add_literal(self, text: str) -> None:
        if not text:
            return
        if self.parts and isinstance(self.parts[-1], str) and len(self.parts) > self._fence:
            self.parts[-1] += text
            if not self._open and self.originals and self.originals[-1][1] == len(self.parts):
                # Merged into the last part of a closed original: the text is
                # written either way, so the original grows with it.
                first, end, source = self.originals[-1]
                self.originals[-1] = (first, end, source + text)
        else:
            self.parts.append(text)

    def add_unit(self, text: str | list, *, literal=None, **kind) -> None:
        """Add ``text`` as a unit of ``kind`` (Unit's flags); surrounding
        whitespace stays literal and text with nothing to translate (no
        letters) stays literal too. The unit's text is NFC-normalised.

        ``text`` may be a list of pieces: text and ``protect.Protected``
        markup (inline markup a parser keeps inside the sentence), which
        becomes markers in the unit's text. Untranslatable tokens (URLs,
        paths...) in the text are protected too. ``literal(text)`` writes text
        that ends up literal after all (default: as it is)."""
        pieces = [text] if isinstance(text, str) else text
        marked, protected = protect.build(pieces, Unit("", **kind).render_token)
        stripped = marked.strip()
        if not any(ch.isalpha() for p in protect.split_markers(stripped) if isinstance(p, str)
                   for ch in p):
            write = literal or (lambda t: t)
            for p in protect.split_markers(marked):
                self.add_literal(protected[p][0] if isinstance(p, int) else write(p))
            return
        start = marked.index(stripped[0])
        self.add_literal(marked[:start])
        self._add(Unit(unicodedata.normalize("NFC", stripped), **kind, protected=protected))
        self.add_literal(marked[start + len(stripped) :])

    def add_json_string(self, value: str, *, raw: str | None = None, segments=None) -> None:
        """``value`` as the inside of a JSON string: each paragraph (lines up
        to a blank line) a unit, the blank lines between them literal.
        ``raw``: how the input wrote it (escapes as they were), written back
        when nothing in it is translated. ``segments(paragraph)``: the
        paragraph as text and ``protect.Protected`` pieces (a format's own
        placeholders, such as gettext's ``%(name)s``)."""
        if raw is not None and not any(ch.isalpha() for ch in value):
            self.add_literal(raw)
            return
        start = self.begin_original()
        for k, piece in enumerate(re.split(r"(\r?\n[ \t\r]*\n\s*)", value)):
            if k % 2 or not any(ch.isalpha() for ch in piece):
                self.add_literal(_json_inside(piece))
                continue
            stripped = piece.strip()
            head = piece[: piece.index(stripped[0])]
            self.add_literal(_json_inside(head))
            joined = join_lines(stripped.split("\n"))
            marked, protected = protect.build(segments(joined) if segments else [joined],
                                              Unit("", json=True).render_token)
            self._add(Unit(unicodedata.normalize("NFC", marked), json=True, protected=protected))
            self.add_literal(_json_inside(piece[len(head) + len(stripped) :]))
        self.end_original(start, _json_inside(value) if raw is None else raw)

    def _add(self, unit: Unit) -> None:
        self.parts.append(len(self.units))
        self.units.append(unit)

    def begin_original(self) -> int:
        """Start a run of parts that :meth:`end_original` ties to its source."""
        self._fence, self._open = len(self.parts), True
        return self._fence

    def end_original(self, first: int, source: str) -> None:
        """parts[first:] were written as ``source`` in the input."""
        self._open = False
        units = [p for p in self.parts[first:] if isinstance(p, int)]
        if units and self._render_parts(first, {u: self.units[u].text for u in units}) != source:
            self.originals.append((first, len(self.parts), source))

    def starts_line(self, line: int) -> None:
        """The next part starts on input line ``line`` (0-based)."""
        if self.line_at:
            last = next(reversed(self.line_at))
            if self.line_at[last] + self._breaks(last) == line:
                return  # where the parts so far end anyway
        self._fence = len(self.parts)
        self.line_at[len(self.parts)] = line

    def _breaks(self, first: int) -> int:
        """Line breaks that parts[first:] write when translated. Counted
        on from the last call with the same ``first``; the last part is
        counted every time (a literal grows in place)."""
        cached_first, counted, total = self._break_cache
        end = len(self.parts) - 1
        if cached_first != first or counted > end:
            counted, total = first, 0
        total += sum(self._part_breaks(p) for p in self.parts[counted:end])
        self._break_cache = (first, max(counted, end), total)
        return total + (self._part_breaks(self.parts[end]) if end >= first else 0)

    def _part_breaks(self, part: str | int) -> int:
        return part.count("\n") if isinstance(part, str) else max(self.units[part].lines - 1, 0)

    def _render_parts(self, first: int, translations: dict[int, str]) -> str:
        return "".join(
            p if isinstance(p, str) else self.units[p].render(translations[p])
            for p in self.parts[first:]
        )

    def render(self, translations: list[str]) -> str:
        """The output text (LF line endings) with ``translations[i]`` in unit i's place."""
        return "".join(text for text, _ in self._pieces(translations))

    def _pieces(self, translations: list[str]):
        """(text, input line it starts on or None) for each piece of output."""
        if len(translations) != len(self.units):
            raise ValueError(f"{len(translations)} translations for {len(self.units)} units")
        originals = {first: (end, source) for first, end, source in self.originals}
        i, line = 0, None
        while i < len(self.parts):
            line = self.line_at.get(i, line)
            if i in originals:
                end, source = originals[i]
                units = [p for p in self.parts[i:end] if isinstance(p, int)]
                if all(translations[u] == self.units[u].text for u in units):
                    yield source, line
                    line = None if line is None else line + source.count("\n")
                    i = end
                    continue
            part = self.parts[i]
            if isinstance(part, str):
                yield part, line
                line = None if line is None else line + part.count("\n")
            else:
                unit = self.units[part]
                yield unit.render(translations[part]), line
                line = None if line is None else line + max(unit.lines - 1, 0)
            i += 1

    def output(self, translations: list[str]) -> bytes:
        """The output file's bytes: rendered, with the BOM if the input had
        one, and line endings restored.

        Line endings: when the input used one kind, every line gets it. When
        it mixed them (``line_ends``), each output line that stands for an
        input line (the parser said where each part starts: plain text,
        line-aligned text, subtitles, JSON Lines) keeps that line's own
        ending; a plain-text paragraph joined onto one line keeps the ending
        of its last line. Lines with no known origin (Markdown, whose
        paragraphs are rebuilt) get the majority ending, ``eol``.
        """
        if not self.line_ends or not self.line_at:
            return self.encode(self.render(translations))
        out = []
        for text, line in self._pieces(translations):
            if "\n" not in text:
                out.append(text)
                continue
            lines = text.split("\n")
            for k, piece in enumerate(lines[:-1]):
                origin = None if line is None else line + k
                code = self.line_ends[origin] if origin is not None and origin < len(self.line_ends) else ""
                out.append(piece + _EOL_OF_CODE.get(code, self.eol))
            out.append(lines[-1])
        return (b"\xef\xbb\xbf" if self.bom else b"") + "".join(out).encode("utf-8")

    def encode(self, text: str) -> bytes:
        """Bytes of an output text in the input's dominant line ending and BOM convention."""
        if self.eol != "\n":
            text = text.replace("\n", self.eol)
        return (b"\xef\xbb\xbf" if self.bom else b"") + text.encode("utf-8")

    def to_json(self) -> str:
        data = {
            "parts": self.parts,
            "units": [[u.text, u.markdown, u.table_cell, u.json, u.lines, u.cue]
                      + ([[list(p) for p in u.protected]] if u.protected else [])
                      for u in self.units],
            "eol": self.eol,
            "bom": self.bom,
            "originals": self.originals,
            "notes": self.notes,
        }
        if self.line_ends:  # line origins matter only where endings are mixed
            data["line_ends"] = self.line_ends
            data["line_at"] = sorted(self.line_at.items())
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> Document:
        raw = json.loads(data)
        return cls(
            parts=raw["parts"],
            units=[Unit(*u[:6], protected=tuple(tuple(p) for p in u[6]) if len(u) > 6 else ())
                   for u in raw["units"]],
            eol=raw["eol"],
            bom=raw["bom"],
            originals=[tuple(o) for o in raw.get("originals", [])],
            line_at=dict(raw.get("line_at", [])),
            line_ends=raw.get("line_ends", ""),
            notes=raw.get("notes", []),
        )


def line_end_codes(endings: list[str]) -> str:
    """The ``line_ends`` letters for a list of line endings."""
    return "".join(_EOL_CODES[e] for e in endings)


def _table_cell(cue: str, text: str) -> str:
    if cue == "tsv":
        return " ".join(text.replace("\t", " ").splitlines())
    if cue == "csv":
        return text.replace('"', '""')
    if any(c in text for c in (cue[3:], '"', "\n", "\r")):
        return '"' + text.replace('"', '""') + '"'
    return text


def _json_inside(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]
