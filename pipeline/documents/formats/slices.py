"""A document in slices: where each format may be cut, and how a slice is parsed.

Preprocess reads a long input a slice at a time (about ``SLICE_LINES``
lines) and holds one slice's skeleton, never the whole document's. A slice
ends only where the format's parser is back in the state it starts in, so
parsing the slices one after another gives the same units in the same
order, and renders the same bytes, as parsing the whole text:

- ``lines`` and ``jsonl``: after any line;
- ``text``: where a paragraph surely ends: next to a blank line, or before
  a line indented with an ideographic space (U+3000);
- ``srt``: after a blank line, before a cue's number and timing line;
- ``vtt``: after a blank line, before a block; a later slice is parsed
  without the signature and header;
- ``tsv``: after any line; ``csv``: where a record starts (not inside a
  quoted cell: ``csv.RecordEnds`` sees every line);
- ``po`` is not cut (a catalogue is parsed whole: ``polib`` reads a text);
- ``parquet`` is not lines at all: its slices are batches of rows
  (``pipeline.documents.formats.parquet``);
- ``markdown`` is not cut: a list, a fence or a block quote may span any
  stretch of lines, and a link resolves against a definition anywhere in
  the file. It is one slice, the whole document. So is ``html``: an
  element, a comment or a ``<script>`` may span any stretch of lines.

A slice's skeleton numbers its lines from its own first line and keeps its
own line-break letters, so it renders alone. What spans slices is tallied
in bounded space (JSON Lines' skipped records) and reported at the end.
A text format's paragraph longer than a slice stays whole: a slice grows
until a place where it may end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

from pipeline.documents.document import Document
from pipeline.documents.formats import FormatOptions, parse_document
from pipeline.documents.formats.csv import RecordEnds, TableParser
from pipeline.documents.formats.jsonl import RecordTally, add_records
from pipeline.documents.formats.parquet import RowParser
from pipeline.documents.formats.srt import is_cue_start, parse_srt
from pipeline.documents.formats.text import IDEOGRAPHIC_SPACE, is_blank, parse_lines, parse_text
from pipeline.documents.formats.vtt import parse_vtt
from pipeline.documents.inputs import InputLine

SLICE_LINES = 2000  # lines per slice, at least, where the format allows a cut

# May a slice end before ``line``? (the line before it, it, the line after
# it or None). None: never.
CutRule = Callable[[str, str, "str | None"], bool]


def _anywhere(before: str, line: str, after: str | None) -> bool:
    return True


def _between_paragraphs(before: str, line: str, after: str | None) -> bool:
    return (is_blank(before) or is_blank(line)
            or line.lstrip(" \t").startswith(IDEOGRAPHIC_SPACE))


def _before_a_cue(before: str, line: str, after: str | None) -> bool:
    return is_blank(before) and is_cue_start(line, after)


def _before_a_block(before: str, line: str, after: str | None) -> bool:
    return is_blank(before) and not is_blank(line)


# A class is a rule with state: made afresh for each document, and shown
# every line (its ``observe``).
CUT_RULES: dict[str, CutRule | type | None] = {
    "lines": _anywhere, "jsonl": _anywhere, "text": _between_paragraphs,
    "srt": _before_a_cue, "vtt": _before_a_block, "markdown": None, "html": None,
    "tsv": _anywhere, "csv": RecordEnds, "po": None,
}


@dataclass(frozen=True)
class Slice:
    """Whole lines of the input, from one place a cut is allowed to the next."""

    text: str  # the lines, each with its "\n"
    ends: str  # the letters of their line breaks (Document.line_ends)
    first_line: int  # the number (0-based) of its first line in the file
    lines: int
    end_byte: int  # the input offset just past its last line


def slices(lines: Iterable[InputLine], fmt: str, *, first_line: int = 0,
           size: int = SLICE_LINES, cut: CutRule | None = None) -> Iterator[Slice]:
    """The input's lines (from line ``first_line`` on, which starts a slice)
    grouped into slices of at least ``size`` lines, cut where ``fmt`` allows
    (or ``cut``, a parser's own rule: ``SliceParser.cut_rule``)."""
    cut = cut or CUT_RULES[fmt]
    if isinstance(cut, type):
        cut = cut()
    observe = getattr(cut, "observe", None)
    held: list[InputLine] = []
    for line in lines:
        # Whether the slice may end before the last line held is known
        # once the line after it is read (SubRip looks one line ahead).
        if (cut is not None and len(held) > max(size, 1)
                and cut(held[-2].text, held[-1].text, line.text)):
            yield _slice(held[:-1], first_line)
            first_line += len(held) - 1
            held = held[-1:]
        held.append(line)
        if observe:
            observe(line.text)
    if held:
        yield _slice(held, first_line)


def _slice(lines: list[InputLine], first_line: int) -> Slice:
    return Slice("".join(line.text for line in lines), "".join(line.end for line in lines),
                 first_line, len(lines), lines[-1].end_byte)


class SliceParser:
    """Parses one document's slices, in order, into one Document each.

    ``tally``: what a parse of earlier slices left (``to_dict``), when a
    preprocess goes on from a stored slice. Format errors name the line
    in the whole file. ``target``: the language translated into.
    """

    def __init__(self, fmt: str, *, jsonl_field: str = "", tally: dict | None = None,
                 options: FormatOptions | None = None, target: str = ""):
        self.options = options or FormatOptions(jsonl_field=jsonl_field, tgt_lang=target)
        self.target = target or self.options.tgt_lang
        self.fmt, self.jsonl_field = fmt, self.options.jsonl_field
        self.table = TableParser(fmt, self.options, tally) if fmt in ("csv", "tsv") else None
        self.rows = RowParser(tally) if fmt == "parquet" else None
        plain = self.table is None and self.rows is None
        self.records = RecordTally(**(tally or {})) if plain else RecordTally()
        self.notes: list[str] = []

    def cut_rule(self) -> CutRule | None:
        """Where this document's slices may end, from where the parser is."""
        return self.table.cut_rule() if self.table else None

    def parse(self, piece: Slice) -> Document:
        if self.fmt == "jsonl":
            doc = Document()
            add_records(doc, piece.text, self.jsonl_field, self.records,
                        first_line=piece.first_line, in_place=self.options.in_place)
            return doc
        if self.table:
            return self.table.parse(piece.text, piece.first_line)
        if self.rows:
            return self.rows.parse(piece)
        first = piece.first_line == 0
        if self.fmt == "lines":
            return parse_lines(piece.text)
        if self.fmt == "text":
            return parse_text(piece.text)
        if self.fmt == "srt":
            return parse_srt(piece.text, first_line=piece.first_line)
        if self.fmt == "vtt":
            return parse_vtt(piece.text, continued=not first)
        # A format that is never cut (Markdown, HTML, gettext): its notes are the document's.
        doc = parse_document(piece.text, self.fmt, options=self.options, target=self.target)
        self.notes += doc.notes
        return doc

    def to_dict(self) -> dict:
        if self.rows:
            return self.rows.to_dict()
        return self.table.to_dict() if self.table else asdict(self.records)

    def finish(self) -> list[str]:
        """The document's notes, once every slice was parsed; InvalidInput
        where only the whole says the input is wrong (no JSON Lines record
        has the field)."""
        if self.table:
            return self.table.finish()
        if self.rows:
            return self.rows.finish(self.options.columns.split(","))
        return self.records.finish(self.jsonl_field) if self.fmt == "jsonl" else self.notes


def check_document(lines: Iterable[InputLine], fmt: str, *, jsonl_field: str = "",
                   options: FormatOptions | None = None) -> None:
    """Parse a document slice by slice and keep nothing: InvalidInput if
    its format cannot parse it (what submitting checks)."""
    parser = SliceParser(fmt, jsonl_field=jsonl_field, options=options)
    for piece in slices(lines, fmt, cut=parser.cut_rule()):
        parser.parse(piece)
    parser.finish()
