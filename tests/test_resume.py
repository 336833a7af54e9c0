"""Crash and resume with real processes: SIGKILL mid-inference, run again."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess

import pytest

from pipeline.samples import generate_text
from pipeline.store import Store
from tests.conftest import run_cli, start_cli, wait_until

pytestmark = pytest.mark.slow


def _args(src, out, model):
    return ["translate", str(src), "--src", "eng_Latn", "--tgt", "fra_Latn", "-o", str(out),
            "--model", str(model), "--beams", "1", "--batch-tokens", "256", "--no-progress",
            # Short outputs: random weights always use the whole budget.
            "--length-ratio", "0.5", "--length-offset", "4", "--json"]


def _start(args, db):
    return start_cli(*args, db=db, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _count(db, sql) -> int:
    try:
        conn = sqlite3.connect(db, timeout=1)
        try:
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def _wait_for_commits(db, proc, n) -> None:
    def committed():
        assert proc.poll() is None, f"translate ended before it was killed: {proc.communicate()}"
        return _count(db, "SELECT COUNT(*) FROM batches WHERE state = 'committed'") >= n

    wait_until(committed, f"{n} committed batches")


def test_kill_9_mid_inference_then_the_same_command_resumes_to_identical_output(
        tmp_path, tiny_model):
    src = tmp_path / "book.txt"
    src.write_text(generate_text(250, seed=7))
    reference = tmp_path / "reference.txt"
    run_cli(*_args(src, reference, tiny_model), db=tmp_path / "reference.db")

    db, out = tmp_path / "jobs.db", tmp_path / "book.fra_Latn.txt"
    proc = _start(_args(src, out, tiny_model), db)
    _wait_for_commits(db, proc, 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    store = Store(db)
    job = store.jobs()[0]
    assert job.state == "RUNNING" and job.stage == "inference"
    before = {b.id: b for b in store.batches(job.id) if b.state == "committed"}
    assert before and store.pending_batches(job.id), "the kill must land mid-inference"
    done_before = {c.idx: c.translation for c in store.chunks(job.id) if c.state == "done"}
    replaced_before = {c.idx for c in store.chunks(job.id) if c.state == "replaced"}
    assert not out.exists()

    result = json.loads(run_cli(*_args(src, out, tiny_model), db=db).stdout)
    assert result["state"] == "SUCCEEDED" and result["note"] == "resumed"
    assert out.read_bytes() == reference.read_bytes()

    chunks = store.chunks(job.id)
    # Random weights never stop, so at the default --quality repair chunks
    # were replaced by guarded copies and pieces: each a chunk of its own.
    assert all(c.state in ("done", "replaced") for c in chunks)
    assert any(c.state == "replaced" for c in chunks)
    # No committed chunk was translated twice: every chunk the model saw was
    # committed exactly once (or replaced, never committed), and what was
    # committed or replaced before the kill stayed.
    translated = [c for c in chunks if c.batch_id is not None]
    assert all(c.commits == 1 for c in translated)
    assert all(c.commits == 0 for c in chunks if c.state == "replaced")
    assert {c.idx: c.translation for c in chunks if c.idx in done_before} == done_before
    assert {c.idx for c in chunks if c.state == "replaced"} >= replaced_before
    after = {b.id: b for b in store.batches(job.id)}
    assert all(after[i].committed_at == b.committed_at for i, b in before.items())
    sent = [i for b in after.values() if b.state == "committed" for i in b.chunk_idxs]
    assert len(sent) == len(set(sent))  # no chunk in two committed batches
    assert sorted(sent) == sorted(c.idx for c in chunks if c.batch_id is not None
                                  or c.state == "replaced")
    # The second process took over at once (its predecessor was dead), it
    # did not wait for the 30 s lease to expire.
    leases = list(store.db.query("SELECT worker FROM leases WHERE job_id = ?", (job.id,)))
    assert len({row["worker"] for row in leases}) == 2


def test_a_job_running_in_a_live_process_is_not_taken_over(tmp_path, tiny_model):
    src = tmp_path / "book.txt"
    src.write_text(generate_text(40, seed=8))
    db, out = tmp_path / "jobs.db", tmp_path / "out.txt"
    # The first process holds the job for certain: every call fails and it
    # sits in a 30 s backoff wait, lease held and renewed.
    holder = _args(src, out, tiny_model) + ["--inject-faults", "transient=1.0,seed=1",
                                            "--retry", "base=30,cap=30"]
    proc = _start(holder, db)
    try:
        def waiting():
            assert proc.poll() is None, proc.communicate()
            return _count(db, "SELECT COUNT(*) FROM attempts WHERE decision = 'retry'")

        wait_until(waiting, "the first process to wait for a retry")
        second = run_cli(*_args(src, out, tiny_model), db=db, check=False)
        assert second.returncode == 2
        assert "is running in another process" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert Store(db).jobs()[0].state == "RUNNING"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_kill_9_on_ctranslate2_then_resume_on_transformers_gives_a_whole_document(
        tmp_path, tiny_model, capsys):
    """The backend is a run setting: a job killed on CTranslate2 resumes on
    transformers. Every chunk is translated once, by the backend its batch
    records, exactly as that backend translates it in a clean run."""
    from pipeline.cli import main

    src = tmp_path / "book.txt"
    src.write_text(generate_text(200, seed=8))

    def _args(src, out, model):  # the ladder off: these counts are of whole sentences
        return [*globals()["_args"](src, out, model), "--quality", "off"]

    clean = {}
    for backend in ("ctranslate2", "hf"):
        db = tmp_path / f"{backend}.db"
        assert main(["--db", str(db), *_args(src, tmp_path / f"{backend}.txt", tiny_model),
                     "--backend", backend]) == 0
        capsys.readouterr()
        store = Store(db)
        clean[backend] = {c.idx: c.translation for c in store.chunks(store.jobs()[0].id)}
    assert clean["ctranslate2"] != clean["hf"]  # the check below can tell them apart

    db, out = tmp_path / "jobs.db", tmp_path / "book.fra_Latn.txt"
    proc = _start([*_args(src, out, tiny_model), "--backend", "ctranslate2"], db)
    _wait_for_commits(db, proc, 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    result = json.loads(run_cli(*_args(src, out, tiny_model), "--backend", "hf", db=db).stdout)
    assert result["state"] == "SUCCEEDED" and result["note"] == "resumed"

    store = Store(db)
    job = store.jobs()[0]
    batches = {b.id: b for b in store.batches(job.id)}
    chunks = store.chunks(job.id)
    assert all(c.state == "done" for c in chunks)
    translated = [c for c in chunks if c.batch_id is not None]
    assert all(c.commits == 1 for c in translated)
    by = {c.idx: batches[c.batch_id].backend for c in translated}
    assert set(by.values()) == {"ctranslate2", "hf"}
    assert all(c.translation == clean[by[c.idx]][c.idx] for c in translated)
    assert out.read_text().count("\n\n") == src.read_text().count("\n\n")
    assert {r.backend for r in store.stage_runs(job.id) if r.stage == "inference"} == {
        "ctranslate2", "hf"}
