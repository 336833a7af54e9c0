"""The task centre's verbs below the HTTP layer (issue 22): job id
prefixes, one job per request whatever its key, one live job per
destination, "retry now" waking a real backoff wait, deleting, and progress
that says the same in ``status``, ``show`` and the API."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from pipeline import job_actions, service, views
from pipeline.cli import main
from pipeline.config import JobParams, RunSettings
from pipeline.documents.inputs import read_input
from pipeline.errors import AmbiguousJob, InvalidInput, JobBusy, JobConflict, JobNotFound
from pipeline.progress import Events
from pipeline.jobs import submit
from pipeline.runner import JobContext, run_job
from pipeline.store import Store
from tests.test_upload_http import receiver  # noqa: F401 - a fixture
from tests.fakes import NO_WAITS, FakeTranslator


def _params(tmp_path, output: str = "out.txt", **extra) -> JobParams:
    return JobParams(model="fake", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                     output=str(tmp_path / output), **extra)


def _doc(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return read_input(path)


def _rename(store: Store, old: str, new: str) -> None:
    with store._write() as db:
        db.execute("UPDATE jobs SET id = ? WHERE id = ?", (new, old))


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "jobs.db")


def test_an_ambiguous_prefix_names_the_candidates_and_wildcards_are_characters(tmp_path, store,
                                                                              capsys):
    one, _ = submit(store, _params(tmp_path, "a.txt"), _doc(tmp_path, "a.txt", "One.\n"))
    two, _ = submit(store, _params(tmp_path, "b.txt"), _doc(tmp_path, "b.txt", "Two.\n"))
    _rename(store, one.id, "12313e9abf4b")
    _rename(store, two.id, "12313e9abf5c")
    with pytest.raises(AmbiguousJob, match="12313e9abf4b.*12313e9abf5c"):
        service.find_job(store, "1231")
    assert service.find_job(store, "12313e9abf4").id == "12313e9abf4b"
    for literal in ("123_3e9a", "1231%", "12313e9abf_b", "%", "_"):
        with pytest.raises(JobNotFound) as found:
            service.find_job(store, literal)
        assert not isinstance(found.value, AmbiguousJob)
    # the CLI: exit 2, one line naming both
    assert main(["--db", str(tmp_path / "jobs.db"), "show", "1231"]) == 2
    err = capsys.readouterr().err
    assert "12313e9abf4b" in err and "12313e9abf5c" in err and "Traceback" not in err


def test_a_prefix_is_a_range_on_the_primary_key(store):
    plan = " ".join(r[-1] for r in store.db.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM jobs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
        ("12", "13", 5)).fetchall())
    assert "INDEX" in plan and "SCAN jobs" not in plan, plan


def test_the_same_request_is_one_job_whatever_key_it_came_with(tmp_path, store):
    params, source = _params(tmp_path), _doc(tmp_path, "doc.txt", "Hello there.\n")
    keyed, created = submit(store, params, source, key="caller-key-1")
    assert created
    assert submit(store, params, source) == (keyed, False)  # no key
    assert submit(store, params, source, key="caller-key-2") == (keyed, False)  # a new key
    assert submit(store, params, source, key="caller-key-1") == (keyed, False)
    assert len(store.jobs(10)) == 1


def test_a_second_live_job_with_the_same_destination_is_refused_naming_the_first(tmp_path,
                                                                                store, capsys):
    first, _ = submit(store, _params(tmp_path, "same.txt"), _doc(tmp_path, "a.txt", "One.\n"))
    with pytest.raises(JobConflict, match=f"job {first.id} \\(a.txt, QUEUED\\) already delivers"):
        submit(store, _params(tmp_path, "same.txt"), _doc(tmp_path, "b.txt", "Two.\n"))
    # finished, the destination is free again (the file check then decides)
    store.set_job_state(first.id, "CANCELED")
    second, created = submit(store, _params(tmp_path, "same.txt"), _doc(tmp_path, "b.txt",
                                                                         "Two.\n"))
    assert created and second.id != first.id
    # the CLI's submit says so before anything runs, exit 2
    (tmp_path / "c.txt").write_text("Three.\n")
    code = main(["--db", str(tmp_path / "jobs.db"), "submit", str(tmp_path / "c.txt"), "--src",
                 "eng_Latn", "--tgt", "fra_Latn", "--to", f"file:{tmp_path / 'same.txt'}"])
    err = capsys.readouterr().err
    assert code == 2 and f"job {second.id}" in err and "already delivers" in err


def test_an_out_of_range_priority_is_a_clear_error(tmp_path, store, capsys):
    with pytest.raises(InvalidInput, match="priority must be a whole number"):
        submit(store, _params(tmp_path), _doc(tmp_path, "doc.txt", "Hi.\n"),
               priority=99999999999999999999)
    (tmp_path / "c.txt").write_text("Three.\n")
    code = main(["--db", str(tmp_path / "jobs.db"), "submit", str(tmp_path / "c.txt"), "--src",
                 "eng_Latn", "--tgt", "fra_Latn", "--priority", "99999999999999999999"])
    err = capsys.readouterr().err
    assert code == 2 and "priority must be a whole number" in err and "Traceback" not in err
    assert store.jobs(10) == []


def _running(store: Store, job_id: str, waiting_s: float | None = None) -> str:
    worker = f"{socket.gethostname()}:{os.getpid()}:test"
    assert store.claim_job(job_id, worker, ttl=600)
    snapshot = {"stage": "preprocess", "percent": 1.0, "eta_s": None, "at": time.time(),
                "weights": None, "waiting": None}
    if waiting_s is not None:
        snapshot["waiting"] = {"what": "upload", "until": time.time() + waiting_s,
                               "error_class": "RATE_LIMITED", "attempt": 2, "limit": 5}
    store.set_progress(job_id, worker, json.dumps(snapshot))
    return worker


def test_retry_now_ends_a_real_backoff_wait(tmp_path, store, capsys):
    job, _ = submit(store, _params(tmp_path), _doc(tmp_path, "doc.txt", "Hi.\n"))
    with pytest.raises(JobConflict, match="not waiting out a retry"):
        job_actions.wake(store, job.id)  # queued: nothing to cut short
    worker = _running(store, job.id, waiting_s=600)
    ctx = JobContext(Store(tmp_path / "jobs.db"), store.job(job.id), _params(tmp_path),
                     FakeTranslator(), RunSettings(), worker, Events())
    done = threading.Event()
    sleeper = threading.Thread(target=lambda: (ctx.sleep(600), done.set()))
    sleeper.start()
    assert not done.wait(0.3)  # it waits
    assert main(["--db", str(tmp_path / "jobs.db"), "retry", job.id[:6], "--now"]) == 0
    assert "tries again now" in capsys.readouterr().out
    sleeper.join(timeout=10)  # the 600 s wait ends at its next look (every 0.5 s)
    assert done.is_set()
    assert not store.wake_requested(job.id)  # cleared: the next wait is waited in full
    ctx.stop.set()


def test_delete_refuses_a_running_job_and_removes_everything_of_a_finished_one(tmp_path, store):
    src = _doc(tmp_path, "doc.txt", "One sentence. Another sentence.\n")
    job, _ = submit(store, _params(tmp_path), src)
    final = run_job(store, job.id, FakeTranslator(), settings=RunSettings(batch_tokens=4096),
                    policy=NO_WAITS, sleep=lambda s: None)
    assert final.state == "SUCCEEDED"
    other, _ = submit(store, _params(tmp_path, "other.txt"), _doc(tmp_path, "o.txt", "Two.\n"))
    _running(store, other.id)
    with pytest.raises(JobBusy, match="cancel it before deleting"):
        job_actions.delete(store, other.id)
    job_actions.delete(store, job.id)
    with pytest.raises(JobNotFound):
        service.find_job(store, job.id)
    for table in ("chunks", "batches", "attempts", "stage_runs", "artifacts", "leases",
                  "skeleton_slices", "eta_predictions"):
        assert store.db.execute(f"SELECT COUNT(*) FROM {table} WHERE job_id = ?",
                                (job.id,)).fetchone()[0] == 0, table
    assert (tmp_path / "out.txt").exists()  # the CLI user's delivered file is theirs


def test_status_show_and_the_api_print_the_same_numbers_mid_inference(tmp_path, store, capsys):
    from starlette.testclient import TestClient

    from tests.api_support import make_app

    text = " ".join(f"Sentence number {n} is here." for n in range(40)) + "\n"
    job, _ = submit(store, _params(tmp_path, quality="off"), _doc(tmp_path, "doc.txt", text))
    stop = threading.Event()

    class StopAfterTwoBatches(Events):
        batches = 0

        def stage_progress(self, stage, done):
            if stage == "inference":
                self.batches += 1
                if self.batches == 2:
                    stop.set()  # as a worker's SIGTERM: the job goes back to the queue

    run_job(store, job.id, FakeTranslator(), settings=RunSettings(batch_tokens=48),
            events=StopAfterTwoBatches(), policy=NO_WAITS, sleep=lambda s: None, shutdown=stop)
    job = store.job(job.id)
    assert job.state == "QUEUED" and job.stage == "inference"
    db = str(tmp_path / "jobs.db")
    assert main(["--db", db, "status", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert main(["--db", db, "show", job.id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    api = TestClient(make_app(tmp_path)).get(f"/api/jobs/{job.id}").json()
    units = row["stage_units"]
    assert units["unit"] == "tokens" and 0 < units["done"] < units["total"]
    for view in (shown, api):
        assert (view["percent"], view["stage_units"]) == (row["percent"], units)
    # the percent is those tokens at the stage weights (inference 70% after 10% preprocess)
    assert row["percent"] == round(10 + 70 * units["done"] / units["total"], 1)
    chunks = shown["chunk_progress"]
    assert chunks["total"] == chunks["done"] + chunks["pending"] + chunks["failed"]
    assert main(["--db", db, "show", job.id]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert f"{row['percent']:.1f}%, {units['done']:,}/{units['total']:,} tokens" in first
    assert views.units_text(row) in first


def _http_job(tmp_path, store, url: str):
    params = JobParams(model="fake", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                       output=url, sink=url, quality="off")
    job, _ = submit(store, params, _doc(tmp_path, "doc.txt", "One sentence. Two sentences.\n"))
    return job


def test_retry_now_from_the_api_ends_an_uploads_429_wait_in_a_running_job(tmp_path, store,
                                                                         receiver):
    from starlette.testclient import TestClient

    from tests.api_support import XHR, make_app
    from tests.conftest import wait_until

    receiver.script = [("status", 429, {"Retry-After": "600"})]  # then: delivered
    job = _http_job(tmp_path, store, receiver.url("/docs/a"))
    done: list = []
    runner = threading.Thread(target=lambda: done.append(run_job(
        Store(tmp_path / "jobs.db"), job.id, FakeTranslator(), policy=NO_WAITS)))
    runner.start()
    client = TestClient(make_app(tmp_path))
    wait_until(lambda: (client.get(f"/api/jobs/{job.id}").json()["waiting"] or {}).get(
        "what") == "upload", "the upload to wait out the 429", timeout=60)
    view = client.get(f"/api/jobs/{job.id}").json()
    assert view["waiting"]["until"] > time.time() + 500  # the server's 600 s
    assert client.post(f"/api/jobs/{job.id}/retry-now", headers=XHR).status_code == 202
    runner.join(timeout=20)  # not 600 s: the worker looks every 0.5 s
    assert done and done[0].state == "SUCCEEDED" and receiver.stored == 1
    assert [r.path for r in receiver.requests] == ["/docs/a", "/docs/a"]


def test_a_translation_whose_delivery_failed_can_be_downloaded(tmp_path, store, receiver):
    from starlette.testclient import TestClient

    from pipeline.errors import JobFailed
    from tests.api_support import make_app

    receiver.script = [("status", 401, {})]  # AUTH: not retried
    job = _http_job(tmp_path, store, receiver.url("/docs/b"))
    with pytest.raises(JobFailed):
        run_job(store, job.id, FakeTranslator(), policy=NO_WAITS, sleep=lambda s: None)
    assert store.job(job.id).state == "FAILED" and store.job(job.id).stage == "upload"
    client = TestClient(make_app(tmp_path))
    detail = client.get(f"/api/jobs/{job.id}").json()
    assert detail["has_output"] and detail["delivery"] is None
    output = client.get(f"/api/jobs/{job.id}/output")
    assert output.status_code == 200 and output.content == receiver.requests[0].body


def test_a_canceled_job_took_the_time_to_its_cancel(tmp_path):
    now = [1000.0]
    store = Store(tmp_path / "jobs.db", clock=lambda: now[0])
    job, _ = submit(store, _params(tmp_path), _doc(tmp_path, "doc.txt", "Hi.\n"))
    worker = f"{socket.gethostname()}:{os.getpid()}:test"
    assert store.claim_job(job.id, worker, ttl=600)
    store.start_stage(job.id, "preprocess", units_total=4, worker=worker)
    now[0] += 8.0
    store.finish_cancel(job.id, worker)
    detail = views.job_detail(store, store.job(job.id), now[0] + 100)
    assert detail["state"] == "CANCELED" and detail["elapsed_s"] == 8.0
    assert detail["stages"][0]["wall_s"] is None and detail["stages"][0]["ran_s"] == 8.0


def test_cancel_takes_several_jobs_and_names_the_unknown_one(tmp_path, store, capsys):
    a, _ = submit(store, _params(tmp_path, "a.txt"), _doc(tmp_path, "a.txt", "One.\n"))
    b, _ = submit(store, _params(tmp_path, "b.txt"), _doc(tmp_path, "b.txt", "Two.\n"))
    db = str(tmp_path / "jobs.db")
    assert main(["--db", db, "cancel", a.id, "nope", b.id[:6], "--json"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out) == [{"job": a.id, "outcome": "canceled"},
                               {"job": b.id, "outcome": "canceled"}]
    assert err.strip() == "nllb-pipeline: error: no job 'nope' (see 'nllb-pipeline status')"
    assert main(["--db", db, "cancel", a.id, "--json"]) == 0  # one job: as before
    assert json.loads(capsys.readouterr().out) == {"job": a.id, "outcome": "CANCELED"}
