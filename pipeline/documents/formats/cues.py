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
A tag at the start or end of a line is a literal part; a tag *inside* a
line ("a <i>big</i> day") stays inside its sentence as a protected piece
(``pipeline.documents.protect``), so the sentence is translated whole and the tag put
back where the translation has it, its pair still balanced. The other end
of such a tag's pair comes inside too, even from a line's edge ("Hello
<i>world</i>"), so a pair is never half literal, half moved. Karaoke
timestamps, ruby text and line codes (``\\N``) stay literal: their place
between the words is their meaning.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

from pipeline.documents.document import SUBTITLE_TAGS, Document
from pipeline.documents.formats.linebreaks import join_lines
from pipeline.documents.protect import Protected

# A dialogue dash at the start of a line, with the space after it: before a
# letter, an opening mark or a space ("-30 degrees" is not a turn).
_DASH = re.compile(r"[ \t]*[-‐‑–—―](?:[ \t]+|(?=[^\W\d_]|[¿¡\"'«“‘(\[]))")
# Tags that may stay inside a sentence, by dialect: (name, is_close) of an
# HTML-like tag; ASS override blocks in SubRip.
_INLINE_NAMES = {"srt": frozenset({"i", "b", "u", "s", "font"}),
                 "vtt": frozenset({"i", "b", "u", "c", "lang", "v"})}
_HTML_TAG = re.compile(r"<(/?)([A-Za-z]+)")
_ASS_TOGGLE = re.compile(r"\{\\([ibus])([01])\}")
# Sentinels for inline tags while a cue's lines are split and joined: one
# character of Supplementary Private Use Area-B per tag, never a letter,
# a space or CJK, so line logic treats it as punctuation.
_SENTINEL = 0x100000


def add_cue_text(doc: Document, lines: list[str], first: int, dialect: str) -> None:
    """Add a cue's text ``lines`` (with their newlines; the first is input
    line ``first``) to ``doc``. ``dialect`` is "srt" or "vtt"."""
    body = "".join(lines)
    ending = "\n" if body.endswith("\n") else ""
    body = body[: len(body) - len(ending)]
    doc.starts_line(first)
    start = doc.begin_original()
    tags: list[Protected] = []
    prose = ""
    for kind, text in segments(body, dialect):
        if kind == "inline":
            prose += chr(_SENTINEL + len(tags))
            tags.append(_protected(text, dialect))
        elif kind == "prose":
            prose += text
        else:
            _add_prose(doc, prose, dialect, tags)
            prose = ""
            doc.add_literal(text)
    _add_prose(doc, prose, dialect, tags)
    doc.add_literal(ending)
    doc.end_original(start, body + ending)


def segments(body: str, dialect: str) -> Iterator[tuple[str, str]]:
    """(kind, text) pieces of a cue's text, in order, joining to ``body``.

    Kinds: "prose"; "inline", a tag inside a line, which stays inside its
    sentence; "markup", tags at a line's edge and dialogue dashes. A prose
    piece may span several lines; it never crosses into another speaker's
    turn.
    """
    at_line_start = True  # nothing but tags and spaces since the last line break
    pos = 0
    inline = _inline_tags(body, dialect)
    for m in SUBTITLE_TAGS[dialect].finditer(body):
        text = body[pos : m.start()]
        for is_prose, piece in _split_turns(text, at_line_start):
            yield ("prose" if is_prose else "markup"), piece
        yield ("inline" if m.start() in inline else "markup"), m.group()
        if "\n" in text:
            at_line_start = not text.rsplit("\n", 1)[1].strip()
        else:
            at_line_start = at_line_start and not text.strip()
        pos = m.end()
    for is_prose, piece in _split_turns(body[pos:], at_line_start):
        yield ("prose" if is_prose else "markup"), piece


def _inline_tags(body: str, dialect: str) -> set[int]:
    """Start offsets of the tags that stay inside their sentence: a tag of a
    kind that may (``_INLINE_NAMES``, ASS blocks in SubRip) with text before
    it and after it on its line, and the other end of such a tag's pair."""
    tags = SUBTITLE_TAGS[dialect]
    found = []  # (start, key, role, inside a line)
    for m in tags.finditer(body):
        key, role = _pair_of(m.group(), dialect)
        if key is None:
            continue
        line_start = body.rfind("\n", 0, m.start()) + 1
        line_end = body.find("\n", m.end())
        before = tags.sub("", body[line_start : m.start()])
        dash = _DASH.match(before)
        before = before[dash.end():] if dash else before
        after = tags.sub("", body[m.end() : len(body) if line_end < 0 else line_end])
        found.append((m.start(), key, role, bool(before.strip() and after.strip())))
    inside = {start for start, _, _, inner in found if inner}
    open_by_key: dict[str, list[tuple[int, bool]]] = {}
    for start, key, role, inner in found:
        if role == "open":
            open_by_key.setdefault(key, []).append((start, inner))
        elif role == "close" and open_by_key.get(key):
            partner, partner_inner = open_by_key[key].pop()
            if inner or partner_inner:
                inside |= {start, partner}
    return inside


def _pair_of(tag: str, dialect: str) -> tuple[str | None, str]:
    """(pairing key, role) of a tag that may stay inline; key None if it may not."""
    html_tag = _HTML_TAG.match(tag)
    if html_tag:
        name = html_tag.group(2).lower()
        if name not in _INLINE_NAMES[dialect]:
            return None, ""
        return name, "close" if html_tag.group(1) else ("" if tag.endswith("/>") else "open")
    if dialect == "srt" and tag.startswith("{"):
        toggle = _ASS_TOGGLE.fullmatch(tag)
        if toggle:
            return "ass-" + toggle.group(1), "open" if toggle.group(2) == "1" else "close"
        return "ass", ""
    return None, ""


def _protected(tag: str, dialect: str) -> Protected:
    key, role = _pair_of(tag, dialect)
    return Protected(tag, role, key or "")


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


def _add_prose(doc: Document, text: str, dialect: str, tags: list[Protected]) -> None:
    """Units for a piece of prose: each run of lines with letters is one
    unit, wrapped again onto as many lines as it had. A line without
    letters ("♪", ">") keeps its place as a literal, and so do the
    whitespace and line breaks around a run. ``tags``: what each sentinel
    in ``text`` stands for."""
    run: list[str] = []
    for k, line in enumerate(text.split("\n")):
        letters = any(ch.isalpha() for ch in line)
        if k and run and letters:
            run.append(line)  # the run goes on over a line break
            continue
        if run:
            _add_run(doc, "\n".join(run), dialect, tags)
            run = []
        if k:
            doc.add_literal("\n")
        if letters:
            run = [line]
        else:
            doc.add_literal(_expand(line, tags))
    if run:
        _add_run(doc, "\n".join(run), dialect, tags)


def _add_run(doc: Document, text: str, dialect: str, tags: list[Protected]) -> None:
    core = text.strip()
    lead = text[: text.index(core[0])]
    doc.add_literal(_expand(lead, tags))
    lines = core.split("\n")
    joined = join_lines(lines)
    if dialect == "vtt":
        joined = html.unescape(joined)  # &amp; &lt; &gt; are characters to translate
    doc.add_unit(_pieces(joined, tags), lines=len(lines), cue=dialect)
    doc.add_literal(_expand(text[len(lead) + len(core) :], tags))


def _pieces(text: str, tags: list[Protected]) -> list:
    """Text with its sentinels as the tags they stand for."""
    out: list = []
    for ch in text:
        k = ord(ch) - _SENTINEL
        if 0 <= k < len(tags):
            out.append(tags[k])
        elif out and isinstance(out[-1], str):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _expand(text: str, tags: list[Protected]) -> str:
    return "".join(p.text if isinstance(p, Protected) else p for p in _pieces(text, tags))
