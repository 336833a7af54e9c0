"""Plain text: one unit per paragraph, everything else copied as is.

Plain text is usually hard-wrapped (Project Gutenberg wraps at ~70 columns,
Chinese e-texts wrap mid-sentence at a fixed width). A line break inside a
paragraph is layout, not meaning, and NLLB translates a broken sentence
badly, so each paragraph's lines are joined into one unit. The output then
has one line per paragraph; blank lines and indentation are kept exactly.
"""

from __future__ import annotations

from pipeline.document import Document

IDEOGRAPHIC_SPACE = "\u3000"

# Scripts written without spaces between words: a line break between two of
# these characters joins with nothing. Hangul is deliberately absent: Korean
# puts spaces between words, so a wrapped Korean line joins with a space.
_NO_SPACE_RANGES = (
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x2FF0, 0x2FFF),  # ideographic description characters
    (0x3000, 0x303F),  # CJK symbols and punctuation (、。「」 etc.)
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x312F),  # Bopomofo
    (0x31A0, 0x31FF),  # Bopomofo extended, CJK strokes, Katakana extensions
    (0x3200, 0x33FF),  # enclosed CJK letters, CJK compatibility
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE30, 0xFE6F),  # CJK compatibility forms, small form variants (﹔)
    (0xFF00, 0xFFEF),  # halfwidth and fullwidth forms (，！？（）)
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)


def is_cjk(ch: str) -> bool:
    """True for a character of a script written without spaces (Han, Kana,
    CJK punctuation and full-width forms)."""
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _NO_SPACE_RANGES)


def join_lines(lines: list[str]) -> str:
    """Join wrapped lines into one line: with a single space, or with nothing
    when the characters on both sides of the break are CJK.

    Whitespace around each break is dropped (it was wrapping, not content);
    the first line's leading and the last line's trailing whitespace stay.
    """
    out = ""
    for line in lines:
        if not out:
            out = line
            continue
        out = out.rstrip()
        line = line.lstrip()
        if not out or not line:
            out += line
        elif is_cjk(out[-1]) and is_cjk(line[0]):
            out += line
        else:
            out += " " + line
    return out


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


def add_paragraph(doc: Document, lines: list[str]) -> None:
    """Add one paragraph (lines with their newlines) to ``doc``: its
    indentation and final newline literal, its lines joined into one unit.

    A paragraph with nothing to translate (no letters: rules, numbers,
    ornaments) is copied verbatim, line breaks included.
    """
    body = [line.rstrip("\n") for line in lines]
    if not any(ch.isalpha() for line in body for ch in line):
        doc.add_literal("".join(lines))
        return
    joined = join_lines(body)
    doc.add_unit(joined)  # indentation and trailing spaces become literals
    if lines[-1].endswith("\n"):
        doc.add_literal("\n")


def parse_text(text: str) -> Document:
    """Parse plain text (NFC, LF line endings, no BOM) into a Document.

    A paragraph is a run of non-blank lines; its lines become one unit, its
    indentation a literal prefix. Blank lines are copied exactly. A line
    indented with an ideographic space (U+3000) also starts a paragraph:
    Chinese and Japanese texts mark paragraphs and verse lines that way,
    often with no blank line between them, while their wrapped continuation
    lines are never indented.
    """
    doc = Document()
    paragraph: list[str] = []
    for line in split_lines(text):
        if is_blank(line):
            if paragraph:
                add_paragraph(doc, paragraph)
                paragraph = []
            doc.add_literal(line)
            continue
        if paragraph and line.lstrip(" \t").startswith(IDEOGRAPHIC_SPACE):
            add_paragraph(doc, paragraph)
            paragraph = []
        paragraph.append(line)
    if paragraph:
        add_paragraph(doc, paragraph)
    return doc
