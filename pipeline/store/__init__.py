"""The job store: one SQLite file that holds everything needed to resume.

The store is a handful of verbs that return dataclasses (``records``).
Writes that belong together happen in one transaction (a batch's
translations and its batch row; a stage's end and the next stage's start),
so a process killed at any instant leaves the store at a consistent point to
resume from. The verbs are grouped by what they are about: ``jobs`` (and
leases), ``stages`` (and artifacts), ``chunks`` (and batches), ``pieces``
(chunks replaced by pieces, quality flags), ``attempts``, the translation
``memory``, the skeleton ``slices`` preprocess writes and postprocess
reads, the read ``queries`` behind status and stats, the task centre's
``listing`` (search, pages, deleting a job); ``base`` holds
the connection, transactions and migrations.
"""

from __future__ import annotations

from pipeline.store.attempts import AttemptsMixin
from pipeline.store.base import BUSY_TIMEOUT_S, StoreBase
from pipeline.store.chunks import ChunksMixin
from pipeline.store.drift import DriftMixin
from pipeline.store.jobs import JobsMixin
from pipeline.store.listing import ListingMixin
from pipeline.store.memory import MemoryMixin
from pipeline.store.queries import QueriesMixin
from pipeline.store.pieces import PiecesMixin
from pipeline.store.reviews import ReviewsMixin
from pipeline.store.records import (Artifact, Attempt, Batch, Chunk, Job, NewChunk, NewPiece,
                                    SkeletonSlice, StageRun)
from pipeline.store.slices import SlicesMixin
from pipeline.store.stages import StagesMixin
from pipeline.store.totals import TotalsMixin

__all__ = ["BUSY_TIMEOUT_S", "Artifact", "Attempt", "Batch", "Chunk", "Job", "NewChunk",
           "NewPiece", "SkeletonSlice", "StageRun", "Store"]


class Store(JobsMixin, StagesMixin, SlicesMixin, ChunksMixin, PiecesMixin, MemoryMixin,
            AttemptsMixin, QueriesMixin, ListingMixin, TotalsMixin, DriftMixin, ReviewsMixin,
            StoreBase):
    """Verbs over the SQLite job store. One instance per thread."""
