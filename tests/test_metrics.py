"""``/metrics`` (issue 23): scraped during and after jobs that succeed,
fail, retry and are canceled, parsed with ``prometheus_client.parser``, and
every figure checked against the store's own rows; what one scrape costs
over 10,000 jobs; the worker's own endpoint; the token."""

from __future__ import annotations

import threading

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from pipeline.cli import main
from pipeline.store import Store
from tests.api_support import XHR, make_app, run_queue
from tests.conftest import wait_until

DOC = ("The river runs past the old stone bridge. A letter waits on the table.\n\n"
       "Morning light falls on the garden. The city sleeps.\n")
OTHER = "The horse walks along the road in winter. A voice sings in the field.\n"
THIRD = "Bread and paper lie on the window. The ocean is far from the mountain.\n"
FAIL_EVERY_CALL = "transient=1.0,seed=1"
GIVE_UP_AT_ONCE = "chunk_attempts=1,batch_retries=0,base=0"


def submit(client, text: str, name: str = "doc.txt", **fields) -> str:
    """POST /api/jobs at the defaults users run (beams 4, --quality repair)."""
    answer = client.post("/api/jobs", files={"file": (name, text.encode(), "text/plain")},
                         data={"src": "eng_Latn", "tgt": "fra_Latn", **fields}, headers=XHR)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["id"]


def scrape(client, **headers) -> dict[tuple, float]:
    """{(sample name, sorted label items): value} of one scrape."""
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return parse(answer.text)


def parse(text: str) -> dict[tuple, float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name: str, **labels) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(v for (n, items), v in samples.items()
               if n == name and set(labels.items()) <= set(items))


def check_against_store(samples, db) -> None:
    """Every store-backed figure equals what the store's own rows say."""
    store = Store(db)
    sql = store.db.execute
    for state, n in sql("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
        if state != "RUNNING":
            assert value(samples, "nllb_jobs", state=state) == n, state
    assert value(samples, "nllb_queue_depth") == value(samples, "nllb_jobs", state="QUEUED")
    for stage, cls, decision, n in sql("SELECT stage, error_class, decision, COUNT(*) FROM "
                                       "attempts GROUP BY 1, 2, 3"):
        assert value(samples, "nllb_attempts_total", stage=stage, error_class=cls,
                     decision=decision) == n, (stage, cls, decision)
    assert total(samples, "nllb_attempts_total") == sql("SELECT COUNT(*) FROM attempts").fetchone()[0]
    for reason, n in sql("SELECT reason, COUNT(*) FROM attempts WHERE decision = 'flag' "
                         "GROUP BY reason"):
        assert value(samples, "nllb_quality_flags_total", reason=reason) == n
    assert total(samples, "nllb_source_tokens_total") == sql(
        "SELECT COALESCE(SUM(source_tokens), 0) FROM batches WHERE state = 'committed'"
    ).fetchone()[0]
    for how, n in sql("SELECT reused, COUNT(*) FROM chunks WHERE reused IS NOT NULL "
                      "GROUP BY reused"):
        assert value(samples, "nllb_memory_reused_chunks_total", how=how) == n
    # One observation per stage of every job that ended SUCCEEDED or FAILED.
    ended = sql("SELECT COUNT(*) FROM stage_runs r JOIN jobs j ON j.id = r.job_id WHERE "
                "j.state IN ('SUCCEEDED', 'FAILED') AND r.finished_at IS NOT NULL "
                "GROUP BY r.job_id, r.stage").fetchall()
    assert total(samples, "nllb_stage_duration_seconds_count") >= len(ended)
    store.close()


def test_a_scrape_matches_the_store_during_and_after_jobs_that_succeed_fail_retry_and_cancel(
        tmp_path, trained_model):
    db = tmp_path / "jobs.db"
    client = TestClient(make_app(tmp_path, trained_model))
    first = submit(client, DOC)
    canceled = submit(client, OTHER, name="other.txt")
    assert client.post(f"/api/jobs/{canceled}/cancel", headers=XHR).status_code == 200
    before = scrape(client)
    assert value(before, "nllb_jobs", state="QUEUED") == 1
    assert value(before, "nllb_jobs", state="CANCELED") == 1
    assert value(before, "nllb_jobs_finished_total", outcome="CANCELED") == 1
    assert value(before, "nllb_queue_oldest_age_seconds") >= 0
    assert value(before, "nllb_workers_live") == 0
    check_against_store(before, db)

    # During: a worker in a thread, each model call slowed down.
    counts = {}
    worker = threading.Thread(target=lambda: counts.update(run_queue(db, faults="slow=0.4")))
    worker.start()
    wait_until(lambda: value(scrape(client), "nllb_leases") == 1, "the job to be running")
    during = scrape(client)
    assert value(during, "nllb_jobs", state="RUNNING") == 1
    assert value(during, "nllb_workers_live") >= 1
    assert value(during, "nllb_queue_depth") == 0
    worker.join(timeout=240)
    assert counts == {"SUCCEEDED": 1}
    after = scrape(client)
    assert value(after, "nllb_jobs_finished_total", outcome="SUCCEEDED") == 1
    assert value(after, "nllb_leases") == 0
    assert total(after, "nllb_generated_tokens_total") > 0
    for stage in ("preprocess", "inference", "postprocess", "upload"):
        assert total(after, "nllb_stage_duration_seconds_count", stage=stage,
                     backend="ctranslate2") == 1, stage
    assert total(after, "nllb_eta_error_ratio_count") >= 1  # predictions at the marks
    check_against_store(after, db)

    # A job that fails, then is retried by hand and succeeds.
    failing = submit(client, THIRD, name="third.txt")
    run_queue(db, faults=FAIL_EVERY_CALL, retry=GIVE_UP_AT_ONCE)
    failed = scrape(client)
    assert value(failed, "nllb_jobs_finished_total", outcome="FAILED") == 1
    assert value(failed, "nllb_attempts_total", stage="inference",
                 error_class="device_transient", decision="give_up") > 0
    check_against_store(failed, db)
    assert client.post(f"/api/jobs/{failing}/retry", headers=XHR).status_code == 200
    assert run_queue(db) == {"SUCCEEDED": 1}
    # Transient errors retried until the job succeeds.
    submit(client, DOC + OTHER, name="retried.txt")
    assert run_queue(db, faults="transient=0.3,seed=5", retry="base=0") == {"SUCCEEDED": 1}
    last = scrape(client)
    assert value(last, "nllb_jobs_finished_total", outcome="SUCCEEDED") == 3
    assert value(last, "nllb_jobs_finished_total", outcome="FAILED") == 1
    assert total(last, "nllb_attempts_total", decision="retry") > 0
    assert value(last, "nllb_memory_reused_chunks_total", how="memory") > 0  # DOC again
    check_against_store(last, db)
    # The server's own requests, by route template (never a job id).
    assert value(last, "nllb_http_requests_total", route="/api/jobs/{job_id}/retry",
                 method="POST", status="200") == 1
    assert not any(first in str(key) for key in last)


def test_metrics_need_the_token_when_one_is_set(tmp_path):
    client = TestClient(make_app(tmp_path, token="s3cret"))
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.json()["error"]["class"] == "auth"
    samples = scrape(client, Authorization="Bearer s3cret")
    assert value(samples, "nllb_http_requests_total", route="/metrics", method="GET",
                 status="401") == 1


@pytest.mark.slow
def test_a_scrape_over_10000_jobs_is_a_few_statements(tmp_path):
    """The figure for the README: statements and SQLite VM steps per scrape
    at 100 and at 10,000 jobs."""
    from pipeline.monitoring.exposition import render, store_registry

    measured = {}
    for n in (100, 10_000):
        store = Store(tmp_path / f"{n}.db")
        fill(store, n)
        seen, steps = [], [0]

        def step():
            steps[0] += 1

        registry = store_registry(lambda: store)
        store.db.conn.set_trace_callback(seen.append)
        store.db.conn.set_progress_handler(step, 10)
        render(registry)
        store.db.conn.set_trace_callback(None)
        store.db.conn.set_progress_handler(None, 0)
        measured[n] = (len(seen), steps[0] * 10)
        samples = parse(render(registry).decode())
        succeeded = sum(1 for i in range(3, n) if i % 4)
        assert value(samples, "nllb_jobs_finished_total", outcome="SUCCEEDED") == succeeded
        assert value(samples, "nllb_jobs", state="SUCCEEDED") == succeeded
        assert value(samples, "nllb_jobs", state="FAILED") == n - 3 - succeeded
        assert value(samples, "nllb_queue_depth") == 3
        assert total(samples, "nllb_attempts_total") == n
        store.close()
    print("statements, VM steps per scrape:", measured)
    assert measured[100][0] == measured[10_000][0] <= 7
    # Nothing a scrape reads grows with the jobs that ended.
    assert measured[10_000][1] <= 1.2 * measured[100][1], measured


def fill(store: Store, n: int) -> None:
    """``n`` jobs with stage runs, predictions and one attempt each: 3 queued,
    of the rest 3/4 succeeded and 1/4 failed."""
    now = store.clock()
    jobs, runs, attempts, predictions = [], [], [], []
    for i in range(n):
        job = f"{i:012x}"
        jobs.append((job, job, "QUEUED", "preprocess", "{}", "in.txt", "x", 10, now, now))
        for stage in ("preprocess", "inference", "postprocess", "upload"):
            runs.append((job, stage, now - 10, now, 2.5, "m", "ctranslate2", "cpu", "int8"))
        attempts.append((job, "inference", "quality", "m", 1, "flag", "t", now, "loop"))
        predictions.append((job, 50, 5.0, 12.0, now))
    with store.db.atomic():  # one transaction: row by row, 10,000 jobs took 13 s
        _insert(store.db.conn, jobs, runs, attempts, predictions, now)


def _insert(sql, jobs, runs, attempts, predictions, now) -> None:
    sql.executemany("INSERT INTO jobs (id, idem_key, state, stage, params, input_path, "
                    "input_sha256, input_bytes, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", jobs)
    sql.executemany("INSERT INTO stage_runs (job_id, stage, started_at, finished_at, wall_s, "
                    "model, backend, device, dtype) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", runs)
    sql.executemany("INSERT INTO attempts (job_id, stage, error_class, message, attempt, "
                    "decision, trace_id, at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    attempts)
    sql.executemany("INSERT INTO eta_predictions (job_id, at_percent, elapsed_s, "
                    "predicted_total_s, at) VALUES (?, ?, ?, ?, ?)", predictions)
    sql.executemany("UPDATE jobs SET state = ?, finished_at = ? WHERE id = ?",
                    [("SUCCEEDED" if i % 4 else "FAILED", now, job[0])
                     for i, job in enumerate(jobs) if i >= 3])


@pytest.mark.slow
def test_a_worker_started_alone_serves_the_same_figures(tmp_path, trained_model):
    db = tmp_path / "jobs.db"
    client = TestClient(make_app(tmp_path, trained_model))
    submit(client, DOC)
    from tests.conftest import start_cli

    proc = start_cli("worker", "--metrics-port", "0", "--idle-exit", "30", "--threads", "1",
                     db=db, stdout=-1, stderr=-1, text=True)
    try:
        line = proc.stdout.readline()
        assert "metrics at http://" in line, line + proc.stderr.read()
        url = line.split("metrics at ", 1)[1].strip()
        wait_until(lambda: value(parse(httpx.get(url).text), "nllb_jobs_finished_total",
                                 outcome="SUCCEEDED") == 1, "the job to succeed")
        samples = parse(httpx.get(url).text)
        assert value(samples, "nllb_workers_live") == 1
        assert not any(k[0].startswith("nllb_http_") for k in samples)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_bad_metrics_options_are_one_line_errors(tmp_path, capsys):
    for given, said in ((["--metrics-addr", "nowhere"], "expected HOST:PORT"),
                        (["--metrics-addr", "127.0.0.1:70000"], "0-65535"),
                        (["--metrics-port", "-1"], "--metrics-port must be between 0 and 65535")):
        code = main(["--db", str(tmp_path / "jobs.db"), "worker", "--idle-exit", "0", *given])
        err = capsys.readouterr().err
        assert code == 2 and said in err and "Traceback" not in err, err


def test_read_commands_never_load_prometheus_client(tmp_path):
    """``status`` answers at once: the metrics library is loaded by ``serve``
    and ``worker --metrics-port`` only."""
    import subprocess
    import sys

    from tests.conftest import ROOT, cli_env

    db = tmp_path / "jobs.db"
    Store(db).close()
    code = ("import sys; from pipeline.cli import main; "
            f"main(['--db', {str(db)!r}, 'status']); main(['--db', {str(db)!r}, 'stats']); "
            "print('prometheus_client' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=cli_env(db), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False"
