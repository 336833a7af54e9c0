"""Figures over many jobs, from a store with planted jobs of known numbers."""

from __future__ import annotations

import argparse
import json
import random
import contextlib
import io
import sqlite3
import time

import pytest

from pipeline.cli import read as views
from pipeline.progress.stats import DAY_S, job_stats, profiles_table
from pipeline.store import Store
from tests.test_profiles import CPU, GPU, UNITS, plant

NOW = time.time()  # cmd_stats measures its window from the real clock


class Clock:
    t = NOW

    def __call__(self):
        return self.t


def make_job(store: Store, clock: Clock, key: str, state: str, *, age_days: float = 1.0,
             wall_s: float = 100.0, predictions: dict[int, float] | None = None,
             chunks: dict[int, str] | None = None, empty: list[int] | None = None) -> str:
    """A job created ``age_days`` ago whose four stages took ``wall_s`` in all,
    with chunks in the given end states and ETA predictions at 10/50/90 %.
    ``empty``: the chunks its postprocess found empty, recorded as
    postprocess records them (``finish_postprocess``)."""
    clock.t = NOW - age_days * DAY_S
    job, _ = store.get_or_create_job(idem_key=key, params="{}", input_path=f"/in/{key}",
                                     input_sha256="h", input_bytes=1, output_path="/out")
    for stage in ("preprocess", "inference", "postprocess", "upload"):
        run = store.start_stage(job.id, stage, units_total=1)
        clock.t += wall_s / 4
        if stage == "postprocess" and empty is not None:
            assert store.claim_job(job.id, "w", 60)
            store.finish_postprocess(job.id, run, "w", path="/out", sha256="h", nbytes=1,
                                     empty_chunks=empty)
            store.release_job(job.id, "w")
            continue
        with store._write():
            store._close_stage_run(run)
    if chunks:
        with store._write() as db:
            db["chunks"].insert_all(
                {"job_id": job.id, "idx": idx, "unit": idx, "source": "x", "n_tokens": 1,
                 "state": chunk_state} for idx, chunk_state in chunks.items())
    for mark, predicted in (predictions or {}).items():
        store.record_prediction(job.id, mark, 0.0, predicted)
    store.set_job_state(job.id, state)
    return job.id


def attempt(store: Store, job_id: str, stage: str, error_class: str, decision: str, *,
            chunk_idx: int | None = None, batch_id: int | None = None, n: int = 1) -> None:
    for i in range(n):
        store.record_attempt(job_id, stage, error_class=error_class, message="boom",
                             attempt=i + 1, decision=decision, chunk_idx=chunk_idx,
                             batch_id=batch_id)


def batch_of(store: Store, job_id: str) -> int:
    store.add_batches(job_id, [store.chunks(job_id)])
    return store.batches(job_id)[0].id


@pytest.fixture
def planted(tmp_path):
    """Six jobs from yesterday and one from a month ago.

    retries: j1 5 (chunk 0 oom, chunk 1 timeout x2, split oom, batch timeout),
    j2 1 (upload network), j3 2 (chunk timeout, batch timeout), j4 2 (upload
    server), j5 1 (chunk oom, still running), j6 0, old 6 (upload network).
    """
    clock = Clock()
    path = tmp_path / "jobs.db"
    store = Store(path, clock=clock)
    # chunks the model returned empty (postprocess kept their source): 2 in j1,
    # none in j2 (an empty list on record), 3 in the old job outside the week
    j1 = make_job(store, clock, "j1", "SUCCEEDED", predictions={10: 80, 50: 110, 90: 101},
                  chunks={0: "done", 1: "done"}, empty=[0, 1])
    b1 = batch_of(store, j1)
    attempt(store, j1, "inference", "oom", "retry", chunk_idx=0, batch_id=b1)
    attempt(store, j1, "inference", "timeout", "retry", chunk_idx=1, batch_id=b1, n=2)
    attempt(store, j1, "inference", "oom", "split", batch_id=b1)
    attempt(store, j1, "inference", "timeout", "retry_batch", batch_id=b1)

    j2 = make_job(store, clock, "j2", "SUCCEEDED", predictions={10: 150, 50: 95, 90: 100},
                  empty=[])
    attempt(store, j2, "upload", "network", "retry")

    j3 = make_job(store, clock, "j3", "FAILED", chunks={0: "failed", 1: "done"})
    b3 = batch_of(store, j3)
    attempt(store, j3, "inference", "timeout", "retry", chunk_idx=0, batch_id=b3)
    attempt(store, j3, "inference", "timeout", "give_up", chunk_idx=0, batch_id=b3)
    attempt(store, j3, "inference", "timeout", "retry_batch", batch_id=b3)
    attempt(store, j3, "inference", "timeout", "skip", batch_id=b3)

    # a failed job's predictions do not count towards ETA accuracy
    j4 = make_job(store, clock, "j4", "FAILED", predictions={10: 1, 50: 1, 90: 1})
    attempt(store, j4, "upload", "server", "retry", n=2)
    attempt(store, j4, "upload", "server", "fail")

    # still running: its retried chunk has no outcome yet
    j5 = make_job(store, clock, "j5", "RUNNING", chunks={0: "pending"})
    attempt(store, j5, "inference", "oom", "retry", chunk_idx=0)

    make_job(store, clock, "j6", "CANCELED")

    old = make_job(store, clock, "old", "SUCCEEDED", age_days=30,
                   predictions={10: 200, 50: 200, 90: 200}, empty=[0, 1, 2])
    attempt(store, old, "upload", "network", "retry", n=6)
    return store, path


def test_figures_over_the_last_week(planted):
    store, _ = planted
    stats = job_stats(store, 7, NOW)
    assert stats["jobs"] == 6
    assert stats["by_state"] == {"SUCCEEDED": 2, "FAILED": 2, "RUNNING": 1, "CANCELED": 1}
    assert stats["finished"] == 4
    assert stats["failure_rate"] == 0.5
    assert stats["retries"] == {
        "total": 11, "mean_per_job": pytest.approx(11 / 6), "max_per_job": 5,
        "by_class": {"timeout": 5, "oom": 3, "server": 2, "network": 1},
    }
    # chunks: j1's 0 and 1 done, j3's 0 failed (j5 is unfinished);
    # batches: j1's all done, j3's not; uploads: j2 succeeded, j4 failed
    assert stats["retry_success"] == {
        "rate": pytest.approx(4 / 7),
        "chunks": {"retried": 3, "succeeded": 2},
        "batches": {"retried": 2, "succeeded": 1},
        "uploads": {"retried": 2, "succeeded": 1},
    }
    assert stats["splits"] == 1
    assert stats["empty_chunks"] == {"chunks": 2, "jobs": 1}
    # actual 100 s; errors j1 20/10/1 %, j2 50/5/0 % -> medians 35, 7.5, 0.5
    assert stats["eta_error"]["jobs"] == 2
    assert stats["eta_error"]["median_abs_pct_error"] == pytest.approx(
        {10: 35.0, 50: 7.5, 90: 0.5})


def test_without_since_the_old_job_counts(planted):
    store, _ = planted
    stats = job_stats(store, None, NOW)
    assert stats["jobs"] == 7
    assert stats["failure_rate"] == pytest.approx(2 / 5)
    assert stats["retries"]["total"] == 17
    assert stats["retries"]["max_per_job"] == 6
    assert stats["retries"]["by_class"]["network"] == 7
    assert stats["retry_success"]["uploads"] == {"retried": 3, "succeeded": 2}
    assert stats["empty_chunks"] == {"chunks": 5, "jobs": 2}
    # the old job was 100 % off at every mark
    assert stats["eta_error"]["median_abs_pct_error"] == pytest.approx(
        {10: 50.0, 50: 10.0, 90: 1.0})


def test_an_empty_window_has_no_rates(planted):
    store, _ = planted
    stats = job_stats(store, 0.5, NOW)
    assert stats["jobs"] == 0 and stats["by_state"] == {}
    assert stats["failure_rate"] is None
    assert stats["retries"] == {"total": 0, "mean_per_job": None, "max_per_job": 0,
                                "by_class": {}}
    assert stats["retry_success"]["rate"] is None
    assert stats["eta_error"] == {"jobs": 0, "median_abs_pct_error": {10: None, 50: None,
                                                                      90: None}}


def test_stats_command_json(planted, capsys):
    _, path = planted
    assert views.cmd_stats(argparse.Namespace(db=str(path), since=7.0, json=True)) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"since_days", "jobs", "by_state", "finished", "failure_rate", "retries",
                        "retry_success", "splits", "empty_chunks", "quality", "eta_error",
                        "reused", "reviews"}
    assert out["reviews"] == {"marked": 0, "corrected": 0, "jobs": 0}
    assert out["since_days"] == 7.0 and out["jobs"] == 6 and out["failure_rate"] == 0.5
    assert out["eta_error"]["median_abs_pct_error"] == pytest.approx(
        {"10": 35.0, "50": 7.5, "90": 0.5})


def test_stats_command_text_is_aligned(planted, capsys):
    _, path = planted
    assert views.cmd_stats(argparse.Namespace(db=str(path), since=7.0, json=False)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "jobs                6 (last 7 days): CANCELED 1, FAILED 2, RUNNING 1, SUCCEEDED 2",
        "failure rate        50.0%  (2 of 4 finished)",
        "retries per job     mean 1.83, max 5  (11 in all)",
        "retries by class    timeout 5, oom 3, server 2, network 1",
        "retry success       57.1%  (chunks 2/3, batches 1/2, uploads 1/2)",
        "OOM splits          1",
        "empty chunks        2 in 1 job(s) (source text kept)",
        "quality flags       none",
        "quality repairs     none",
        "fragment fallbacks  0",
        "ETA error (median)  at 10%: 35.0%  at 50%: 7.5%  at 90%: 0.5%  (2 jobs)",
        "reused chunks       0.0%  (0 from the memory, 0 repeats in their document, of 5 stored)",
        "reviews             0 chunk(s) marked wrong, 0 corrected, in 0 job(s)",
    ]


def test_profiles_table_lists_each_profile_with_its_history(tmp_path, capsys):
    from tests.test_profiles import Clock as ProfileClock

    clock = ProfileClock()
    path = tmp_path / "j.db"
    store = Store(path, clock=clock)
    walls = {"preprocess": 1, "inference": 95, "postprocess": 2, "upload": 2}
    plant(store, clock, CPU, walls, UNITS)
    plant(store, clock, CPU, walls, UNITS)
    plant(store, clock, GPU, walls, UNITS, state="FAILED")
    table = profiles_table(store)
    assert [(r["backend"], r["device"], r["dtype"], r["jobs"], r["history_jobs"])
            for r in table] == [("hf", "cpu", "float32", 2, 2), ("hf", "cuda:0", "bfloat16", 1, 0)]
    assert table[0]["weights"] == pytest.approx(
        {"preprocess": 0.01, "inference": 0.95, "postprocess": 0.02, "upload": 0.02})
    assert table[0]["rates"]["inference"] == pytest.approx(2000 / 95)
    assert table[1]["rates"] == {}  # a failed job gives no history: the defaults

    assert views.cmd_profile(argparse.Namespace(db=str(path), json=True)) == 0
    assert json.loads(capsys.readouterr().out)[0]["model"] == CPU.model
    assert views.cmd_profile(argparse.Namespace(db=str(path), json=False)) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == f"{CPU.model} on cpu (hf float32): 2 jobs, history from 2"
    assert text[2] == "  inference    weight 0.950          21.1 units/s"


# -- 10,000 jobs ---------------------------------------------------------------

N_JOBS = 10_000
STATES = ("SUCCEEDED",) * 6 + ("FAILED", "RUNNING", "QUEUED", "CANCELED")


def plant_many(path) -> None:
    """10,000 jobs with chunks, stage runs, attempts and predictions, in one
    transaction of executemany calls."""
    Store(path).close()
    rng = random.Random(7)
    conn = sqlite3.connect(path)
    jobs, chunks, runs, attempts, predictions = [], [], [], [], []
    for i in range(N_JOBS):
        job_id = f"{i:012x}"
        state = STATES[i % len(STATES)]
        stage = {"SUCCEEDED": "done", "QUEUED": "preprocess"}.get(state, "inference")
        created = NOW - rng.uniform(0, 60) * DAY_S
        jobs.append((job_id, f"key{i}", state, stage, "{}", f"/in/{i}.txt", "h", 1, "/out",
                     created, created, created + 100 if state != "RUNNING" else None))
        chunks += [(job_id, c, c, "x", 10, "done" if c < 7 or state == "SUCCEEDED" else
                    "pending") for c in range(10)]
        for s, stage_name in enumerate(("preprocess", "inference", "postprocess", "upload")):
            runs.append((job_id, stage_name, created + s, created + s + 25, 25.0, 10, 10,
                         "cpu" if stage_name == "inference" else None,
                         CPU.model if stage_name == "inference" else None,
                         "float32" if stage_name == "inference" else None))
        if i % 3 == 0:
            attempts += [(job_id, "inference", 0, "oom", "m", 1, "retry", "t", created)] * 2
            attempts.append((job_id, "inference", None, "oom", "m", 1, "split", "t", created))
        if state == "SUCCEEDED":
            predictions += [(job_id, mark, 1.0, rng.uniform(50, 150), created)
                            for mark in (10, 50, 90)]
    with conn:
        conn.executemany(
            "INSERT INTO jobs (id, idem_key, state, stage, params, input_path, input_sha256, "
            "input_bytes, output_path, created_at, updated_at, finished_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", jobs)
        conn.executemany("INSERT INTO chunks (job_id, idx, unit, source, n_tokens, state) "
                         "VALUES (?, ?, ?, ?, ?, ?)", chunks)
        conn.executemany(
            "INSERT INTO stage_runs (job_id, stage, started_at, finished_at, wall_s, "
            "units_total, units_done, device, model, dtype) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            runs)
        conn.executemany(
            "INSERT INTO attempts (job_id, stage, chunk_idx, error_class, message, attempt, "
            "decision, trace_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", attempts)
        conn.executemany("INSERT INTO eta_predictions VALUES (?, ?, ?, ?, ?)", predictions)
    conn.close()


@pytest.fixture(scope="module")
def many_jobs(tmp_path_factory):
    path = tmp_path_factory.mktemp("many") / "jobs.db"
    plant_many(path)
    return path


def statements_of(monkeypatch, fn, *args) -> int:
    """SQL statements ``fn`` runs on the connections it opens (trigger
    bodies and the store's own setup included). The read commands' cost on
    a large store is counted here, not timed: a 2-core CI machine's clock
    says more about its load than about the code. ``benchmarks/
    read_commands.py`` measures the wall time against a raw query."""
    count = 0
    connect = sqlite3.connect

    def counted(*a, **kw):
        conn = connect(*a, **kw)

        def trace(_sql):
            nonlocal count
            count += 1

        conn.set_trace_callback(trace)
        return conn

    with monkeypatch.context() as m:
        m.setattr(sqlite3, "connect", counted)
        fn(*args)
    return count


@pytest.mark.slow
def test_stats_on_10000_jobs_read_a_constant_number_of_statements(many_jobs, tmp_path,
                                                                    capsys, monkeypatch):
    store = Store(many_jobs)
    stats = job_stats(store, None, NOW)
    assert stats["jobs"] == N_JOBS and stats["splits"] == 3334
    # chunks retried in finished (SUCCEEDED or FAILED) jobs only
    assert stats["retry_success"]["chunks"]["retried"] == sum(
        1 for i in range(0, N_JOBS, 3) if STATES[i % len(STATES)] in ("SUCCEEDED", "FAILED"))
    small = tmp_path / "small.db"
    Store(small).close()
    for since in (None, 7.0):
        counts = [statements_of(monkeypatch, views.cmd_stats,
                                argparse.Namespace(db=str(db), since=since, json=True))
                  for db in (small, many_jobs)]
        # aggregates in SQL: as many statements for 10,000 jobs as for none
        assert counts[1] == counts[0] < 60, counts
    counts = [statements_of(monkeypatch, views.cmd_profile,
                            argparse.Namespace(db=str(db), json=True))
              for db in (small, many_jobs)]
    assert counts[1] < counts[0] + 10, counts  # a few per profile, not per job


@pytest.mark.slow
def test_status_on_10000_jobs_reads_a_statement_per_500_jobs(many_jobs, capsys, monkeypatch):
    counts = {}
    for limit in (50, N_JOBS):
        args = argparse.Namespace(db=str(many_jobs), limit=limit, json=True)
        counts[limit] = statements_of(monkeypatch, views.cmd_status, args)
        rows = json.loads(capsys.readouterr().out)
        assert len(rows) == limit
    # the listing, the queue summary and per 500 jobs one read of their
    # counters (tokens and reuse together): not one read per job
    extra = counts[N_JOBS] - counts[50]
    assert extra <= N_JOBS // 500 + 2, counts
    assert counts[50] < 40, counts
    by_state = {r["state"] for r in rows}
    assert {"SUCCEEDED", "FAILED", "QUEUED", "CANCELED"} <= by_state
    running = [r for r in rows if r["stage"] == "inference" and r["state"] != "FAILED"]
    assert running and all(0 < r["percent"] < 100 for r in running)


STATUS_QUERY = "SELECT * FROM jobs ORDER BY created_at DESC LIMIT 50"  # Store.jobs


def plan(conn: sqlite3.Connection, sql: str) -> str:
    return " | ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))


@pytest.mark.slow
def test_status_listing_reads_an_index(many_jobs):
    conn = sqlite3.connect(many_jobs)
    assert "TEMP B-TREE" not in plan(conn, STATUS_QUERY)


def test_the_stats_window_reads_the_created_at_index(tmp_path):
    Store(tmp_path / "j.db").close()
    conn = sqlite3.connect(tmp_path / "j.db")
    assert plan(conn, STATUS_QUERY) == "SCAN jobs USING INDEX jobs_by_created"
    assert "SEARCH jobs USING" in plan(conn, "SELECT id FROM jobs WHERE created_at >= 1")

def test_status_shows_an_eta_for_a_running_job_from_its_profile_history(tmp_path):
    import json as _json
    import argparse

    from pipeline.store import NewChunk

    clock = type("C", (), {"t": 1_000.0, "__call__": lambda self: self.t})()
    store = Store(tmp_path / "j.db", clock=clock)
    # history: one finished job, inference 2,000 tokens in 100 s (20 tok/s), no tail
    plant(store, clock, CPU, {"preprocess": 0, "inference": 100, "postprocess": 0, "upload": 0},
          {**UNITS, "inference": 2000})
    clock.t = time.time()  # the running job's lease is live now, not in the planted past
    job, _ = store.get_or_create_job(idem_key="running", params="{}", input_path="/in",
                                     input_sha256="h", input_bytes=1, output_path="/o")
    assert store.claim_job(job.id, "w", 30)
    run = store.start_stage(job.id, "preprocess", units_total=1)
    store.finish_preprocess(job.id, run, "w", "{}", [NewChunk(0, "a", 300), NewChunk(0, "b", 100)])
    store.start_stage(job.id, "inference", units_total=400, model=CPU.model, device=CPU.device,
                      dtype=CPU.dtype, backend=CPU.backend)
    store.add_batches(job.id, [store.pending_chunks(job.id)[:1]])
    store.commit_batch(job.id, store.pending_batches(job.id)[0].id, {0: "A"}, "w")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        views.cmd_status(argparse.Namespace(db=tmp_path / "j.db", limit=10, json=True))
    rows = {r["job"]: r for r in _json.loads(out.getvalue())}
    assert rows[job.id]["eta_s"] == 5.0  # 100 tokens left at 20 tok/s
