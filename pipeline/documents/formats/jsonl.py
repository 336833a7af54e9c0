"""JSON Lines: one document per line, the text in one field.

The output line is the input object with every field kept and the
translation added under ``"translation"`` (after the existing fields). A
text of several paragraphs keeps its blank lines (``\n\n``) between their
translations. Blank lines are kept, and so is a line whose field is null or
missing: copied as it is, without a translation, and named in the
document's notes (a warning when the job runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pipeline.documents.document import Document
from pipeline.errors import InvalidInput

OUTPUT_KEY = "translation"
_SHOWN = 20  # skipped line numbers a note names


def parse_jsonl(text: str, field: str) -> Document:
    doc = Document()
    tally = RecordTally()
    add_records(doc, text, field, tally)
    doc.notes += tally.finish(field)
    return doc


@dataclass
class RecordTally:
    """Records seen and skipped (field null or missing) so far, over every
    slice of a file (``pipeline.documents.formats.slices``): what the note and the
    check at the end need, in bounded space."""

    records: int = 0
    skipped: int = 0
    skipped_lines: list[int] = field(default_factory=list)  # the first _SHOWN of them

    def skip(self, number: int) -> None:
        self.skipped += 1
        if len(self.skipped_lines) < _SHOWN:
            self.skipped_lines.append(number)

    def finish(self, field: str) -> list[str]:
        """The notes for the whole file; InvalidInput if no record has ``field``."""
        if self.skipped and self.skipped == self.records:
            raise InvalidInput(
                f"no line has a field {field!r} (is --jsonl {field} the right field?)")
        if not self.skipped:
            return []
        shown = ", ".join(str(n) for n in self.skipped_lines)
        more = self.skipped - len(self.skipped_lines)
        return [f"{self.skipped} JSON Lines record(s) with {field!r} null or missing were "
                f"copied untranslated: line(s) {shown}"
                + (f" and {more} more" if more > 0 else "")]


def add_records(doc: Document, text: str, field: str, tally: RecordTally, *,
                first_line: int = 0) -> None:
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
            raise InvalidInput(
                f"line {number}: field {field!r} is a {type(value).__name__}, not a string")
        if OUTPUT_KEY in record:
            raise InvalidInput(f"line {number} already has a {OUTPUT_KEY!r} field")
        head = json.dumps(record, ensure_ascii=False)[:-1]
        doc.add_literal(head + (", " if record else "") + json.dumps(OUTPUT_KEY) + ': "')
        doc.add_json_string(value)
        doc.add_literal('"}' + end)
