"""Subtitle cue text (SubRip and WebVTT): lines, tags and speakers kept.

A cue's text is a few short lines, and three things in it are layout that
a player or a viewer relies on:

- tags: ``<i>``, ``<b>``, ``<u>``, ``<s>``, ``<font ...>``, ASS overrides
  (``{\\an8}``) and codes (``\\N``, ``\\h``); in WebVTT also ``<c.class>``,
  ``<v Name>``, ``<lang xx>``, ``<ruby>``/``<rt>`` and karaoke timestamps
  (``<00:17.500>``). Every tag is a literal part, so each cue has the same
  tags, in the same order and on the same lines, before and after;
- speaker turns: a line that starts with a dash ("- Hi." / "- Hello.") is
  another person speaking. The dash stays literal and the turn is
  translated on its own, so two speakers never merge into one line;
- the line count: prose wrapped over several lines (a sentence split in
  two) is one unit whose translation is wrapped again onto as many lines
  (``Unit.lines``), at balanced widths.

:func:`segments` is the one place that decides where units start and end.
Today a tag inside a sentence ends its unit, so "a <i>big</i> day" is
translated as three fragments with the tags between them; protected
placeholders would instead keep such tags inside one unit.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

from pipeline.document import SUBTITLE_TAGS, Document
from pipeline.formats.linebreaks import join_lines

# A dialogue dash at the start of a line, with the space after it: before a
# letter, an opening mark or a space ("-30 degrees" is not a turn).
_DASH = re.compile(r"[ \t]*[-‐‑–—―](?:[ \t]+|(?=[^\W\d_]|[¿¡\"'«“‘(\[]))")


def add_cue_text(doc: Document, lines: list[str], first: int, dialect: str) -> None:
    """Add a cue's text ``lines`` (with their newlines; the first is input
    line ``first``) to ``doc``. ``dialect`` is "srt" or "vtt"."""
    body = "".join(lines)
    ending = "\n" if body.endswith("\n") else ""
    body = body[: len(body) - len(ending)]
    doc.starts_line(first)
    start = doc.begin_original()
    for is_prose, text in segments(body, dialect):
        if is_prose:
            _add_prose(doc, text, dialect)
        else:
            doc.add_literal(text)
    doc.add_literal(ending)
    doc.end_original(start, body + ending)


def segments(body: str, dialect: str) -> Iterator[tuple[bool, str]]:
    """(is_prose, text) pieces of a cue's text, in order, joining to ``body``.

    Markup pieces are tags and dialogue dashes. A prose piece may span
    several lines; it never holds a tag, and never crosses into another
    speaker's turn.
    """
    at_line_start = True  # nothing but tags and spaces since the last line break
    pos = 0
    for m in SUBTITLE_TAGS[dialect].finditer(body):
        text = body[pos : m.start()]
        yield from _split_turns(text, at_line_start)
        yield False, m.group()
        if "\n" in text:
            at_line_start = not text.rsplit("\n", 1)[1].strip()
        else:
            at_line_start = at_line_start and not text.strip()
        pos = m.end()
    yield from _split_turns(body[pos:], at_line_start)


def _split_turns(text: str, at_line_start: bool) -> Iterator[tuple[bool, str]]:
    """Prose between two tags, with the dashes that open a line as markup."""
    run = ""
    for k, line in enumerate(text.split("\n")):
        if k:
            run += "\n"
        dash = _DASH.match(line) if (k or at_line_start) else None
        if dash:
            if run:
                yield True, run
            yield False, dash.group()
            run = line[dash.end() :]
        else:
            run += line
    if run:
        yield True, run


def _add_prose(doc: Document, text: str, dialect: str) -> None:
    """Units for a piece of prose: each run of lines with letters is one
    unit, wrapped again onto as many lines as it had. A line without
    letters ("♪", ">") keeps its place as a literal, and so do the
    whitespace and line breaks around a run."""
    run: list[str] = []
    for k, line in enumerate(text.split("\n")):
        letters = any(ch.isalpha() for ch in line)
        if k and run and letters:
            run.append(line)  # the run goes on over a line break
            continue
        if run:
            _add_run(doc, "\n".join(run), dialect)
            run = []
        if k:
            doc.add_literal("\n")
        if letters:
            run = [line]
        else:
            doc.add_literal(line)
    if run:
        _add_run(doc, "\n".join(run), dialect)


def _add_run(doc: Document, text: str, dialect: str) -> None:
    core = text.strip()
    lead = text[: text.index(core[0])]
    doc.add_literal(lead)
    lines = core.split("\n")
    joined = join_lines(lines)
    if dialect == "vtt":
        joined = html.unescape(joined)  # &amp; &lt; &gt; are characters to translate
    doc.add_unit(joined, lines=len(lines), cue=dialect)
    doc.add_literal(text[len(lead) + len(core) :])
