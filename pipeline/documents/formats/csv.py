"""CSV and TSV: the cells of the columns asked for translated, every other byte kept.

``--columns`` names the columns by the header row's cells (``text,notes``).
A list of numbers that are not header names (``2,3``) gives 1-based
indexes instead, for a file without a header row: then every row is data,
the first included.

Dialects:

- ``csv``: RFC 4180 quoting (a cell that starts with ``"`` runs to the next
  lone ``"``, ``""`` inside it is a quote, and it may span lines: a cell can
  hold paragraphs). The delimiter is ``--delimiter``'s, or the one of ``,``
  ``;`` tab ``|`` that the first line has most of outside quotes (``,`` if
  none).
- ``tsv`` (``.tsv``, ``.tab``): the IANA format: one record per line, cells
  between tabs, no quoting (a ``"`` is text). A translation's tabs and line
  breaks become spaces. A tab-separated file with CSV quoting is
  ``--format csv`` (the tab is detected).

Line endings are the file's (mixed ones kept line by line). Each record
keeps its cells' bytes and their quoting; a translated cell keeps its
quotes, and a bare one gets them only when its translation needs them (it
holds the delimiter, a quote or a line break). Paragraphs in a cell (text
up to a blank line) are translated one by one, their blank lines kept; the
line breaks inside one paragraph become spaces, as in JSON Lines.

Without ``in_place`` the translations go in new cells at the end of each
record (rows shorter than the header are padded first, so the columns line
up), named ``<column>_<tgt>`` in the header row; with it they replace the
cells themselves.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from pipeline.documents.document import Document
from pipeline.errors import InvalidInput
from pipeline.documents.formats.linebreaks import join_lines

DELIMITERS = (",", "\t", ";", "|")
_PARAGRAPHS = re.compile(r"(\n[ \t\r]*\n\s*)")


def sniff_delimiter(first_line: str) -> str:
    """The candidate the line has most of outside quoted cells (``,`` first on a tie)."""
    bare = re.sub(r'"(?:[^"]|"")*"', "", first_line)
    counts = [(bare.count(d), -k) for k, d in enumerate(DELIMITERS)]
    best = max(counts)
    return DELIMITERS[-best[1]] if best[0] else ","


@dataclass
class TableState:
    """What the first record says, for every slice of the file (stored in
    preprocess's cursor, so a resumed job reads on with the same answers)."""

    delimiter: str = ""
    indexes: list[int] = field(default_factory=list)  # the columns, 0-based
    header: bool = True  # the first record names the columns
    width: int = 0  # cells in the first record
    records: int = 0  # records read so far
    cells: int = 0  # cells with something to translate

    def to_dict(self) -> dict:
        return asdict(self)


def parse_table(text: str, fmt: str, options) -> Document:
    table = TableParser(fmt, options)
    doc = table.parse(text)
    table.finish()
    return doc


class TableParser:
    """Parses a table's slices in order (each whole records)."""

    def __init__(self, fmt: str, options, state: dict | None = None):
        self.fmt, self.options = fmt, options
        self.state = TableState(**(state or {"delimiter": options.delimiter}))
        self.names = [c.strip() for c in options.columns.split(",")] if options.columns else []

    def cut_rule(self) -> RecordEnds | None:
        """Where a slice may end: after a whole record (``formats.slices``)."""
        return RecordEnds(self.state.delimiter) if self.fmt == "csv" else None

    def parse(self, text: str, first_line: int = 0) -> Document:
        state, doc = self.state, Document()
        if not state.delimiter:
            state.delimiter = "\t" if self.fmt == "tsv" else sniff_delimiter(
                text[: text.find("\n") + 1 or len(text)])
        line = 0
        for cells, term, end in _records(text, state.delimiter, self.fmt == "csv",
                                         first_line):
            doc.starts_line(line)
            line += text.count("\n", cells[0][0], end)
            if state.records == 0:
                self._columns(text, cells)
            state.records += 1
            self._record(doc, text, cells, term, end, header=state.header and state.records == 1)
        return doc

    def _columns(self, text: str, cells: list) -> None:
        state = self.state
        state.width = len(cells)
        names = [_value(text, cell).strip() for cell in cells]
        if all(n.isdigit() and int(n) > 0 for n in self.names) and not any(
                n in names for n in self.names):
            state.header = False
            state.indexes = [int(n) - 1 for n in self.names]
            return
        missing = [n for n in self.names if n not in names]
        if missing:
            shown = ", ".join(repr(n) for n in names[:20]) + (" ..." if len(names) > 20 else "")
            raise InvalidInput(f"no column {missing[0]!r} in the header row ({shown}); "
                               "--columns takes header names, or 1-based numbers for a "
                               "file without a header")
        state.indexes = [names.index(n) for n in self.names]

    def _record(self, doc: Document, text: str, cells: list, term: int, end: int, *,
                header: bool) -> None:
        state = self.state
        blank = len(cells) == 1 and cells[0][0] == cells[0][1]
        if blank or self.options.in_place:
            pos = cells[0][0]
            if not blank and not header:
                for k in sorted(state.indexes):
                    if k < len(cells):
                        start, stop, quoted = cells[k]
                        doc.add_literal(text[pos:start])
                        self._cell(doc, text, cells[k])
                        pos = stop
            doc.add_literal(text[pos:end])
            return
        d = state.delimiter
        doc.add_literal(text[cells[0][0]:term] + d * max(state.width - len(cells), 0))
        for k in state.indexes:
            doc.add_literal(d)
            if header:
                name = f"{_value(text, cells[k]).strip()}_{self.options.tgt_lang}"
                doc.add_literal(_quoted(name, d) if cells[k][2] or _needs_quotes(name, d)
                                else name)
            elif k < len(cells):
                self._cell(doc, text, cells[k])
        doc.add_literal(text[term:end])

    def _cell(self, doc: Document, text: str, cell: tuple[int, int, bool]) -> None:
        start, stop, quoted = cell
        raw = text[start:stop]
        if quoted and not raw.endswith('"'):
            doc.add_literal(raw)  # text after the closing quote: keep the cell as it is
            return
        value = _value(text, cell)
        if not any(ch.isalpha() for ch in value):
            doc.add_literal(raw)
            return
        self.state.cells += 1
        first = doc.begin_original()  # a cell that comes back unchanged is written as it was
        if self.fmt == "tsv":
            doc.add_unit(value, cue="tsv")
        elif not quoted and value == value.strip():
            doc.add_unit(value, cue="csv" + self.state.delimiter)
        else:
            # Quoted, or bare with spaces around it that must stay inside
            # the quotes its translation may need.
            doc.add_literal('"')
            self._paragraphs(doc, value, "csv")
            doc.add_literal('"')
        doc.end_original(first, raw)

    @staticmethod
    def _paragraphs(doc: Document, value: str, cue: str) -> None:
        for k, piece in enumerate(_PARAGRAPHS.split(value)):
            if k % 2 or not any(ch.isalpha() for ch in piece):
                doc.add_literal(piece.replace('"', '""'))
                continue
            stripped = piece.strip()
            head = piece[: piece.index(stripped[0])]
            doc.add_literal(head)
            doc.add_unit(join_lines(stripped.split("\n")), cue=cue,
                         literal=lambda t: t.replace('"', '""'))
            doc.add_literal(piece[len(head) + len(stripped):])

    def to_dict(self) -> dict:
        return self.state.to_dict()

    def finish(self) -> list[str]:
        if not self.state.cells:
            where = "columns" if len(self.names) > 1 else "column"
            raise InvalidInput(f"nothing to translate in {where} {', '.join(self.names)}")
        return []


def _value(text: str, cell: tuple[int, int, bool]) -> str:
    start, stop, quoted = cell
    if not quoted:
        return text[start:stop]
    close = text.rfind('"', start + 1, stop)
    return text[start + 1 : close].replace('""', '"')


def _needs_quotes(text: str, delimiter: str) -> bool:
    return any(c in text for c in (delimiter, '"', "\n"))


def _quoted(text: str, delimiter: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _records(text: str, delimiter: str, quoting: bool, first_line: int):
    """(cells, where its line break starts, where the record ends) for each
    record of ``text``; a cell is (start, stop, quoted), its raw span."""
    bare = re.compile(f"[^{re.escape(delimiter)}\n]*")
    pos, n = 0, len(text)
    while pos < n:
        cells = []
        while True:
            start = pos
            if quoting and pos < n and text[pos] == '"':
                i = pos + 1
                while True:
                    j = text.find('"', i)
                    if j < 0:
                        line = first_line + text.count("\n", 0, start) + 1
                        raise InvalidInput(f"line {line}: a quoted cell is never closed "
                                           "(a lone '\"' opens one; double it inside a cell)")
                    if text.startswith('"', j + 1):
                        i = j + 2
                        continue
                    break
                pos = bare.match(text, j + 1).end()
                cells.append((start, pos, True))
            else:
                pos = bare.match(text, pos).end()
                cells.append((start, pos, False))
            if pos < n and text[pos] == delimiter:
                pos += 1
                continue
            break
        end = pos + 1 if pos < n else pos
        yield cells, pos, end
        pos = end


class RecordEnds:
    """A slice's cut rule for CSV: a line may start a slice only where a
    record starts, i.e. not inside a quoted cell. It sees every line
    (``observe``), as the parser would read it."""

    def __init__(self, delimiter: str = ""):
        self.delimiter, self.inside, self.last_starts = delimiter, False, True

    def observe(self, line: str) -> None:
        if not self.delimiter:
            self.delimiter = sniff_delimiter(line)
        self.last_starts = not self.inside
        if '"' not in line:
            return
        inside, at_start, i, n = self.inside, not self.inside, 0, len(line)
        while i < n:
            c = line[i]
            if inside:
                if c == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        i += 1
                    else:
                        inside = False
            elif c == '"' and at_start:
                inside = True
            at_start = not inside and c in (self.delimiter, "\n")
            i += 1
        self.inside = inside

    def __call__(self, before: str, line: str, after: str | None) -> bool:
        return self.last_starts
