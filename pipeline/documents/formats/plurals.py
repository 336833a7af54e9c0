"""gettext's Language code and Plural-Forms rule for a target language.

The rules are the ones the GNU gettext manual lists ("Plural forms") and
that translation teams use in their catalogues; a language missing here gets
none (``plural_rule`` returns None) and the catalogue's own header decides
(``pipeline.documents.formats.po``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.languages import iso639_1

_ONE_FORM = "nplurals=1; plural=0;"
_NOT_ONE = "nplurals=2; plural=(n != 1);"
_OVER_ONE = "nplurals=2; plural=(n > 1);"
_EAST_SLAVIC = ("nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
                "(n%100<10 || n%100>=20) ? 1 : 2);")

# Language (ISO 639-1, else the FLORES code's ISO 639-3 part) -> (rule, whether
# form 0 is used for n == 1 alone).
_RULES: dict[str, tuple[str, bool]] = {
    **{lang: (_ONE_FORM, False) for lang in (
        "zh", "ja", "ko", "vi", "th", "id", "ms", "km", "lo", "my", "bod", "dz", "jv", "su")},
    **{lang: (_NOT_ONE, True) for lang in (
        "en", "de", "nl", "sv", "da", "no", "nb", "nn", "fi", "et", "el", "hu", "it", "es",
        "ca", "gl", "eu", "bg", "af", "sw", "hi", "bn", "ur", "ta", "te", "mr", "gu", "kn",
        "ml", "pa", "ne", "si", "so", "sq", "tr", "az", "kk", "ky", "uz", "mn", "ka", "hy",
        "he", "fa", "ps", "eo", "fo", "is", "lb", "ha", "yo", "zu", "xh", "ast", "oci", "fur")},
    **{lang: (_OVER_ONE, False) for lang in ("fr", "pt", "tl", "ln", "mg", "ak", "tg", "wa")},
    **{lang: (_EAST_SLAVIC, False) for lang in ("ru", "uk", "be", "sr", "hr", "bs")},
    "pl": ("nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) "
           "? 1 : 2);", True),
    "cs": ("nplurals=3; plural=(n==1) ? 0 : (n>=2 && n<=4) ? 1 : 2;", True),
    "sk": ("nplurals=3; plural=(n==1) ? 0 : (n>=2 && n<=4) ? 1 : 2;", True),
    "ro": ("nplurals=3; plural=(n==1 ? 0 : (n==0 || (n%100 > 0 && n%100 < 20)) ? 1 : 2);",
           True),
    "lt": ("nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && (n%100<10 || "
           "n%100>=20) ? 1 : 2);", False),
    "lv": ("nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n != 0 ? 1 : 2);", False),
    "sl": ("nplurals=4; plural=(n%100==1 ? 0 : n%100==2 ? 1 : n%100==3 || n%100==4 ? 2 : 3);",
           False),
    "ga": ("nplurals=5; plural=(n==1 ? 0 : n==2 ? 1 : n<7 ? 2 : n<11 ? 3 : 4);", True),
    "cy": ("nplurals=4; plural=(n==1) ? 0 : (n==2) ? 1 : (n != 8 && n != 11) ? 2 : 3;", True),
    "mt": ("nplurals=4; plural=(n==1 ? 0 : n==0 || ( n%100>1 && n%100<11) ? 1 : "
           "(n%100>10 && n%100<20 ) ? 2 : 3);", True),
    "mk": ("nplurals=2; plural=(n % 10 == 1 && n % 100 != 11) ? 0 : 1;", False),
    "ar": ("nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 "
           ": n%100>=11 ? 4 : 5);", False),
}
_REGIONS = {"zho_Hans": "zh_CN", "zho_Hant": "zh_TW"}


@dataclass(frozen=True)
class PluralRule:
    header: str  # the Plural-Forms value
    count: int  # nplurals
    singular_alone: bool  # form 0 is for n == 1 only: the singular msgid translates it


def gettext_language(code: str) -> str:
    """The Language header for a FLORES-200 code: fra_Latn -> fr, zho_Hant -> zh_TW,
    a language without a two-letter code -> its three letters (ast_Latn -> ast)."""
    return _REGIONS.get(code, iso639_1(code))


def plural_rule(code: str) -> PluralRule | None:
    """The target's rule, or None where this table does not know it."""
    lang = iso639_1(code)
    if code.startswith("arb") or code.startswith(("ars", "ary", "arz", "acm", "apc", "ajp")):
        lang = "ar"
    found = _RULES.get(lang)
    if found is None:
        return None
    return PluralRule(found[0], count_of(found[0]), found[1])


def count_of(header: str) -> int:
    """nplurals of a Plural-Forms value; 0 when it has none (a template's
    ``nplurals=INTEGER``)."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip() == "nplurals":
            return int(value) if value.strip().isdigit() and int(value) > 0 else 0
    return 0
