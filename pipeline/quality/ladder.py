"""The repair ladder: what becomes of a translation before its batch commits.

Every translation of a batch is judged before the batch is committed
(:meth:`Judge.verdicts`), first its placeholders, then (unless ``--quality
off``) its quality (``pipeline.quality.checks``). A translation that passes
is accepted. One that fails climbs the ladder, one rung per decode, each
rung an attempt row (class QUALITY, its reason) in the commit's
transaction:

====  =====================================  =============================
rung  decoded with                           if it fails (``repair``)
====  =====================================  =============================
0     the job's settings                     decode again, guarded (rung 1)
1     a repetition guard (``GUARD``)         split at clause boundaries;
                                             the pieces go to rung 2
2     the guard, a piece of a split chunk    accept it with a flag
====  =====================================  =============================

A chunk that cannot be split is flagged at rung 1. ``--quality flag``
accepts every failing translation with a flag at once; ``off`` skips the
checks. Placeholders are checked whatever the mode: a chunk whose
placeholders did not survive is replaced by its fragments
(``pipeline.documents.pieces``) at its own rung, without placeholders, so that can
happen once per chunk. Each rung is a new chunk row (a guarded copy, or
pieces), so every chunk is committed once, and the ladder ends: at most a
decode, a guarded decode and the pieces' guarded decodes per sentence.

Every rung's decoding settings are fixed and each chunk keeps its own
output budget, so a translation still depends only on the model, the
languages, the job's settings and the sentence, never on its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pipeline.documents import pieces, protect
from pipeline.quality.checks import DEFAULT_THRESHOLDS, Thresholds, inspect
from pipeline.store import Chunk, NewPiece
from pipeline.translator import Decoding, Translation

MODES = ("repair", "flag", "off")
PLAIN, GUARDED, PIECE = 0, 1, 2
# The guard of rungs 1 and 2: no 4-gram of tokens twice (a loop cannot
# restart) and a mild penalty on tokens already written. 3-grams would forbid
# too much that is legitimate in a long sentence ("of the ... of the").
GUARD = {"no_repeat_ngram_size": 4, "repetition_penalty": 1.1}
_SNIPPET = 120


def decoding(rung: int, beams: int, budget: int) -> Decoding:
    """The decoding of a chunk at ``rung`` with its own output ``budget``."""
    if rung <= PLAIN:
        return Decoding(beams=beams, max_new_tokens=budget)
    return Decoding(beams=beams, max_new_tokens=budget, **GUARD)


def settings(mode: str, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> dict:
    """What of the quality settings decides a job's output."""
    return {"quality": mode, "guard": dict(GUARD), "thresholds": thresholds.as_dict()}


@dataclass
class Verdicts:
    """What to commit for one batch (``Store.commit_checked``)."""

    accepted: dict[int, str] = field(default_factory=dict)  # chunk -> translation
    flags: dict[int, str] = field(default_factory=dict)  # accepted chunk -> reason
    replaced: dict[int, list[NewPiece]] = field(default_factory=dict)
    attempts: list[dict] = field(default_factory=list)  # record_attempt keyword arguments


class Judge:
    """Judges a batch's translations for one job."""

    def __init__(self, *, mode: str, src_lang: str, tgt_lang: str,
                 count_tokens: Callable[[list[str]], list[int]],
                 thresholds: Thresholds = DEFAULT_THRESHOLDS):
        if mode not in MODES:
            raise ValueError(f"unknown quality mode {mode!r}")
        self.mode, self.src_lang, self.tgt_lang = mode, src_lang, tgt_lang
        self.count_tokens, self.thresholds = count_tokens, thresholds

    def verdicts(self, chunks: Sequence[Chunk], translations: Sequence[Translation],
                 budget: int) -> Verdicts:
        out = Verdicts()
        cuts: dict[int, tuple[Chunk, list[pieces.Piece], int]] = {}
        for chunk, translation in zip(chunks, translations):
            self._judge(out, cuts, chunk, translation, budget)
        out.replaced = self._rows(cuts)  # the pieces' tokens, counted in one call
        return out

    def split_pieces(self, chunk: Chunk) -> list[NewPiece] | None:
        """``chunk`` split at clause boundaries (or in two), at its own rung:
        what a sentence too large for memory on its own becomes."""
        cut = pieces.split(chunk.source)
        return self._rows({chunk.idx: (chunk, cut, chunk.rung)})[chunk.idx] if cut else None

    def _judge(self, out: Verdicts, cuts: dict, chunk: Chunk, translation: Translation,
               budget: int) -> None:
        text = translation.text
        spec = protect.load_spec(chunk.protected)
        problem = protect.check(text, spec)
        if problem:
            cut = pieces.fragments(chunk.source)
            if cut:
                self._replace(out, cuts, chunk, cut, chunk.rung, "placeholders", problem,
                              "fragments", text)
            else:  # cannot happen for a chunk with placeholders; keep its source whole
                self._flag(out, chunk, chunk.source, "placeholders", problem, text)
            return
        if self.mode == "off":
            out.accepted[chunk.idx] = text
            return
        findings = inspect(protect.strip_placeholders(chunk.source, spec),
                           protect.strip_placeholders(text, spec), stopped=translation.stopped,
                           budget=budget, src_lang=self.src_lang, tgt_lang=self.tgt_lang,
                           thresholds=self.thresholds)
        if not findings:
            out.accepted[chunk.idx] = text
            return
        reason = findings[0].reason
        detail = "; ".join(f.detail for f in findings)
        if self.mode == "flag" or chunk.rung >= PIECE:
            self._flag(out, chunk, text, reason, detail, text)
        elif chunk.rung == PLAIN:
            self._replace(out, cuts, chunk, [pieces.Piece(chunk.source, True)], GUARDED,
                          reason, detail, "guarded", text)
        else:
            cut = pieces.split(chunk.source)
            if cut:
                self._replace(out, cuts, chunk, cut, PIECE, reason, detail, "clauses", text)
            else:
                self._flag(out, chunk, text, reason, detail, text)

    def _flag(self, out: Verdicts, chunk: Chunk, text: str, reason: str, detail: str,
              output: str) -> None:
        out.accepted[chunk.idx] = text
        out.flags[chunk.idx] = reason
        out.attempts.append(self._attempt(chunk, reason, detail, "flag", output))

    def _replace(self, out: Verdicts, cuts: dict, chunk: Chunk, cut: list[pieces.Piece],
                 rung: int, reason: str, detail: str, decision: str, output: str) -> None:
        cuts[chunk.idx] = (chunk, cut, rung)
        out.attempts.append(self._attempt(chunk, reason, detail, decision, output))

    def _rows(self, cuts: dict[int, tuple[Chunk, list[pieces.Piece], int]]
              ) -> dict[int, list[NewPiece]]:
        """Chunk rows for each chunk's pieces: a piece to translate keeps the
        parent's placeholders only if it is the whole source (a guarded
        copy, whose tokens are its parent's); copied pieces keep them so
        postprocess can put them back. The other pieces' tokens are counted
        in one call."""
        texts = [p.text for chunk, cut, _ in cuts.values() for p in cut
                 if p.translate and p.text != chunk.source]
        counts = iter(self.count_tokens(texts) if texts else ())
        out = {}
        for idx, (chunk, cut, rung) in cuts.items():
            rows = []
            for p in cut:
                whole = p.text == chunk.source
                n = (chunk.n_tokens if whole else next(counts)) if p.translate else 0
                rows.append(NewPiece(p.text, n, rung,
                                     chunk.protected if whole or not p.translate else None))
            out[idx] = rows
        return out

    def _attempt(self, chunk: Chunk, reason: str, detail: str, decision: str,
                 output: str) -> dict:
        shown = output if len(output) <= _SNIPPET else output[: _SNIPPET - 1] + "…"
        return {"chunk_idx": chunk.idx, "reason": reason, "decision": decision,
                "attempt": chunk.rung + 1, "message": f"{reason}: {detail}; output {shown!r}"}
