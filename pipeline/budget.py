"""Output budgets: how many tokens a sentence's translation may take.

A budget bounds a looping model (random weights, or a real model that
repeats itself) instead of letting it run to the model's limit. It is a
function of the sentence's *own* input length and the job's length rule,
never of its neighbours, because beam search is not prefix-consistent: a
search that runs on to a longer budget and is cut afterwards can end
differently from one that stops at its own budget. So the pipeline plans
batches whose members all share one budget (``pipeline.batching``) and every
backend runs each batch to exactly that budget, whatever it was batched with.

To keep batches large, lengths are rounded up to a bucket first: four
buckets per doubling (4, 8, 12, 16, 20, ... 32, 40, ... 64, 80, ...), so a
budget is at most 25% above the exact rule and sentences of similar length
share one. ``benchmarks/throughput.py`` measures what this costs.
"""

from __future__ import annotations

import math

BUCKETS_PER_DOUBLING = 4


def length_bucket(n_tokens: int) -> int:
    """``n_tokens`` rounded up to its bucket's upper edge (itself below 16)."""
    if n_tokens <= 16:
        return max(4, -(-n_tokens // 4) * 4)
    step = 2 ** (n_tokens.bit_length() - 1) // BUCKETS_PER_DOUBLING
    return -(-n_tokens // step) * step


def output_budget(n_tokens: int, ratio: float, offset: int, cap: int) -> int:
    """``ceil(ratio * bucket(n_tokens)) + offset`` new tokens, at most ``cap``."""
    return max(1, min(cap, math.ceil(ratio * length_bucket(n_tokens)) + offset))
