"""Plain text: one unit per paragraph, or one per line for aligned corpora.

Plain text is usually hard-wrapped (Project Gutenberg wraps at ~70 columns,
Chinese e-texts wrap mid-sentence at a fixed width). A line break inside a
paragraph is layout, not meaning, and NLLB translates a broken sentence
badly, so each paragraph's lines are joined into one unit. The output then
has one line per paragraph; blank lines and indentation are kept exactly.

Line-aligned text (``--format lines``: FLORES, a sentence-per-line corpus,
subtitles exported as text) is the other reading: every line is a unit and
line i of the output is the translation of line i.
"""

from __future__ import annotations

from pipeline.documents.document import Document
from pipeline.documents.formats.linebreaks import is_cjk, join_lines

__all__ = ["is_blank", "is_cjk", "join_lines", "parse_lines", "parse_text", "split_lines"]

IDEOGRAPHIC_SPACE = "\u3000"


def is_blank(line: str) -> bool:
    """A line of nothing but whitespace (U+3000 included) separates paragraphs."""
    return not line.strip()


def split_lines(text: str) -> list[str]:
    """Lines with their '\\n' kept, so joining them gives ``text`` back.

    Only LF breaks lines: str.splitlines would also break at form feeds,
    U+2028 and friends, which plain text carries as content.
    """
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])  # last line without a final newline
    return out


def add_paragraph(doc: Document, lines: list[str], first: int = 0) -> None:
    """Add one paragraph (lines with their newlines, starting at input line
    ``first``) to ``doc``: its indentation and final newline literal, its
    lines joined into one unit.

    A paragraph with nothing to translate (no letters: rules, numbers,
    ornaments) is copied verbatim, line breaks included.
    """
    doc.starts_line(first)
    body = [line.rstrip("\n") for line in lines]
    if not any(ch.isalpha() for line in body for ch in line):
        doc.add_literal("".join(lines))
        return
    start = doc.begin_original()
    doc.add_unit(join_lines(body))  # indentation and trailing spaces become literals
    if lines[-1].endswith("\n"):
        doc.starts_line(first + len(lines) - 1)
        doc.add_literal("\n")
    doc.end_original(start, "".join(lines))


def parse_text(text: str) -> Document:
    """Parse plain text (LF line endings, no BOM) into a Document.

    A paragraph is a run of non-blank lines; its lines become one unit, its
    indentation a literal prefix. Blank lines are copied exactly. A line
    indented with an ideographic space (U+3000) also starts a paragraph:
    Chinese and Japanese texts mark paragraphs and verse lines that way,
    often with no blank line between them, while their wrapped continuation
    lines are never indented.
    """
    doc = Document()
    paragraph: list[str] = []
    first = 0
    for number, line in enumerate(split_lines(text)):
        if is_blank(line):
            if paragraph:
                add_paragraph(doc, paragraph, first)
                paragraph = []
            doc.starts_line(number)
            doc.add_literal(line)
            continue
        if paragraph and line.lstrip(" \t").startswith(IDEOGRAPHIC_SPACE):
            add_paragraph(doc, paragraph, first)
            paragraph = []
        if not paragraph:
            first = number
        paragraph.append(line)
    if paragraph:
        add_paragraph(doc, paragraph, first)
    return doc


def parse_lines(text: str) -> Document:
    """Parse line-aligned text: every line with letters is one unit.

    The output has exactly the input's lines: a unit is rendered on one line
    whatever the model returns (``Unit.lines == 1``), even when the line was
    over the chunk limit and translated in several chunks, and empty or
    letterless lines are copied where they were.
    """
    doc = Document()
    for number, line in enumerate(split_lines(text)):
        doc.starts_line(number)
        body = line.rstrip("\n")
        start = doc.begin_original()
        doc.add_unit(body, lines=1)
        doc.add_literal(line[len(body):])
        doc.end_original(start, line)
    return doc
