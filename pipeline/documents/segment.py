"""Cutting prose into pieces the model can take: sentences, then smaller.

NLLB was trained on single sentences and degrades (or truncates) on long
inputs, so a unit is translated sentence by sentence, and a sentence that is
still over the model's token limit is cut again at the weakest place we can
find: a clause boundary, else a space, else between two characters.

Every function here is lossless: ``"".join(pieces) == text``. Whitespace is
never dropped, it travels at the end of the piece it follows, so the caller
can reassemble the translation with the same spacing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence

import sentencex

from pipeline.languages import iso639_1
from pipeline.documents.protect import has_markers

CountTokens = Callable[[list[str]], list[int]]

# Split tiers for split_to_fit, strongest first. Each regex match ends at a
# boundary. Sentence punctuation is in tier 0 too: a "sentence" that reached
# split_to_fit may still hold boundaries the segmenter declined (initials,
# quotes), and they are better cut points than a clause comma. CJK and Arabic
# punctuation is not followed by a space, so there the space is optional.
_CLAUSE = re.compile(r"[;:,—.!?…।॥؟][\"'”’»)\]]*\s+|[，、；：﹔﹐。！？」』）،؛]\s*")
_SPACE = re.compile(r"\s+")
# How many candidate ends to measure per count_tokens call while narrowing
# down the longest piece that fits.
_PROBES = 16
_LAST_TIER = 3  # clause, whitespace, grapheme cluster, code point


def split_sentences(text: str, lang: str) -> list[str]:
    """Split ``text`` into sentences for NLLB language ``lang`` (e.g. 'eng_Latn').

    Lossless and with no empty pieces; whitespace between sentences stays at
    the end of the sentence before it (leading whitespace joins the first).
    """
    if not text:
        return []
    raw = [p for p in sentencex.segment(iso639_1(lang), text) if p]
    if "".join(raw) != text:
        raw = _realign(raw, text)
    pieces: list[str] = []
    for piece in raw:
        # A piece with nothing to translate (whitespace, a stray closing
        # quote or ellipsis) is useless alone: it rides with its neighbour.
        # So does one after a "sentence" that ends mid-clause: sentencex's
        # Hindi and Arabic rules cut before enumerations like "(2) ...".
        if pieces and (
            not _has_content(piece) or not _has_content(pieces[-1]) or _unfinished(pieces[-1])
        ):
            pieces[-1] += piece
        else:
            pieces.append(piece)
    return _glue_markers(pieces)


def _glue_markers(pieces: list[str]) -> list[str]:
    """A protected piece written right after a sentence's end, with no space
    ("**Bold sentence.** Next"), belongs to that sentence: the segmenter cuts
    after the full stop, which would leave the closing ``**`` at the start
    of the next sentence and a space before it when they are joined."""
    for k in range(1, len(pieces)):
        glued = 0
        while glued < len(pieces[k]) and has_markers(pieces[k][glued]):
            glued += 1
        if glued and pieces[k - 1] and not pieces[k - 1][-1].isspace():
            pieces[k - 1] += pieces[k][:glued]
            pieces[k] = pieces[k][glued:]
    return [p for p in pieces if p]


def _has_content(piece: str) -> bool:
    return any(ch.isalnum() for ch in piece)


def _unfinished(piece: str) -> bool:
    """True if ``piece`` cannot be a whole sentence: it ends in a letter, digit
    or comma, and not at a line break (which ends a paragraph or heading).
    Semicolons and colons don't count: Greek ';' is a question mark and
    Armenian writes ':' for its full stop."""
    core = piece.rstrip()
    if not core or "\n" in piece[len(core) :]:
        return False
    last = core[-1]
    return last in ",،、，" or unicodedata.category(last)[0] in "LNM"


def _realign(raw: list[str], text: str) -> list[str]:
    """Map the segmenter's pieces back onto ``text`` should it ever alter them.

    Only a safety net: sentencex is lossless today. Each piece's stripped
    content is found in order and cuts fall where each piece starts.
    """
    cuts, pos = [0], 0
    for piece in raw:
        core = piece.strip()
        found = text.find(core, pos) if core else -1
        if found < 0:
            continue
        if found > cuts[-1]:
            cuts.append(found)
        pos = found + len(core)
    cuts.append(len(text))
    return [text[a:b] for a, b in zip(cuts, cuts[1:]) if a < b]


def split_to_fit(text: str, count_tokens: CountTokens, limit: int) -> list[str]:
    """Cut one sentence into pieces of at most ``limit`` tokens each.

    ``count_tokens`` maps a batch of texts to their token counts (special
    tokens included). Cuts prefer clause punctuation followed by a space,
    then any whitespace, then a boundary between two characters that does not
    split a combining sequence; at each tier neighbouring parts are packed
    greedily so pieces are as long as the limit allows. Lossless: trailing
    whitespace stays on its piece. Raises ValueError if one character alone
    is over the limit.
    """
    if not text:
        return []
    if count_tokens([text])[0] <= limit:
        return [text]
    overhead = count_tokens([""])[0]  # special tokens every text pays once
    return _split(text, 0, count_tokens, limit, overhead)


def _split(text: str, tier: int, count: CountTokens, limit: int, overhead: int) -> list[str]:
    if tier == 0:
        atoms = _cut_after(text, _CLAUSE)
    elif tier == 1:
        atoms = _cut_after(text, _SPACE)
    elif tier == 2:
        atoms = _graphemes(text)
    else:
        # Last resort for a pathological cluster (hundreds of stacked
        # combining marks): breaking it beats failing the whole document.
        atoms = list(text)
    if len(atoms) == 1 and tier < _LAST_TIER:
        # Nothing to cut at this tier: go finer without a wasted count.
        return _split(text, tier + 1, count, limit, overhead)
    estimates = [max(c - overhead, 0) for c in count(atoms)]
    pieces: list[str] = []
    ratio = 1.0  # measured tokens per estimated token, learnt piece by piece
    i = 0
    while i < len(atoms):
        end, measured = _longest_fit(atoms, estimates, ratio, i, count, limit, overhead)
        if end > i:
            pieces.append("".join(atoms[i:end]))
            guessed = sum(estimates[i:end])
            if guessed > 0 and measured > overhead:
                ratio = (measured - overhead) / guessed
            i = end
        elif tier < _LAST_TIER:
            # This atom alone is too long: cut it at the next tier down.
            pieces.extend(_split(atoms[i], tier + 1, count, limit, overhead))
            i += 1
        else:
            raise ValueError(
                f"{atoms[i]!r} alone is over the limit of {limit} tokens; it cannot be split"
            )
    return pieces


def _longest_fit(
    atoms: list[str],
    estimates: list[int],
    ratio: float,
    start: int,
    count: CountTokens,
    limit: int,
    overhead: int,
) -> tuple[int, int]:
    """The largest ``end`` such that atoms[start:end] measures <= limit tokens
    (``start`` when even one atom does not fit), and its measured count.

    Token counts of a concatenation are not the sum of the parts (merges
    across the seam), so the calibrated sum only aims the first batch of
    probes; the answer is then narrowed by measuring a batch of candidate
    ends per call. Few calls, and each probe is about one piece long, so the
    cost stays near linear in the text length.
    """
    n = len(atoms)
    budget, guess = limit - overhead, start
    while guess < n and budget - estimates[guess] * ratio >= 0:
        budget -= estimates[guess] * ratio
        guess += 1
    lo, lo_count = start, overhead  # atoms[start:lo] fits
    failed: list[int] = []  # ends known not to fit
    probes = {guess + d for d in (0, 1, -1, 2, -2, 4, -4, 8, -8)} | {start + 1}
    while True:
        ends = sorted(e for e in probes if start < e <= n)
        for e, c in zip(ends, count(["".join(atoms[start:e]) for e in ends])):
            if c > limit:
                failed.append(e)
            elif e > lo:
                lo, lo_count = e, c
        # Counts may not be perfectly monotone; trust the longest verified fit.
        hi = min((e for e in failed if e > lo), default=None)
        if lo == n or hi == lo + 1:
            return lo, lo_count
        if hi is None:
            # Everything measured fits: look further, growing geometrically.
            span = max(lo - start, 1)
            probes = {min(lo + max(span * k // 4, 1), n) for k in (1, 2, 4, 8, 16, 32)}
        else:
            step = (hi - lo) / (_PROBES + 1)
            probes = {lo + max(round(step * k), 1) for k in range(1, _PROBES + 1)}
            probes = {e for e in probes if e < hi}


def clause_atoms(text: str) -> list[str]:
    """``text`` cut after each clause boundary (the first tier of
    :func:`split_to_fit`). Lossless."""
    return _cut_after(text, _CLAUSE)


def graphemes(text: str) -> list[str]:
    """``text`` as approximate grapheme clusters (never cut inside one)."""
    return _graphemes(text)


def _cut_after(text: str, pattern: re.Pattern[str]) -> list[str]:
    """Cut ``text`` at the end of each match of ``pattern``."""
    atoms, pos = [], 0
    for m in pattern.finditer(text):
        if m.end() > pos and m.end() < len(text):
            atoms.append(text[pos : m.end()])
            pos = m.end()
    atoms.append(text[pos:])
    return atoms


def _graphemes(text: str) -> list[str]:
    """Approximate grapheme clusters: never cut before a combining mark,
    ZWJ, variation selector or emoji modifier, nor after a ZWJ or virama
    (which glue the next character into the same cluster)."""
    atoms: list[str] = []
    for ch in text:
        if atoms and (
            _joins_previous(ch)
            or _joins_next(atoms[-1][-1])
            or (_is_regional(ch) and len(atoms[-1]) == 1 and _is_regional(atoms[-1]))
        ):
            atoms[-1] += ch
        else:
            atoms.append(ch)
    return atoms


def _joins_previous(ch: str) -> bool:
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Mc", "Me")
        or cp == 0x200D
        or 0xFE00 <= cp <= 0xFE0F
        or 0xE0100 <= cp <= 0xE01EF
        or 0x1F3FB <= cp <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # emoji tag sequences (subdivision flags)
        or 0xDC00 <= cp <= 0xDFFF  # low surrogate (surrogateescape'd input)
    )


def _is_regional(ch: str) -> bool:
    # Flags are pairs of regional indicator letters.
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _joins_next(ch: str) -> bool:
    cp = ord(ch)
    return cp == 0x200D or unicodedata.combining(ch) == 9 or 0xD800 <= cp <= 0xDBFF


def chunk_text(text: str, lang: str, count_tokens: CountTokens, limit: int) -> list[str]:
    """Cut a unit's text into chunks of at most ``limit`` tokens.

    One chunk per sentence; a sentence over the limit is cut further with
    :func:`split_to_fit`. Lossless: ``"".join(chunks) == text``.
    """
    return chunk_texts([text], lang, count_tokens, limit)[0]


def chunk_texts(texts: Sequence[str], lang: str, count_tokens: CountTokens,
                limit: int) -> list[list[str]]:
    """:func:`chunk_text` of many units, with one ``count_tokens`` call for
    all their sentences (a tokenizer call costs far more than a sentence
    in it: preprocessing a slice of a few thousand lines makes one, not
    one per line). Only a sentence over the limit costs calls of its own."""
    split = [split_sentences(text, lang) for text in texts]
    flat = [sentence for sentences in split for sentence in sentences]
    counts = iter(count_tokens(flat) if flat else ())
    out: list[list[str]] = []
    for sentences in split:
        chunks: list[str] = []
        for sentence, n in zip(sentences, counts):
            if n <= limit:
                chunks.append(sentence)
            else:
                chunks.extend(split_to_fit(sentence, count_tokens, limit))
        out.append(chunks)
    return out
