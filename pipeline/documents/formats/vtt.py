"""WebVTT (.vtt) subtitles: cue text translated, everything else literal.

A file starts with ``WEBVTT`` (optionally text after it, and header lines up
to the first blank line), then blocks separated by blank lines: ``NOTE``
comments, ``STYLE`` and ``REGION`` definitions, and cues: an optional
identifier line, a timing line with its cue settings (``00:01.000 -->
00:04.000 position:50% align:middle line:84%``) and text lines. All of that
is copied byte for byte except cue text, which keeps its line count, tags
(``<i>``, ``<c.yellow>``, ``<v Alba>``, karaoke timestamps ``<00:17.500>``)
and dialogue dashes (see :mod:`pipeline.documents.formats.cues`). Character
references (``&amp;``) in cue text are read as the characters they stand
for and a translation's ``& < >`` are escaped again.

The layout rules follow the W3C WebVTT parser: a block is a cue when its
first or second line holds ``-->``, and a ``-->`` further down ends the cue's
text and starts the next cue. One lenience: a line of only spaces counts as
blank (streaming exports pad with them).
"""

from __future__ import annotations

import re

from pipeline.documents.document import Document
from pipeline.errors import InvalidInput
from pipeline.documents.formats.cues import add_cue_text
from pipeline.documents.formats.text import is_blank, split_lines

_SIGNATURE = re.compile(r"WEBVTT(?:[ \t].*)?\n?\Z")
_LITERAL_BLOCK = re.compile(r"(?:NOTE|STYLE|REGION)(?:[ \t].*)?\n?\Z")
_ARROW = "-->"


def parse_vtt(text: str, *, continued: bool = False) -> Document:
    """Parse WebVTT text (LF line endings) into a Document.

    Raises InvalidInput when the file does not start with the ``WEBVTT``
    signature. ``continued``: the text is a later slice of the file
    (``pipeline.documents.formats.slices``), blocks after a blank line, without the
    signature and header.
    """
    doc = Document()
    if text.startswith("\ufeff"):
        text, doc.bom = text[1:], True
    lines = split_lines(text)
    if continued:
        i = 0
    elif not lines or not _SIGNATURE.match(lines[0]):
        found = lines[0].rstrip("\n")[:40] if lines else ""
        raise InvalidInput(
            f"not a WebVTT (.vtt) file: line 1 should start with 'WEBVTT', not {found!r}")
    else:
        i = _block_end(lines, 0)
        doc.add_literal("".join(lines[:i]))  # the signature line and the header
    while i < len(lines):
        doc.starts_line(i)
        if is_blank(lines[i]):
            doc.add_literal(lines[i])
            i += 1
            continue
        end = _block_end(lines, i)
        block = lines[i:end]
        timing = next((k for k in (0, 1) if k < len(block) and _ARROW in block[k]), None)
        if _LITERAL_BLOCK.match(block[0]) or timing is None:
            doc.add_literal("".join(block))  # NOTE, STYLE, REGION, or ignored by players
            i = end
            continue
        doc.add_literal("".join(block[: timing + 1]))  # identifier and timing line
        first = i + timing + 1
        stop = next((k for k in range(first, end) if _ARROW in lines[k]), end)
        if first < stop:
            add_cue_text(doc, lines[first:stop], first, "vtt")
        i = stop
    return doc


def _block_end(lines: list[str], start: int) -> int:
    """The index of the first blank line at or after ``start``."""
    end = start
    while end < len(lines) and not is_blank(lines[end]):
        end += 1
    return end
