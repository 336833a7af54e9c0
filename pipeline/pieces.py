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
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.formats.linebreaks import is_cjk
from pipeline.protect import PLACEHOLDER
from pipeline.segment import clause_atoms, graphemes

# A clause shorter than this (letters; a CJK character counts 3) is joined to
# its neighbour: "Yes," alone translates worse than "Yes, sir,".
MIN_PIECE_LETTERS = 12


@dataclass(frozen=True)
class Piece:
    text: str
    translate: bool  # False: copied as it is (whitespace, placeholders, punctuation)


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
