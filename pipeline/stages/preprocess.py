"""Preprocess: decode the input, keep its skeleton, cut the prose into chunks.

Progress unit: input bytes. The input is read a slice at a time (a few
thousand lines, cut where the format allows: ``pipeline.documents.formats.slices``;
Markdown is one slice, the whole file), and each slice's skeleton and chunks
are written in one transaction together with where the next slice starts
(``Store.write_slice``). So memory holds one slice whatever the document's
size, and a preprocess stopped anywhere (a cancel, SIGTERM, a lost lease, a
killed process) goes on from its last written slice: the chunks, the units'
numbers and the output are those of an uninterrupted run, with no chunk
written twice. The work checks cancel, SIGTERM and the lease as it goes
(``JobContext.checkpoint``), a fraction of a second apart.

What the model cannot read (characters its tokenizer maps to the unknown
token: most emoji, ♪, rare symbols) becomes protected pieces, as URLs do,
so it comes back in place instead of vanishing; the skeleton's header
counts them (``UnknownTally``) for ``show``.

Chunks whose translation the memory knows for this translator and job are
written done (reused); a repeated text waits on its first occurrence, which
an index finds in any earlier slice (``pipeline.store.memory``).

Before any slice the input is hashed (a file changed since its job was made
is refused); what only the whole file says (its dominant line ending,
whether it mixes them, its BOM, a JSON Lines note) is tallied as slices go,
carried in each slice's cursor, and stored at the end as the skeleton's
header, which postprocess reads with the slices.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace

from pipeline.documents import protect
from pipeline.documents.document import Document
from pipeline.errors import InvalidInput, StorageError
from pipeline.documents.formats import FormatOptions
from pipeline.documents.formats.slices import SLICE_LINES, SliceParser, slices
from pipeline import objects
from pipeline.documents.formats.parquet import RowGroups
from pipeline.documents.inputs import InputLines, LineTally
from pipeline.memory.scope import scope_for
from pipeline.output_file import file_sha256
from pipeline.documents.segment import chunk_texts
from pipeline.stages.retrying import attempted
from pipeline.store import NewChunk

log = logging.getLogger("nllb_pipeline")
COUNT_AT_ONCE = 128  # texts per tokenizer call while cutting a slice into chunks
SKELETON_VERSION = 2  # the header's "version": a skeleton in slices (1: one Document)


def run(ctx) -> None:
    """Preprocess the job's input from its last written slice, or from the start.

    A transient failure reading an input at a storage URL (throttling, 5xx,
    a timeout, a reset: a StorageError of a retryable class) is retried by
    the run's policy (``pipeline.stages.retrying``, as upload retries a
    delivery): the input is checked again and read on from the last
    written slice."""
    store, job = ctx.store, ctx.job
    last = store.last_slice(job.id)
    run_id = store.start_stage(job.id, "preprocess", units_total=job.input_bytes,
                               units_done=last.end_byte if last else 0, worker=ctx.worker)
    ctx.events.stage_started("preprocess", job.input_bytes, last.end_byte if last else 0)
    header = attempted(ctx, "preprocess", lambda: _read_slices(ctx), failure=StorageError)
    store.finish_slices(job.id, run_id, ctx.worker, json.dumps(header))


def _read_slices(ctx) -> dict:
    """Write the input's slices from the last one written on; the skeleton's header."""
    store, job, params = ctx.store, ctx.job, ctx.params
    last = store.last_slice(job.id)
    if last is None:
        store.restart_preprocess(job.id, ctx.worker)  # whatever another writer left
    cursor = json.loads(last.cursor) if last else {}
    storage = input_storage(ctx)
    before = _stat(job.input_path, storage)
    check_unchanged(ctx)
    parser = SliceParser(params.fmt, options=FormatOptions.of(params), tally=cursor.get("parser"))
    # SLICE_LINES is read here, not bound at import: tests cut small documents finely.
    if params.fmt == "parquet":
        reader = RowGroups(job.input_path, params.columns.split(","), start=cursor.get("line", 0),
                           storage=storage)
        pieces = reader.slices(SLICE_LINES)
    else:
        reader = InputLines(job.input_path, start=last.end_byte if last else 0,
                            line=cursor.get("line", 0),
                            tally=LineTally(**cursor.get("reader", {})), storage=storage)
        pieces = slices(_checked(ctx, reader), params.fmt, first_line=reader.line,
                        size=SLICE_LINES, cut=parser.cut_rule())
    chunker = _Chunker(ctx)
    seq, unit, chunk = (last.seq + 1 if last else 0), cursor.get("unit", 0), cursor.get("chunk", 0)
    unknown = UnknownTally(**cursor.get("unknown", {}))
    for piece in pieces:
        document = parser.parse(piece)
        document.line_ends = piece.ends  # its own: mixed or not is the whole file's to say
        unknown.add(chunker.protect_unknown(document))
        chunks = chunker.chunks(document, unit)
        cursor = {"line": piece.first_line + piece.lines, "unit": unit + len(document.units),
                  "chunk": chunk + len(chunks), "reader": reader.tally.to_dict(),
                  "parser": parser.to_dict(), "unknown": unknown.to_dict()}
        ctx.checkpoint()
        store.write_slice(job.id, ctx.worker, seq=seq, first_unit=unit, first_chunk=chunk,
                          end_byte=piece.end_byte, cursor=json.dumps(cursor),
                          skeleton=document.to_json(), chunks=chunks, memory=chunker.memory)
        ctx.events.stage_progress("preprocess", piece.end_byte)
        seq, unit, chunk = seq + 1, cursor["unit"], cursor["chunk"]
    if _stat(job.input_path, storage) != before:
        raise InvalidInput(f"{job.input_path} changed while it was read; translate it again "
                           "to start a new job")
    tally = reader.tally
    if not tally.letters:
        raise InvalidInput(f"{job.input_path} is without any words: nothing to translate")
    notes = parser.finish()
    for note in notes:
        log.warning("job %s: %s: %s", job.id, job.input_path, note)
    return {"version": SKELETON_VERSION, "slices": seq, "units": unit, "chunks": chunk,
            "eol": tally.eol, "bom": tally.bom, "mixed": tally.mixed, "notes": notes,
            "unknown": unknown.to_dict()}


def input_storage(ctx):
    """This run's options for an input at a storage URL (``[storage.PROTOCOL]``); never stored."""
    delivery = getattr(ctx, "delivery", None)
    return getattr(delivery, "storage", None) or None


def _stat(path: str, storage=None) -> tuple | None:
    """What changes when the input does: size and mtime, or for an object
    its size and ETag (pipeline.objects.version_tag)."""
    if objects.is_url(path):
        return objects.version_tag(objects.object_info(path, storage))
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def check_unchanged(ctx) -> None:
    """InvalidInput if the input is gone or its content is not the one the
    job was created with; reading an object may raise a StorageError."""
    job = ctx.job
    if objects.is_url(job.input_path):
        if objects.object_info(job.input_path, input_storage(ctx)) is None:
            raise InvalidInput(f"input object not found: {job.input_path}")
        digest = objects.object_sha256(job.input_path, input_storage(ctx),
                                       each_piece=lambda n: ctx.checkpoint())
    else:
        try:
            digest = file_sha256(job.input_path, each_piece=lambda n: ctx.checkpoint(),
                                 piece_bytes=1 << 20)
        except FileNotFoundError:
            raise InvalidInput(f"input file not found: {job.input_path}") from None
        except OSError as exc:
            raise InvalidInput(f"cannot read {job.input_path}: {exc.strerror or exc}") from None
    if digest != job.input_sha256:
        raise InvalidInput(
            f"{job.input_path} changed since job {job.id} was created; "
            "translate it again to start a new job"
        )


def _checked(ctx, lines):
    """The lines, with a paced check of cancel, SIGTERM and the lease as they are read."""
    for n, line in enumerate(lines):
        if n % 256 == 0:
            ctx.checkpoint()
        yield line


@dataclass
class UnknownTally:
    """The pieces of text the model cannot read that preprocess protected
    (``protect.protect_unknown``): how many, and the first distinct ones
    with their counts (what ``show`` names). Carried in each slice's cursor,
    so a resumed preprocess counts on from its last slice."""

    pieces: int = 0
    texts: dict[str, int] = field(default_factory=dict)

    SHOWN = 20  # distinct texts kept

    def add(self, runs: list[str]) -> None:
        self.pieces += len(runs)
        for run in runs:
            if run in self.texts or len(self.texts) < self.SHOWN:
                self.texts[run] = self.texts.get(run, 0) + 1

    def to_dict(self) -> dict:
        return {"pieces": self.pieces, "texts": dict(self.texts)}


class _Chunker:
    """A slice's units cut into chunks, with their token counts."""

    def __init__(self, ctx):
        self.ctx, self.params = ctx, ctx.params
        info = ctx.translator.describe()
        self.limit = min(self.params.max_chunk_tokens, info.max_input_tokens)
        self.memory = None
        self.known: dict[str, int] = {}
        if ctx.store.memory_mode(ctx.job.id) != "off":
            self.memory = ctx.store.memory_scope_id(scope_for(self.params, info))

    def protect_unknown(self, document: Document) -> list[str]:
        """What the model cannot read in the slice's units, made protected
        pieces (``protect.protect_unknown``), in place. Returns the runs."""
        units = document.units
        unknown = self.ctx.translator.unknown_characters([u.text for u in units])
        runs: list[str] = []
        if not unknown:
            return runs
        for k, unit in enumerate(units):
            text, protected, found = protect.protect_unknown(unit.text, unit.protected, unknown,
                                                             unit.render_token)
            if found:
                units[k] = replace(unit, text=text, protected=protected)
                runs += found
        return runs

    def count_tokens(self, texts: list[str]) -> list[int]:
        # Unit text carries one marker per protected piece; the model sees "[n]".
        visible = [protect.visible(t) for t in texts]
        counts = self._count(visible)
        self.known.update(zip(visible, counts))
        return counts

    def _count(self, texts: list[str]) -> list[int]:
        """The tokenizer's counts, COUNT_AT_ONCE texts a call with a check of
        cancel, SIGTERM and the lease between calls: a call amortises the
        tokenizer's per-call cost, and a slice's few thousand texts never
        keep a stop waiting."""
        counts: list[int] = []
        for start in range(0, len(texts), COUNT_AT_ONCE):
            if start:
                self.ctx.checkpoint()
            counts += self.ctx.translator.count_tokens(texts[start:start + COUNT_AT_ONCE])
        return counts

    def _counted(self, texts: list[str]) -> list[int]:
        """Token counts of the chunks' texts: most are a sentence counted
        already while cutting (a count is a function of the text alone),
        so the tokenizer sees only the rest (pieces, stripped sentences)."""
        new = list(dict.fromkeys(t for t in texts if t not in self.known))
        if new:
            self.known.update(zip(new, self._count(new)))
        return [self.known[t] for t in texts]

    def chunks(self, document: Document, first_unit: int) -> list[NewChunk]:
        texts: list[tuple[int, str, str | None]] = []
        self.known = {}  # the text the model sees: its token count, for this slice
        units = document.units
        cut = chunk_texts([u.text for u in units], self.params.src_lang, self.count_tokens,
                          self.limit)
        self.ctx.checkpoint()
        for k, (unit, pieces) in enumerate(zip(units, cut)):
            for piece in pieces:
                if piece.strip():
                    source, spec = protect.chunk_view(piece.strip(), unit.protected)
                    texts.append((first_unit + k, source, protect.spec_json(spec)))
            if k % 256 == 0:
                self.ctx.checkpoint()
        counts = self._counted([t for _, t, _ in texts])
        self.known = {}
        return [
            # Nothing to translate in a chunk without letters ("42", "—", a
            # lone placeholder): copy it.
            NewChunk(unit, text, n, done=not any(ch.isalpha() for ch in protect.PLACEHOLDER.sub(
                "", text)), protected=spec)
            for (unit, text, spec), n in zip(texts, counts)
        ]
