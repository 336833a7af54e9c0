"""Group chunks into batches: one output budget each, sorted by length,
bounded by a token budget.

A batch costs what its longest member costs times its size (everything is
padded to the longest), so batches of similar lengths waste the least work.
The budget counts padded source tokens, not sentences: 64 short sentences
and 4 long ones can cost the same.

Every member of a batch has the same output budget (``pipeline.budget``):
the backend runs the batch's search to that one length, so a sentence's
translation does not depend on what it was batched with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol


class Sized(Protocol):
    idx: int
    n_tokens: int


def plan_batches(chunks: Sequence[Sized], budget_tokens: int, max_size: int,
                 output_budget: Callable[[int], int] = lambda n: 0) -> list[list]:
    """Longest first (an OOM shows up in the first batch, not after an
    hour), each batch as large as ``len(batch) * longest <= budget_tokens``
    allows, never over ``max_size`` sequences, never mixing two output
    budgets (``output_budget(n_tokens)``, non-decreasing in ``n_tokens``); a
    chunk over the token budget on its own forms a batch of one."""
    ordered = sorted(chunks, key=lambda c: (-output_budget(c.n_tokens), -c.n_tokens, c.idx))
    return list(plan_in_order(ordered, budget_tokens, max_size, output_budget))


def plan_in_order(ordered: Iterable[Sized], budget_tokens: int, max_size: int,
                  output_budget: Callable[[int], int] = lambda n: 0) -> Iterator[list]:
    """``plan_batches`` over chunks already in its order (longest first,
    ties by index; the store streams them so from an index), one batch at a
    time: a plan of a million chunks never holds more than a batch."""
    current: list = []
    for chunk in ordered:
        longest = current[0].n_tokens if current else chunk.n_tokens
        if current and ((len(current) + 1) * longest > budget_tokens or len(current) >= max_size
                        or output_budget(chunk.n_tokens) != output_budget(longest)):
            yield current
            current = []
        current.append(chunk)
    if current:
        yield current


def needs_replanning(chunks: Sequence[Sized], budget_tokens: int,
                     output_budget: Callable[[int], int]) -> bool:
    """A stored batch that cannot run as one call: over the (shrunk) token
    budget, or planned by a version that mixed output budgets."""
    if len(chunks) < 2:
        return False
    padded = len(chunks) * max(c.n_tokens for c in chunks)
    return padded > budget_tokens or len({output_budget(c.n_tokens) for c in chunks}) > 1


class Named(Protocol):
    id: int
    seq: int
    parent_id: int | None


def batch_labels(batches: Sequence[Named]) -> dict[int, str]:
    """The name users read for each batch (keyed by row id), the same in the
    live log, the progress display, ``logs`` and ``show``: its place in the
    plan counted from 1, and for the parts of a split batch the parent's name
    and the part's number: ``12``, then ``12.1`` and ``12.2``, then ``12.1.1``."""
    by_id = {b.id: b for b in batches}
    parts: dict[int, list[int]] = {}
    for b in sorted(batches, key=lambda b: b.id):
        if b.parent_id is not None:
            parts.setdefault(b.parent_id, []).append(b.id)
    labels: dict[int, str] = {}

    def label(b: Named) -> str:
        if b.id not in labels:
            parent = by_id.get(b.parent_id) if b.parent_id is not None else None
            labels[b.id] = (str(b.seq + 1) if parent is None else
                            f"{label(parent)}.{parts[parent.id].index(b.id) + 1}")
        return labels[b.id]

    for b in batches:
        label(b)
    return labels
