"""The API over jobs that really ran on the tiny model: detail, logs,
download, retry, cancel and the event stream (issue 11)."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from pipeline.cli import main
from tests.api_support import XHR, make_app, post_doc, run_queue, served

DOC = ("Paragraph one has a sentence. It has a second sentence too.\n\n"
       "Paragraph two is short.\n\nThe third paragraph ends the document.\n")
FAIL_EVERY_CALL = "transient=1.0,seed=1"
GIVE_UP_AT_ONCE = "chunk_attempts=1,batch_retries=0,base=0"


def test_a_finished_job_shows_its_stages_chunks_delivery_and_downloads_as_the_cli_writes_it(
        tmp_path, tiny_model, capsys):
    client = TestClient(make_app(tmp_path, tiny_model))
    name = 'récit <img src=x>.txt'
    job_id = post_doc(client, DOC, name=name).json()["id"]
    assert run_queue(tmp_path / "jobs.db") == {"SUCCEEDED": 1}

    detail = client.get(f"/api/jobs/{job_id}").json()
    assert (detail["state"], detail["stage"], detail["percent"]) == ("SUCCEEDED", "done", 100.0)
    assert [s["stage"] for s in detail["stages"]] == ["preprocess", "inference", "postprocess",
                                                      "upload"]
    assert all(s["wall_s"] is not None and s["wall_s"] >= 0 for s in detail["stages"])
    assert detail["chunks"]["done"] > 0 and detail["failed_chunks"] == []
    assert set(detail["weights"]) == {"preprocess", "inference", "postprocess", "upload"}
    assert abs(sum(detail["weights"].values()) - 1) < 1e-3
    assert detail["stage_percent"] == {s: 100.0 for s in detail["weights"]}
    delivered = Path(detail["delivery"]["target"])
    assert delivered.name == 'récit <img src=x>.fra_Latn.txt'
    assert delivered.is_relative_to(tmp_path / "outputs")

    download = client.get(f"/api/jobs/{job_id}/output")
    assert download.status_code == 200
    assert download.headers["content-type"] == "text/plain; charset=utf-8"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment; ")
    assert urllib.parse.quote('récit <img src=x>.fra_Latn.txt', safe="") in disposition
    assert download.content == delivered.read_bytes()
    # The CLI translating the same document with the same options writes the same bytes.
    doc = tmp_path / "same.txt"
    doc.write_text(DOC)
    assert main(["--db", str(tmp_path / "cli.db"), "translate", str(doc), "--src", "eng_Latn",
                 "--tgt", "fra_Latn", "--model", str(tiny_model), "--beams", "1",
                 "--length-ratio", "0.5", "--length-offset", "4", "--threads", "1",
                 "--json"]) == 0
    capsys.readouterr()
    assert download.content == (tmp_path / "same.fra_Latn.txt").read_bytes()

    preview = client.get(f"/api/jobs/{job_id}/output?inline=1")
    assert preview.headers["content-disposition"].startswith("inline; ")
    assert preview.headers["x-content-type-options"] == "nosniff"
    logs = client.get(f"/api/jobs/{job_id}/logs").json()
    # Random weights fail every output check: the only attempts are the
    # repair ladder's, each with its reason.
    assert logs["job"] == job_id and logs["attempts"]
    assert all(a["error_class"] == "quality" and a["reason"] for a in logs["attempts"])
    # Nothing to retry or cancel any more.
    for verb, phrase in (("retry", "already succeeded and delivered"), ("cancel", "already")):
        refused = client.post(f"/api/jobs/{job_id}/{verb}", headers=XHR)
        assert refused.status_code == 409 and phrase in refused.json()["error"]["message"]


def test_a_failed_job_explains_itself_and_succeeds_after_retry(tmp_path, tiny_model):
    client = TestClient(make_app(tmp_path, tiny_model))
    job_id = post_doc(client, DOC).json()["id"]
    assert client.get(f"/api/jobs/{job_id}/output").status_code == 409  # not translated yet
    run_queue(tmp_path / "jobs.db", faults=FAIL_EVERY_CALL, retry=GIVE_UP_AT_ONCE)

    failed = client.get(f"/api/jobs/{job_id}").json()
    assert failed["state"] == "FAILED"
    assert failed["error"]["class"] == "device_transient"
    assert failed["chunks"]["failed"] == len(failed["failed_chunks"]) > 0
    first = failed["failed_chunks"][0]
    assert first["attempts"] == 1 and "[device_transient] CUDA" in first["last_error"]
    attempts = client.get(f"/api/jobs/{job_id}/logs").json()["attempts"]
    assert attempts and all(len(a["trace_id"]) == 8 for a in attempts)
    assert {"give_up", "skip"} <= {a["decision"] for a in attempts}
    assert "injected by --inject-faults" in attempts[0]["message"]

    retried = client.post(f"/api/jobs/{job_id}/retry", headers=XHR)
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert body["outcome"] == "chunks" and body["chunks_reset"] == failed["chunks"]["failed"]
    assert (body["job"]["state"], body["job"]["stage"]) == ("QUEUED", "inference")
    again = client.post(f"/api/jobs/{job_id}/retry", headers=XHR)
    assert again.status_code == 409 and "already queued" in again.json()["error"]["message"]
    assert run_queue(tmp_path / "jobs.db") == {"SUCCEEDED": 1}
    done = client.get(f"/api/jobs/{job_id}").json()
    assert done["state"] == "SUCCEEDED" and done["chunks"].get("failed", 0) == 0


def test_cancel_a_queued_job_at_once_and_retry_continues_it(tmp_path, tiny_model):
    client = TestClient(make_app(tmp_path, tiny_model))
    job_id = post_doc(client, DOC).json()["id"]
    canceled = client.post(f"/api/jobs/{job_id[:6]}/cancel", headers=XHR)  # a prefix will do
    assert canceled.status_code == 200
    assert canceled.json()["outcome"] == "canceled"
    assert canceled.json()["job"]["state"] == "CANCELED"
    assert client.post(f"/api/jobs/{job_id}/cancel", headers=XHR).status_code == 409
    assert client.post(f"/api/jobs/{job_id}/retry", headers=XHR).json()["outcome"] == "resume"
    assert run_queue(tmp_path / "jobs.db") == {"SUCCEEDED": 1}


def _events(lines, n):
    """The next ``n`` job events from an SSE response's lines."""
    found, data = [], None
    for line in lines:
        if line.startswith("data: "):
            data = json.loads(line[len("data: "):])
        elif line == "" and data is not None:
            found.append(data)
            data = None
            if len(found) == n:
                return found
    raise AssertionError(f"stream ended after {len(found)} events")


@pytest.mark.timeout(60)
def test_the_event_stream_sends_a_job_when_it_changes(tmp_path, tiny_model):
    app = make_app(tmp_path, tiny_model, poll_s=0.05)
    with served(app) as base, httpx.Client(base_url=base, timeout=20) as http:
        job_id = post_doc(http, DOC).json()["id"]
        with http.stream("GET", f"/api/events?job={job_id}") as one, \
                http.stream("GET", "/api/events") as every:
            assert one.headers["content-type"].startswith("text/event-stream")
            one, every = one.iter_lines(), every.iter_lines()
            [now] = _events(one, 1)  # a job's stream starts with the job as it is
            assert (now["id"], now["state"]) == (job_id, "QUEUED")
            assert http.post(f"/api/jobs/{job_id}/cancel", headers=XHR).status_code == 200
            [changed] = _events(one, 1)
            assert changed["state"] == "CANCELED"
            [seen] = _events(every, 1)  # the whole queue's stream has no backlog: only news
            assert (seen["id"], seen["state"]) == (job_id, "CANCELED")
            other = post_doc(http, "Another document.\n").json()["id"]
            [new] = _events(every, 1)
            assert (new["id"], new["state"]) == (other, "QUEUED")
