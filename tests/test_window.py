"""Several batches in flight (``_BatchRunner.run_window``), on a fake.

``ConcurrentFake`` is ``tests.fakes.FakeTranslator`` with
``describe().concurrency == 4`` and a ``submit`` that runs
``translate_batch`` on a small thread pool after a random delay, so that
results come back out of order, like a pool of Ray actors. No Ray, no model.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from pipeline.config import JobParams, RunSettings
from pipeline.errors import ErrorClass
from pipeline.documents.inputs import read_input
from pipeline.jobs import submit
from pipeline.retry import RetryPolicy
from pipeline.runner import run_job
from pipeline.samples import generate_text
from pipeline.store import Store
from pipeline.translator import BatchResult
from tests.fakes import NO_WAITS, FakeTranslator

CONCURRENCY = 4
SETTINGS = RunSettings(batch_tokens=64)
LOST_LIMIT = RetryPolicy().limit(ErrorClass.WORKER_LOST, 0)  # 3: sends of one batch in all
TEXT = generate_text(60, seed=21)
MAX_SENDS = 1000  # a window that resends without end fails instead of hanging
pytestmark = pytest.mark.timeout(60)

POISON = "Poison kills actors."  # under 4 words: no "copy" check, no repair ladder


class LostWorker(Exception):
    """An actor died under a batch: what ``models.ray_pool``'s results carry."""


class ConcurrentFake(FakeTranslator):
    """FakeTranslator behind a pool of ``CONCURRENCY`` threads.

    ``lose(n, texts)``: True to fail submission ``n`` (0-based) with
    ``LostWorker``. ``lost_everywhere``: texts containing one of these fail
    with ``LostWorker`` in ``translate_batch`` too (the chunk path).
    ``on_submit(n)`` is called on the caller's thread at each submission.
    Submission 0 is slowed (``first_delay``) so the batches after it are
    surely committed before it: out of order, whatever the scheduling.
    """

    def __init__(self, *, seed: int = 0, max_delay: float = 0.02, first_delay: float = 0.1,
                 lose=None, lost_everywhere=(), on_submit=None, **kwargs):
        super().__init__(**kwargs)
        self.pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="fake-actor")
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.max_delay, self.first_delay = max_delay, first_delay
        self.lose, self.lost_everywhere, self.on_submit = lose, set(lost_everywhere), on_submit
        self.submitted: list[tuple[str, ...]] = []
        self.sends: list[tuple[tuple[str, ...], object]] = []  # (texts, decoding)
        self.completed: list[int] = []  # submission numbers, in the order they finished
        self.lost: list[int] = []  # submission numbers that failed with LostWorker
        self.max_in_flight = 0
        self.local_calls: list[list[str]] = []  # translate_batch on the caller's thread

    def describe(self):
        return dataclasses.replace(super().describe(), concurrency=CONCURRENCY)

    def submit(self, texts, src_lang, tgt_lang, decoding):
        n = len(self.submitted)
        if n >= MAX_SENDS:
            raise RuntimeError(f"{n} submissions: the window never ends")
        self.submitted.append(tuple(texts))
        self.sends.append((tuple(texts), decoding))
        with self._lock:
            self.max_in_flight = max(self.max_in_flight, n + 1 - len(self.completed))
        delay = self.first_delay if n == 0 else self._rng.uniform(0, self.max_delay)
        lost = bool(self.lose and self.lose(n, tuple(texts)))
        if self.on_submit:
            self.on_submit(n)
        return self.pool.submit(self._run, n, list(texts), src_lang, tgt_lang, decoding, delay,
                                lost)

    def _run(self, n, texts, src_lang, tgt_lang, decoding, delay, lost):
        try:
            time.sleep(delay)
            if lost:
                self.lost.append(n)
                return BatchResult(error=LostWorker("The actor died unexpectedly before "
                                                    "finishing this task."),
                                   ran_on=f"actor 3 pid {7000 + n}")
            try:
                out = self.translate_batch(texts, src_lang, tgt_lang, decoding)
            except Exception as exc:
                return BatchResult(error=exc, ran_on="actor 1 pid 4000")
            return BatchResult(out, ran_on=f"actor {n % 2 + 1} pid {4000 + n % 2}")
        finally:
            with self._lock:
                self.completed.append(n)

    def translate_batch(self, texts, src_lang, tgt_lang, decoding):
        if threading.current_thread() is threading.main_thread():
            self.local_calls.append(list(texts))
        if self.lost_everywhere & set(texts):
            self.calls.append(list(texts))
            raise LostWorker("The actor died again.")
        return super().translate_batch(texts, src_lang, tgt_lang, decoding)

    def classify(self, exc):
        if isinstance(exc, LostWorker):
            return ErrorClass.WORKER_LOST
        return super().classify(exc)


@pytest.fixture
def fakes():
    """Makes ConcurrentFakes and shuts their pools down afterwards."""
    made = []

    def make(**kwargs) -> ConcurrentFake:
        made.append(ConcurrentFake(**kwargs))
        return made[-1]

    yield make
    for fake in made:
        fake.pool.shutdown(wait=True)


def make_job(tmp_path, text: str, name: str):
    """A job in a database of its own (a shared one would reuse translations
    through the memory)."""
    src = tmp_path / f"{name}.txt"
    src.write_text(text)
    params = JobParams(model="fake", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                       output=str(tmp_path / f"{name}.out.txt"))
    store = Store(tmp_path / f"{name}.db")
    job, _ = submit(store, params, read_input(src))
    return store, job


def run(store, job, translator, **kwargs):
    return run_job(store, job.id, translator, settings=SETTINGS, policy=NO_WAITS,
                   sleep=lambda s: None, rng=random.Random(0), **kwargs)


def sequential(tmp_path, text: str = TEXT):
    """The same document through the plain FakeTranslator, one batch at a time:
    (``translations``, output bytes)."""
    store, job = make_job(tmp_path, text, "sequential")
    assert run(store, job, FakeTranslator()).state == "SUCCEEDED"
    return translations(store, job), (tmp_path / "sequential.out.txt").read_bytes()


def translations(store, job) -> dict[tuple[int, ...], tuple[str, str, str | None]]:
    """Every chunk's source, state and translation, by where it stands: a
    document chunk by its idx, a piece of a replaced chunk (the quality
    ladder's) by its parent's key and its place among its siblings. Pieces
    get their idx when their parent's batch commits, so in an out-of-order
    run the idxs differ, not the chunks."""
    chunks = store.chunks(job.id)
    keys: dict[int, tuple[int, ...]] = {}
    siblings: dict[int, int] = Counter()
    for c in chunks:  # in idx order: a parent comes before its pieces
        if c.parent is None:
            keys[c.idx] = (c.idx,)
        else:
            keys[c.idx] = keys[c.parent] + (siblings[c.parent],)
            siblings[c.parent] += 1
    return {keys[c.idx]: (c.source, c.state, c.translation) for c in chunks}


def committed_once(store, job) -> bool:
    return all(c.commits == 1 for c in store.chunks(job.id) if c.batch_id is not None) and all(
        c.commits <= 1 for c in store.chunks(job.id))


def failures(store, job) -> list:
    """Attempt rows other than the quality ladder's (FakeTranslator's
    upper-cased output sends some long chunks up the ladder)."""
    return [a for a in store.attempts(job.id) if a.error_class != "quality"]


def resends(store, job) -> Counter:
    return Counter(a.batch_id for a in store.attempts(job.id) if a.decision == "resend")


def test_batches_in_flight_out_of_order_give_the_sequential_output(tmp_path, fakes):
    want, want_bytes = sequential(tmp_path)
    store, job = make_job(tmp_path, TEXT, "window")
    fake = fakes()
    final = run(store, job, fake)

    assert final.state == "SUCCEEDED"
    assert translations(store, job) == want
    assert (tmp_path / "window.out.txt").read_bytes() == want_bytes
    batches = store.batches(job.id)
    assert len(batches) >= 8  # enough for the window to matter
    assert {b.state for b in batches} == {"committed"}
    assert committed_once(store, job)
    assert failures(store, job) == []
    # every batch went through submit, CONCURRENCY of them at a time
    assert len(fake.submitted) == len(batches)
    assert fake.max_in_flight == CONCURRENCY
    # they finished out of order, and were committed in plan order: pieces
    # a commit creates get the same indexes however the calls raced, so the
    # next round's plan is the same too
    assert fake.completed != sorted(fake.completed)
    by_commit = [b.seq for b in sorted(batches, key=lambda b: (b.committed_at, b.id))]
    assert by_commit == sorted(by_commit)
    # each batch says where it ran; the profile is the translator's
    assert all(b.ran_on in ("actor 1 pid 4000", "actor 2 pid 4001") for b in batches)
    assert sum(store.ran_on_counts(job.id).values()) == len(batches)
    assert {(b.backend, b.device, b.compute_type) for b in batches} == {("fake", "cpu", "float32")}


def test_a_batch_whose_worker_was_lost_once_is_sent_again_and_committed_once(tmp_path, fakes):
    want, want_bytes = sequential(tmp_path)
    store, job = make_job(tmp_path, TEXT, "lost")
    seen: list = []

    def lose_first_send_of_every_third_batch(n, texts):
        send = fake.sends[n]  # texts and decoding: a repair rung decodes the same texts again
        if send in seen:
            return False
        seen.append(send)
        return len(seen) % 3 == 2

    fake = fakes(lose=lose_first_send_of_every_third_batch)
    final = run(store, job, fake)

    assert final.state == "SUCCEEDED"
    assert translations(store, job) == want
    assert (tmp_path / "lost.out.txt").read_bytes() == want_bytes
    assert len(fake.lost) >= 3
    lost = failures(store, job)
    assert len(lost) == len(fake.lost)
    assert {(a.error_class, a.decision, a.attempt, a.chunk_idx) for a in lost} == {
        ("worker_lost", "resend", 1, None)}
    assert sorted(a.ran_on for a in lost) == sorted(f"actor 3 pid {7000 + n}" for n in fake.lost)
    # each lost batch was sent twice, then committed once, where the second send ran
    batches = {b.id: b for b in store.batches(job.id)}
    assert {b.state for b in batches.values()} == {"committed"}
    for a in lost:
        batch = batches[a.batch_id]
        n = int(a.ran_on.rsplit(" ", 1)[1]) - 7000  # the submission that was lost
        texts, decoding = fake.sends[n]
        assert texts == tuple(c.source for c in store.chunks(job.id, batch.chunk_idxs))
        assert fake.sends.count((texts, decoding)) == 2
        assert batch.ran_on in ("actor 1 pid 4000", "actor 2 pid 4001")
    assert committed_once(store, job)
    assert all(n <= LOST_LIMIT - 1 for n in resends(store, job).values())


def poisoned_text() -> str:
    """TEXT with POISON in a paragraph of sentences like it, so that its batch
    holds other chunks too."""
    paragraphs = TEXT.split("\n\n")
    paragraphs.insert(3, f"Jobs wait. {POISON} Queues grow. Work ends.")
    return "\n\n".join(paragraphs)


def poison_batch(store, job):
    (batch,) = [b for b in store.batches(job.id) if b.state != "split" and any(
        c.source == POISON for c in store.chunks(job.id, b.chunk_idxs))]
    return batch


def test_a_batch_lost_every_time_is_sent_the_class_limit_then_goes_chunk_by_chunk(
        tmp_path, fakes):
    text = poisoned_text()
    want, want_bytes = sequential(tmp_path, text)
    store, job = make_job(tmp_path, text, "poison")
    fake = fakes(lose=lambda n, texts: POISON in texts)
    final = run(store, job, fake)

    # the chunk path (translate_batch) does not lose its worker: all is translated
    assert final.state == "SUCCEEDED", store.attempts(job.id)
    assert translations(store, job) == want
    assert (tmp_path / "poison.out.txt").read_bytes() == want_bytes
    batch = poison_batch(store, job)
    assert len(batch.chunk_idxs) > 1
    assert sum(POISON in texts for texts in fake.submitted) == LOST_LIMIT
    rows = [(a.error_class, a.decision, a.attempt) for a in failures(store, job)]
    assert rows == [("worker_lost", "resend", 1), ("worker_lost", "resend", 2),
                    ("worker_lost", "chunks", 1)]
    assert all(a.batch_id == batch.id and a.ran_on and a.ran_on.startswith("actor 3")
               for a in failures(store, job))
    # then its chunks one by one, on the local path
    chunks = store.chunks(job.id, batch.chunk_idxs)
    assert fake.local_calls == [[c.source] for c in chunks]
    assert batch.state == "committed" and batch.ran_on is None
    assert committed_once(store, job)
    assert max(resends(store, job).values()) == LOST_LIMIT - 1


def test_a_chunk_lost_on_every_path_fails_for_good_per_policy(tmp_path, fakes):
    text = poisoned_text()
    store, job = make_job(tmp_path, text, "dead")
    fake = fakes(lose=lambda n, texts: POISON in texts, lost_everywhere={POISON})
    final = run(store, job, fake)

    assert final.state == "FAILED"
    assert [c.source for c in store.chunks(job.id) if c.state == "failed"] == [POISON]
    assert {c.state for c in store.chunks(job.id) if c.source != POISON} <= {"done", "replaced"}
    assert POISON in (tmp_path / "dead.out.txt").read_text()  # the gap keeps its source
    batch = poison_batch(store, job)
    assert batch.state == "skipped" and batch.attempts == NO_WAITS.batch_retries
    # sent whole through submit the class limit's times, never more
    assert sum(POISON in texts for texts in fake.submitted) == LOST_LIMIT
    assert max(resends(store, job).values()) == LOST_LIMIT - 1
    assert set(resends(store, job)) == {batch.id}
    poison = next(c for c in store.chunks(job.id) if c.source == POISON)
    # its tries alone, WORKER_LOST's limit (3 = chunk_attempts) in each round
    assert poison.attempts == NO_WAITS.chunk_attempts * (NO_WAITS.batch_retries + 1)
    decisions = Counter(a.decision for a in failures(store, job))
    assert decisions["retry_batch"] == NO_WAITS.batch_retries and decisions["skip"] == 1
    assert decisions["chunks"] == 1
    assert {a.error_class for a in failures(store, job)} == {"worker_lost"}
    assert committed_once(store, job)


def test_a_cancel_while_batches_are_in_flight_commits_nothing_after_it(tmp_path, fakes):
    want, want_bytes = sequential(tmp_path)
    store, job = make_job(tmp_path, TEXT, "cancel")
    other = Store(store.path)
    at_cancel = {}

    def committed() -> int:
        return other.db.execute("SELECT COUNT(*) FROM batches WHERE job_id = ? AND "
                                "state = 'committed'", (job.id,)).fetchone()[0]

    def cancel_at_the_sixth(n):
        if n == 5:
            assert other.request_cancel(job.id) == "requested"
            at_cancel.update(committed=committed(), submitted=n + 1)

    fake = fakes(on_submit=cancel_at_the_sixth)
    final = run(store, job, fake)

    assert final.state == "CANCELED" and final.lease_owner is None
    assert at_cancel["committed"] >= 1  # the window had committed some before
    # at most the batch whose commit was under way when the cancel landed
    assert committed() <= at_cancel["committed"] + 1
    pending = [b for b in store.batches(job.id) if b.state == "pending"]
    assert pending  # there was work left to drop
    assert len(fake.submitted) <= at_cancel["submitted"] + CONCURRENCY
    assert committed_once(store, job)
    other.close()

    # a retry finishes it, with the output of an uninterrupted run
    store.reset_failed(job.id)
    final = run(store, job, fakes())
    assert final.state == "SUCCEEDED"
    assert translations(store, job) == want
    assert (tmp_path / "cancel.out.txt").read_bytes() == want_bytes
    assert committed_once(store, job)
