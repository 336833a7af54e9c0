"""gettext catalogues (.po, .pot): each msgid translated into its msgstr.

Read with ``polib``. Every entry keeps its translator and extracted
comments, references, flags, ``msgctxt``, previous msgids, and the obsolete
(``#~``) entries stay. An entry that is not translated is copied byte for
byte; the header and the entries that are translated are written by polib
(their long strings wrapped at 78 columns, maybe at other spaces than the
input's). Where the file is not one entry per blank-line-separated block
(entries with no blank line between them, a comment on its own), polib
writes the whole file instead. No entry, comment or string changes but the
ones below.

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
# and an "&" accelerator (not an entity such as &amp;). No space flag: "100% sure"
# is prose, not "% s".
PLACEHOLDERS = re.compile(
    r"%%|%(?:\d+\$|\([^()\s]{1,64}\))?[-+#0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?"
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
    changed: set[int] = set()  # entries translated, by their place in the catalogue
    for k, entry in enumerate(catalogue):
        if entry.obsolete or not entry.msgid:
            continue
        translated = bool(entry.msgstr) or any(entry.msgstr_plural.values())
        if translated and not options.overwrite_translated:
            continue
        changed.add(k)
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
    written = _written(text, catalogue, changed)
    pos = 0
    for m in _SENTINELS.finditer(written):
        doc.add_literal(written[pos:m.start()])
        doc.add_json_string(sources[int(m.group(1))], segments=segments)
        pos = m.end()
    doc.add_literal(written[pos:])
    doc.notes += notes
    return doc


_ENTRY = re.compile(r"^(?:#~\s*)?msgid\s", re.MULTILINE)
_BLANK_LINES = re.compile(r"(\n(?:[ \t]*\n)+)")


def _written(text: str, catalogue: polib.POFile, changed: set[int]) -> str:
    """The output: the input's blocks (an entry and its comments, up to a
    blank line) as they were, the header's and the changed entries' written
    by polib; all of it by polib where blocks and entries do not pair up."""
    pieces = _BLANK_LINES.split(text)
    blocks = pieces[0::2]
    entries = [k for k, block in enumerate(blocks) if _ENTRY.search(block)]
    stray = any(block.strip() and k not in entries for k, block in enumerate(blocks))
    if stray or len(entries) != len(catalogue) + 1 or 'msgid ""' not in blocks[entries[0]]:
        written = str(catalogue)
        return written if written.endswith("\n") else written + "\n"
    header = polib.POFile(wrapwidth=catalogue.wrapwidth)
    header.header, header.metadata = catalogue.header, catalogue.metadata
    header.metadata_is_fuzzy = catalogue.metadata_is_fuzzy
    out = []
    for k, block in enumerate(blocks):
        tail = "\n" if block.endswith("\n") else ""
        if k == entries[0]:
            block = str(header).rstrip("\n") + tail
        elif k in entries and entries.index(k) - 1 in changed:
            block = _spliced(block.rstrip("\n"), catalogue[entries.index(k) - 1],
                             catalogue.wrapwidth) + tail
        out.append(block)
        if 2 * k + 1 < len(pieces):
            out.append(pieces[2 * k + 1])
    written = "".join(out)
    return written if written.endswith("\n") else written + "\n"


def _spliced(block: str, entry: polib.POEntry, wrapwidth: int) -> str:
    """An entry's block as the input wrote it, with its new flags line and
    msgstr lines (polib's) in place of the old: its msgid keeps its wrapping."""
    lines = block.split("\n")
    new = entry.__unicode__(wrapwidth).rstrip("\n").split("\n")
    first = next((k for k, line in enumerate(lines) if line.startswith("msgstr")), None)
    if first is None:  # an entry polib read without a msgstr: polib writes it whole
        return "\n".join(new)
    lines[first:] = new[next(k for k, line in enumerate(new) if line.startswith("msgstr")):]
    flags = "#, " + ", ".join(entry.flags)
    at = next((k for k, line in enumerate(lines) if line.startswith("#,")), None)
    if at is not None:
        lines[at] = flags
    elif entry.flags:
        lines.insert(next(k for k, line in enumerate(lines)
                          if line.startswith(("#|", "msgctxt", "msgid"))), flags)
    return "\n".join(lines)


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
