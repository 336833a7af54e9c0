"""plan_batches: length-sorted batches under a padded-token budget."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from pipeline.batching import plan_batches


@dataclass(frozen=True)
class C:
    idx: int
    n_tokens: int


def chunks(*lengths: int) -> list[C]:
    return [C(i, n) for i, n in enumerate(lengths)]


def shape(batches) -> list[list[int]]:
    return [[c.idx for c in b] for b in batches]


def check_plan(items: list[C], batches, budget: int, max_size: int) -> None:
    """Every invariant a plan must satisfy."""
    flat = [c for b in batches for c in b]
    assert sorted(c.idx for c in flat) == sorted(c.idx for c in items)  # each chunk exactly once
    assert len(flat) == len(items)
    assert all(batches) and all(len(b) <= max_size for b in batches)
    for b in batches:  # over the budget only as a single oversized chunk
        assert len(b) * max(c.n_tokens for c in b) <= budget or len(b) == 1, shape([b])
    lengths = [c.n_tokens for c in flat]
    assert lengths == sorted(lengths, reverse=True)  # longest first, across batches
    for a, b in zip(flat, flat[1:]):
        if a.n_tokens == b.n_tokens:
            assert a.idx < b.idx  # ties in index order


def test_empty_input_gives_no_batches():
    assert plan_batches([], 100, 8) == []


def test_longest_first_and_filled_up_to_the_budget():
    items = chunks(10, 30, 20, 30, 5, 10)
    batches = plan_batches(items, 60, 8)
    # 30,30 fill 60 exactly; 20,10,10 cost 3*20 = 60; 5 starts a new batch
    # because 4*20 > 60.
    assert shape(batches) == [[1, 3], [2, 0, 5], [4]]
    check_plan(items, batches, 60, 8)


def test_cost_is_the_longest_member_times_the_size():
    # 4 sequences of 10 tokens (sum 40) cost 40; with one of 25, 4*25 = 100.
    items = chunks(25, 10, 10, 10)
    assert shape(plan_batches(items, 60, 8)) == [[0, 1], [2, 3]]
    assert shape(plan_batches(items, 100, 8)) == [[0, 1, 2, 3]]
    assert shape(plan_batches(items, 99, 8)) == [[0, 1, 2], [3]]


def test_oversized_chunk_forms_a_batch_of_its_own():
    items = chunks(5, 500, 5, 400)
    batches = plan_batches(items, 100, 8)
    assert shape(batches) == [[1], [3], [0, 2]]
    check_plan(items, batches, 100, 8)


def test_max_size_bounds_the_number_of_sequences():
    items = chunks(*[3] * 10)
    batches = plan_batches(items, 10_000, 4)
    assert shape(batches) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert shape(plan_batches(items, 10_000, 1)) == [[i] for i in range(10)]


def test_ties_are_broken_by_index_whatever_the_input_order():
    items = [C(4, 7), C(2, 7), C(9, 7), C(0, 7), C(1, 8)]
    expected = [[1, 0], [2, 4], [9]]
    assert shape(plan_batches(items, 16, 8)) == expected
    assert shape(plan_batches(list(reversed(items)), 16, 8)) == expected
    assert shape(plan_batches(sorted(items, key=lambda c: c.idx), 16, 8)) == expected


def test_input_is_not_modified():
    items = chunks(1, 3, 2)
    plan_batches(items, 10, 2)
    assert [c.idx for c in items] == [0, 1, 2]


@pytest.mark.parametrize("seed", range(40))
def test_random_plans_keep_every_invariant(seed):
    rng = random.Random(seed)
    n = rng.randint(0, 300)
    # Mostly short, some long, a few over the budget: like real prose.
    items = [C(i, rng.choice([rng.randint(1, 30), rng.randint(30, 200), rng.randint(200, 900)]))
             for i in range(n)]
    rng.shuffle(items)
    budget = rng.randint(50, 2000)
    max_size = rng.randint(1, 64)
    batches = plan_batches(items, budget, max_size)
    check_plan(items, batches, budget, max_size)
    # Greedy: no batch could have taken the first chunk of the next one.
    for b, nxt in zip(batches, batches[1:]):
        fits = (len(b) + 1) * b[0].n_tokens <= budget and len(b) < max_size
        assert not fits
    assert plan_batches(items, budget, max_size) == batches  # deterministic
