"""The API routes the task centre added (issue 22): search and keyset pages,
bulk retry and cancel, logs as a file, DELETE, retry-now, /jobs/{id}, and
the refusals in front of them (status codes, JSON errors)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time

import pytest
from starlette.testclient import TestClient

from pipeline.api import listing
from pipeline.store import Store
from tests.api_support import XHR, make_app, post_doc


@pytest.fixture
def client(tmp_path):
    return TestClient(make_app(tmp_path))


def _ids(client, n: int, prefix: str = "doc") -> list[str]:
    return [post_doc(client, f"Document {prefix} {i}.\n", name=f"{prefix}-{i}.txt").json()["id"]
            for i in range(n)]


def _claim(tmp_path, job_id: str, waiting_s: float | None = None) -> None:
    store = Store(tmp_path / "jobs.db")
    worker = f"{socket.gethostname()}:{os.getpid()}:test"
    assert store.claim_job(job_id, worker, ttl=600)
    waiting = {"what": "batch 3", "until": time.time() + waiting_s, "error_class": "OOM",
               "attempt": 2, "limit": 3} if waiting_s else None
    store.set_progress(job_id, worker, json.dumps({
        "stage": "preprocess", "percent": 2.0, "eta_s": None, "at": time.time(),
        "weights": None, "waiting": waiting}))


def _error(response, status: int, error_class: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if error_class:
        assert error["class"] == error_class
    return error["message"]


def test_an_ambiguous_prefix_is_409_and_wildcards_match_nothing(tmp_path, client):
    one, two = _ids(client, 2)
    db = sqlite3.connect(tmp_path / "jobs.db")
    with db:
        db.execute("UPDATE jobs SET id = 'abc123000001' WHERE id = ?", (one,))
        db.execute("UPDATE jobs SET id = 'abc123000002' WHERE id = ?", (two,))
    message = _error(client.get("/api/jobs/abc1"), 409, "ambiguous_id")
    assert "abc123000001" in message and "abc123000002" in message
    assert client.get("/api/jobs/abc123000001").status_code == 200
    for literal in ("abc1_3", "abc%25", "abc12300000_"):
        _error(client.get(f"/api/jobs/{literal}"), 404, "not_found")


def test_the_bearer_scheme_is_case_insensitive(tmp_path):
    client = TestClient(make_app(tmp_path, token="sesame"))
    for scheme in ("Bearer", "bearer", "BEARER"):
        assert client.get("/api/jobs", headers={"Authorization": f"{scheme} sesame"}
                          ).status_code == 200
    for wrong in ("Bearer sesame2", "Basic sesame", "sesame", "Bearer"):
        _error(client.get("/api/jobs", headers={"Authorization": wrong}), 401, "auth")


def test_a_keyed_request_and_the_same_request_without_a_key_are_one_job(client):
    first = post_doc(client, "Same words.\n", key="first-key")
    assert first.status_code == 201
    for key in (None, "another-key"):
        again = post_doc(client, "Same words.\n", key=key)
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]


def test_a_second_live_job_to_one_url_is_409_naming_the_first(client):
    url = "https://example.invalid/put/here.txt"
    first = post_doc(client, "One document.\n", to=url).json()["id"]
    message = _error(post_doc(client, "Another document.\n", name="b.txt", to=url), 409,
                     "conflict")
    assert f"job {first}" in message and "already delivers" in message
    # an HTTP POST to a collecting endpoint is no shared destination
    assert post_doc(client, "Third.\n", name="c.txt", to=url, http_method="POST"
                    ).status_code == 201


def test_search_is_by_name_or_id_prefix_with_literal_wildcards(client):
    _ids(client, 3, "report")
    _ids(client, 2, "notes_2024")
    _ids(client, 1, "notesX2024")
    found = client.get("/api/jobs", params={"q": "notes_"}).json()["jobs"]
    assert sorted(j["name"] for j in found) == ["notes_2024-0.txt", "notes_2024-1.txt"]
    assert len(client.get("/api/jobs", params={"q": "REPORT"}).json()["jobs"]) == 3
    job = client.get("/api/jobs", params={"q": "report-1"}).json()["jobs"][0]
    assert [j["id"] for j in client.get("/api/jobs", params={"q": job["id"][:8]}).json()["jobs"]
            ] == [job["id"]]
    assert client.get("/api/jobs", params={"q": "%"}).json()["jobs"] == []
    _error(client.get("/api/jobs", params={"q": "x" * 201}), 400, "invalid_input")


def test_keyset_pages_list_every_job_once_newest_first(client):
    ids = _ids(client, 25)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "10", **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/jobs", params=params).json()
        seen += [j["id"] for j in body["jobs"]]
        pages += 1
        assert (body["attention"] == []) or cursor is None
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == ids[::-1]
    _error(client.get("/api/jobs", params={"cursor": "nonsense"}), 400, "invalid_input")


def test_the_first_page_puts_running_jobs_and_recent_failures_first(tmp_path, client):
    running, failed, queued = _ids(client, 3)
    _claim(tmp_path, running)
    Store(tmp_path / "jobs.db").set_job_state(failed, "FAILED", error_class="auth",
                                              error_message="refused")
    body = client.get("/api/jobs").json()
    assert [j["id"] for j in body["attention"]] == [running, failed]
    assert [(f["id"], f["state"]) for f in body["recently_finished"]] == [(failed, "FAILED")]
    queued_view = next(j for j in body["jobs"] if j["id"] == queued)
    assert queued_view["queue_position"] == 1
    # a filtered list has no attention block
    assert client.get("/api/jobs", params={"state": "QUEUED"}).json()["attention"] == []


def test_queue_positions_follow_priority_then_age(client):
    low = post_doc(client, "Low.\n", name="low.txt").json()["id"]
    high = post_doc(client, "High.\n", name="high.txt", priority="5").json()["id"]
    later = post_doc(client, "Later.\n", name="later.txt").json()["id"]
    positions = {j["id"]: j["queue_position"] for j in client.get("/api/jobs").json()["jobs"]}
    assert positions == {high: 1, low: 2, later: 3}
    assert client.get(f"/api/jobs/{later}").json()["queue_position"] == 3


def test_bulk_retry_and_cancel_answer_per_job(tmp_path, client):
    a, b, c = _ids(client, 3)
    _claim(tmp_path, c)
    canceled = client.post("/api/jobs/cancel", json={"ids": [a, b, c, "nope"]}, headers=XHR)
    assert canceled.status_code == 200
    body = canceled.json()
    assert [r["ok"] for r in body["results"]] == [True, True, True, False]
    assert [r.get("outcome") for r in body["results"][:3]] == ["canceled", "canceled",
                                                                "requested"]
    assert body["results"][3]["error"]["status"] == 404 and (body["ok"], body["refused"]) == (3, 1)
    retried = client.post("/api/jobs/retry", json={"ids": [a, b, a]}, headers=XHR).json()
    assert [(r["id"], r["ok"], r["job"]["state"]) for r in retried["results"]] == [
        (a, True, "QUEUED"), (b, True, "QUEUED")]
    again = client.post("/api/jobs/retry", json={"ids": [a]}, headers=XHR).json()["results"][0]
    assert not again["ok"] and again["error"]["status"] == 409
    for bad in ({"ids": []}, {"ids": "abc"}, {"id": [a]}, {"ids": [f"x{i}" for i in range(1001)]}):
        _error(client.post("/api/jobs/retry", json=bad, headers=XHR), 400, "invalid_input")
    _error(client.post("/api/jobs/retry", content=b"not json", headers=XHR), 400)
    _error(client.post("/api/jobs/cancel", json={"ids": [a]}), 403, "cross_site")


def test_logs_download_as_text(tmp_path, client):
    job = _ids(client, 1)[0]
    store = Store(tmp_path / "jobs.db")
    store.record_attempt(job, "upload", error_class=_class("RATE_LIMITED"), message="HTTP 429",
                         tb="", attempt=1, decision="retry", delay_s=2.5)
    text = client.get(f"/api/jobs/{job}/logs", params={"format": "text"})
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert text.headers["content-disposition"].startswith('attachment; filename="doc-0.')
    lines = text.text.splitlines()
    assert lines[0] == f"job {job} doc-0.txt: QUEUED (stage preprocess)"
    assert "upload: rate_limited attempt 1 -> retry after 2.5 s: HTTP 429" in lines[1]
    assert client.get(f"/api/jobs/{job}/logs").json()["attempts"][0]["message"] == "HTTP 429"
    _error(client.get(f"/api/jobs/{job}/logs", params={"format": "xml"}), 400)


def _class(name):
    from pipeline.errors import ErrorClass

    return ErrorClass[name]


def test_delete_is_409_while_running_and_removes_the_job_and_its_upload(tmp_path, client):
    a, b = _ids(client, 2)
    shared = post_doc(client, "Document doc 0.\n", name="doc-0.txt", beams="2").json()["id"]
    _claim(tmp_path, b)
    message = _error(client.delete(f"/api/jobs/{b}", headers=XHR), 409, "conflict")
    assert "cancel it before deleting" in message
    upload = client.get(f"/api/jobs/{a}").json()["input"]
    assert os.path.exists(upload)
    assert client.delete(f"/api/jobs/{a}", headers=XHR).json() == {"deleted": a,
                                                                    "name": "doc-0.txt"}
    assert os.path.exists(upload)  # the other job reads the same upload
    _error(client.get(f"/api/jobs/{a}"), 404)
    assert client.delete(f"/api/jobs/{shared}", headers=XHR).status_code == 200
    assert not os.path.exists(upload)
    _error(client.delete(f"/api/jobs/{a}", headers=XHR), 404)
    _error(client.delete(f"/api/jobs/{b}"), 403, "cross_site")


def test_retry_now_is_202_for_a_waiting_job_and_409_otherwise(tmp_path, client):
    waiting, idle = _ids(client, 2)
    _error(client.post(f"/api/jobs/{idle}/retry-now", headers=XHR), 409, "conflict")
    _claim(tmp_path, waiting, waiting_s=60)
    listed = client.get(f"/api/jobs/{waiting}").json()["waiting"]
    assert listed["what"] == "batch 3" and listed["until"] > time.time()
    woken = client.post(f"/api/jobs/{waiting}/retry-now", headers=XHR)
    assert woken.status_code == 202 and woken.json()["ended_wait"]["what"] == "batch 3"
    assert Store(tmp_path / "jobs.db").wake_requested(waiting)
    _error(client.post(f"/api/jobs/{waiting}/retry-now"), 403, "cross_site")


def test_a_job_url_serves_the_page(client):
    job = _ids(client, 1)[0]
    page = client.get(f"/jobs/{job}")
    assert page.status_code == 200 and "Content-Security-Policy" in page.headers
    assert page.text == client.get("/").text


def test_a_list_render_costs_the_same_statements_for_50_and_200_jobs(tmp_path, client):
    ids = _ids(client, 200)
    store = Store(tmp_path / "jobs.db")
    for job_id in ids[:5]:
        store.set_job_state(job_id, "FAILED", error_class="auth", error_message="no")
    counts = []
    for limit in (50, 200):
        statements = []
        store.db.conn.set_trace_callback(statements.append)
        body = listing.list_body(store, (), limit, time.time())
        store.db.conn.set_trace_callback(None)
        assert len(body["jobs"]) == limit
        counts.append(len(statements))
    assert counts[0] == counts[1], counts


def test_a_bulk_action_is_one_transaction_and_a_refused_job_stops_none(tmp_path, client):
    from pipeline import job_actions

    a, b, c = _ids(client, 3)
    store = Store(tmp_path / "jobs.db")
    store.set_job_state(b, "SUCCEEDED")
    statements = []
    store.db.conn.set_trace_callback(statements.append)
    done = job_actions.cancel_many(store, [a, "nope", b, c])
    store.db.conn.set_trace_callback(None)
    assert [(r.id, r.ok) for r in done] == [(a, True), ("nope", False), (b, False), (c, True)]
    assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE"]
    assert [store.job(i).state for i in (a, b, c)] == ["CANCELED", "SUCCEEDED", "CANCELED"]
    retried = job_actions.retry_many(store, [a, c, b])
    assert [r.ok for r in retried] == [True, True, True]  # b: never delivered, so deliver it
    assert [store.job(i).state for i in (a, b, c)] == ["QUEUED"] * 3


def test_a_rendering_reuses_the_views_of_unchanged_jobs_and_says_the_same(tmp_path, client):
    ids = _ids(client, 6)
    store = Store(tmp_path / "jobs.db")
    _claim(tmp_path, ids[0])
    store.set_job_state(ids[1], "FAILED", error_class="auth", error_message="no")
    kept = listing.JobFragments()
    first = listing.list_json(store, (), 50, time.time(), fragments=kept)
    assert kept.rendered == 5  # every job but the running one
    store.set_job_state(ids[2], "CANCELED")  # one job changes; the queue moves for the rest
    store.set_job_state(ids[5], "CANCELED")
    now = time.time()
    again = listing.list_json(store, (), 50, now, fragments=kept)
    # ids[2], ids[5]: a new state; ids[3], ids[4]: a new place in the queue
    assert kept.rendered == 5 + 4
    assert json.loads(again) == listing.list_body(store, (), 50, now) != json.loads(first)
    listing.list_json(store, (), 50, now, fragments=kept)
    assert kept.rendered == 9


def test_a_search_walks_the_list_index_which_holds_the_name(tmp_path, client):
    _ids(client, 3, "report")
    store = Store(tmp_path / "jobs.db")
    statements = []
    store.db.conn.set_trace_callback(statements.append)
    assert len(store.list_jobs(query="report-1", limit=10)) == 1
    store.db.conn.set_trace_callback(None)
    (search,) = [s for s in statements if "LIKE" in s]
    plan = " ".join(r[-1] for r in store.db.execute("EXPLAIN QUERY PLAN " + search))
    assert plan == "SCAN jobs USING INDEX jobs_by_created", plan  # no sort, no table walk
    columns = [r[2] for r in store.db.execute("PRAGMA index_info(jobs_by_created)")]
    assert columns == ["created_at", "id", "input_path"]


def test_a_list_answer_carries_the_etag_of_the_body_it_sends(client):
    from pipeline.api.rendered import Rendered

    asked = []

    class InHand:  # a rendering of an earlier revision, as while another renders
        async def get(self, etag, render, *, question, poll):
            asked.append(poll)
            return Rendered('W/"earlier"', b'{"jobs":[]}', 0.0)

    client.app.state.api.lists = InHand()
    held = client.get("/api/jobs", headers={"If-None-Match": 'W/"earlier"'})
    assert held.status_code == 304 and held.headers["etag"] == 'W/"earlier"'
    other = client.get("/api/jobs", headers={"If-None-Match": 'W/"older"'})
    assert other.status_code == 200 and other.headers["etag"] == 'W/"earlier"'
    assert other.json() == {"jobs": []}
    client.get("/api/jobs")
    client.get("/api/jobs", headers={"If-None-Match": 'W/"older"', "Cache-Control": "no-cache"})
    assert asked == [True, True, False, False]  # only a poll may be answered from an earlier one


def test_one_jobs_queue_place_is_counted_in_two_ranges_of_the_queue_index(tmp_path, client):
    ids = [post_doc(client, f"Doc {i}.\n", name=f"q{i}.txt", priority=str(i % 3)).json()["id"]
           for i in range(7)]
    store = Store(tmp_path / "jobs.db")
    store.set_job_state(ids[3], "CANCELED")
    places = store.queue_positions()
    assert {i: store.queue_position(i) for i in ids} == {i: places.get(i) for i in ids}
    assert store.queue_position(ids[3]) is None and sorted(places.values()) == list(range(1, 7))
    statements = []
    store.db.conn.set_trace_callback(statements.append)
    store.queue_position(ids[0])
    store.db.conn.set_trace_callback(None)
    plan = " ".join(r[-1] for r in store.db.execute("EXPLAIN QUERY PLAN " + statements[-1]))
    assert plan.count("SEARCH jobs USING INDEX jobs_queue") == 2 and "SCAN jobs" not in plan
