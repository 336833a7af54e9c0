"""TMX 1.4, the format translation tools exchange memories in: written
from the memory, and read back strictly and safely.

Writing: one ``<tu>`` per unit with a ``<tuv>`` per language; ``xml:lang``
is a BCP 47 tag made from the FLORES-200 code (``eng_Latn`` -> ``en-Latn``,
``zho_Hant`` -> ``zh-Hant``, ``ace_Arab`` -> ``ace-Arab``: the ISO 639-1
code where FLORES has one for that language, then the script). Each unit
carries its key as ``x-nllb-*`` properties (model, identity, backend,
device, compute type, settings, FLORES codes), so an import files it under
exactly the scope it was made in; a unit delivered with a quality flag
carries its reason as ``x-nllb-flag``, and keeps it through an import. A carriage return is written as ``&#13;``
(a parser turns a literal one into a line feed); a unit with a character
XML 1.0 cannot hold (most C0 controls) is left out and counted.

Reading (``read_tmx``) accepts TMX 1.4 and 1.4b, refuses a file that
declares entities (the "billion laughs" expansion needs a declaration;
external entities are never fetched either), and reports the first
problem as ``FILE line N: what``. Inline markup (``<ph>``, ``<bpt>``...)
carries a tool's formatting codes, which a model never sees: a unit that has
any is skipped and counted, as is one with an empty segment.
"""

from __future__ import annotations

import os
import re
import time
import xml.parsers.expat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import InvalidInput
from pipeline.languages import FLORES_CODES, ISO639_1

VERSIONS = ("1.4", "1.4b")
INLINE = frozenset({"bpt", "ept", "it", "ph", "hi", "ut", "sub"})
PROP = "x-nllb-"  # our properties' prefix
_ISO2_OF = {code.split("_")[0]: iso for iso, code in ISO639_1.items()}  # zho -> zh
_ISO3_OF = {iso: code3 for code3, iso in _ISO2_OF.items()}
_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")
# (parent, child) pairs the reader passes over; the others it reads or refuses.
_ALLOWED = frozenset({("tmx", "body"), ("header", "prop"), ("header", "note"),
                      ("header", "ude"), ("ude", "map"), ("tu", "note"), ("tuv", "prop"),
                      ("tuv", "note")})
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class TmxError(InvalidInput):
    """A TMX file that cannot be imported; the message names file and line."""


# -- language codes ----------------------------------------------------------------


def language_tag(code: str) -> str:
    """The BCP 47 tag written for a FLORES-200 code."""
    language, script = code.split("_")
    return f"{_ISO2_OF.get(language, language)}-{script}"


def flores_for_tag(tag: str) -> str | None:
    """The FLORES-200 code a TMX language tag means, or None if it names
    none: a FLORES code itself, or a BCP 47 tag whose language (ISO 639-1 or
    -3) and script, if given, pick one (without a script: the language's
    usual one, as ``--src fr`` would suggest; ``zh-TW`` and ``zh-HK`` are
    Traditional Chinese)."""
    if tag in FLORES_CODES:
        return tag
    if not _TAG.match(tag):
        return None
    parts = re.split("[-_]", tag)
    language = _ISO3_OF.get(parts[0].lower(), parts[0].lower())
    script = next((p.title() for p in parts[1:] if len(p) == 4 and p.isalpha()), None)
    regions = {p.upper() for p in parts[1:] if len(p) == 2}
    if script is None and language == "zho" and regions & {"TW", "HK", "MO"}:
        script = "Hant"
    candidates = [c for c in FLORES_CODES if c.split("_")[0] == language
                  and (script is None or c.endswith("_" + script))]
    if len(candidates) > 1 and script is None:
        usual = ISO639_1.get(_ISO2_OF.get(language, ""))
        candidates = [usual] if usual in candidates else candidates[:1]
    return candidates[0] if len(candidates) == 1 else None


# -- writing -----------------------------------------------------------------------


@dataclass(frozen=True)
class TmxOut:
    """One unit to write."""

    src_lang: str  # FLORES-200 codes
    tgt_lang: str
    source: str
    translation: str
    props: dict[str, str]  # written as <prop type="x-nllb-KEY">
    created_at: float
    used_at: float
    uses: int


def write_tmx(path: Path, units: Iterable[TmxOut], *, tool_version: str) -> tuple[int, int]:
    """Write ``units`` as a TMX 1.4 file at ``path``, atomically (temp file,
    fsync, rename). Returns (written, left out: characters XML cannot hold)."""
    units = list(units)
    sources = {u.src_lang for u in units}
    srclang = language_tag(sources.pop()) if len(sources) == 1 else "*all*"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    written = left_out = 0
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write('<?xml version="1.0" encoding="UTF-8"?>\n<tmx version="1.4">\n')
            f.write(f'  <header creationtool="nllb-pipeline" creationtoolversion='
                    f'{_attr(tool_version)} segtype="sentence" o-tmf="nllb-pipeline" '
                    f'adminlang="en" srclang={_attr(srclang)} datatype="plaintext" '
                    f'creationdate="{_date(time.time())}"/>\n  <body>\n')
            for u in units:
                if _NOT_XML.search(u.source + u.translation + "".join(u.props.values())):
                    left_out += 1
                    continue
                f.write(f'    <tu srclang="{language_tag(u.src_lang)}" creationdate='
                        f'"{_date(u.created_at)}" lastusagedate="{_date(u.used_at)}" '
                        f'usagecount="{u.uses}">\n')
                for key, value in u.props.items():
                    f.write(f'      <prop type="{PROP}{key}">{_text(value)}</prop>\n')
                for code, text in ((u.src_lang, u.source), (u.tgt_lang, u.translation)):
                    f.write(f'      <tuv xml:lang="{language_tag(code)}"><seg>{_text(text)}'
                            f'</seg></tuv>\n')
                f.write("    </tu>\n")
                written += 1
            f.write("  </body>\n</tmx>\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return written, left_out


def _text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        "\r", "&#13;")


def _attr(s: str) -> str:
    return '"' + _text(s).replace('"', "&quot;").replace("\n", "&#10;").replace(
        "\t", "&#9;") + '"'


def _date(t: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


# -- reading -----------------------------------------------------------------------


@dataclass
class TmxUnit:
    """One ``<tu>`` as read: its variants as (tag, text, line)."""

    line: int
    props: dict[str, str] = field(default_factory=dict)  # x-nllb-* without the prefix
    variants: list[tuple[str, str, int]] = field(default_factory=list)
    inline: bool = False  # a segment held inline markup


@dataclass(frozen=True)
class TmxFile:
    srclang: str
    units: list[TmxUnit]


def read_tmx(path: Path) -> TmxFile:
    """Parse and check the structure of a TMX 1.4 file (module docstring);
    TmxError with the first problem, before anything is stored."""
    reader = _Reader(path)
    try:
        with open(path, "rb") as f:
            reader.parser.ParseFile(f)
    except OSError as exc:
        raise TmxError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except xml.parsers.expat.ExpatError as exc:
        raise TmxError(f"{path} line {exc.lineno}: not well-formed XML "
                       f"({xml.parsers.expat.errors.messages[exc.code]})") from None
    if reader.version is None:
        raise TmxError(f"{path}: no <tmx> element; not a TMX file")
    if reader.srclang is None:
        raise TmxError(f"{path}: no <header> with a srclang attribute")
    return TmxFile(reader.srclang, reader.units)


class _Reader:
    def __init__(self, path: Path):
        self.path = path
        self.version: str | None = None
        self.srclang: str | None = None
        self.units: list[TmxUnit] = []
        self.stack: list[str] = []
        self.unit: TmxUnit | None = None
        self.lang: str | None = None  # of the <tuv> being read
        self.seg: list[str] | None = None  # text of the <seg> being read
        self.prop: tuple[str, list[str]] | None = None  # (type, text) of a <tu>'s <prop>
        self.seen_seg = False
        p = self.parser = xml.parsers.expat.ParserCreate()
        p.buffer_text = True
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._chars
        p.EntityDeclHandler = self._entity
        p.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def _fail(self, what: str):
        raise TmxError(f"{self.path} line {self.parser.CurrentLineNumber}: {what}")

    def _entity(self, *args) -> None:
        self._fail("the file declares entities; a TMX file needs none, and they are refused")

    def _start(self, name: str, attrs: dict) -> None:
        parent = self.stack[-1] if self.stack else None
        self.stack.append(name)
        if parent is None:
            if name != "tmx":
                self._fail(f"the root element is <{name}>, not <tmx>; not a TMX file")
            self.version = attrs.get("version", "")
            if self.version not in VERSIONS:
                self._fail(f"TMX version {self.version or '(none)'!r}; this reads TMX 1.4")
        elif self.seg is not None:
            if name not in INLINE:
                self._fail(f"<{name}> inside <seg>")
            self.unit.inline = True
        elif name == "header" and parent == "tmx":
            self.srclang = attrs.get("srclang") or None
        elif name == "tu" and parent == "body":
            self.unit = TmxUnit(self.parser.CurrentLineNumber)
        elif name == "tuv" and parent == "tu":
            self.lang = attrs.get("xml:lang") or attrs.get("lang")
            if not self.lang:
                self._fail("<tuv> without xml:lang")
            self.seen_seg = False
        elif name == "seg" and parent == "tuv":
            if self.seen_seg:
                self._fail("<tuv> with two <seg>")
            self.seg, self.seen_seg = [], True
        elif name == "prop" and parent == "tu":
            self.prop = (attrs.get("type", ""), [])
        elif (parent, name) not in _ALLOWED:
            self._fail(f"<{name}> is not allowed inside <{parent}>")

    def _chars(self, data: str) -> None:
        if self.seg is not None and self.stack[-1] == "seg":
            self.seg.append(data)
        elif self.prop is not None:
            self.prop[1].append(data)

    def _end(self, name: str) -> None:
        self.stack.pop()
        if self.seg is not None and name == "seg":
            self.unit.variants.append((self.lang, "".join(self.seg), self.parser.CurrentLineNumber))
            self.seg = None
        elif name == "tuv" and self.seg is None and not self.seen_seg:
            self._fail("<tuv> without <seg>")
        elif name == "prop" and self.prop is not None:
            kind, text = self.prop
            if kind.startswith(PROP):
                self.unit.props[kind[len(PROP):]] = "".join(text)
            self.prop = None
        elif name == "tu" and self.unit is not None:
            if not self.unit.variants:
                self._fail("<tu> without <tuv>")
            self.units.append(self.unit)
            self.unit = None
        elif name == "body" and self.srclang is None:
            self._fail("no <header> with a srclang attribute before <body>")
