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

Text that is translated but sits inside a piece written as it is (an HTML
attribute inside a tag, an image's alt text inside Markdown's ``![…](…)``)
is a *detached* unit: a unit with no part of its own, whose *hole* (a
character of Supplementary Private Use Area-B, U+100000 + its number in
``Document.detached``) stands in the literal or protected text where its
translation goes. A hole left unchanged is written as its source was.

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
from dataclasses import dataclass, field, replace

from pipeline.documents import protect
from pipeline.documents.formats.linebreaks import join_lines
from pipeline.documents.unit import MARKDOWN_INLINE_ESCAPED, SUBTITLE_TAGS, Unit

__all__ = ["MARKDOWN_INLINE_ESCAPED", "SUBTITLE_TAGS", "Document", "Unit", "has_letters",
           "line_end_codes"]

# Line endings, one letter each in Document.line_ends.
_EOL_CODES = {"\n": "n", "\r\n": "r", "\r": "c"}
_EOL_OF_CODE = {v: k for k, v in _EOL_CODES.items()}
HOLE_BASE = 0x100000
MAX_HOLES = 0xFFFE  # detached units one document (one slice of it) can hold
_HOLES = re.compile("[\U00100000-\U0010FFFD]")


@dataclass
class Document:
    """Literal parts and translatable units, plus how the file was encoded.

    ``originals``: ``(first, end, source)``: parts[first:end] were written as
    ``source``. ``line_at``: ``{part: input line}`` where a parser said which
    input line (0-based) a part starts on. ``line_ends``: one letter per input
    line break (n LF, r CRLF, c CR), kept only when the input mixed them.
    ``notes``: what the parser wants the user to know (lines it skipped).
    ``detached``: per hole, the detached unit it stands for and its source.
    """

    parts: list[str | int] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    eol: str = "\n"  # the input's dominant line ending, restored on output
    bom: bool = False  # the input started with a UTF-8 byte order mark
    originals: list[tuple[int, int, str]] = field(default_factory=list)
    line_at: dict[int, int] = field(default_factory=dict)
    line_ends: str = ""
    notes: list[str] = field(default_factory=list)
    detached: list[tuple[int, str]] = field(default_factory=list)

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

    def add_unit(self, text: str | list, *, literal=None, source: str | None = None,
                 **kind) -> None:
        """Add ``text`` as a unit of ``kind`` (Unit's flags); surrounding
        whitespace stays literal and text with nothing to translate (no
        letters) stays literal too. The unit's text is NFC-normalised.

        ``text`` may be a list of pieces: text and ``protect.Protected``
        markup (inline markup a parser keeps inside the sentence), which
        becomes markers in the unit's text. Untranslatable tokens (URLs,
        paths...) in the text are protected too. ``literal(text)`` writes text
        that ends up literal after all (default: as it is); ``source``, the
        text as written, is written instead where given."""
        pieces = [text] if isinstance(text, str) else text
        marked, protected = protect.build(pieces, Unit("", **kind).render_token)
        stripped = marked.strip()
        if not has_letters(stripped):
            if source is not None:
                self.add_literal(source)
                return
            write = literal or (lambda t: t)
            for p in protect.split_markers(marked):
                self.add_literal(protected[p][0] if isinstance(p, int) else write(p))
            return
        start = marked.index(stripped[0])
        self.add_literal(marked[:start])
        self._add(Unit(unicodedata.normalize("NFC", stripped), **kind, protected=protected))
        self.add_literal(marked[start + len(stripped) :])

    def add_detached(self, source: str, text: str | None = None, **kind) -> str:
        """A detached unit for ``text`` (default ``source``, the text as
        written), of ``kind``: returns what to write where it stands, its
        hole between the whitespace around it, or ``source`` itself when
        there is nothing to translate in it."""
        core = (source if text is None else text).strip()
        marked, protected = protect.build([core], Unit("", **kind).render_token)
        if not has_letters(marked) or len(self.detached) >= MAX_HOLES:
            return source
        inner = source.strip()
        start = source.index(inner[0])
        self.detached.append((len(self.units), inner))
        self.units.append(Unit(unicodedata.normalize("NFC", marked), **kind, protected=protected))
        return source[:start] + chr(HOLE_BASE + len(self.detached) - 1) + source[start + len(inner):]

    def absorb(self, block: Document) -> None:
        """Append ``block``'s parts and units (its detached ones too), renumbered."""
        offset, holes = len(self.units), len(self.detached)

        def shift(text: str) -> str:
            if not block.detached:
                return text
            return _HOLES.sub(lambda m: chr(ord(m.group()) + holes)
                              if ord(m.group()) + holes - HOLE_BASE < MAX_HOLES
                              else block.detached[ord(m.group()) - HOLE_BASE][1], text)

        self.units.extend(replace(u, protected=tuple((shift(t), k) for t, k in u.protected))
                          if block.detached and u.protected else u for u in block.units)
        self.detached.extend((u + offset, text) for u, text in block.detached)
        del self.detached[MAX_HOLES:]
        for part in block.parts:
            if isinstance(part, str):
                self.add_literal(shift(part))
            else:
                self.parts.append(part + offset)

    def _fill(self, text: str, translation) -> str:
        """``text`` with each hole in it written: its unit's translation
        (``translation(unit)``), or its source where that is the unit's own text."""
        if not self.detached or not _HOLES.search(text):
            return text

        def one(m) -> str:
            k = ord(m.group()) - HOLE_BASE
            if k >= len(self.detached):
                return m.group()
            unit, source = self.detached[k]
            done = translation(unit)
            return source if done == self.units[unit].text else self.units[unit].render(done)

        return _HOLES.sub(one, text)

    def _units_in(self, first: int, end: int) -> list[int]:
        """The units parts[first:end] write: theirs and those of their holes."""
        units = []
        for p in self.parts[first:end]:
            texts = [p] if isinstance(p, str) else [t for t, _ in self.units[p].protected]
            if isinstance(p, int):
                units.append(p)
            if self.detached:
                units += [self.detached[ord(c) - HOLE_BASE][0] for t in texts
                          for c in _HOLES.findall(t) if ord(c) - HOLE_BASE < len(self.detached)]
        return units

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
        units = self._units_in(first, len(self.parts))
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
        def fill(text: str) -> str:
            return self._fill(text, translations.__getitem__)

        return "".join(fill(p) if isinstance(p, str) else self.units[p].render(translations[p], fill)
                       for p in self.parts[first:])

    def render(self, translations: list[str]) -> str:
        """The output text (LF line endings) with ``translations[i]`` in unit i's place."""
        return "".join(text for text, _ in self._pieces(translations))

    def _pieces(self, translations: list[str]):
        """(text, input line it starts on or None) for each piece of output."""
        if len(translations) != len(self.units):
            raise ValueError(f"{len(translations)} translations for {len(self.units)} units")
        originals = {first: (end, source) for first, end, source in self.originals}

        def fill(text: str) -> str:
            return self._fill(text, translations.__getitem__)

        i, line = 0, None
        while i < len(self.parts):
            line = self.line_at.get(i, line)
            if i in originals:
                end, source = originals[i]
                units = self._units_in(i, end)
                if all(translations[u] == self.units[u].text for u in units):
                    yield fill(source), line
                    line = None if line is None else line + source.count("\n")
                    i = end
                    continue
            part = self.parts[i]
            if isinstance(part, str):
                yield fill(part), line
                line = None if line is None else line + part.count("\n")
            else:
                unit = self.units[part]
                yield unit.render(translations[part], fill), line
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
            "units": [_unit_json(u) for u in self.units],
            "eol": self.eol,
            "bom": self.bom,
            "originals": self.originals,
            "notes": self.notes,
        }
        if self.detached:
            data["detached"] = self.detached
        if self.line_ends:  # line origins matter only where endings are mixed
            data["line_ends"] = self.line_ends
            data["line_at"] = sorted(self.line_at.items())
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, data: str) -> Document:
        raw = json.loads(data)
        return cls(
            parts=raw["parts"],
            units=[Unit(*u[:6], protected=tuple(tuple(p) for p in u[6]) if len(u) > 6 else (),
                        html=u[7].get("html", "") if len(u) > 7 else "",
                        prefixes=tuple(u[7].get("prefixes", ())) if len(u) > 7 else ())
                   for u in raw["units"]],
            eol=raw["eol"],
            bom=raw["bom"],
            originals=[tuple(o) for o in raw.get("originals", [])],
            line_at=dict(raw.get("line_at", [])),
            line_ends=raw.get("line_ends", ""),
            notes=raw.get("notes", []),
            detached=[tuple(d) for d in raw.get("detached", [])],
        )


def line_end_codes(endings: list[str]) -> str:
    """The ``line_ends`` letters for a list of line endings."""
    return "".join(_EOL_CODES[e] for e in endings)


def _unit_json(u: Unit) -> list:
    out = [u.text, u.markdown, u.table_cell, u.json, u.lines, u.cue]
    extra = {k: v for k, v in (("html", u.html), ("prefixes", list(u.prefixes))) if v}
    if u.protected or extra:
        out.append([list(p) for p in u.protected])
    if extra:
        out.append(extra)
    return out


def has_letters(marked: str) -> bool:
    """Letters outside the markers: something to translate."""
    return any(ch.isalpha() for p in protect.split_markers(marked) if isinstance(p, str)
               for ch in p)


def _json_inside(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]
