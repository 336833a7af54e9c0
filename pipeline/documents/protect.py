"""Protected placeholders: text the model must not touch, carried through it.

Three kinds of text reach the model inside a sentence but must come back
byte for byte: untranslatable tokens found in prose (URLs, ``<URL>``
autolinks, e-mail addresses, file paths, ``@mentions``, versions,
``snake_case``, ``dotted.names``, ``__dunder__``, ``:shortcode:``), inline
markup the parsers keep (a Markdown link's ``[`` and ``](url)``, emphasis,
code spans; a subtitle's ``<i>``), and characters the model cannot read
(its tokenizer has no piece for them: most emoji, ♪, rare symbols; see
:func:`protect_unknown`), which it would otherwise drop. Each is replaced
by a placeholder, so the sentence is translated whole, and put back
afterwards.

Three forms of one sentence:

- *unit text* (the skeleton): each protected piece is one *marker*, a
  character of Supplementary Private Use Area-A (U+F0000 + its index in
  ``Unit.protected``). One code point is never cut by sentence splitting or
  ``split_to_fit``, and NFC leaves it alone;
- *chunk source* (what the model sees): markers become ``[1]``, ``[2]``...,
  numbered from 1 in each chunk. Bracketed numbers are what NLLB's training
  data is full of (citation marks) and what it copies; every character is
  in its SentencePiece vocabulary. Rare symbols are not: ``⟦1⟧``, ``【1】``,
  ``«1»`` or ``{1}`` become ``<unk>`` and vanish on decoding (checked on the
  tiny model's real ``NllbTokenizer``, tests/test_protect.py). Any
  ``[n]`` already in the input is itself protected, so every ``[n]`` in a
  chunk source is ours;
- *translation*: checked (:func:`check`: each placeholder exactly once,
  pairs still open before they close and nested as they were), then
  restored to markers (:func:`restore`). A translation that fails the check
  is not restored: its chunk is translated again as fragments between the
  protected pieces (``pipeline.documents.pieces``), today's behaviour, as a fallback.

A chunk's *spec* (stored as JSON with the chunk) says, per placeholder
``[i]``: the unit marker it stands for, its partner's number in the chunk
(0 when the partner is in another chunk or there is none) and its role
("o" opens a pair, "c" closes one, "" stands alone).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MARKER_BASE = 0xF0000
MAX_PROTECTED = 0xFFFD  # markers available in the plane
PLACEHOLDER = re.compile(r"\[(\d{1,5})\]")
_MARKERS = re.compile("[\U000F0000-\U000FFFFD]")

# Untranslatable tokens in running text, tried left to right, first match wins.
_EXTENSIONS = (
    "md|markdown|rst|txt|py|pyi|ipynb|js|mjs|ts|tsx|jsx|json|jsonl|toml|ya?ml|ini|cfg|conf|"
    "sh|bash|ps1|bat|cmd|exe|dll|so|dylib|html?|css|scss|xml|csv|tsv|srt|vtt|ass|c|h|cc|cpp|"
    "hpp|rs|go|java|kt|rb|php|swift|sql|db|sqlite|log|lock|png|jpe?g|gif|svg|webp|ico|pdf|"
    "zip|gz|tgz|tar|bz2|xz|whl|mp3|mp4|mkv|wav"
)
_TOKEN = re.compile(
    "|".join((
        r"<[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*>",  # <https://...>, <mailto:...>: whole
        r"<[\w.+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}>",  # <name@example.org>
        (r"(?<![\w@.+-])[\w.%+-]*\w@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
         r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}\b"),  # e-mail
        r"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s<>\"'`\[\]{}|\\^]+",  # scheme://...
        r"(?<![\w.@/-])www\d{0,3}\.[^\s<>\"'`\[\]{}|\\^]+",  # www.example.org
        r"(?<![\w/.~-])(?:~|\.{1,2})?/(?:[\w.@+-]+/)*[\w.@+-]*[\w@+-]/?",  # /usr/bin, ~/x
        r"\b[A-Za-z]:\\(?:[\w.-]+\\)*[\w.-]*",  # C:\Windows\x
        (r"(?<![\w/.-])[\w-][\w.-]*(?:/[\w.-]+)*/[\w-][\w.-]*\.(?:" + _EXTENSIONS + r")\b"),
        r"(?<![\w/.-])[\w-][\w.-]*(?:/[\w.-]+){2,}",  # a/b/c
        (r"(?<![\w.-])[\w-]+(?:\.[\w-]+)*\.(?:" + _EXTENSIONS + r")\b(?!\.\w)"),  # setup.py
        r"(?<![\w@.+-])@[A-Za-z0-9](?:[\w-]*\w)?(?:/[\w.-]*\w)?",  # @mention, @org/team
        r"(?<![\w.])v?\d+(?:\.\d+){2,}(?:[-+][0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*)?(?!\.?\w)",
        r"(?<![\w.])v\d+\.\d+(?!\.?\w)",  # v2.0
        r"(?<![\w.])__\w+__(?![\w])",  # __dunder__
        # snake_case_name; dotted.names of 2+ characters a part (not "e.g"); "()"
        (r"(?<![\w.])_*[^\W_]+(?:_[^\W_]+)+_*(?:\.[A-Za-z_]\w*)*(?:\(\))?(?![\w])"),
        r"(?<![\w.])[A-Za-z_]\w+(?:\.[a-z_]\w+)+(?:\(\))?(?![\w])",
        r"(?<![\w:]):[a-z0-9_+-]*[a-z0-9]:(?![\w:])",  # :rocket: :+1:
        r"\[\d{1,5}\]",  # already looks like a placeholder
        "[\U000F0000-\U000FFFFD]",  # already looks like a marker
    ))
)
# What every alternative of _TOKEN needs somewhere in the text: "@", "/",
# "\\", "[", "_", a marker, "." or ":" before a word character, or "www.".
# Most sentences have none, and this search is about 30 times cheaper.
_MAYBE_TOKEN = re.compile(r"[@/\\\[_\U000F0000-\U000FFFFD]|\.\w|:\w|www\d{0,3}\.")
_TRAILING = ".,;:!?'\")]}>*_~"
_CLOSED = re.compile(r"<.*>|__\w+__|:[a-z0-9_+-]*:", re.S)  # ends in its own, not a full stop
_PAIRS = {")": "(", "]": "[", "}": "{"}


@dataclass(frozen=True)
class Protected:
    """A piece of inline markup a parser keeps inside a sentence.

    ``text`` is written to the output exactly as it is (already escaped for
    where it goes). ``role``: "open" or "close" for the two ends of a pair
    (a link's ``[`` and ``](url)``, ``**``, ``<i>``), "" for a piece on its
    own. An open pairs with the nearest later unmatched close of its ``key``.
    """

    text: str
    role: str = ""
    key: str = ""


class Escaped(str):
    """Text of a sentence that is translated but never part of a protected
    token (a character the source escaped, such as Markdown's ``\\*``)."""


def marker(k: int) -> str:
    return chr(MARKER_BASE + k)


def has_markers(text: str) -> bool:
    return _MARKERS.search(text) is not None


def split_markers(text: str) -> list[str | int]:
    """``text`` as strings and marker indexes, in order."""
    out: list[str | int] = []
    pos = 0
    for m in _MARKERS.finditer(text):
        if m.start() > pos:
            out.append(text[pos : m.start()])
        out.append(ord(m.group()) - MARKER_BASE)
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


def find_tokens(text: str) -> list[tuple[int, int]]:
    """(start, end) of each untranslatable token in ``text``: URLs (with
    the angle brackets of an autolink), e-mail addresses, file paths,
    @mentions, version numbers (three parts, or two after a "v"),
    identifiers (``snake_case``, ``dotted.names``, ``__dunder__``),
    ``:shortcodes:``, and text that already looks like a placeholder. A token
    does not end with sentence punctuation or a closing bracket it did not
    open: "(see https://x.org/a)." protects ``https://x.org/a``."""
    found: list[tuple[int, int]] = []
    if not _MAYBE_TOKEN.search(text):
        return found
    for m in _TOKEN.finditer(text):
        start, end = m.start(), m.end()
        closed = _CLOSED.fullmatch(text, start, end) is not None
        while end > start + 1 and text[end - 1] in _TRAILING and not closed:
            closer = text[end - 1]
            if closer in _PAIRS and text.count(_PAIRS[closer], start, end) >= text.count(
                    closer, start, end):
                break  # balanced: "https://en.wikipedia.org/wiki/Rich_(software)"
            end -= 1
        if end - start > 1 or has_markers(text[start:end]):
            found.append((start, end))
    return found


def build(segments: Sequence[str | Protected], render_token: Callable[[str], str] = str
          ) -> tuple[str, tuple[tuple[str, int], ...]]:
    """A sentence's unit text and its protected pieces.

    ``segments``: text (searched for untranslatable tokens, except
    ``Escaped`` text) and ``Protected`` markup, in order. Returns the text
    with one marker per protected piece, and per marker its output text and
    its partner's index (-1: none). ``render_token`` writes a token found in
    text the way its unit writes literal text (JSON-escaped in a JSON
    string, ``&amp;`` in WebVTT). Past ``MAX_PROTECTED`` pieces, text is
    left as text and markup is dropped from the count (never in practice).
    """
    out: list[str] = []
    protected: list[list] = []  # [text, partner]
    roles: list[tuple[str, str]] = []
    for seg in _merge_text(segments):
        if isinstance(seg, Protected):
            out.append(marker(len(protected)))
            protected.append([seg.text, -1])
            roles.append((seg.role, seg.key))
            continue
        if isinstance(seg, Escaped):
            out.append(str(seg))
            continue
        pos = 0
        for start, end in find_tokens(seg):
            if len(protected) >= MAX_PROTECTED:
                break
            out.append(seg[pos:start])
            out.append(marker(len(protected)))
            protected.append([render_token(seg[start:end]), -1])
            roles.append(("", ""))
            pos = end
        out.append(seg[pos:])
    open_by_key: dict[str, list[int]] = {}
    for k, (role, key) in enumerate(roles):
        if role == "open":
            open_by_key.setdefault(key, []).append(k)
        elif role == "close" and open_by_key.get(key):
            partner = open_by_key[key].pop()
            protected[k][1], protected[partner][1] = partner, k
        elif role == "close":
            protected[k][1] = -2  # a close whose open is in another unit
    for keys in open_by_key.values():
        for k in keys:
            protected[k][1] = -3  # an open whose close is in another unit
    return "".join(out), tuple((text, partner) for text, partner in protected)


def protect_unknown(text: str, protected: tuple[tuple[str, int], ...],
                    unknown: set[str] | frozenset[str],
                    render_token: Callable[[str], str] = str,
                    ) -> tuple[str, tuple[tuple[str, int], ...], list[str]]:
    """A unit's text with each run of what the model cannot read made a
    protected piece of its own, as :func:`build` makes a URL one: the model
    sees a placeholder, and the characters come back in place.

    ``unknown``: the characters the model's tokenizer cannot encode
    (``Translator.unknown_characters``). A run is whole grapheme clusters
    (an emoji with its skin tone or its joiners, a letter with a mark the
    model lacks), never whitespace or a marker; a cluster whose only unknown
    characters are invisible format characters (a joiner inside a word) is
    left to the model, as it was. ``render_token`` as for :func:`build`.
    Returns the text, its protected pieces (the new ones after the old) and
    the runs protected, in order."""
    if unknown.isdisjoint(text):
        return text, protected, []
    from pipeline.documents.segment import graphemes  # pipeline.documents.segment imports this module

    pieces, runs, out, run = list(protected), [], [], []

    def close_run() -> None:
        if not run:
            return
        joined = "".join(run)
        if len(pieces) < MAX_PROTECTED:
            out.append(marker(len(pieces)))
            pieces.append((render_token(joined), -1))
            runs.append(joined)
        else:
            out.append(joined)
        run.clear()

    for cluster in graphemes(text):
        if (not has_markers(cluster) and not any(ch.isspace() for ch in cluster)
                and any(ch in unknown and unicodedata.category(ch) != "Cf" for ch in cluster)):
            run.append(cluster)
        else:
            close_run()
            out.append(cluster)
    close_run()
    return "".join(out), tuple(pieces), runs


def _merge_text(segments: Sequence[str | Protected]) -> list[str | Protected]:
    """Adjacent plain texts joined (a URL may span two of a parser's text
    tokens); Escaped and Protected pieces kept apart."""
    merged: list[str | Protected] = []
    for seg in segments:
        if (type(seg) is str and merged and type(merged[-1]) is str):
            merged[-1] += seg
        elif seg != "":
            merged.append(seg)
    return merged


# -- one chunk ---------------------------------------------------------------------


def chunk_view(text: str, protected: Sequence[tuple[str, int]]) -> tuple[str, list]:
    """What the model sees for a chunk of unit text, and the chunk's spec.

    Markers become ``[1]``, ``[2]``... in order; the spec lists, per
    placeholder, [unit marker, partner number in this chunk or 0, role].
    """
    order: dict[int, int] = {}
    pieces = []
    for piece in split_markers(text):
        if isinstance(piece, int):
            order[piece] = len(order) + 1
            pieces.append(f"[{order[piece]}]")
        else:
            pieces.append(piece)
    spec = []
    for k in order:
        partner = protected[k][1] if k < len(protected) else -1
        role = "" if partner == -1 else ("o" if partner == -3 or partner > k else "c")
        spec.append([k, order.get(partner, 0) if partner >= 0 else 0, role])
    return "".join(pieces), spec


def visible(text: str) -> str:
    """A unit text's markers as the model would see them (for counting tokens)."""
    if not has_markers(text):
        return text
    count = 0

    def number(_m) -> str:
        nonlocal count
        count += 1
        return f"[{count}]"

    return _MARKERS.sub(number, text)


def spec_json(spec: list) -> str | None:
    return json.dumps(spec, separators=(",", ":")) if spec else None


def load_spec(data: str | None) -> list:
    return json.loads(data) if data else []


def check(translation: str, spec: Sequence[Sequence]) -> str | None:
    """None when every placeholder of ``spec`` is in ``translation`` exactly
    once and the pairs still make sense: each pair opens before it closes,
    two pairs that were nested (or apart) still are, and a piece whose
    partner is in another chunk is still outside this chunk's pairs. Else
    what is wrong, in words. ``[n]`` beyond the spec is the model's own text."""
    if not spec:
        return None
    positions: dict[int, list[int]] = {}
    for m in PLACEHOLDER.finditer(translation):
        n = int(m.group(1))
        if 1 <= n <= len(spec):
            positions.setdefault(n, []).append(m.start())
    wrong = [f"[{n}] {len(positions.get(n, []))} times" for n in range(1, len(spec) + 1)
             if len(positions.get(n, [])) != 1]
    if wrong:
        return "placeholder " + ", ".join(wrong[:4]) + (" ..." if len(wrong) > 4 else "")
    source_at = {n: n for n in range(1, len(spec) + 1)}  # placeholders are numbered in order
    target_at = {n: positions[n][0] for n in source_at}
    src, tgt = _spans(spec, source_at), _spans(spec, target_at)
    for a, (s, t) in enumerate(zip(src, tgt)):
        if t[0] > t[1]:
            return f"pair {_name(spec, s)} closes before it opens"
        for b in range(a):
            if _crosses(src[b], s) != _crosses(tgt[b], t):
                return f"pairs {_name(spec, src[b])} and {_name(spec, s)} are nested differently"
    return None


def _spans(spec: Sequence[Sequence], at: dict[int, int]) -> list[tuple[float, float, int]]:
    """(start, end, first number) per pair; a piece whose partner is elsewhere
    spans to the chunk's start (a close) or end (an open)."""
    spans = []
    for n, (_k, partner, role) in enumerate(spec, start=1):
        if role == "o" and partner:
            spans.append((at[n], at[partner], n))
        elif role == "o":
            spans.append((at[n], float("inf"), n))
        elif role == "c" and not partner:
            spans.append((float("-inf"), at[n], n))
    return spans


def _crosses(a: tuple, b: tuple) -> bool:
    return a[0] < b[0] < a[1] < b[1] or b[0] < a[0] < b[1] < a[1]


def _name(spec, span) -> str:
    return f"[{span[2]}]"


def restore(translation: str, spec: Sequence[Sequence]) -> str:
    """A checked translation (or a source) in unit-text form: each ``[i]`` of
    the spec becomes its unit's marker, at its first place. Spaces just inside
    a pair are dropped ("** bold **" would not be bold); markers the model
    could not have meant are removed."""
    text = _MARKERS.sub("", translation)
    if not spec:
        return text
    seen: set[int] = set()
    out: list[str] = []
    pos = 0
    for m in PLACEHOLDER.finditer(text):
        n = int(m.group(1))
        if not 1 <= n <= len(spec) or n in seen:
            continue
        seen.add(n)
        before = text[pos : m.start()]
        k, _partner, role = spec[n - 1]
        if role == "c":
            before = before.rstrip(" ")
        out.append(before)
        out.append(marker(k))
        pos = m.end()
        if role == "o":
            while pos < len(text) and text[pos] == " ":
                pos += 1
    out.append(text[pos:])
    return "".join(out)


def strip_placeholders(text: str, spec: Sequence[Sequence]) -> str:
    """``text`` without the spec's placeholders (what the quality checks judge)."""
    if not spec:
        return text
    return PLACEHOLDER.sub(lambda m: " " if 1 <= int(m.group(1)) <= len(spec) else m.group(),
                           text)
