"""SubRip (.srt) subtitles: cue text translated, everything else literal.

A cue is an optional number line, a timing line ("00:00:01,500 -->
00:00:04,500", possibly followed by X1:.. Y2:.. coordinates) and text lines
up to a blank line. Numbers, timings and blank lines are copied byte for
byte so players keep the timing. A cue's text keeps its line count, its
tags and its speakers' dashes (see :mod:`pipeline.documents.formats.cues`).
"""

from __future__ import annotations

import re

from pipeline.documents.document import Document
from pipeline.errors import InvalidInput
from pipeline.documents.formats.cues import add_cue_text
from pipeline.documents.formats.text import is_blank, split_lines

_TIME = r"\d{1,3}:\d{1,2}:\d{1,2}[,.:]\d{1,3}"
_TIMING = re.compile(rf"\s*{_TIME}\s*-->\s*{_TIME}(?:\s.*)?")
_NUMBER = re.compile(r"\s*\d+\s*")


def is_cue_start(line: str, following: str | None) -> bool:
    """``line`` (then ``following``) opens a cue: its timing line, or its
    number with the timing line after it."""
    return _is_timing(line) or (_is_number(line) and following is not None
                                and _is_timing(following))


def _is_timing(line: str) -> bool:
    return _TIMING.fullmatch(line.rstrip("\n")) is not None


def _is_number(line: str) -> bool:
    return _NUMBER.fullmatch(line.rstrip("\n")) is not None


def parse_srt(text: str, *, first_line: int = 0) -> Document:
    """Parse SubRip text (LF line endings) into a Document.

    Raises InvalidInput naming the line when a cue has no timing line where
    one is required, i.e. the file is not SRT. ``first_line``: the number
    (0-based) of the text's first line in the file, when it is a slice of
    it (``pipeline.documents.formats.slices``); messages count from there.
    """
    doc = Document()
    if text.startswith("\ufeff"):
        # Tolerate a BOM the caller left in; it is restored on output.
        text, doc.bom = text[1:], True
    lines = split_lines(text)
    i, in_cue, after_header = 0, False, False
    while i < len(lines):
        line = lines[i]
        doc.starts_line(i)
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
            where = f"line {first_line + i + (2 if _is_number(line) else 1)}"
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
        add_cue_text(doc, lines[start:i], start, "srt")
        after_header = False
    return doc
