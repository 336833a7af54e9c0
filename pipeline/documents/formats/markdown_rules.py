"""Markdown extensions in wide use, as markdown-it-py rules.

CommonMark alone reads several common constructs as prose, so they were
translated or escaped into something else. Each rule here makes one of
them a token of its own; the Markdown builder copies every block that is not
prose byte for byte, and every inline token that is not text as written.

- front matter: a YAML (``---`` … ``---`` or ``...``) or TOML (``+++`` …
  ``+++``) block at the very top of the file;
- math: a ``$$`` … ``$$`` block, and inline ``$…$`` under pandoc's rules
  (no space inside either dollar, closed by the next one, no letter or
  digit right before the opening one nor a digit after the closing one,
  so "$5 and $10" and "US$5" stay prose);
- footnotes: a reference ``[^label]`` is literal; a definition
  ``[^label]: text`` keeps its label literal and its text is parsed as the
  blocks it holds (indented four spaces when it runs on), so it is
  translated like any paragraph.

:func:`parser` also wraps a few of markdown-it's own rules to record where
their tokens came from (markdown-it tells where a block starts, not where an
inline token did), so the builder copies them exactly as written.

GitHub alerts (``> [!NOTE]``) and task list markers (``- [ ]``) need no rule
of their own: they are the first text of a block quote or a list item, and
the builder keeps them literal there (:func:`lead_marker`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markdown_it import MarkdownIt, rules_block, rules_inline
from markdown_it.helpers import parseLinkLabel
from markdown_it.ruler import Ruler
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

_FENCES = {"---": ("---", "..."), "+++": ("+++",)}
# Text that opens a block and is markup, not prose, in GitHub's dialect: an
# alert's marker line first in a block quote, a task box first in a list item.
_ALERT = re.compile(r"\[!(?:NOTE|TIP|IMPORTANT|WARNING|CAUTION)\][ \t]*(?:\n|\Z)", re.I)
_TASK = re.compile(r"\[[ xX]\](?:[ \t]+|\Z)")
_FOOTNOTE_REF = re.compile(r"\[\^[^\s\]]+\]")


def add_extensions(md: MarkdownIt) -> None:
    """Register front matter, math and footnote rules on ``md``."""
    md.block.ruler.before("table", "front_matter", front_matter)
    md.block.ruler.before("fence", "math_block", math_block,
                          {"alt": ["paragraph", "reference", "blockquote", "list"]})
    md.block.ruler.before("reference", "footnote_def", footnote_def,
                          {"alt": ["paragraph", "reference"]})
    md.inline.ruler.before("link", "footnote_ref", footnote_ref)
    md.inline.ruler.before("escape", "math_inline", math_inline)


def _line(state: StateBlock, n: int) -> str:
    return state.src[state.bMarks[n] + state.tShift[n] : state.eMarks[n]]


def front_matter(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    if start != 0 or state.bMarks[0] != 0 or state.tShift[0] != 0:
        return False
    closers = _FENCES.get(_line(state, 0).rstrip())
    if closers is None:
        return False
    for n in range(1, end):
        if state.tShift[n] == 0 and _line(state, n).rstrip() in closers:
            break
    else:
        return False  # no closing fence: a thematic break after all
    if not silent:
        token = state.push("front_matter", "", 0)
        token.map = [0, n + 1]
        token.block = True
    state.line = n + 1
    return True


def math_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    if state.sCount[start] - state.blkIndent >= 4:
        return False
    first = _line(state, start)
    if not first.startswith("$$"):
        return False
    last = start
    if not (len(first.rstrip()) > 3 and first.rstrip().endswith("$$")):
        for last in range(start + 1, end):
            if state.sCount[last] < state.blkIndent and not state.isEmpty(last):
                return False  # the container ended first
            if _line(state, last).rstrip().endswith("$$"):
                break
        else:
            return False
    if not silent:
        token = state.push("math_block", "math", 0)
        token.map = [start, last + 1]
        token.block = True
    state.line = last + 1
    return True


def footnote_def(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """``[^label]: text``: the label stays, the text is parsed as blocks.

    Follows markdown-it's footnote plugin: the line is re-based past the
    label, so the paragraph inside records where its text starts and the
    label becomes that line's literal prefix.
    """
    begin = state.bMarks[start] + state.tShift[start]
    maximum = state.eMarks[start]
    if state.sCount[start] - state.blkIndent >= 4:
        return False
    match = _FOOTNOTE_REF.match(state.src, begin, maximum)
    if not match or match.end() >= maximum or state.src[match.end()] != ":":
        return False
    if silent:
        return True
    opener = state.push("footnote_open", "", 1)
    opener.map = [start, start]
    after_colon = pos = match.end() + 1
    while pos < maximum and state.src[pos] in " \t":
        pos += 1
    saved = (state.bMarks[start], state.tShift[start], state.sCount[start], state.parentType)
    state.bMarks[start] = after_colon
    state.tShift[start] = pos - after_colon
    state.sCount[start] = state.blkIndent + 4
    state.blkIndent += 4
    state.parentType = "footnote"
    state.md.block.tokenize(state, start, end)
    state.blkIndent -= 4
    state.bMarks[start], state.tShift[start], state.sCount[start], state.parentType = saved
    opener.map[1] = state.line
    state.push("footnote_close", "", -1)
    return True


def footnote_ref(state: StateInline, silent: bool) -> bool:
    match = _FOOTNOTE_REF.match(state.src, state.pos, state.posMax)
    if not match:
        return False
    if not silent:
        state.push("footnote_ref", "", 0).content = match.group()
    state.pos = match.end()
    return True


def math_inline(state: StateInline, silent: bool) -> bool:
    """``$x$`` or ``$$x$$``, closed by the very next dollar sign (or pair)."""
    src, pos = state.src, state.pos
    if src[pos] != "$" or (pos > 0 and (src[pos - 1].isalnum() or src[pos - 1] in "$\\")):
        return False  # "US$5" is money
    fence = "$$" if src.startswith("$$", pos) else "$"
    body = pos + len(fence)
    if body >= state.posMax or src[body].isspace() or src[body] == "$":
        return False
    close = src.find(fence, body, state.posMax)
    after = close + len(fence)
    if close == -1 or src[close - 1].isspace() or src[close - 1] == "\\" or (
        after < state.posMax and (src[after].isdigit() or src[after] == "$")
    ):
        return False
    if not silent:
        token = state.push("math_inline", "math", 0)
        token.content = src[body:close]
        token.markup = fence
    state.pos = after
    return True


def lead_marker(parent: str, content: str) -> str:
    """The GitHub marker a paragraph starts with, kept literal: an alert's
    line (``[!NOTE]``) first in a block quote, a task box (``[ ]``, ``[x]``)
    first in a list item; "" if none."""
    pattern = _ALERT if parent == "blockquote_open" else _TASK if parent == "list_item_open" else None
    match = pattern.match(content) if pattern else None
    return match.group() if match else ""


def drop_lead(children: list[Token], lead: str) -> list[Token] | None:
    """``children`` without the text of ``lead`` (and the line break ending
    it), or None when the lead is not plain text there."""
    line_end = lead.endswith("\n")
    # Spaces before a line break went into the break token.
    want = lead.rstrip("\n").rstrip(" \t") if line_end else lead
    rest, got = list(children), ""
    while len(got) < len(want):
        if not rest or rest[0].type != "text":
            return None
        got += rest.pop(0).content
    if not got.startswith(want):
        return None
    tail = got[len(want):]
    if line_end:
        if tail or not rest or rest[0].type not in ("softbreak", "hardbreak"):
            return None
        rest.pop(0)
    elif tail:
        rest.insert(0, _text(tail))
    return rest


def _text(content: str) -> Token:
    tok = Token("text", "", 0)
    tok.content = content
    return tok


def parser() -> MarkdownIt:
    """CommonMark with tables, strikethrough and these extensions, its rules
    wrapped to record where their tokens came from in the source."""
    md = MarkdownIt("commonmark").enable("table").enable("strikethrough")
    # text_join would fold backslash escapes and entities into plain text,
    # losing how they were written.
    md.disable("text_join", ignoreInvalid=True)
    add_extensions(md)
    for name, rule in (
        ("newline", rules_inline.newline),
        ("escape", rules_inline.escape),
        ("footnote_ref", footnote_ref),
        ("math_inline", math_inline),
        ("backticks", rules_inline.backtick),
        ("autolink", rules_inline.autolink),
        ("html_inline", rules_inline.html_inline),
    ):
        _replace(md.inline.ruler, name, rule, _with_span(rule))
    _replace(md.inline.ruler, "link", rules_inline.link, _with_span(rules_inline.link, label=0))
    _replace(md.inline.ruler, "image", rules_inline.image, _with_span(rules_inline.image, label=1))
    for name, rule in (
        ("paragraph", rules_block.paragraph),
        ("heading", rules_block.heading),
        ("lheading", rules_block.lheading),
        ("table", rules_block.table),
    ):
        _replace(md.block.ruler, name, rule, _with_line_starts(rule))
    return md


def _replace(ruler: Ruler, name: str, original: Callable, wrapped: Callable) -> None:
    # Ruler.at forgets which other rules a rule may interrupt (its "alt"
    # chains: a heading ends a paragraph), so pass them on again.
    chains = [chain for chain in ruler.get_all_rules() if original in ruler.getRules(chain)]
    ruler.at(name, wrapped, {"alt": chains})


def _with_span(rule: Callable, *, label: int | None = None) -> Callable:
    """Record ``(start, end)`` in the inline source on the rule's first token
    (and where its label ends, the label's "[" being ``label`` past the start)."""

    def spanned(state, silent: bool) -> bool:
        start, count = state.pos, len(state.tokens)
        if not rule(state, silent):
            return False
        if not silent:
            # Pending plain text is flushed as a "text" token ahead of the
            # rule's own first token, which is never of type "text".
            for tok in state.tokens[count:]:
                if tok.type != "text":
                    tok.meta["span"] = (start, state.pos)
                    if label is not None:
                        tok.meta["label_end"] = parseLinkLabel(state, start + label, not label)
                    break
        return True

    return spanned


def _with_line_starts(rule: Callable) -> Callable:
    """Record where each line's content starts, past its container markers.

    Only the block parser knows how much of a line belongs to enclosing block
    quotes and list items, and it knows it only while the rule runs.
    """

    def recorded(state, start_line: int, end_line: int, silent: bool) -> bool:
        count = len(state.tokens)
        if not rule(state, start_line, end_line, silent):
            return False
        if not silent and len(state.tokens) > count:
            state.tokens[count].meta["starts"] = [
                state.bMarks[n] + state.tShift[n] for n in range(start_line, state.line)
            ]
        return True

    return recorded
