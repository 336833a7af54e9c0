"""SubRip (.srt) subtitles: each cue's text is one unit, the rest literal.

A cue is an optional number line, a timing line ("00:00:01,500 -->
00:00:04,500", possibly followed by X1:.. Y2:.. coordinates) and text lines
up to a blank line. Numbers, timings and blank lines are copied byte for
byte so players keep the timing. A cue's text lines are joined into one unit
like a text paragraph (a subtitle line break is layout; a sentence is often
split across the two lines), and formatting tags that open or close the whole
cue (<i>, </i>, <font ...>, {\\an8}) stay literal around it, so the
translation keeps its italics and position.
"""

from __future__ import annotations

import re

from pipeline.document import Document
from pipeline.errors import InvalidInput
from pipeline.formats.text import is_blank, join_lines, split_lines

_TIME = r"\d{1,3}:\d{1,2}:\d{1,2}[,.:]\d{1,3}"
_TIMING = re.compile(rf"\s*{_TIME}\s*-->\s*{_TIME}(?:\s.*)?")
_NUMBER = re.compile(r"\s*\d+\s*")
# An HTML-like tag (a name starting with a letter, so "2<3,5>1" is text) or
# an ASS override block ("{\an8}"; "{normal text}" is shown, so it is text).
_TAG = r"(?:</?[A-Za-z][^<>\n]*>|\{\\[^{}\n]*\})"
_TAG_RE = re.compile(_TAG)
_LEADING = re.compile(rf"(?:\s*{_TAG})*\s*")
_TRAILING = re.compile(rf"\s*(?:{_TAG}\s*)*\Z")


def _is_timing(line: str) -> bool:
    return _TIMING.fullmatch(line.rstrip("\n")) is not None


def _is_number(line: str) -> bool:
    return _NUMBER.fullmatch(line.rstrip("\n")) is not None


def parse_srt(text: str) -> Document:
    """Parse SubRip text (LF line endings) into a Document.

    Raises InvalidInput naming the line when a cue has no timing line where
    one is required, i.e. the file is not SRT.
    """
    doc = Document()
    if text.startswith("\ufeff"):
        # Tolerate a BOM the caller left in; it is restored on output.
        text, doc.bom = text[1:], True
    lines = split_lines(text)
    i, in_cue, after_header = 0, False, False
    while i < len(lines):
        line = lines[i]
        if is_blank(line):
            doc.add_literal(line)
            i, after_header = i + 1, False
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if _is_timing(line) or (_is_number(line) and _is_timing(nxt)):
            # A cue header, with or without its number.
            header = 1 if _is_timing(line) else 2
            doc.add_literal("".join(lines[i : i + header]))
            i += header
            in_cue = after_header = True
            continue
        if not in_cue or (_is_number(line) and not after_header):
            # Text before any cue, or a cue number without its timing (a
            # number right under a timing line is the cue's text).
            where = f"line {i + 2}" if _is_number(line) else f"line {i + 1}"
            raise InvalidInput(
                f"not a SubRip (.srt) file: {where} should be a timing line like "
                f"'00:00:01,000 --> 00:00:02,000'"
            )
        # Cue text: up to the next blank line. Text after a blank line that
        # is not a new cue (some files have blank lines inside a cue) becomes
        # a block of its own rather than an error.
        start = i
        while i < len(lines) and not is_blank(lines[i]):
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if i > start and (_is_timing(lines[i]) or (_is_number(lines[i]) and _is_timing(nxt))):
                break  # the next cue follows without a blank line
            i += 1
        _add_cue_text(doc, lines[start:i])
        after_header = False
    return doc


def _add_cue_text(doc: Document, lines: list[str]) -> None:
    """One unit for a cue's text lines, with its outer tags literal."""
    body = "".join(lines)
    ending = "\n" if body.endswith("\n") else ""
    body = body[: len(body) - len(ending)]
    lead = _LEADING.match(body).end()
    trail = _TRAILING.search(body, lead).start()
    middle = body[lead:trail]
    if not any(ch.isalpha() for ch in _TAG_RE.sub("", middle)):
        doc.add_literal(body + ending)  # tags, numbers or symbols only: ♪, ...
        return
    doc.add_literal(body[:lead])
    doc.add_unit(join_lines(middle.split("\n")))
    doc.add_literal(body[trail:] + ending)
