"""Where a line may break and how broken lines join again.

Two directions of one question. Reading, a hard-wrapped paragraph or a
subtitle's two lines are joined into one line for the model
(:func:`join_lines`). Writing, a translation that must fill as many lines as
its source (a subtitle cue) is broken again (:func:`wrap_lines`): at spaces,
or between two characters of a script written without spaces.
"""

from __future__ import annotations

import bisect
import unicodedata

# Scripts written without spaces between words: a line break between two of
# these characters joins with nothing, and a line may break between any two.
# Hangul is deliberately absent: Korean puts spaces between words.
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
# Line breaking rules for CJK (kinsoku shori): a line never starts with a
# closing mark nor ends with an opening one.
_NO_LINE_START = frozenset("、。，．,.！？!?：；:;）」』】〕〉》〗〙〛’”»…‥ー・々ゝゞぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ")
_NO_LINE_END = frozenset("（「『【〔〈《〖〘〚‘“«")
_SPACED_MARKS = frozenset("!?:;»…")
# How many candidate breaks per line to weigh near each ideal position.
_NEAREST = 8
_SEARCHED = 4  # up to this many lines, the best combination is searched for
_PRIVATE = "\U000F0000"  # where protected pieces' markers start (pipeline.documents.protect)


def is_cjk(ch: str) -> bool:
    """True for a character of a script written without spaces (Han, Kana,
    CJK punctuation and full-width forms)."""
    cp = ord(ch)
    return cp >= 0x2E80 and any(lo <= cp <= hi for lo, hi in _NO_SPACE_RANGES)


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


def wrap_lines(text: str, count: int, width=None, *, spaces_first: bool = False) -> list[str]:
    """``text`` broken into ``count`` lines of balanced display width.

    Breaks fall at spaces (the space is dropped) or between two CJK
    characters, never before a closing or after an opening CJK mark. Where
    there are fewer such places than breaks needed, the text is broken
    between characters (a split word beats a missing line: a subtitle keeps
    its shape). No line is ever empty, so a text shorter than ``count``
    characters gets fewer lines. Line breaks already in ``text`` count as
    spaces. ``width(ch)``, where it returns a number, is how wide ``ch`` is
    counted, for a placeholder's marker (as wide as what it stands for). ``spaces_first``:
    break between CJK characters only where there are too few spaces (a
    renderer may show such a break in Markdown or HTML as a space).
    """
    text = " ".join(text.split())
    if count <= 1 or not text:
        return [text]
    breaks = _breaks(text)
    if spaces_first:
        spaced = [b for b in breaks if b[1]]
        breaks = spaced if len(spaced) >= count - 1 else breaks
    if len(breaks) < count - 1:
        breaks = sorted(set(breaks) | set(_between_characters(text)))
    count = min(count, len(breaks) + 1)
    if count <= 1:
        return [text]
    widths = [0]
    for ch in text:
        wide = width(ch) if width and ch >= _PRIVATE else None  # a placeholder's marker
        widths.append(widths[-1] + (_width(ch) if wide is None else wide))
    # The search weighs every combination of nearby breaks: right for a
    # subtitle's two or three lines, too slow for a long paragraph's many.
    chosen = _balanced(breaks, widths, count) if count <= _SEARCHED else _nearest(
        breaks, widths, count)
    lines, start = [], 0
    for at, skip in chosen:
        lines.append(text[start:at])
        start = at + skip
    lines.append(text[start:])
    return lines


def _breaks(text: str) -> list[tuple[int, int]]:
    """(position, characters dropped) for every allowed break."""
    found = []
    for i in range(1, len(text)):
        before, after = text[i - 1], text[i]
        if after == " ":
            # Not before a mark French sets off with a space ("Quoi ?").
            if before != " " and i + 1 < len(text) and text[i + 1] not in _SPACED_MARKS:
                found.append((i, 1))
        elif (is_cjk(before) or is_cjk(after)) and before != " " and after != " " and (
            after not in _NO_LINE_START and before not in _NO_LINE_END
        ):
            found.append((i, 0))
    return found


def _between_characters(text: str) -> list[tuple[int, int]]:
    return [
        (i, 0)
        for i in range(1, len(text))
        if text[i] != " " and text[i - 1] != " " and not unicodedata.combining(text[i])
        and unicodedata.category(text[i]) not in ("Mn", "Me", "Cf")
    ]


def _width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _nearest(breaks: list[tuple[int, int]], widths: list[int], count: int):
    """The ``count - 1`` breaks nearest the ideal places, in order, each after
    the one before and leaving enough breaks for the lines still to come."""
    total = widths[-1]
    at = [widths[b[0]] for b in breaks]
    chosen, j = [], 0
    for k in range(1, count):
        target = total * k / count
        j = bisect.bisect_left(at, target, j, len(breaks) - (count - 1 - k))
        if j > 0 and (not chosen or j - 1 > chosen[-1]) and abs(at[j - 1] - target) <= abs(
                at[min(j, len(at) - 1)] - target):
            j -= 1
        j = min(j, len(breaks) - (count - k))
        chosen.append(j)
        j += 1
    return [breaks[j] for j in chosen]


def _balanced(breaks: list[tuple[int, int]], widths: list[int], count: int):
    """The ``count - 1`` breaks whose lines are closest to equal width (least
    squared deviation), searched among the breaks nearest each ideal spot."""
    total = widths[-1]
    ideal = total / count
    near: set[int] = set()
    for k in range(1, count):
        target = ideal * k
        ranked = sorted(range(len(breaks)), key=lambda j: abs(widths[breaks[j][0]] - target))
        near.update(ranked[:_NEAREST])
    options = sorted(near)

    def line_cost(start: int, end: int) -> float:
        return (widths[end] - widths[start] - ideal) ** 2

    # best[j] = (cost, path) for lines so far ending at options[j]
    best = {None: (0.0, [])}
    for _ in range(count - 1):
        step = {}
        for j in options:
            at, _skip = breaks[j]
            for prev, (cost, path) in best.items():
                start = 0 if prev is None else breaks[prev][0] + breaks[prev][1]
                if prev is not None and prev >= j or at <= start:
                    continue
                candidate = cost + line_cost(start, at)
                if j not in step or candidate < step[j][0]:
                    step[j] = (candidate, path + [j])
        best = step
    final = min(
        best.items(),
        key=lambda item: item[1][0] + line_cost(breaks[item[0]][0] + breaks[item[0]][1], len(widths) - 1),
    )
    return [breaks[j] for j in final[1][1]]
