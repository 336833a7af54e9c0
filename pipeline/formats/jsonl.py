"""JSON Lines: one document per line, the text in one field.

The output line is the input object with every field kept and the
translation added under ``"translation"`` (after the existing fields).
Blank lines are kept.
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
    for number, line in enumerate(lines, start=1):
        end = "\n" if number < len(lines) or text.endswith("\n") else ""
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
        if not isinstance(value, str):
            raise InvalidInput(f"line {number} has no string field {field!r}")
        if OUTPUT_KEY in record:
            raise InvalidInput(f"line {number} already has a {OUTPUT_KEY!r} field")
        head = json.dumps(record, ensure_ascii=False)[:-1]
        doc.add_literal(head + (", " if record else "") + json.dumps(OUTPUT_KEY) + ': "')
        doc.add_json_string(value)
        doc.add_literal('"}' + end)
    return doc
