"""``nllb-pipeline serve`` as a real process: the bind rule, and SIGTERM with
a job in flight (issue 11)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess

import httpx
import pytest

from pipeline.samples import generate_text
from tests.conftest import cli_env, run_cli, start_cli, wait_until

pytestmark = pytest.mark.slow
XHR = {"X-Requested-With": "test"}
FAST = {"src": "eng_Latn", "tgt": "fra_Latn", "beams": "1", "length_ratio": "0.5",
        "length_offset": "4"}


def start_serve(db, *args, env=None):
    """``serve --port 0 ARGS``; returns (process, its URL)."""
    proc = start_cli("--db", str(db), "serve", "--port", "0", *args, db=db, env=env,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("nllb-pipeline: serving http://"), (line, proc.communicate())
    return proc, line.split()[2].rstrip("/")


def stop(proc, sig=signal.SIGTERM, timeout=60):
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def committed(db) -> int:
    conn = sqlite3.connect(db, timeout=5)
    try:
        return conn.execute("SELECT COUNT(*) FROM batches WHERE state = 'committed'").fetchone()[0]
    finally:
        conn.close()


def test_binding_another_address_needs_a_token(tmp_path):
    db = tmp_path / "jobs.db"
    refused = run_cli("--db", str(db), "serve", "--host", "0.0.0.0", "--workers", "0", db=db,
                      check=False, timeout=60)
    assert refused.returncode == 2
    assert refused.stderr.startswith("nllb-pipeline: error: refusing to serve on 0.0.0.0 "
                                     "without a token")
    assert len(refused.stderr.splitlines()) == 1 and not db.exists()

    env = {**cli_env(db), "NLLB_PIPELINE_TOKEN": "t0ken"}
    proc, url = start_serve(db, "--host", "0.0.0.0", "--workers", "0", env=env)
    try:
        port = url.rsplit(":", 1)[1]
        local = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{local}/api/jobs").status_code == 401
        assert httpx.get(f"{local}/api/jobs",
                         headers={"Authorization": "Bearer t0ken"}).status_code == 200
    finally:
        code, err = stop(proc)
    assert code == 0, err


def test_sigterm_stops_serve_and_its_worker_cleanly_and_the_job_resumes_later(tmp_path,
                                                                              tiny_model):
    """SIGTERM: the worker finishes its batch and gives the job back; serve exits 0."""
    db = tmp_path / "jobs.db"
    env = {**cli_env(db), "NLLB_PIPELINE_MODEL": str(tiny_model)}
    run = ["--workers", "1", "--threads", "1", "--batch-tokens", "128"]
    proc, url = start_serve(db, *run, env=env)
    try:
        created = httpx.post(f"{url}/api/jobs", data=FAST, headers=XHR, files={
            "file": ("book.txt", generate_text(60, seed=3).encode(), "text/plain")})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        wait_until(lambda: committed(db) >= 2, "two committed batches", interval=0.05)
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert "workers exited with [0]" in err  # the worker finished its batch and stopped
    conn = sqlite3.connect(db)
    state, lease = conn.execute("SELECT state, lease_owner FROM jobs WHERE id = ?",
                                (job_id,)).fetchone()
    pending = conn.execute("SELECT COUNT(*) FROM batches WHERE job_id = ? AND state = 'pending'",
                           (job_id,)).fetchone()[0]
    conn.close()
    assert (state, lease) == ("QUEUED", None) and pending > 0  # back in the queue, mid-job

    # Later: serve again, and its worker resumes the job where it stopped.
    proc, url = start_serve(db, *run, env=env)
    try:
        def succeeded():
            job = httpx.get(f"{url}/api/jobs/{job_id}").json()
            return job if job["state"] == "SUCCEEDED" else None

        job = wait_until(succeeded, "the job to succeed", timeout=180, interval=0.05)
        assert job["chunks"].get("pending", 0) == 0
    finally:
        code, err = stop(proc)
    assert code == 0, err
    conn = sqlite3.connect(db)
    commits = {c for (c,) in conn.execute(
        "SELECT commits FROM chunks WHERE job_id = ? AND batch_id IS NOT NULL", (job_id,))}
    conn.close()
    assert commits == {1}  # nothing translated twice across the stop
