"""The job store on a fresh temporary database, with a fake clock."""

from __future__ import annotations

import sqlite3
import time
import threading

import pytest

import pipeline.store.base as store_module
from pipeline.errors import ErrorClass, InvalidInput, LeaseLost
from pipeline.store.migrations import MIGRATIONS
from pipeline.store import NewChunk, Store

TTL = 30.0


class FakeClock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "jobs.db"


@pytest.fixture
def store(db_path, clock):
    s = Store(db_path, clock=clock)
    yield s
    s.close()


def new_job(store: Store, key: str = "key-1"):
    return store.get_or_create_job(
        idem_key=key, params='{"beams":1}', input_path="/in/book.txt", input_sha256="ab" * 32,
        input_bytes=123, output_path="/out/book.fra_Latn.txt",
    )


CHUNKS = [
    NewChunk(unit=0, source="First sentence.", n_tokens=5),
    NewChunk(unit=0, source="A second, longer sentence here.", n_tokens=9),
    NewChunk(unit=1, source="42", n_tokens=3, done=True),
    NewChunk(unit=2, source="Third.", n_tokens=4),
]


def preprocessed_job(store: Store, worker: str = "A"):
    """A job claimed by ``worker`` whose preprocess has finished."""
    job, _ = new_job(store)
    assert store.claim_job(job.id, worker, TTL)
    run = store.start_stage(job.id, "preprocess", units_total=1)
    store.finish_preprocess(job.id, run, worker, "SKELETON", CHUNKS)
    return store.job(job.id)


def raw(db_path, sql: str, params=()):
    conn = sqlite3.connect(str(db_path))
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


# -- schema -------------------------------------------------------------------


def test_fresh_database_has_every_migration_and_wal(store, db_path):
    assert raw(db_path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert raw(db_path, "PRAGMA journal_mode") == [("wal",)]
    tables = {r[0] for r in raw(db_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "chunks", "batches", "stage_runs", "artifacts", "attempts", "leases"} <= tables


def _everything(conn) -> tuple:
    schema = sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    rows = {name: sorted(conn.execute(f'SELECT * FROM "{name}"'))
            for kind, name, _, _ in schema if kind == "table"}
    return conn.execute("PRAGMA user_version").fetchone(), schema, rows


def test_a_new_store_is_what_the_migrations_make_one_by_one(db_path, tmp_path):
    """A new store is made from the migrations' end state at once
    (``latest_schema``): the same schema, rows and version as running each
    migration in turn, and a store made so upgrades as one migrated does."""
    Store(db_path).close()
    conn = sqlite3.connect(str(tmp_path / "by-hand.db"), isolation_level=None)
    for number, script in enumerate(MIGRATIONS, start=1):
        for statement in store_module.statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version={number}")
    made = sqlite3.connect(str(db_path))
    try:
        assert _everything(made) == _everything(conn)
        assert len(_everything(made)[1]) > 40  # tables, indexes and triggers
    finally:
        made.close()
        conn.close()


def test_reopening_applies_only_migrations_not_yet_applied(db_path, monkeypatch):
    s = Store(db_path)
    job, _ = new_job(s)
    s.close()
    # The applied migrations replaced by garbage: running one again would
    # raise. A new migration appended after them must run exactly once.
    shipped = len(MIGRATIONS)
    monkeypatch.setattr(
        store_module, "MIGRATIONS",
        ("THIS IS NOT SQL",) * shipped + ("CREATE TABLE extra (x INTEGER)",),
    )
    s = Store(db_path)
    assert s.job(job.id) == job
    s.close()
    assert raw(db_path, "PRAGMA user_version") == [(shipped + 1,)]
    assert raw(db_path, "SELECT name FROM sqlite_master WHERE name = 'extra'") == [("extra",)]
    Store(db_path).close()  # and a third open runs nothing at all
    assert raw(db_path, "PRAGMA user_version") == [(shipped + 1,)]


def test_migration_5_records_what_translated_each_batch(db_path, monkeypatch):
    """A store written before backends existed: its inference runs were the
    transformers backend's, and its batches gain backend, device and
    compute type columns that the next commit fills."""
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:4])
    s = Store(db_path)
    job, _ = new_job(s)
    s.db.execute("INSERT INTO stage_runs (job_id, stage, started_at, units_total, model, device, "
                 "dtype) VALUES (?, 'inference', 1, 1, 'm', 'cpu', 'float32')", (job.id,))
    s.close()
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    s = Store(db_path)
    assert [(r.backend, r.device, r.dtype) for r in s.stage_runs(job.id)] == [
        ("hf", "cpu", "float32")]
    assert s.inference_profile(job.id) == ("m", "hf", "cpu", "float32")
    assert s.claim_job(job.id, "w", 30)
    run = s.start_stage(job.id, "preprocess", units_total=1)
    s.finish_preprocess(job.id, run, "w", "{}", CHUNKS)
    s.add_batches(job.id, [s.pending_chunks(job.id)])
    (batch,) = s.pending_batches(job.id)
    assert (batch.backend, batch.device, batch.compute_type) == (None, None, None)
    s.commit_batch(job.id, batch.id, {0: "a"}, "w", translated_by=("ctranslate2", "cuda:0",
                                                                   "int8_float16"),
                   call_s=0.25, idle_s=None)
    (batch,) = s.batches(job.id)
    assert (batch.backend, batch.device, batch.compute_type) == (
        "ctranslate2", "cuda:0", "int8_float16")
    assert (batch.call_s, batch.idle_s) == (0.25, None)  # the first call has no wait before it
    assert s.translated_by(job.id) == [("ctranslate2", "cuda:0", "int8_float16", 1, 0, 0,
                                        1, 0.25, 0, 0.0)]


def test_database_from_a_newer_version_is_refused(db_path):
    conn = sqlite3.connect(str(db_path))
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(InvalidInput, match="newer nllb-pipeline"):
        Store(db_path)
    # Refusing must not have touched the schema.
    assert raw(db_path, "SELECT name FROM sqlite_master WHERE type='table'") == []
    assert raw(db_path, "PRAGMA user_version") == [(len(MIGRATIONS) + 1,)]


def test_unopenable_path_is_invalid_input(tmp_path):
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(InvalidInput, match="cannot open the job database"):
        Store(tmp_path / "dir.db")


# -- jobs ---------------------------------------------------------------------


def test_get_or_create_job_is_idempotent_by_key(store, clock):
    first, created = new_job(store)
    assert created is True
    assert (first.state, first.stage, first.input_bytes) == ("QUEUED", "preprocess", 123)
    assert first.created_at == clock.now
    clock.advance(5)
    again, created_again = new_job(store)
    assert created_again is False
    assert again == first
    other, created_other = new_job(store, key="key-2")
    assert created_other is True and other.id != first.id
    assert [j.id for j in store.jobs()] == [other.id, first.id]  # newest first
    assert store.job_by_key("key-1") == first


def test_job_lookup_by_unique_prefix(store):
    job, _ = new_job(store)
    assert store.job(job.id[:5]) == job
    assert store.job("no-such-job") is None
    assert store.job("") is None


def test_concurrent_creation_from_separate_stores_creates_one_job(db_path):
    Store(db_path).close()
    barrier = threading.Barrier(8)
    results, errors = [], []

    def submit():
        s = Store(db_path)
        try:
            barrier.wait()
            results.append(new_job(s))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(created for _, created in results) == 1
    assert len({job.id for job, _ in results}) == 1
    assert raw(db_path, "SELECT COUNT(*) FROM jobs") == [(1,)]


def test_set_job_state_and_reopen_for_upload(store, clock):
    job, _ = new_job(store)
    store.set_job_state(job.id, "FAILED", error_class="oom", error_message="boom")
    failed = store.job(job.id)
    assert (failed.state, failed.error_class, failed.error_message) == ("FAILED", "oom", "boom")
    assert failed.finished_at == clock.now
    store.set_job_state(job.id, "SUCCEEDED")
    store.reopen_for_upload(job.id)
    reopened = store.job(job.id)
    assert (reopened.state, reopened.stage) == ("QUEUED", "upload")


# -- leases -------------------------------------------------------------------


def test_claim_job_free_own_live_expired_and_dead(db_path, clock):
    a, b, c = (Store(db_path, clock=clock) for _ in range(3))
    job, _ = new_job(a)

    assert a.claim_job(job.id, "A", TTL)  # free
    held = a.job(job.id)
    assert (held.state, held.lease_owner, held.lease_expires) == ("RUNNING", "A", clock.now + TTL)

    clock.advance(10)
    assert a.claim_job(job.id, "A", TTL)  # ours: renewed
    assert a.job(job.id).lease_expires == clock.now + TTL

    assert not b.claim_job(job.id, "B", TTL)  # held by a live worker
    assert not b.claim_job(job.id, "B", TTL, dead=["someone-else"])
    assert b.job(job.id).lease_owner == "A"

    clock.advance(TTL - 1)
    assert not b.claim_job(job.id, "B", TTL)  # not expired yet
    clock.advance(2)
    assert b.claim_job(job.id, "B", TTL)  # expired
    assert b.job(job.id).lease_owner == "B"

    assert not c.claim_job(job.id, "C", TTL)
    assert c.claim_job(job.id, "C", TTL, dead=["B"])  # B's process is known dead
    assert c.job(job.id).lease_owner == "C"
    for s in (a, b, c):
        s.close()


def test_lease_history_records_each_holder(store, clock):
    job, _ = new_job(store)
    t0 = clock.now
    assert store.claim_job(job.id, "A", TTL)
    clock.advance(TTL + 1)
    assert store.claim_job(job.id, "B", TTL)
    clock.advance(1)
    store.release_job(job.id, "B")
    rows = [
        (r["worker"], r["acquired_at"], r["released_at"], r["how"])
        for r in store.db.query("SELECT * FROM leases WHERE job_id = ? ORDER BY id", [job.id])
    ]
    assert rows == [
        ("A", t0, t0 + TTL + 1, "expired"),
        ("B", t0 + TTL + 1, t0 + TTL + 2, "released"),
    ]
    released = store.job(job.id)
    assert (released.lease_owner, released.lease_expires) == (None, None)


def test_release_by_a_non_owner_changes_nothing(store):
    job, _ = new_job(store)
    assert store.claim_job(job.id, "A", TTL)
    store.release_job(job.id, "B")
    assert store.job(job.id).lease_owner == "A"


def test_heartbeat_extends_until_another_worker_takes_over(store, clock):
    job, _ = new_job(store)
    assert store.claim_job(job.id, "A", TTL)
    clock.advance(20)
    assert store.heartbeat(job.id, "A", TTL)
    assert store.job(job.id).lease_expires == clock.now + TTL
    clock.advance(TTL + 1)
    assert store.claim_job(job.id, "B", TTL)
    assert store.heartbeat(job.id, "A", TTL) is False
    assert store.job(job.id).lease_owner == "B"
    assert store.job(job.id).lease_expires == clock.now + TTL  # A did not extend B's lease


# -- preprocess ---------------------------------------------------------------


def test_finish_preprocess_writes_chunks_skeleton_and_moves_to_inference(store, clock):
    job, _ = new_job(store)
    assert store.claim_job(job.id, "A", TTL)
    run = store.start_stage(job.id, "preprocess", units_total=7, device="cpu", model="tiny")
    clock.advance(2.5)
    store.finish_preprocess(job.id, run, "A", "SKELETON", CHUNKS)

    assert store.job(job.id).stage == "inference"
    assert store.artifact(job.id, "skeleton").content == b"SKELETON"
    chunks = store.chunks(job.id)
    assert [(c.idx, c.unit, c.source, c.n_tokens, c.state) for c in chunks] == [
        (0, 0, "First sentence.", 5, "pending"),
        (1, 0, "A second, longer sentence here.", 9, "pending"),
        (2, 1, "42", 3, "done"),
        (3, 2, "Third.", 4, "pending"),
    ]
    assert chunks[2].translation == "42" and chunks[0].translation is None
    assert [c.idx for c in store.pending_chunks(job.id)] == [0, 1, 3]
    [stage_run] = store.stage_runs(job.id)
    assert (stage_run.stage, stage_run.wall_s, stage_run.units_done, stage_run.device) == (
        "preprocess", 2.5, 7, "cpu")


def test_finish_preprocess_after_losing_the_lease_writes_nothing(store, clock):
    job, _ = new_job(store)
    assert store.claim_job(job.id, "A", TTL)
    run = store.start_stage(job.id, "preprocess", units_total=1)
    clock.advance(TTL + 1)
    assert store.claim_job(job.id, "B", TTL)
    with pytest.raises(LeaseLost):
        store.finish_preprocess(job.id, run, "A", "SKELETON", CHUNKS)
    assert store.chunks(job.id) == []
    assert store.artifact(job.id, "skeleton") is None
    assert store.job(job.id).stage == "preprocess"
    [stage_run] = store.stage_runs(job.id)
    assert stage_run.finished_at is None  # the stage run was not closed either
    assert not store.db.conn.in_transaction


def test_finish_preprocess_again_replaces_chunks_and_batches(store):
    job = preprocessed_job(store)
    store.add_batches(job.id, [store.chunks(job.id, [1, 0])])
    run = store.start_stage(job.id, "preprocess", units_total=1)
    store.finish_preprocess(job.id, run, "A", "NEW", CHUNKS[:1])
    assert [c.source for c in store.chunks(job.id)] == ["First sentence."]
    assert store.batches(job.id) == []
    assert store.artifact(job.id, "skeleton").content == b"NEW"


# -- chunks and batches -------------------------------------------------------


def test_chunk_and_token_counts(store):
    job = preprocessed_job(store)
    assert store.chunk_counts(job.id) == {"pending": 3, "done": 1}
    assert store.token_counts(job.id) == (3, 21)
    empty, _ = new_job(store, key="empty")
    assert store.chunk_counts(empty.id) == {}
    assert store.token_counts(empty.id) == (0, 0)


def test_chunks_by_idxs_keep_the_requested_order(store):
    job = preprocessed_job(store)
    assert [c.idx for c in store.chunks(job.id, [3, 0, 1])] == [3, 0, 1]


def test_add_batches_persists_plan_order_and_token_counts(store):
    job = preprocessed_job(store)
    c = store.chunks(job.id)
    store.add_batches(job.id, [[c[1], c[0]], [c[3]]])
    store.add_batches(job.id, [[c[0]], [c[1]]], parent_id=7)
    batches = store.batches(job.id)
    assert [(b.seq, b.chunk_idxs, b.padded_tokens, b.source_tokens, b.state, b.parent_id)
            for b in batches] == [
        (0, [1, 0], 18, 14, "pending", None),
        (1, [3], 4, 4, "pending", None),
        (2, [0], 5, 5, "pending", 7),
        (3, [1], 9, 9, "pending", 7),
    ]
    store.add_batches(job.id, [[c[3]]], seq_start=0)  # a split runs where its parent was
    assert [(b.seq, b.chunk_idxs) for b in store.pending_batches(job.id)] == [
        (0, [1, 0]), (0, [3]), (1, [3]), (2, [0]), (3, [1])]


def test_commit_batch_stores_translations_and_counts_commits(store, clock):
    job = preprocessed_job(store)
    c = store.chunks(job.id)
    store.add_batches(job.id, [[c[1], c[0]]])
    [batch] = store.batches(job.id)
    clock.advance(3)
    store.commit_batch(job.id, batch.id, {1: "Deux.", 0: "Un."}, "A")

    done = store.chunks(job.id, [0, 1])
    assert [(x.translation, x.state, x.batch_id, x.commits) for x in done] == [
        ("Un.", "done", batch.id, 1), ("Deux.", "done", batch.id, 1)]
    assert store.batches(job.id)[0].state == "committed"
    assert store.pending_batches(job.id) == []
    assert store.job(job.id).updated_at == clock.now
    assert store.token_counts(job.id) == (17, 21)

    # a result delivered twice commits once (test_commit_batch_twice_commits_once)
    assert store.commit_batch(job.id, batch.id, {0: "Un bis."}, "A") is False
    again = store.chunks(job.id, [0])[0]
    assert (again.translation, again.commits) == ("Un.", 1)


def test_commit_batch_by_a_worker_that_lost_the_lease_writes_nothing(store, clock):
    job = preprocessed_job(store, worker="A")
    c = store.chunks(job.id)
    store.add_batches(job.id, [[c[1], c[0]]])
    [batch] = store.batches(job.id)
    before = store.chunks(job.id)
    clock.advance(TTL + 1)
    assert store.claim_job(job.id, "B", TTL)
    with pytest.raises(LeaseLost, match="taken over by B"):
        store.commit_batch(job.id, batch.id, {1: "Deux.", 0: "Un."}, "A")
    assert store.chunks(job.id) == before
    assert [b.state for b in store.pending_batches(job.id)] == ["pending"]
    assert not store.db.conn.in_transaction


# -- attempts -----------------------------------------------------------------


def test_record_attempt_round_trip(store, clock):
    job, _ = new_job(store)
    store.record_attempt(job.id, "inference", error_class=ErrorClass.OOM, message="CUDA out of memory",
                         attempt=2, decision="split", tb="Traceback...", batch_id=4, chunk_idx=None,
                         delay_s=1.5, trace_id="abcd1234")
    clock.advance(1)
    store.record_attempt(job.id, "upload", error_class="network", message="reset",
                         attempt=1, decision="retry")
    first, second = store.attempts(job.id)
    assert (first.stage, first.error_class, first.message, first.attempt, first.decision,
            first.traceback, first.batch_id, first.chunk_idx, first.delay_s, first.trace_id,
            first.at) == ("inference", "oom", "CUDA out of memory", 2, "split", "Traceback...",
                          4, None, 1.5, "abcd1234", clock.now - 1)
    assert (second.error_class, second.decision, second.at) == ("network", "retry", clock.now)
    assert len(second.trace_id) == 8  # one is made up when none is given
    assert store.attempts("other") == []


# -- idempotent commits -------------------------------------------------------


def test_commit_batch_twice_commits_once(store, clock):
    """A batch sent again after its actor was lost, whose first result
    arrived after all: the second delivery takes nothing."""
    job = preprocessed_job(store)
    c = store.chunks(job.id)
    store.add_batches(job.id, [[c[1], c[0]]])
    [batch] = store.batches(job.id)
    assert store.commit_batch(job.id, batch.id, {1: "Deux.", 0: "Un."}, "A",
                              translated_by=("hf", "cpu", "float32"),
                              ran_on="actor 1 pid 10") is True
    first = store.batches(job.id)[0]
    updated = store.job(job.id).updated_at
    clock.advance(5)

    assert store.commit_batch(job.id, batch.id, {1: "Deux bis.", 0: "Un bis."}, "A",
                              translated_by=("ctranslate2", "cuda:0", "int8"),
                              ran_on="actor 2 pid 20") is False
    assert [(x.translation, x.state, x.batch_id, x.commits)
            for x in store.chunks(job.id, [0, 1])] == [
        ("Un.", "done", batch.id, 1), ("Deux.", "done", batch.id, 1)]
    # the batch keeps what its first commit said: when, what and where
    assert store.batches(job.id) == [first]
    assert (first.state, first.ran_on, first.backend) == ("committed", "actor 1 pid 10", "hf")
    assert store.job(job.id).updated_at == updated
    assert store.token_counts(job.id) == (17, 21)
    assert not store.db.conn.in_transaction


def test_commit_batch_to_a_batch_that_is_not_pending_returns_false(store):
    job = preprocessed_job(store)
    c = store.chunks(job.id)
    store.add_batches(job.id, [[c[0], c[1]], [c[3]]])
    whole, other = store.batches(job.id)
    store.split_batch(job.id, whole, [[c[0]], [c[1]]], "A")
    store.skip_batch(job.id, other.id, [3], "A")
    before = store.chunks(job.id)
    assert store.commit_batch(job.id, whole.id, {0: "Un.", 1: "Deux."}, "A") is False  # split
    assert store.commit_batch(job.id, other.id, {3: "Trois."}, "A") is False  # skipped
    assert store.commit_batch(job.id, 999, {0: "Un."}, "A") is False  # no such batch
    other_job, _ = new_job(store, key="other")
    assert store.claim_job(other_job.id, "A", TTL)
    half = store.pending_batches(job.id)[0]
    assert store.commit_batch(other_job.id, half.id, {0: "Un."}, "A") is False  # not its job
    assert store.chunks(job.id) == before
    assert [b.state for b in store.batches(job.id)] == ["split", "skipped", "pending", "pending"]


def test_a_chunk_no_longer_pending_takes_no_translation(store):
    job = preprocessed_job(store)
    c = store.chunks(job.id)
    store.add_batches(job.id, [[c[0], c[1]]])
    [batch] = store.batches(job.id)
    # chunk 0 alone first (the chunk-by-chunk path: the batch stays pending)
    assert store.commit_batch(job.id, batch.id, {0: "Un."}, "A", final=False) is True
    assert store.batches(job.id)[0].state == "pending"
    # then the whole batch: chunk 0 is done already and keeps its translation
    assert store.commit_batch(job.id, batch.id, {0: "Un bis.", 1: "Deux."}, "A") is True
    assert [(x.translation, x.state, x.commits) for x in store.chunks(job.id, [0, 1])] == [
        ("Un.", "done", 1), ("Deux.", "done", 1)]
    assert store.batches(job.id)[0].state == "committed"

    # a chunk done from the start (no translation needed), and one failed for good
    store.add_batches(job.id, [[c[3]]])
    skipped = store.pending_batches(job.id)[0]
    store.skip_batch(job.id, skipped.id, [3], "A")
    store.add_batches(job.id, [store.chunks(job.id, [2, 3])])
    late = store.pending_batches(job.id)[0]
    assert store.commit_batch(job.id, late.id, {2: "quarante-deux", 3: "Trois."}, "A") is True
    assert [(x.translation, x.state, x.commits, x.batch_id) for x in store.chunks(job.id, [2, 3])
            ] == [("42", "done", 0, None), (None, "failed", 0, None)]
    assert store.token_counts(job.id) == (17, 21)


def test_commit_batch_on_a_non_pending_batch_still_checks_the_lease(store, clock):
    job = preprocessed_job(store, worker="A")
    c = store.chunks(job.id)
    store.add_batches(job.id, [[c[0]]])
    [batch] = store.batches(job.id)
    assert store.commit_batch(job.id, batch.id, {0: "Un."}, "A")
    clock.advance(TTL + 1)
    assert store.claim_job(job.id, "B", TTL)
    with pytest.raises(LeaseLost):
        store.commit_batch(job.id, batch.id, {0: "Un."}, "A")


def _ladder_step(idx: int) -> dict:
    return {"chunk_idx": idx, "message": "copied the source", "attempt": 1,
            "decision": "guarded", "reason": "copy"}


def test_commit_checked_on_a_non_pending_batch_takes_nothing_and_records_no_attempts(store):
    from pipeline.store import NewPiece

    job = preprocessed_job(store)
    c = store.chunks(job.id)
    store.add_batches(job.id, [[c[0], c[1]], [c[3]]])
    done, skipped = store.batches(job.id)
    assert store.commit_checked(job.id, done.id, "A", accepted={0: "Un.", 1: "Deux."}) is True
    store.skip_batch(job.id, skipped.id, [3], "A")
    before = (store.chunks(job.id), store.batches(job.id))

    for batch, chunk in ((done, 0), (skipped, 3)):
        assert store.commit_checked(
            job.id, batch.id, "A", accepted={chunk: "Encore."}, flags={chunk: "copy"},
            replaced={1: [NewPiece("A second,", 4, 1), NewPiece("longer sentence here.", 6, 1)]},
            attempts=[_ladder_step(chunk)], translated_by=("hf", "cpu", "float32"),
            ran_on="actor 2 pid 20") is False
    assert (store.chunks(job.id), store.batches(job.id)) == before  # no flag, no pieces
    assert store.attempts(job.id) == []
    assert store.quality_report(job.id)["flagged"] == []
    assert not store.db.conn.in_transaction


def test_commit_checked_twice_records_its_ladder_steps_once(store):
    job = preprocessed_job(store)
    c = store.chunks(job.id)
    store.add_batches(job.id, [[c[0], c[1]]])
    [batch] = store.batches(job.id)
    kwargs = dict(accepted={0: "Un.", 1: "Deux."}, flags={1: "length"},
                  attempts=[_ladder_step(1)])
    assert store.commit_checked(job.id, batch.id, "A", **kwargs) is True
    assert store.commit_checked(job.id, batch.id, "A", **kwargs) is False
    assert [(a.decision, a.chunk_idx, a.error_class) for a in store.attempts(job.id)] == [
        ("guarded", 1, "quality")]
    assert [(x.idx, x.flag, x.commits) for x in store.chunks(job.id, [0, 1])] == [
        (0, None, 1), (1, "length", 1)]


def test_commit_checked_flags_only_the_chunks_that_took_a_translation(store):
    job = preprocessed_job(store)
    c = store.chunks(job.id)
    store.add_batches(job.id, [[c[0], c[1]]])
    [batch] = store.batches(job.id)
    assert store.commit_checked(job.id, batch.id, "A", accepted={0: "Un."}, final=False)
    # chunk 0 is done, unflagged; a second delivery judges it otherwise
    assert store.commit_checked(job.id, batch.id, "A", accepted={0: "UN UN UN.", 1: "Deux."},
                                flags={0: "loop"}) is True
    assert [(x.translation, x.flag) for x in store.chunks(job.id, [0, 1])] == [
        ("Un.", None), ("Deux.", None)]


def test_a_stage_run_records_its_cpu_time_when_its_own_process_ends_it(db_path, clock):
    store = Store(db_path, clock=clock)
    job, _ = new_job(store)
    assert store.claim_job(job.id, "A", TTL)
    run = store.start_stage(job.id, "preprocess", units_total=1, worker="A")
    spent = time.process_time()
    sum(i * i for i in range(200_000))  # some CPU work inside the run
    spent = time.process_time() - spent
    store.finish_stage(job.id, run, "inference", "A")
    (recorded,) = [r.cpu_s for r in store.stage_runs(job.id)]
    assert spent <= recorded < spent + 1.0
    # A run ended by another store (another process: the run was resumed or
    # closed elsewhere) has no CPU time of its own to give.
    other_run = store.start_stage(job.id, "inference", units_total=1, worker="A")
    Store(db_path, clock=clock).finish_stage(job.id, other_run, "postprocess", "A")
    assert [r.cpu_s is None for r in store.stage_runs(job.id)] == [False, True]
