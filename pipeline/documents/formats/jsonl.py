"""JSON Lines: one document per line, the text in one field.

Each output line is its input line with one change spliced into the line's
own text, every other byte as it was (numbers such as ``1e5`` and ``1.10``,
``\\u00e9`` escapes, duplicate keys, spacing): the translation added under
``"translation"`` after the last field (with the line's own separators), or,
``in_place``, the field's value replaced where it stands. Where a key is
repeated, the last one is the field, as ``json.loads`` reads it. A text of
several paragraphs keeps its blank lines (``\\n\\n``) between their
translations. Blank lines are kept, and so is a line whose field is null,
missing or not a string (a number, an object, a list): copied as it is,
without a translation, and named with its line number (and the value's type)
in the document's notes (a warning when the job runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from json.decoder import scanstring

from pipeline.documents.document import Document
from pipeline.errors import InvalidInput

OUTPUT_KEY = "translation"
_SHOWN = 20  # skipped line numbers a note names
_DECODER = json.JSONDecoder()
_SPACE = " \t\n\r"


def parse_jsonl(text: str, field: str, *, in_place: bool = False) -> Document:
    doc = Document()
    tally = RecordTally()
    add_records(doc, text, field, tally, in_place=in_place)
    doc.notes += tally.finish(field)
    return doc


@dataclass
class RecordTally:
    """Records seen and skipped (field null or missing, or not a string) so
    far, over every slice of a file (``pipeline.documents.formats.slices``):
    what the notes and the check at the end need, in bounded space."""

    records: int = 0
    skipped: int = 0
    skipped_lines: list[int] = field(default_factory=list)  # the first _SHOWN of them
    others: int = 0  # field of another type than string or null
    other_lines: list[list] = field(default_factory=list)  # [line, type], the first _SHOWN

    def skip(self, number: int) -> None:
        self.skipped += 1
        if len(self.skipped_lines) < _SHOWN:
            self.skipped_lines.append(number)

    def other(self, number: int, kind: str) -> None:
        self.others += 1
        if len(self.other_lines) < _SHOWN:
            self.other_lines.append([number, kind])

    def finish(self, field: str) -> list[str]:
        """The notes for the whole file; InvalidInput if no record has
        ``field`` as a string."""
        if self.records and self.skipped + self.others == self.records:
            if self.others:
                raise InvalidInput(f"no line has a string in field {field!r} (line "
                                   f"{self.other_lines[0][0]}: a {self.other_lines[0][1]})")
            raise InvalidInput(
                f"no line has a field {field!r} (is --jsonl {field} the right field?)")
        notes = []
        if self.skipped:
            shown = ", ".join(str(n) for n in self.skipped_lines)
            more = self.skipped - len(self.skipped_lines)
            notes.append(f"{self.skipped} JSON Lines record(s) with {field!r} null or missing "
                         f"were copied untranslated: line(s) {shown}"
                         + (f" and {more} more" if more > 0 else ""))
        if self.others:
            shown = ", ".join(f"{n} ({kind})" for n, kind in self.other_lines)
            more = self.others - len(self.other_lines)
            notes.append(f"{self.others} JSON Lines record(s) with {field!r} not a string were "
                         f"copied untranslated: line(s) {shown}"
                         + (f" and {more} more" if more > 0 else ""))
        return notes


_TYPE_NAMES = {int: "number", float: "number", bool: "boolean", dict: "object", list: "array"}


def add_records(doc: Document, text: str, field: str, tally: RecordTally, *,
                first_line: int = 0, in_place: bool = False) -> None:
    """Add the records of ``text`` (whole lines; the first is line
    ``first_line`` of the file, 0-based) to ``doc``, counting them in
    ``tally``."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines = lines[:-1]  # the empty string after the final newline
    for number, line in enumerate(lines, start=first_line + 1):
        end = "\n" if number < first_line + len(lines) or text.endswith("\n") else ""
        doc.starts_line(number - 1 - first_line)
        if not line.strip():
            doc.add_literal(line + end)
            continue
        tally.records += 1
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise InvalidInput(f"line {number} is not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise InvalidInput(f"line {number} is not a JSON object")
        value = record.get(field)
        if value is None:
            tally.skip(number)
            doc.add_literal(line + end)
            continue
        if not isinstance(value, str):
            tally.other(number, _TYPE_NAMES.get(type(value), type(value).__name__))
            doc.add_literal(line + end)
            continue
        if not in_place and OUTPUT_KEY in record:
            raise InvalidInput(f"line {number} already has a {OUTPUT_KEY!r} field "
                               "(give --in-place to replace the field itself)")
        span = field_span(line, field)
        if in_place:
            doc.add_literal(line[: span.value_start] + '"')
            doc.add_json_string(value, raw=line[span.value_start + 1 : span.value_end - 1])
            doc.add_literal('"' + line[span.value_end :] + end)
            continue
        doc.add_literal(line[: span.last_end] + span.comma + json.dumps(OUTPUT_KEY)
                        + span.colon + '"')
        doc.add_json_string(value, raw=line[span.value_start + 1 : span.value_end - 1])
        doc.add_literal('"' + line[span.last_end :] + end)


@dataclass(frozen=True)
class FieldSpan:
    """Where things are in one line's text (offsets into it)."""

    value_start: int  # the field's value (its last occurrence), from its opening quote
    value_end: int  # just past its closing quote
    last_end: int  # just past the object's last value: where a new field goes
    comma: str  # how the line separates its fields (", " or ","), with the spaces it uses
    colon: str  # how it separates a key from its value (": " or ":")


def field_span(line: str, field: str) -> FieldSpan:
    """Scan a valid JSON object's top level (``line``) for ``field``: the
    line is known to parse, so this only measures it."""
    pos = _skip(line, 0)
    assert line[pos] == "{"
    pos = _skip(line, pos + 1)
    found, last_end, comma, colon = None, pos, ", ", ": "
    first = True
    while line[pos] != "}":
        key, after_key = scanstring(line, pos + 1)
        colon_at = _skip(line, after_key)
        value_at = _skip(line, colon_at + 1)
        if first:
            colon = line[after_key:value_at]
        _, value_end = _DECODER.raw_decode(line, value_at)
        if key == field:
            found = (value_at, value_end)
        last_end = value_end
        pos = _skip(line, value_end)
        if line[pos] == ",":
            after = _skip(line, pos + 1)
            if first:
                comma = line[value_end:after]
            pos = after
        first = False
    assert found is not None
    return FieldSpan(found[0], found[1], last_end, comma if "\n" not in comma else ", ", colon)


def _skip(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in _SPACE:
        pos += 1
    return pos
