"""The HTTP API over a real store: submitting, listing, errors and the
rules about who may call it (issue 11)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import asdict

import httpx
import pytest
from starlette.testclient import TestClient

from pipeline.api.openapi import describe
from pipeline.api.uploads import FORM_FIELDS, Uploads
from pipeline.config import FORMAT_DEFAULTS, JobParams
from pipeline.service import JobOptions
from pipeline.store import Store
from tests.api_support import XHR, make_app, post_doc, served

DOC = "The first sentence of a document. And the second one.\n\nA new paragraph.\n"


@pytest.fixture
def client(tmp_path, tiny_model):
    return TestClient(make_app(tmp_path, tiny_model))


def _written(tmp_path):
    """Every job row and every kept upload: what a refused request must not add."""
    uploads = tmp_path / "uploads"
    files = sorted(p for p in uploads.rglob("*") if p.is_file()) if uploads.exists() else []
    return [j.id for j in Store(tmp_path / "jobs.db").jobs(1000)], files


def test_a_new_document_is_201_and_the_same_again_is_200_with_the_same_job(client, tmp_path):
    first = post_doc(client, DOC, name="report.txt")
    assert first.status_code == 201, first.text
    job = first.json()
    assert job["name"] == "report.txt" and job["state"] == "QUEUED"
    assert (job["src"], job["tgt"], job["stage"], job["percent"]) == (
        "eng_Latn", "fra_Latn", "preprocess", 0.0)
    assert {"id", "eta_seconds", "created_at", "weights", "stage_percent"} <= set(job)
    assert first.headers["location"] == f"/api/jobs/{job['id']}"
    again = post_doc(client, DOC, name="report.txt")
    assert again.status_code == 200 and again.json()["id"] == job["id"]
    other = post_doc(client, DOC, name="report.txt", beams="2")
    assert other.status_code == 201 and other.json()["id"] != job["id"]
    assert len(_written(tmp_path)[0]) == 2
    # The upload is kept content-addressed; each request delivers into a folder of its own.
    assert job["input"].startswith(str(tmp_path / "uploads"))
    assert os.path.dirname(job["output"]) != os.path.dirname(other.json()["output"])


def test_a_caller_key_maps_to_one_job_and_reused_with_another_payload_is_422(client, tmp_path):
    first = post_doc(client, DOC, key="order-7")
    assert first.status_code == 201
    assert post_doc(client, DOC, key="order-7").json()["id"] == first.json()["id"]
    before = _written(tmp_path)
    for changed in ({"data": "Another document altogether.\n"}, {"beams": "3"}):
        refused = post_doc(client, changed.pop("data", DOC), key="order-7", **changed)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["class"] == "idempotency_key_reused"
        assert "order-7" in refused.json()["error"]["message"]
    assert _written(tmp_path) == before  # no job, no kept upload


@pytest.mark.parametrize("key", [None, "same-key"])
def test_eight_concurrent_identical_posts_make_one_job(tmp_path, tiny_model, key):
    app = make_app(tmp_path, tiny_model)
    barrier = threading.Barrier(8)
    answers = []

    def post(base):
        with httpx.Client(base_url=base, timeout=30) as http:
            barrier.wait()
            answers.append(post_doc(http, DOC * 20, key=key))

    with served(app) as base:
        threads = [threading.Thread(target=post, args=(base,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    jobs, files = _written(tmp_path)
    assert len(jobs) == 1 and len(files) == 1
    assert not list((tmp_path / "uploads").rglob("*.part"))


def test_a_body_over_the_limit_is_413_and_nothing_is_written(tmp_path, tiny_model):
    client = TestClient(make_app(tmp_path, tiny_model, max_upload_bytes=4096))
    big = "A sentence that repeats. " * 400
    refused = post_doc(client, big)
    assert refused.status_code == 413
    assert refused.json()["error"] == {
        "class": "too_large", "message": "the request is over the 0.00390625 MB limit "
                                         "(the server's upload limit)"}

    def chunked():  # no Content-Length: the limit is counted as the body arrives
        yield b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\n"
        for _ in range(10):
            yield b"y" * 1000
    streamed = client.post("/api/jobs", content=chunked(), headers={
        **XHR, "Content-Type": "multipart/form-data; boundary=x"})
    assert streamed.status_code == 413
    assert post_doc(client, "Small enough.\n").status_code == 201
    assert len(_written(tmp_path)[0]) == 1


@pytest.mark.parametrize("data, fields, message", [
    (b"\x00\x01binary", {}, "is a binary file"),
    (b"caf\xe9 au lait\n", {}, "is not valid UTF-8 (byte 0xe9"),
    (DOC, {"tgt": "fr"}, "unknown language code 'fr' (did you mean fra_Latn?)"),
    (DOC, {"src": "english"}, "unknown language code 'english'"),
    (DOC, {"beams": "many"}, "beams must be a whole number, not 'many'"),
    (DOC, {"beams": "40"}, "beams must be between 1 and 16"),
    (DOC, {"priority": "99999999999999999999"}, "priority must be a whole number from"),
    (DOC, {"colour": "blue"}, "unknown form field(s) 'colour'"),
    (DOC, {"to": "file:/etc/passwd"}, "'to' takes an http(s):// URL"),
    (DOC, {"to": "s3://KEY:SECRET@bucket/out/"}, "URL contains a user name or password"),
    (DOC, {"to": "nosuch://bucket/out/"}, "nosuch:// is not a storage protocol fsspec knows"),
    (DOC, {"to": "https://h/x?X-Amz-Signature=abc"}, "'to' is a presigned URL"),
    (DOC, {"format": "jsonl", "jsonl_field": "text"}, "line 1"),
    (DOC, {"in_place": "true"}, "in_place applies to jsonl, csv, tsv and parquet input"),
    (DOC, {"in_place": "perhaps"}, "in_place must be true or false, not 'perhaps'"),
    (DOC, {"format": "csv"}, "csv input needs columns"),
    ("   \n", {}, "is empty: nothing to translate"),
])
def test_bad_input_is_400_with_the_clis_message_and_nothing_is_written(client, tmp_path, data,
                                                                        fields, message):
    refused = post_doc(client, data, **fields)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["class"] == "invalid_input" and message in error["message"]
    # as a user of the form reads it: no flag of the CLI, no path on the server
    assert "--" not in error["message"] and str(tmp_path) not in error["message"]
    assert "uploads/" not in error["message"]
    assert _written(tmp_path) == ([], [])


def test_format_options_are_form_fields_and_part_of_the_job(client):
    table = "id,text\n1,Hello there.\n"
    added = post_doc(client, table, name="t.csv", columns="text")
    assert added.status_code == 201, added.text
    replaced = post_doc(client, table, name="t.csv", columns="text", in_place="true")
    assert replaced.status_code == 201 and replaced.json()["id"] != added.json()["id"]
    assert post_doc(client, table, name="t.csv", columns="text",
                    in_place="false").json()["id"] == added.json()["id"]


def test_a_form_may_deliver_to_a_storage_url(client):
    import fsspec

    fsspec.filesystem("memory").store.clear()
    created = post_doc(client, DOC, to="memory://b/out/")
    assert created.status_code == 201, created.text
    job = client.get(created.headers["Location"]).json()
    assert job["output"] == "memory://b/out/doc.fra_Latn.txt"


def test_a_form_without_a_file_or_language_is_400(client):
    no_file = client.post("/api/jobs", data={"src": "eng_Latn", "tgt": "fra_Latn"},
                          headers=XHR, files={"other": ("x", b"", "text/plain")})
    assert no_file.status_code == 400 and "'file'" in no_file.json()["error"]["message"]
    no_tgt = client.post("/api/jobs", data={"src": "eng_Latn"}, headers=XHR,
                         files={"file": ("a.txt", DOC.encode(), "text/plain")})
    assert no_tgt.status_code == 400 and "'tgt'" in no_tgt.json()["error"]["message"]
    not_a_form = client.post("/api/jobs", json={"src": "eng_Latn"}, headers=XHR)
    assert not_a_form.status_code == 400


def test_the_list_is_newest_first_with_an_etag_and_304_when_nothing_changed(client):
    ids = [post_doc(client, f"Document number {i}.\n", name=f"d{i}.txt").json()["id"]
           for i in range(3)]
    listed = client.get("/api/jobs")
    assert listed.status_code == 200
    assert [j["id"] for j in listed.json()["jobs"]] == ids[::-1]
    assert listed.json()["counts"]["QUEUED"] == 3
    etag = listed.headers["etag"]
    unchanged = client.get("/api/jobs", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    assert client.post(f"/api/jobs/{ids[0]}/cancel", headers=XHR).status_code == 200
    changed = client.get("/api/jobs", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    canceled = client.get("/api/jobs", params={"state": "CANCELED"}).json()["jobs"]
    assert [j["id"] for j in canceled] == [ids[0]]
    assert [j["id"] for j in client.get("/api/jobs?limit=1").json()["jobs"]] == [ids[2]]
    # Another filter is another list, with its own ETag.
    assert client.get("/api/jobs?state=QUEUED", headers={"If-None-Match": etag}).status_code == 200
    bad = client.get("/api/jobs?state=DONE")
    assert bad.status_code == 400 and "unknown state 'DONE'" in bad.json()["error"]["message"]
    assert client.get("/api/jobs?limit=0").status_code == 400


def test_a_running_job_whose_worker_dies_turns_interrupted_and_the_etag_sees_it(client,
                                                                                 tmp_path):
    import socket
    import subprocess
    import sys

    job_id = post_doc(client, DOC).json()["id"]
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        store = Store(tmp_path / "jobs.db")
        assert store.claim_job(job_id, f"{socket.gethostname()}:{holder.pid}:t", ttl=300)
        running = client.get("/api/jobs")
        assert running.json()["jobs"][0]["state"] == "RUNNING"
        assert running.json()["counts"]["RUNNING"] == 1
    finally:
        holder.kill()
        holder.wait()
    # No write to the store: the worker is simply gone.
    after = client.get("/api/jobs", headers={"If-None-Match": running.headers["etag"]})
    assert after.status_code == 200
    view = after.json()["jobs"][0]
    assert view["state"] == "INTERRUPTED" and view["note"] == "resumes on the next run or worker"
    assert after.json()["counts"]["INTERRUPTED"] == 1
    assert client.get("/api/jobs?state=INTERRUPTED").json()["jobs"][0]["id"] == job_id
    assert client.get("/api/jobs?state=RUNNING").json()["jobs"] == []


def test_unknown_jobs_and_routes_are_404_and_every_error_is_json(client):
    for method, path in [("GET", "/api/jobs/nope"), ("GET", "/api/jobs/nope/logs"),
                         ("GET", "/api/jobs/nope/output"), ("POST", "/api/jobs/nope/retry"),
                         ("POST", "/api/jobs/nope/cancel"), ("GET", "/api/events?job=nope"),
                         ("GET", "/api/nothing-here")]:
        answer = client.request(method, path, headers=XHR)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["error"]["class"] == "not_found"
    assert "no job 'nope'" in client.get("/api/jobs/nope").json()["error"]["message"]
    wrong_method = client.delete("/api/jobs", headers=XHR)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["class"] == "method_not_allowed"


def test_with_a_token_every_api_call_needs_it_and_the_page_does_not(tmp_path, tiny_model):
    client = TestClient(make_app(tmp_path, tiny_model, token="s3cret"))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        refused = client.get("/api/jobs", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["class"] == "auth"
        assert refused.headers["www-authenticate"].startswith("Bearer")
    assert post_doc(client, DOC).status_code == 401
    assert _written(tmp_path) == ([], [])
    good = {"Authorization": "Bearer s3cret"}
    assert client.get("/api/jobs", headers=good).status_code == 200
    # The bearer token stands in for X-Requested-With: no browser sends it on its own.
    created = client.post("/api/jobs", headers=good, data={"src": "eng_Latn", "tgt": "fra_Latn"},
                          files={"file": ("a.txt", DOC.encode(), "text/plain")})
    assert created.status_code == 201
    assert client.get("/").status_code == 200
    assert client.get("/static/app.js").status_code == 200


def test_cross_site_posts_are_refused_and_change_nothing(client, tmp_path):
    job_id = post_doc(client, DOC).json()["id"]
    before = _written(tmp_path)
    evil = {"Origin": "http://evil.example"}
    # A plain HTML form from another site: no custom header, a foreign Origin.
    for path in ("/api/jobs", f"/api/jobs/{job_id}/cancel", f"/api/jobs/{job_id}/retry"):
        plain = client.post(path, headers=evil, data={"src": "eng_Latn", "tgt": "fra_Latn"},
                            files={"file": ("x.txt", b"Other words.\n", "text/plain")})
        assert plain.status_code == 403, plain.text
        assert plain.json()["error"]["class"] == "cross_site"
    # A foreign Origin is refused even with the header; no header is refused even without Origin.
    assert post_doc(client, "Other words.\n", headers=evil).status_code == 403
    bare = client.post(f"/api/jobs/{job_id}/cancel")
    assert bare.status_code == 403 and "X-Requested-With" in bare.json()["error"]["message"]
    assert _written(tmp_path) == before
    assert client.get(f"/api/jobs/{job_id}").json()["state"] == "QUEUED"
    same_site = client.post(f"/api/jobs/{job_id}/cancel",
                            headers={**XHR, "Origin": "http://testserver"})
    assert same_site.status_code == 200 and same_site.json()["outcome"] == "canceled"


def test_served_on_loopback_without_a_token_other_host_names_are_refused(tmp_path, tiny_model):
    from pipeline.api.security import loopback_hosts

    client = TestClient(make_app(tmp_path, tiny_model, allowed_hosts=loopback_hosts("127.0.0.1")),
                        base_url="http://127.0.0.1:8765")
    assert client.get("/api/jobs").status_code == 200
    rebound = client.get("/api/jobs", headers={"Host": "evil.example:8765"})
    assert rebound.status_code == 403 and rebound.json()["error"]["class"] == "forbidden_host"
    assert client.get("/", headers={"Host": "localhost:8765"}).status_code == 200


def test_the_openapi_description_names_every_route_and_nothing_else(client):
    described = describe()["paths"]
    served_routes = {}
    for route in client.app.routes:
        if getattr(route, "methods", None) and (route.path.startswith("/api/")
                                                or route.path == "/metrics"):
            served_routes.setdefault(route.path, set()).update(
                m.lower() for m in route.methods if m != "HEAD")
    assert {p: set(ops) for p, ops in described.items()} == served_routes
    assert client.get("/api/openapi.json").json()["paths"].keys() == described.keys()


def test_every_form_field_is_a_job_option():
    assert {attr for attr, _ in FORM_FIELDS.values()} <= set(JobOptions.__dataclass_fields__)


def test_info_lists_the_202_languages_with_names(client):
    info = client.get("/api/info").json()
    assert len(info["languages"]) == 202
    assert {"code": "fra_Latn", "name": "French"} in info["languages"]
    assert info["workers"] is None and "jsonl" in info["formats"]


def test_a_list_is_rendered_once_per_etag_for_every_poller_that_asks_meanwhile():
    import asyncio

    from pipeline.api.rendered import RenderedLists

    now = [0.0]
    lists = RenderedLists(max_age_s=1.0, clock=lambda: now[0])

    async def render():
        await asyncio.sleep(0.05)
        return b"body"

    async def twenty_polls(etag):
        found = await asyncio.gather(*(lists.get(etag, render) for _ in range(20)))
        await asyncio.sleep(0.1)  # what is rendered behind the answers
        return [r.body for r in found]

    assert asyncio.run(twenty_polls("a")) == [b"body"] * 20
    assert lists.renders == 1
    asyncio.run(twenty_polls("a"))
    assert lists.renders == 1  # still fresh
    now[0] = 1.5
    asyncio.run(twenty_polls("a"))
    asyncio.run(twenty_polls("b"))
    assert lists.renders == 3  # aged out: rendered again; another ETag is another rendering


def test_only_a_request_that_arrives_while_another_renders_may_get_the_rendering_in_hand():
    import asyncio

    from pipeline.api.rendered import RenderedLists

    now = [0.0]
    lists = RenderedLists(max_age_s=1.0, stale_s=2.0, clock=lambda: now[0])
    started = []

    def render(body):
        async def run():
            started.append(body)
            await asyncio.sleep(0.05)
            return body
        return run

    async def scene():
        await lists.get("a", render(b"A"), question="q")
        # The store changed: the first request renders "b", and waits for it.
        first = asyncio.ensure_future(lists.get("b", render(b"B"), question="q", poll=True))
        await asyncio.sleep(0.01)
        # Meanwhile: a poll gets "a" with its own ETag; a request without a
        # copy (or another question) waits for "b".
        poll, fresh = await asyncio.gather(
            lists.get("b", render(b"B"), question="q", poll=True),
            lists.get("b", render(b"B"), question="q"))
        assert (poll.etag, poll.body) == ("a", b"A")
        assert [(r.etag, r.body) for r in (fresh, await first)] == [("b", b"B")] * 2
        # A rendering of "b" aged (the same revision): every request gets it
        # at once, poll or not, and the first has it rendered again behind.
        now[0] = 1.5
        assert (await lists.get("b", render(b"B2"), question="q")).body == b"B"
        assert (await lists.get("b", render(b"B3"), question="q")).body == b"B"
        await asyncio.sleep(0.1)
        assert (await lists.get("b", render(b"B4"), question="q")).body == b"B2"
        now[0] = 3.6  # ... but not once it is older than stale_s: rendered, and waited for
        assert (await lists.get("b", render(b"B5"), question="q")).body == b"B5"
        # The previous rendering is too old to stand in: a poll waits too.
        now[0] = 6.0
        first = asyncio.ensure_future(lists.get("c", render(b"C"), question="q", poll=True))
        await asyncio.sleep(0.01)
        assert (await lists.get("c", render(b"C"), question="q", poll=True)).body == b"C"
        await first
        # Alone, a request always renders the store as it is now.
        now[0] = 6.5
        assert (await lists.get("d", render(b"D"), question="q", poll=True)).body == b"D"

    asyncio.run(scene())
    assert started == [b"A", b"B", b"B2", b"B5", b"C", b"D"]


def test_uploaded_file_names_keep_their_characters_but_never_a_directory():
    from pipeline.api.uploads import safe_name

    assert safe_name("<img src=x onerror=alert(1)>.txt") == "<img src=x onerror=alert(1)>.txt"
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("C:\\Users\\me\\notes.md") == "notes.md"
    assert safe_name("a\x00b\nc.srt") == "abc.srt"
    assert safe_name("..") == safe_name("") == safe_name(None) == "document.txt"
    long = safe_name("é" * 300 + ".txt")
    assert long.endswith(".txt") and len(long.encode()) <= 200


def test_serving_and_submitting_never_import_torch(tmp_path, tiny_model):
    import subprocess
    import sys

    from tests.conftest import ROOT, cli_env

    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from starlette.testclient import TestClient\n"
        "import pipeline.cli.serve\n"
        "from tests.api_support import make_app, post_doc\n"
        f"client = TestClient(make_app(Path({str(tmp_path)!r}), Path({str(tiny_model)!r})))\n"
        "assert post_doc(client, 'Some words.\\n').status_code == 201\n"
        "assert client.get('/api/jobs').status_code == 200\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=cli_env(tmp_path / "jobs.db"), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"



def test_format_options_at_their_defaults_leave_the_output_folder_and_key_as_before(tmp_path):
    # Folders and job keys made before the format options existed still name their jobs.
    options = JobOptions(src="eng_Latn", tgt="fra_Latn")
    before = {k: v for k, v in asdict(options).items()
              if k != "memory" and k not in FORMAT_DEFAULTS}
    request = json.dumps(["0" * 64, "a.txt", before], sort_keys=True)
    assert Uploads(tmp_path).output_dir("0" * 64, "a.txt", options).name == hashlib.sha256(
        request.encode()).hexdigest()[:20]
    params = JobParams(model="m", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                       output="/o")
    assert not set(json.loads(params.canonical_json())) & set(FORMAT_DEFAULTS)
    po = JobParams(model="m", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="po",
                   output="/o", fuzzy=False)
    assert json.loads(po.canonical_json())["fuzzy"] is False
