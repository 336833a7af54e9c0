"""Pieces: a chunk translated as several smaller chunks and joined back.

One mechanism serves three needs:

- the placeholder fallback: a translation lost or mangled a placeholder, so
  the chunk is translated again as the *fragments* between its protected
  pieces (the way inline markup was always cut before placeholders), and
  the protected pieces are copied between their translations;
- the repair ladder's split (``pipeline.quality.ladder``): a chunk whose
  translation still fails the quality checks after a guarded decode is
  translated clause by clause;
- a sentence that runs out of memory on its own is split the same way.

Replacing is a store write (``Store.commit_checked``): in the transaction
that commits the batch, the chunk becomes ``replaced`` and its pieces are
new chunk rows with ``parent`` set, pending like any chunk, so inference
plans them into ordinary batches and a killed process resumes them like any
others. A piece that is copied (whitespace, a placeholder, punctuation) is
a row already ``done`` with no tokens. Postprocess joins a replaced chunk's
pieces in order. Pieces never hold a placeholder (they are cut at every
one), so their own translations cannot lose one.

Every function here is lossless: the pieces' texts join to the source.

Once all of a replaced chunk's pieces are done, :func:`joined` makes their
texts one translation of the chunk, in the chunk's own placeholder form:
what the translation memory keeps for it (``pipeline.store.memory``), so a
later job delivers the same bytes without translating it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.documents import protect
from pipeline.documents.formats.linebreaks import is_cjk
from pipeline.documents.protect import PLACEHOLDER
from pipeline.documents.segment import clause_atoms, graphemes

# A clause shorter than this (letters; a CJK character counts 3) is joined to
# its neighbour: "Yes," alone translates worse than "Yes, sir,".
MIN_PIECE_LETTERS = 12


@dataclass(frozen=True)
class Piece:
    text: str
    translate: bool  # False: copied as it is (whitespace, placeholders, punctuation)


def clean_translation(translation: str, source: str) -> tuple[str, bool]:
    """One line of text for one chunk; (text, used_source).

    A model can return an empty string (only special tokens): keeping the
    source is better than a hole that silently merges paragraphs. Line
    breaks inside a translation would create paragraphs the input lacks.
    """
    text = " ".join(translation.split())
    return (text, False) if text else (source, True)


def joined(parts: Sequence[tuple[str, bool]], spec: Sequence[Sequence]) -> str | None:
    """A replaced chunk's pieces as one translation of it, in its own
    placeholder form, or None where that text would not give the bytes the
    pieces give.

    ``parts``: per piece in order, what it delivers before placeholders are
    restored (a copied piece's source, a translation after
    :func:`clean_translation`, a replaced piece's own ``joined``) and
    whether it carries the chunk's placeholders (``spec``). Postprocess
    restores a done chunk's translation whole and a replaced chunk's pieces
    one by one; the joined text is kept only where the two agree: not where
    a piece's translation wrote a ``[2]`` of its own (whole, it would become
    a placeholder) or a copied piece holds a run of spaces (whole, it would
    be cleaned to one)."""
    text, _ = clean_translation("".join(t for t, _ in parts), "")
    if not text or protect.check(text, spec):
        return None
    whole = protect.restore(text, spec)
    piecewise = "".join(protect.restore(t, spec if carries else []) for t, carries in parts)
    return text if whole == piecewise else None


def fragments(source: str) -> list[Piece] | None:
    """``source`` cut at its placeholders: the fragments between them to
    translate, the placeholders and the space around them copied. None if
    there is nothing to cut."""
    pieces = _pieces(_at_placeholders(source))
    return pieces if _cut(pieces, source) else None


def split(source: str) -> list[Piece] | None:
    """``source`` cut at its placeholders and its clause boundaries, short
    clauses joined to a neighbour; a single clause is cut in two at the
    space nearest its middle (between two characters where the script has
    no spaces). None if it cannot be cut."""
    atoms = []
    for part in _at_placeholders(source):
        atoms.extend([part] if PLACEHOLDER.fullmatch(part) else _joined(clause_atoms(part)))
    pieces = _pieces(atoms)
    if sum(p.translate for p in pieces) < 2:
        atoms = []
        for part in _at_placeholders(source):
            atoms.extend([part] if PLACEHOLDER.fullmatch(part) else _halves(part))
        pieces = _pieces(atoms)
    return pieces if _cut(pieces, source) else None


def _cut(pieces: list[Piece], source: str) -> bool:
    """The pieces say something the whole did not: two or more parts, at
    least one to translate."""
    return len(pieces) > 1 and any(p.translate for p in pieces) and (
        "".join(p.text for p in pieces) == source)


def _at_placeholders(text: str) -> list[str]:
    parts, pos = [], 0
    for m in PLACEHOLDER.finditer(text):
        parts += [text[pos : m.start()], m.group()]
        pos = m.end()
    parts.append(text[pos:])
    return [p for p in parts if p]


def _letters(text: str) -> int:
    return sum(3 if is_cjk(ch) else 1 for ch in text if ch.isalpha())


def _joined(atoms: list[str]) -> list[str]:
    """Short clauses joined to the one before (the first to the one after)."""
    out: list[str] = []
    for atom in atoms:
        if out and (_letters(atom) < MIN_PIECE_LETTERS or _letters(out[-1]) < MIN_PIECE_LETTERS):
            out[-1] += atom
        else:
            out.append(atom)
    return out


def _halves(text: str) -> list[str]:
    core = text.strip()
    if _letters(core) < 2 * MIN_PIECE_LETTERS:
        return [text]
    middle = len(text) / 2
    spaces = [i for i, ch in enumerate(text) if ch.isspace() and text[:i].strip()
              and text[i:].strip()]
    if spaces:
        at = min(spaces, key=lambda i: abs(i - middle))
        while at < len(text) and text[at].isspace():
            at += 1  # the space stays with the first half
        return [text[:at], text[at:]]
    clusters = graphemes(text)
    half = len(clusters) // 2
    return ["".join(clusters[:half]), "".join(clusters[half:])]


def _pieces(atoms: list[str]) -> list[Piece]:
    """Each atom as its space (copied), its core (translated if it has
    letters, else copied) and its trailing space; neighbouring copies joined."""
    out: list[Piece] = []

    def add(text: str, translate: bool) -> None:
        if not text:
            return
        if not translate and out and not out[-1].translate:
            out[-1] = Piece(out[-1].text + text, False)
        else:
            out.append(Piece(text, translate))

    for atom in atoms:
        core = atom.strip()
        if not core:
            add(atom, False)
            continue
        start = atom.index(core[0])
        add(atom[:start], False)
        add(core, not PLACEHOLDER.fullmatch(core) and any(ch.isalpha() for ch in core))
        add(atom[start + len(core) :], False)
    return out
