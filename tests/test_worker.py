"""Workers on one database: every job once, every chunk once, whatever dies."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from pipeline.cli import main
from pipeline.samples import generate_text
from pipeline.store import Store
from tests.conftest import start_cli, wait_for_commits, wait_until

pytestmark = pytest.mark.slow
PARAMS = ["--src", "eng_Latn", "--tgt", "fra_Latn", "--beams", "1", "--length-ratio", "0.5",
          "--length-offset", "4"]


def _submit(capsys, db, path, model):
    assert main(["--db", str(db), "submit", str(path), *PARAMS, "--model", str(model),
                 "--json"]) == 0
    return [r["job"] for r in json.loads(capsys.readouterr().out)]


def _worker(db, *extra):
    return start_cli("worker", "--threads", "1", "--json", *extra, db=db,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_commits(db, n, proc):
    wait_for_commits(proc, db, n, lambda proc: proc.communicate())


def test_three_workers_run_30_documents_each_job_and_chunk_exactly_once(tmp_path, tiny_model,
                                                                        capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(30):
        (docs / f"d{i:02d}.txt").write_text(generate_text(4, seed=100 + i))
    db = tmp_path / "jobs.db"
    jobs = _submit(capsys, db, docs, tiny_model)
    assert len(jobs) == 30
    workers = [_worker(db, "--idle-exit", "3") for _ in range(3)]
    outs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), outs
    ran = [json.loads(out)["jobs"].get("SUCCEEDED", 0) for out, _ in outs]
    assert sum(ran) == 30
    store = Store(db)
    assert all(store.job(j).state == "SUCCEEDED" for j in jobs)
    for job in jobs:
        chunks = store.chunks(job)
        assert all(c.commits == 1 for c in chunks if c.batch_id is not None)
        leases = list(store.db.query(
            "SELECT worker, acquired_at, released_at FROM leases WHERE job_id = ? "
            "ORDER BY acquired_at", (job,)))
        # no job was held by two workers at once
        for a, b in zip(leases, leases[1:]):
            assert a["released_at"] is not None and a["released_at"] <= b["acquired_at"]


def test_sigterm_stops_the_worker_after_its_batch_and_the_job_resumes(tmp_path, tiny_model,
                                                                      capsys):
    doc = tmp_path / "book.txt"
    doc.write_text(generate_text(250, seed=7))
    db = tmp_path / "jobs.db"
    [job] = _submit(capsys, db, doc, tiny_model)
    worker = _worker(db, "--batch-tokens", "256")
    _wait_commits(db, 2, worker)
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    store = Store(db)
    stopped = store.job(job)
    assert stopped.state == "QUEUED" and stopped.lease_owner is None
    assert store.pending_batches(job)  # it stopped mid-inference, not at the end
    again = _worker(db, "--idle-exit", "1", "--batch-tokens", "256")
    again.communicate(timeout=300)
    assert store.job(job).state == "SUCCEEDED"
    assert all(c.commits == 1 for c in store.chunks(job) if c.batch_id is not None)


def test_a_killed_worker_is_taken_over_and_the_output_equals_a_clean_run(tmp_path, tiny_model,
                                                                         capsys):
    doc = tmp_path / "book.txt"
    doc.write_text(generate_text(250, seed=9))
    clean_db = tmp_path / "clean.db"
    assert main(["--db", str(clean_db), "translate", str(doc), *PARAMS, "--model",
                 str(tiny_model), "-o", str(tmp_path / "clean.txt"), "--json"]) == 0
    capsys.readouterr()
    db = tmp_path / "jobs.db"
    [job] = _submit(capsys, db, doc, tiny_model)
    worker = _worker(db, "--batch-tokens", "256")
    _wait_commits(db, 2, worker)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert Store(db).job(job).state == "RUNNING"
    again = _worker(db, "--idle-exit", "1", "--batch-tokens", "256")
    out, err = again.communicate(timeout=300)
    assert json.loads(out)["jobs"] == {"SUCCEEDED": 1}, err
    store = Store(db)
    assert (tmp_path / "book.fra_Latn.txt").read_bytes() == (tmp_path / "clean.txt").read_bytes()
    assert all(c.commits == 1 for c in store.chunks(job) if c.batch_id is not None)


def test_sigterm_stops_a_worker_in_the_middle_of_preprocessing_a_big_document(
        tmp_path, tiny_model, capsys):
    doc = tmp_path / "corpus.txt"
    doc.write_text("".join(f"Line {n} of a corpus that takes a while to cut and count.\n"
                           for n in range(30_000)))  # 15 slices
    db = tmp_path / "jobs.db"
    [job] = _submit(capsys, db, doc, tiny_model)
    worker = _worker(db)

    def sliced():
        assert worker.poll() is None, worker.communicate()
        return Store(db).last_slice(job) is not None

    wait_until(sliced, "the first slice")
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "within seconds" in err
    store = Store(db)
    stopped = store.job(job)
    assert (stopped.state, stopped.stage, stopped.lease_owner) == ("QUEUED", "preprocess", None)
    slices = store.last_slice(job).seq + 1
    assert slices < 15  # it stopped in preprocess, with its slices kept for the next worker
    assert len(store.chunks(job)) == store.last_slice(job).first_chunk + store.last_slice(
        job).chunks
