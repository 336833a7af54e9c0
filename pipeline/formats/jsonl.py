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

from pipeline.document import Document
from pipeline.errors import InvalidInput

OUTPUT_KEY = "translation"


def parse_jsonl(text: str, field: str) -> Document:
    doc = Document()
    lines = text.split("\n")
    if text.endswith("\n"):
        lines = lines[:-1]  # the empty string after the final newline
    skipped: list[int] = []
    for number, line in enumerate(lines, start=1):
        end = "\n" if number < len(lines) or text.endswith("\n") else ""
        doc.starts_line(number - 1)
        if not line.strip():
            doc.add_literal(line + end)
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise InvalidInput(f"line {number} is not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise InvalidInput(f"line {number} is not a JSON object")
        value = record.get(field)
        if value is None:
            skipped.append(number)
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
    records = sum(1 for line in lines if line.strip())
    if skipped and len(skipped) == records:
        raise InvalidInput(f"no line has a field {field!r} (is --jsonl {field} the right field?)")
    if skipped:
        doc.notes.append(
            f"{len(skipped)} JSON Lines record(s) with {field!r} null or missing were copied "
            f"untranslated: line(s) {_numbers(skipped)}")
    return doc


def _numbers(numbers: list[int], most: int = 20) -> str:
    shown = ", ".join(str(n) for n in numbers[:most])
    return shown + (f" and {len(numbers) - most} more" if len(numbers) > most else "")
