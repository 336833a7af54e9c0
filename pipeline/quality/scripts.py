"""Which writing system a text's letters are in.

A FLORES-200 code names its script (``rus_Cyrl``, ``zho_Hans``,
``arb_Arab``): the check compares the script of each letter of a
translation (Unicode letters only: digits, punctuation, symbols and
combining marks say nothing) with the scripts the code allows.

Two ways to tell, one fast and one exact. :func:`share_in_script` counts
with character classes of each script's Unicode blocks (``BLOCKS``), all in
C: that runs on every translation. :func:`script_of` names any letter's
script from its Unicode name ("CYRILLIC SMALL LETTER A", "CJK UNIFIED
IDEOGRAPH-4E2D"; Python's ``unicodedata`` has no script property): that
says which script a wrong translation is in.
"""

from __future__ import annotations

import functools
import re
import unicodedata

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
_HAN = "\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
_KANA = "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_HANGUL = "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uffa0-\uffdc"
# The Unicode blocks of each script's letters (what is not a letter in them,
# digits and punctuation, is removed before counting).
BLOCKS: dict[str, str] = {
    "Latn": "A-Za-z\u00aa\u00ba\u00c0-\u024f\u0250-\u02af\u1d00-\u1dbf\u1e00-\u1eff"
            "\u2c60-\u2c7f\ua720-\ua7ff\uab30-\uab6f\uff21-\uff3a\uff41-\uff5a",
    "Cyrl": "\u0400-\u052f\u1c80-\u1c8f\u2de0-\u2dff\ua640-\ua69f",
    "Arab": "\u0600-\u06ff\u0750-\u077f\u0870-\u08ff\ufb50-\ufdff\ufe70-\ufeff",
    "Hebr": "\u0590-\u05ff\ufb1d-\ufb4f", "Grek": "\u0370-\u03ff\u1f00-\u1fff",
    "Armn": "\u0530-\u058f\ufb13-\ufb17", "Geor": "\u10a0-\u10ff\u1c90-\u1cbf\u2d00-\u2d2f",
    "Ethi": "\u1200-\u139f\u2d80-\u2ddf\uab00-\uab2f",
    "Hans": _HAN, "Hant": _HAN, "Jpan": _HAN + _KANA, "Hang": _HANGUL + _HAN,
    "Deva": "\u0900-\u097f\ua8e0-\ua8ff", "Beng": "\u0980-\u09ff", "Guru": "\u0a00-\u0a7f",
    "Gujr": "\u0a80-\u0aff", "Orya": "\u0b00-\u0b7f", "Taml": "\u0b80-\u0bff",
    "Telu": "\u0c00-\u0c7f", "Knda": "\u0c80-\u0cff", "Mlym": "\u0d00-\u0d7f",
    "Sinh": "\u0d80-\u0dff", "Thai": "\u0e00-\u0e7f", "Laoo": "\u0e80-\u0eff",
    "Tibt": "\u0f00-\u0fff", "Mymr": "\u1000-\u109f\uaa60-\uaa7f",
    "Khmr": "\u1780-\u17ff\u19e0-\u19ff", "Tfng": "\u2d30-\u2d7f", "Olck": "\u1c50-\u1c7f",
}
_IN_BLOCKS = {code: re.compile(f"[{chars}]+") for code, chars in BLOCKS.items()}
_NOT_LETTER = re.compile(r"[\W\d_]+")
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


def letters_of(text: str) -> str:
    """The letters of ``text``: no digits, punctuation, symbols, spaces or
    combining marks."""
    return _NOT_LETTER.sub("", text)


def count_in(letters: str, script: str) -> int:
    """How many of ``letters`` are in FLORES script ``script`` ("Cyrl")."""
    pattern = _IN_BLOCKS.get(script)
    return len(letters) - len(pattern.sub("", letters)) if pattern else 0


def code_script(lang: str) -> str:
    """The script part of a FLORES-200 code: "rus_Cyrl" -> "Cyrl"."""
    return lang.rpartition("_")[2]
