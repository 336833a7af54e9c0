"""Group chunks into batches: sorted by length, bounded by a token budget.

A batch costs what its longest member costs times its size (everything is
padded to the longest), so batches of similar lengths waste the least work.
The budget counts padded source tokens, not sentences: 64 short sentences
and 4 long ones can cost the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Sized(Protocol):
    idx: int
    n_tokens: int


def plan_batches(chunks: Sequence[Sized], budget_tokens: int, max_size: int) -> list[list]:
    """Longest first (an OOM shows up in the first batch, not after an
    hour), each batch as large as ``len(batch) * longest <= budget_tokens``
    allows, never over ``max_size`` sequences; a chunk over the budget on
    its own forms a batch of one."""
    ordered = sorted(chunks, key=lambda c: (-c.n_tokens, c.idx))
    batches: list[list] = []
    current: list = []
    for chunk in ordered:
        longest = current[0].n_tokens if current else chunk.n_tokens
        if current and ((len(current) + 1) * longest > budget_tokens or len(current) >= max_size):
            batches.append(current)
            current = []
        current.append(chunk)
    if current:
        batches.append(current)
    return batches
