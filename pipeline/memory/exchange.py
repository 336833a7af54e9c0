"""The verbs behind ``nllb-pipeline tm``: what the memory holds, TMX export
and import, and pruning. Like ``pipeline.service`` they take typed
parameters and return records; the CLI only parses and renders.

An import never leaves the store half-changed: the whole file is read and
checked first (``pipeline.memory.tmx``), then every unit goes in one
transaction. A unit the file marks with our ``x-nllb-*`` properties is filed
under exactly the scope it names, with exactly its texts, after checking
that it is the model the import names; a unit from another tool (its
source NFC-normalised and stripped, as preprocess makes chunks) is filed under the scope of the named
model as this machine would run it (backend, device kind, compute type) with
the import's output settings: the translation then stands for what that
model would have produced, which is the importer's decision to make.
"""

from __future__ import annotations

from collections.abc import Callable

import json
import math
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.errors import InvalidInput
from pipeline.memory.scope import MemoryScope, canonical_settings
from pipeline.memory.tmx import TmxError, TmxOut, TmxUnit, flores_for_tag, read_tmx, write_tmx
from pipeline.store import Store

DAY_S = 86_400.0
_PROPS = {"identity": "identity", "backend": "backend", "device": "device",
          "compute-type": "compute_type", "settings": "settings", "src": "src_lang",
          "tgt": "tgt_lang"}  # x-nllb-KEY -> MemoryScope field (model is optional)


@dataclass(frozen=True)
class ExportReport:
    path: str
    units: int  # written
    left_out: int  # holding characters XML 1.0 cannot carry


@dataclass(frozen=True)
class ImportReport:
    path: str
    units: int  # units in the file
    added: int
    same: int  # already in the memory, same translation
    replaced: int  # already there with another translation, replaced (--replace)
    kept: int  # already there with another translation, kept
    skipped_markup: int  # inline markup: formatting codes a model never sees
    skipped_empty: int


def memory_stats(store: Store) -> dict:
    """Units per scope, and how many stored chunks were reused."""
    scopes = [{**asdict(s.scope), "settings": json.loads(s.scope.settings), "units": s.units,
               "imported": s.imported, "uses": s.uses, "last_used_at": s.last_used_at}
              for s in store.memory_summary()]
    chunks, memory, document = store.reuse_in_window(-math.inf)
    return {"units": sum(s["units"] for s in scopes), "scopes": scopes,
            "stored_chunks": {"total": chunks, "reused_from_memory": memory,
                              "reused_in_document": document}}


def export_tmx(store: Store, path: Path, *, src_lang: str | None = None,
               tgt_lang: str | None = None, model: str | None = None,
               tool_version: str = "0") -> ExportReport:
    """Write the memory (or one pair's or one model's part of it) as TMX 1.4."""
    units = (
        TmxOut(e.scope.src_lang, e.scope.tgt_lang, e.source, e.translation,
               _props(e.scope, e.origin, e.flag), e.created_at, e.used_at, e.uses)
        for e in store.memory_entries(src_lang=src_lang, tgt_lang=tgt_lang, model=model))
    written, left_out = write_tmx(path, units, tool_version=tool_version)
    return ExportReport(str(path), written, left_out)


def import_tmx(store: Store, path: Path, scope: MemoryScope | Callable[[], MemoryScope], *,
               src: str | None = None, tgt: str | None = None,
               replace: bool = False) -> ImportReport:
    """Import a TMX file's units of ``scope``'s language pair; units without
    our properties are filed under ``scope``. Raises TmxError (one line,
    exit code 2) for the first unit of another pair, an unknown language
    code, a unit made by another model, or a malformed file; then nothing
    is stored. ``scope`` may be a function, called (with ``src`` and ``tgt``
    given) only once the file has been read and checked: building it may
    load or convert a model, which a bad file should not cost."""
    if callable(scope):
        make_scope = scope
    else:
        src, tgt = scope.src_lang, scope.tgt_lang

        def make_scope() -> MemoryScope:
            return scope
    pair = f"{src} -> {tgt}"
    if src == tgt:
        raise InvalidInput(f"an import needs two languages, not {pair}")
    tmx = read_tmx(path)
    if tmx.srclang != "*all*":
        code = flores_for_tag(tmx.srclang)
        if code is None:
            raise TmxError(f"{path}: unknown language code {tmx.srclang!r} in <header srclang>")
        if code != src:
            raise TmxError(f"{path}: the file's source language is {tmx.srclang} ({code}), "
                           f"not {src}: another language pair than {pair}")
    texts_of, markup, empty = [], 0, 0
    for unit in tmx.units:
        texts = _variants(unit, path, src, tgt)
        if unit.inline:
            markup += 1
            continue
        source, translation = texts[src], texts[tgt]
        if not unit.props:  # another tool's segment: as preprocess would make the chunk
            source = unicodedata.normalize("NFC", source).strip()
        if not source.strip() or not translation.strip():
            empty += 1
            continue
        texts_of.append((unit, source, translation))
    base = make_scope()
    entries = [(_unit_scope(unit, path, base), source, translation, unit.props.get("flag"),
                "human" if unit.props.get("origin") == "human" else "imported")
               for unit, source, translation in texts_of]
    done = store.import_memory(entries, replace=replace)
    return ImportReport(str(path), len(tmx.units), done.added, done.same, done.replaced,
                        done.kept, markup, empty)


def prune(store: Store, older_than_days: float) -> int:
    """Drop units neither stored nor reused for this many days. Returns how many."""
    if not (math.isfinite(older_than_days) and older_than_days >= 0):
        raise InvalidInput("--older-than takes a finite number of days >= 0")
    return store.prune_memory(older_than_days * DAY_S)


# -- helpers --------------------------------------------------------------------------


def _props(scope: MemoryScope, origin: str, flag: str | None) -> dict[str, str]:
    values = asdict(scope)
    props = {"model": scope.model}
    props.update({key: values[name] for key, name in _PROPS.items()})
    props["origin"] = origin
    if flag:
        props["flag"] = flag  # delivered with a quality flag: its reason
    return props


def _variants(unit: TmxUnit, path: Path, src: str, tgt: str) -> dict[str, str]:
    """{FLORES code: text} of a unit that holds exactly the pair's two."""
    texts: dict[str, str] = {}
    for tag, text, line in unit.variants:
        code = flores_for_tag(tag)
        if code is None:
            raise TmxError(f"{path} line {line}: unknown language code {tag!r}")
        if code not in (src, tgt):
            raise TmxError(f"{path} line {line}: a {tag} ({code}) variant: another language "
                           f"pair than {src} -> {tgt}")
        if code in texts:
            raise TmxError(f"{path} line {line}: a second {code} variant in one unit")
        texts[code] = text
    for code in (src, tgt):
        if code not in texts:
            raise TmxError(f"{path} line {unit.line}: a unit without a {code} variant")
    return texts


def _unit_scope(unit: TmxUnit, path: Path, scope: MemoryScope) -> MemoryScope:
    """The scope a unit's ``x-nllb-*`` properties name, or ``scope`` if it has none."""
    if not unit.props:
        return scope
    missing = [f"x-nllb-{key}" for key in _PROPS if key not in unit.props]
    if missing:
        raise TmxError(f"{path} line {unit.line}: nllb-pipeline properties without "
                       f"{', '.join(missing)}")
    fields = {name: unit.props[key] for key, name in _PROPS.items()}
    try:
        settings = json.loads(fields["settings"])
        if not isinstance(settings, dict):
            raise ValueError
    except ValueError:
        raise TmxError(f"{path} line {unit.line}: x-nllb-settings is not a JSON object") from None
    fields["settings"] = canonical_settings(settings)
    named = MemoryScope(**fields, model=unit.props.get("model", ""))
    if (named.src_lang, named.tgt_lang) != (scope.src_lang, scope.tgt_lang):
        raise TmxError(f"{path} line {unit.line}: a unit of {named.src_lang} -> "
                       f"{named.tgt_lang}: another language pair than {scope.src_lang} -> "
                       f"{scope.tgt_lang}")
    if named.identity != scope.identity:
        raise TmxError(f"{path} line {unit.line}: made by {named.identity}, not by the model "
                       f"--model names ({scope.identity})")
    return named
