"""The skeleton of a document: literal text with holes that get translations.

Every input format is parsed into a :class:`Document`: a list of *parts*, each
either a literal string that is copied to the output byte for byte (Markdown
markup, code blocks, blank lines, subtitle timings) or the index of a
:class:`Unit`, a run of prose that is translated. Postprocess fills each hole
with the unit's translation, so the output keeps the input's shape by
construction rather than by reconstruction.

The skeleton is stored as JSON in the job's artifacts, so postprocess never
needs the input file again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# Characters that start Markdown syntax anywhere in running text; Unit.render
# escapes each of them wherever it occurs (and "|" in table cells).
MARKDOWN_INLINE_ESCAPED = frozenset("\\`*_[]<>")
_MARKDOWN_ACTIVE = str.maketrans({c: "\\" + c for c in MARKDOWN_INLINE_ESCAPED})
# Text that starts a block (heading, list item, quote) at the start of a line.
_BLOCK_START = re.compile(r"^(#{1,6}|[-+=>]|\d{1,9}(?=[.)]))(?=\s|$|[.)])")


@dataclass(frozen=True)
class Unit:
    """A run of prose to translate.

    ``text`` never starts or ends with whitespace: the whitespace around a
    unit belongs to the neighbouring literal parts.
    ``markdown``: the translation is inserted into Markdown, so characters that
    would start markup are escaped. ``table_cell``: also escape ``|``.
    """

    text: str
    markdown: bool = False
    table_cell: bool = False
    json: bool = False  # inside a JSON string: escaped as JSON

    def render(self, translation: str) -> str:
        if self.json:
            return json.dumps(translation, ensure_ascii=False)[1:-1]
        out = " ".join(translation.split("\n")) if self.markdown else translation
        if self.markdown:
            out = out.translate(_MARKDOWN_ACTIVE)
            if self.table_cell:
                out = out.replace("|", "\\|")
            # A translation that begins like "- x", "# x" or "1. x" must not
            # turn its paragraph into a list or a heading.
            match = _BLOCK_START.match(out)
            if match:
                marker = match.group(1)
                if marker[0].isdigit():
                    out = marker + "\\" + out[len(marker):]
                else:
                    out = "\\" + out
        return out


@dataclass
class Document:
    """Literal parts and translatable units, plus how the file was encoded."""

    parts: list[str | int] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    eol: str = "\n"  # the input's dominant line ending, restored on output
    bom: bool = False  # the input started with a UTF-8 byte order mark

    def add_literal(self, text: str) -> None:
        if not text:
            return
        if self.parts and isinstance(self.parts[-1], str):
            self.parts[-1] += text
        else:
            self.parts.append(text)

    def add_json_string(self, value: str) -> None:
        """``value`` as the inside of a JSON string, its prose as a unit."""
        stripped = value.strip()
        if not any(ch.isalpha() for ch in stripped):
            self.add_literal(json.dumps(value, ensure_ascii=False)[1:-1])
            return
        start = value.index(stripped[0])
        self.add_literal(json.dumps(value[:start], ensure_ascii=False)[1:-1])
        self.parts.append(len(self.units))
        self.units.append(Unit(stripped, json=True))
        self.add_literal(json.dumps(value[start + len(stripped):], ensure_ascii=False)[1:-1])

    def add_unit(self, text: str, *, markdown: bool = False, table_cell: bool = False) -> None:
        """Add ``text`` as a unit; surrounding whitespace stays literal and
        text with nothing to translate (no letters) stays literal too."""
        stripped = text.strip()
        if not stripped or not any(ch.isalpha() for ch in stripped):
            self.add_literal(text)
            return
        start = text.index(stripped[0])
        self.add_literal(text[:start])
        self.parts.append(len(self.units))
        self.units.append(Unit(stripped, markdown=markdown, table_cell=table_cell))
        self.add_literal(text[start + len(stripped) :])

    def render(self, translations: list[str]) -> str:
        """The output text (LF line endings) with ``translations[i]`` in unit i's place."""
        if len(translations) != len(self.units):
            raise ValueError(f"{len(translations)} translations for {len(self.units)} units")
        return "".join(
            p if isinstance(p, str) else self.units[p].render(translations[p]) for p in self.parts
        )

    def encode(self, text: str) -> bytes:
        """Bytes of an output text in the input's line ending and BOM convention."""
        if self.eol != "\n":
            text = text.replace("\n", self.eol)
        return (b"\xef\xbb\xbf" if self.bom else b"") + text.encode("utf-8")

    def to_json(self) -> str:
        return json.dumps(
            {
                "parts": self.parts,
                "units": [[u.text, u.markdown, u.table_cell, u.json] for u in self.units],
                "eol": self.eol,
                "bom": self.bom,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, data: str) -> Document:
        raw = json.loads(data)
        return cls(
            parts=raw["parts"],
            units=[Unit(*u) for u in raw["units"]],
            eol=raw["eol"],
            bom=raw["bom"],
        )
