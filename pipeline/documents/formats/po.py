"""gettext catalogues (.po, .pot): each msgid translated into its msgstr.

Read and written with ``polib``: every entry, in order, with its translator
and extracted comments, references, flags, ``msgctxt``, previous msgids and
the obsolete (``#~``) entries at the end, as gettext keeps them. polib
writes the file itself, so a long string may be wrapped at other spaces
than the input's (78 columns; ``msgcat`` re-wraps it gettext's way); no
entry, comment or string changes but the ones below.

- An entry without a translation gets one: ``msgid`` into ``msgstr``, or,
  with ``msgid_plural``, every ``msgstr[n]`` the target language has (form
  0 from the singular where the language uses form 0 for one alone, every
  other form from the plural). An entry that has a msgstr already (fuzzy or
  not) is left alone, unless ``overwrite_translated``. Obsolete entries and
  the header are never translated.
- Machine translations are marked ``fuzzy`` (a translator reviews them;
  ``msgfmt`` leaves fuzzy entries out of the compiled catalogue), unless
  ``fuzzy`` is off.
- Format directives (``%s``, ``%(name)d``, ``%1$s``, ``{name}``, ``{0}``)
  and ``&`` accelerators travel as placeholders with their sentence and
  come back exactly.
- The header: ``Language`` is set to the target's gettext code
  (``fr``, ``zh_TW``); ``Plural-Forms`` to the target's rule
  (``plurals.py``). Where the table does not know the target: the header's
  own rule is kept if the catalogue is already in that language, else
  ``nplurals=2; plural=(n != 1);`` is written and a note says so. A
  template's ``charset=CHARSET`` becomes UTF-8 (the output is UTF-8) and its
  header loses the fuzzy flag, as ``msginit`` does.
- Strings are paragraphs as in JSON Lines: each paragraph (up to a blank
  line) a unit; leading and trailing line breaks stay where they were (what
  ``msgfmt -c`` checks), line breaks inside a paragraph become spaces.

A catalogue is one slice: polib reads a whole text.
"""

from __future__ import annotations

import re

import polib

from pipeline.documents.document import Document
from pipeline.documents.formats.plurals import (
    PluralRule, count_of, gettext_language, plural_rule)
from pipeline.documents.protect import Protected
from pipeline.errors import InvalidInput

_SENTINEL = "\x01{}\x01"
_SENTINELS = re.compile("\x01(\\d+)\x01")
# printf (C, Python %-format, positional %1$s) and brace (Python, C#) directives,
# and an "&" accelerator (not an entity such as &amp;).
PLACEHOLDERS = re.compile(
    r"%%|%(?:\d+\$|\([^()\s]{1,64}\))?[-+ #0']*(?:\d+|\*)?(?:\.(?:\d+|\*))?"
    r"(?:hh|h|ll|l|L|q|j|z|t|I64|I32)?[diouxXeEfFgGaAcsrp]"
    r"|\{\{|\}\}|\{[\w.\[\]]{0,64}(?:![rsa])?(?::[^{}\s]{0,32})?\}"
    r"|&(?![A-Za-z][A-Za-z0-9]*;|#\d+;|#x[0-9A-Fa-f]+;)(?=\w)")


def segments(text: str) -> list[str | Protected]:
    """``text`` as prose and its placeholders (``PLACEHOLDERS``)."""
    out: list[str | Protected] = []
    pos = 0
    for m in PLACEHOLDERS.finditer(text):
        out += [text[pos:m.start()], Protected(m.group())]
        pos = m.end()
    return out + [text[pos:]]


def parse_po(text: str, options) -> Document:
    try:
        catalogue = polib.pofile(text, wrapwidth=78)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"not a gettext catalogue: {exc}") from None
    notes: list[str] = []
    rule = _header(catalogue, options.tgt_lang, notes)
    sources: list[str] = []
    for entry in catalogue:
        if entry.obsolete or not entry.msgid:
            continue
        translated = bool(entry.msgstr) or any(entry.msgstr_plural.values())
        if translated and not options.overwrite_translated:
            continue
        if options.fuzzy and "fuzzy" not in entry.flags:
            entry.flags.insert(0, "fuzzy")
        if entry.msgid_plural:
            same = _directives(entry.msgid) == _directives(entry.msgid_plural)
            singular = entry.msgid if rule.singular_alone or (same and rule.count > 1) \
                else entry.msgid_plural
            forms = [singular] + [entry.msgid_plural] * (rule.count - 1)
            entry.msgstr_plural = {}
            for n, source in enumerate(forms):
                entry.msgstr_plural[n] = _SENTINEL.format(len(sources))
                sources.append(source)
        else:
            entry.msgstr = _SENTINEL.format(len(sources))
            sources.append(entry.msgid)
    doc = Document()
    written = str(catalogue)
    if not written.endswith("\n"):
        written += "\n"
    pos = 0
    for m in _SENTINELS.finditer(written):
        doc.add_literal(written[pos:m.start()])
        doc.add_json_string(sources[int(m.group(1))], segments=segments)
        pos = m.end()
    doc.add_literal(written[pos:])
    doc.notes += notes
    return doc


def _directives(text: str) -> list[str]:
    return sorted(m.group() for m in PLACEHOLDERS.finditer(text) if m.group()[0] in "%{")


def _header(catalogue: polib.POFile, tgt_lang: str, notes: list[str]) -> PluralRule:
    """Set the header for the target language; the plural rule to write."""
    meta = catalogue.metadata
    language = gettext_language(tgt_lang) if tgt_lang else meta.get("Language", "")
    rule = plural_rule(tgt_lang) if tgt_lang else None
    if rule is None:
        own = meta.get("Plural-Forms", "")
        same = meta.get("Language", "").split("_")[0] == language.split("_")[0]
        if same and count_of(own):
            rule = PluralRule(own, count_of(own), False)
        else:
            rule = PluralRule("nplurals=2; plural=(n != 1);", 2, True)
            if any(e.msgid_plural for e in catalogue if not e.obsolete):
                notes.append(f"the plural rule of {tgt_lang} is not known: wrote two plural "
                             f"forms with the rule {rule.header!r}; check Plural-Forms in the "
                             "header")
    if tgt_lang:
        meta["Language"] = language
    meta["Plural-Forms"] = rule.header
    content_type = meta.get("Content-Type", "")
    if "charset=" not in content_type or "charset=CHARSET" in content_type:
        meta["Content-Type"] = "text/plain; charset=UTF-8"
    elif "utf-8" not in content_type.lower():
        meta["Content-Type"] = re.sub(r"charset=\S+", "charset=UTF-8", content_type)
    catalogue.metadata_is_fuzzy = False
    return rule
