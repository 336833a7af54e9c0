"""Which writing system a text's letters are in, judged letter by letter.

A FLORES-200 code names its script (``rus_Cyrl``, ``zho_Hans``,
``arb_Arab``): the check compares the script of each letter of a
translation (Unicode letters only: digits, punctuation, symbols and
combining marks say nothing) with the scripts the code allows. Python's
``unicodedata`` has no script property, but every letter's name starts
with its script ("CYRILLIC SMALL LETTER A", "CJK UNIFIED IDEOGRAPH-4E2D",
"HIRAGANA LETTER A"), which is enough for the 29 scripts NLLB writes.
"""

from __future__ import annotations

import functools
import unicodedata
from collections import Counter

# FLORES script code -> the name prefixes its letters may have. Japanese mixes
# kanji and kana; Korean may use hanja.
ALLOWED: dict[str, frozenset[str]] = {
    "Latn": frozenset({"LATIN"}), "Cyrl": frozenset({"CYRILLIC"}),
    "Arab": frozenset({"ARABIC"}), "Hebr": frozenset({"HEBREW"}),
    "Grek": frozenset({"GREEK"}), "Armn": frozenset({"ARMENIAN"}),
    "Geor": frozenset({"GEORGIAN"}), "Ethi": frozenset({"ETHIOPIC"}),
    "Hans": frozenset({"CJK"}), "Hant": frozenset({"CJK"}),
    "Jpan": frozenset({"CJK", "HIRAGANA", "KATAKANA"}),
    "Hang": frozenset({"HANGUL", "CJK"}),
    "Deva": frozenset({"DEVANAGARI"}), "Beng": frozenset({"BENGALI"}),
    "Guru": frozenset({"GURMUKHI"}), "Gujr": frozenset({"GUJARATI"}),
    "Orya": frozenset({"ORIYA"}), "Taml": frozenset({"TAMIL"}),
    "Telu": frozenset({"TELUGU"}), "Knda": frozenset({"KANNADA"}),
    "Mlym": frozenset({"MALAYALAM"}), "Sinh": frozenset({"SINHALA"}),
    "Thai": frozenset({"THAI"}), "Laoo": frozenset({"LAO"}),
    "Khmr": frozenset({"KHMER"}), "Mymr": frozenset({"MYANMAR"}),
    "Tibt": frozenset({"TIBETAN"}), "Tfng": frozenset({"TIFINAGH"}),
    "Olck": frozenset({"OL"}),
}
_WIDTH_FORMS = ("FULLWIDTH", "HALFWIDTH")
_ALIASES = {"KATAKANA-HIRAGANA": "KATAKANA", "IDEOGRAPHIC": "CJK"}  # ー, 々


@functools.lru_cache(maxsize=8192)
def script_of(ch: str) -> str | None:
    """The script a letter is written in ("LATIN", "CJK", "HIRAGANA"...), None
    for anything that is not a letter."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    words = unicodedata.name(ch, "").split()
    if not words:
        return "UNKNOWN"
    first = words[1] if words[0] in _WIDTH_FORMS and len(words) > 1 else words[0]
    return _ALIASES.get(first, first)


def letter_scripts(text: str) -> Counter:
    """How many letters of ``text`` are in each script."""
    return Counter(s for s in map(script_of, text) if s is not None)


def code_script(lang: str) -> str:
    """The script part of a FLORES-200 code: "rus_Cyrl" -> "Cyrl"."""
    return lang.rpartition("_")[2]
