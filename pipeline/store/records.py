"""What the store returns: plain frozen records, never raw rows."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

MODES = ("off", "read", "on")  # --tm: ignore the memory, only read it, read and write it


@dataclass(frozen=True)
class Job:
    id: str
    idem_key: str
    state: str
    stage: str
    params: str
    input_path: str
    input_sha256: str
    input_bytes: int
    output_path: str | None
    error_class: str | None
    error_message: str | None
    lease_owner: str | None
    lease_expires: float | None
    priority: int
    created_at: float
    updated_at: float
    finished_at: float | None
    progress: str | None = None  # JSON of the live progress while it runs


@dataclass(frozen=True)
class JobCounters:
    """A job's live counters, kept by the transactions that change them."""

    tokens_done: int = 0  # source tokens of the chunks inference has translated
    tokens_total: int = 0  # source tokens of the chunks inference translates
    reused_memory: int = 0  # chunks whose translation came from the memory
    reused_document: int = 0  # chunks that repeat an earlier chunk of the document

    @property
    def tokens(self) -> tuple[int, int]:
        """(done, total), as ``token_counts``."""
        return self.tokens_done, self.tokens_total

    @property
    def reused(self) -> dict[str, int]:
        """Chunks that got their translation without inference."""
        return {"memory": self.reused_memory, "document": self.reused_document}


@dataclass(frozen=True)
class Chunk:
    job_id: str
    idx: int
    unit: int
    source: str
    n_tokens: int
    state: str
    translation: str | None
    batch_id: int | None
    commits: int
    attempts: int
    # A piece of a replaced chunk (pipeline.documents.pieces) names it; states are
    # pending done failed and replaced (translated as its pieces).
    parent: int | None = None
    protected: str | None = None  # JSON spec of its placeholders (pipeline.documents.protect)
    rung: int = 0  # repair ladder step it is decoded at (pipeline.quality.ladder)
    flag: str | None = None  # accepted with a quality flag: the reason
    share: float | None = None  # source tokens of the document it stands for; None: n_tokens
    reused: str | None = None  # memory / document: translated without inference (see memory)
    dup_of: int | None = None  # an earlier chunk of the same text whose translation this takes


def is_delivered(state: str, translation: str | None) -> bool:
    """A chunk's translation is there: done, or replaced and its pieces joined."""
    return state == "done" or (state == "replaced" and translation is not None)


@dataclass(frozen=True)
class Batch:
    id: int
    job_id: str
    seq: int
    chunk_idxs: list[int]
    padded_tokens: int
    source_tokens: int
    state: str
    parent_id: int | None
    attempts: int
    not_before: float | None
    started_at: float | None
    committed_at: float | None
    worker: str | None
    # What translated it (the last commit's): None while nothing was committed.
    backend: str | None = None
    device: str | None = None
    compute_type: str | None = None
    ran_on: str | None = None  # a Ray actor and its node; None: the worker's own process
    label: str | None = None  # the name users read: "12", "12.1" (``add_batches``)
    call_s: float | None = None  # its model call's seconds (``commit_batch``)
    idle_s: float | None = None  # the engine's wait for the pipeline before it


@dataclass(frozen=True)
class Plannable:
    """What planning needs of a pending chunk (``plannable_chunks``)."""

    idx: int
    n_tokens: int
    rung: int


@dataclass(frozen=True)
class StageRun:
    id: int
    job_id: str
    stage: str
    started_at: float
    finished_at: float | None
    wall_s: float | None
    units_total: float | None
    units_done: float | None
    device: str | None
    model: str | None
    backend: str | None = None
    dtype: str | None = None
    cpu_s: float | None = None  # process CPU time while it ran (None: not ended by its process)


@dataclass(frozen=True)
class Artifact:
    job_id: str
    kind: str
    content: bytes | None
    path: str | None
    sha256: str | None
    bytes: int | None


@dataclass(frozen=True)
class Attempt:
    id: int
    job_id: str
    stage: str
    batch_id: int | None
    chunk_idx: int | None
    error_class: str
    message: str
    traceback: str | None
    attempt: int
    delay_s: float | None
    decision: str
    trace_id: str
    at: float
    reason: str | None = None  # what a QUALITY attempt found (pipeline.quality.checks)
    ran_on: str | None = None  # where the failed call ran (a Ray actor), if not locally


@dataclass(frozen=True)
class NewChunk:
    unit: int
    source: str
    n_tokens: int
    done: bool = False  # nothing to translate: the source is its own translation
    protected: str | None = None  # JSON spec of its placeholders (pipeline.documents.protect)


@dataclass(frozen=True)
class MemoryScope:
    """Everything in a memory key except the source text (what each part
    is, and why: ``pipeline.memory.scope``)."""

    identity: str
    backend: str
    device: str  # kind only: cpu, cuda
    compute_type: str
    src_lang: str
    tgt_lang: str
    settings: str  # canonical JSON of ``output_settings``
    model: str = ""  # as the job named it: shown, never compared

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON of the keyed fields (not ``model``)."""
        keyed = {k: v for k, v in asdict(self).items() if k != "model"}
        text = json.dumps(keyed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class MemoryEntry:
    """One translation in the memory, with the scope it is filed under."""

    scope: MemoryScope
    source: str
    translation: str
    origin: str  # inferred: committed by a job here; imported: from a TMX file
    created_at: float
    used_at: float  # last stored or reused
    uses: int  # chunks that reused it
    flag: str | None = None  # delivered with a quality flag: its reason


@dataclass(frozen=True)
class MemoryScopeSummary:
    """One scope of the memory and how much it holds."""

    scope: MemoryScope
    units: int
    imported: int
    uses: int
    last_used_at: float | None


@dataclass(frozen=True)
class MemoryImport:
    """What an import did: every unit is counted in exactly one of these."""

    added: int  # new to the memory
    same: int  # already there with the same translation
    replaced: int  # already there with another translation, replaced (``replace``)
    kept: int  # already there with another translation, kept


@dataclass(frozen=True)
class NewPiece:
    """A piece of a chunk being replaced (``pipeline.documents.pieces``)."""

    source: str
    n_tokens: int  # 0: copied as it is, never translated
    rung: int  # the repair ladder step it is decoded at
    protected: str | None = None  # the placeholders it carries, as its parent's spec


@dataclass(frozen=True)
class SkeletonSlice:
    """One slice of a document's skeleton, as preprocess wrote it (``write_slice``)."""

    job_id: str
    seq: int  # 0, 1, ... in input order
    first_unit: int  # the number of its first unit in the whole document
    first_chunk: int  # its chunks are idx first_chunk .. first_chunk + chunks - 1
    chunks: int
    end_byte: int  # input offset where the next slice starts
    cursor: str  # JSON: the reader's and parser's tallies after it (pipeline.stages.preprocess)
    skeleton: str  # JSON of its pipeline.documents.document.Document
