"""The HTTP sink against a real server on 127.0.0.1 that fails on cue.

The receiver follows a script, one action per request, and deduplicates on
the Idempotency-Key the way a careful server would: it stores the first
complete body per key and answers repeats with the stored result. So
"delivered exactly once" is what it saw, not what the client believes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import signal
import socket
import sqlite3
import struct
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from models import HfTranslator
from pipeline.cli import main
from pipeline.errors import ErrorClass, JobFailed
from pipeline.sinks.http_errors import (
    CLASS_BY_HUNDRED,
    EXCEPTION_CLASSES,
    STATUS_CLASSES,
    class_of_exception,
    class_of_status,
    retry_after_seconds,
    status_error,
)
from pipeline.progress import Events
from pipeline.retry import RetryPolicy
from pipeline.runner import run_job
from pipeline.sinks import CHUNK_BYTES, DeliveryError, DeliveryOptions, HttpSink
from pipeline.store import Store
from tests.conftest import run_cli, start_cli, stored_output, wait_until
from tests.test_sinks import FAST_ARGS, make_job

POLICY = RetryPolicy()  # the defaults; sleeps are recorded, not slept


# -- the receiver -------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class Receiver:
    """Scripted actions, then "ok" for every later request:

    ("status", code, headers)  answer with that status
    ("reset",)                 read the request, then reset the connection
    ("slow", seconds)          answer 504, but only after ``seconds``
    ("stall", seconds)         store the body, then wait before answering
    ("ok",)                    store the body (once per key): 201, or 200 for a repeat
    """

    def __init__(self):
        self.script: list[tuple] = []
        self.requests: list[Seen] = []
        self.deliveries: dict[str, bytes] = {}
        self.replays = 0
        self.received = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self):
                receiver.handle(self)

            do_POST = do_PUT

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client that hung up
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/docs/x") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length", 0))
        body = h.rfile.read(length)
        if len(body) < length:
            h.close_connection = True
            return  # the sender hung up half-way: nothing was delivered
        with self.lock:
            action = self.script.pop(0) if self.script else ("ok",)
            self.requests.append(Seen(h.command, h.path, {k.lower(): v for k, v in
                                                          h.headers.items()}, body))
        self.received.set()
        kind = action[0]
        if kind == "status":
            self._answer(h, action[1], action[2] if len(action) > 2 else {})
        elif kind == "reset":
            h.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.request.close()
            h.close_connection = True
        elif kind == "slow":
            time.sleep(action[1])
            self._answer(h, 504, {})
        else:
            key = h.headers.get("Idempotency-Key")
            with self.lock:
                repeat = key in self.deliveries
                self.replays += repeat
                self.deliveries.setdefault(key, body)
            if kind == "stall":
                self.release.wait(action[1])
            doc_id = "doc-" + hashlib.sha256(key.encode()).hexdigest()[:8]
            self._answer(h, 200 if repeat else 201, {"Content-Type": "application/json",
                                                      "ETag": f'"{doc_id}"'},
                         json.dumps({"id": doc_id}).encode())

    @staticmethod
    def _answer(h, code: int, headers: dict, body: bytes = b"") -> None:
        try:
            h.send_response(code)
            for name, value in headers.items():
                h.send_header(name, value)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except OSError:
            pass  # the client gave up (timed out, or was killed)

    @property
    def stored(self) -> int:
        return len(self.deliveries)


@pytest.fixture
def receiver(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # traffic goes to 127.0.0.1 and nowhere else
    r = Receiver()
    r.thread.start()
    yield r
    r.release.set()
    r.server.shutdown()
    r.server.server_close()


class Recorder(Events):
    def __init__(self):
        self.retries, self.progress = [], []

    def retrying(self, what, delay_s, error_class, attempt, limit):
        self.retries.append((what, delay_s, error_class, attempt, limit))

    def stage_progress(self, stage, done):
        if stage == "upload":
            self.progress.append(done)


def history(store, job):
    """The upload's attempts (the tiny model's chunks have repair-ladder rows too)."""
    return [(a.stage, a.error_class, a.attempt, a.decision) for a in store.attempts(job.id)
            if a.stage == "upload"]


# -- the mapping tables, row by row -----------------------------------------------------


def _instance(exc_type):
    if exc_type is httpx.HTTPStatusError:
        request = httpx.Request("PUT", "https://example.org/x")
        return exc_type("boom", request=request, response=httpx.Response(500, request=request))
    return exc_type("boom")


@pytest.mark.parametrize("row", range(len(EXCEPTION_CLASSES)))
def test_every_exception_row_is_reachable_and_gives_its_class(row):
    exc_type, error_class = EXCEPTION_CLASSES[row]
    exc = _instance(exc_type)
    assert class_of_exception(exc) is error_class
    # no earlier row swallows it: each row means something
    assert next(i for i, (t, _) in enumerate(EXCEPTION_CLASSES) if isinstance(exc, t)) == row


EXPECTED_EXCEPTIONS = {
    "ConnectTimeout": ErrorClass.TIMEOUT, "ReadTimeout": ErrorClass.TIMEOUT,
    "WriteTimeout": ErrorClass.TIMEOUT, "PoolTimeout": ErrorClass.TIMEOUT,
    "TimeoutException": ErrorClass.TIMEOUT,
    "ConnectError": ErrorClass.NETWORK, "ReadError": ErrorClass.NETWORK,
    "WriteError": ErrorClass.NETWORK, "CloseError": ErrorClass.NETWORK,
    "NetworkError": ErrorClass.NETWORK, "RemoteProtocolError": ErrorClass.NETWORK,
    "ProxyError": ErrorClass.NETWORK, "TransportError": ErrorClass.NETWORK,
    "RequestError": ErrorClass.NETWORK, "ProtocolError": ErrorClass.NETWORK,
    "LocalProtocolError": ErrorClass.INTERNAL,
    "UnsupportedProtocol": ErrorClass.INVALID_INPUT, "InvalidURL": ErrorClass.INVALID_INPUT,
    "TooManyRedirects": ErrorClass.INVALID_INPUT,
    "DecodingError": ErrorClass.SERVER, "HTTPStatusError": ErrorClass.SERVER,
    "HTTPError": ErrorClass.INTERNAL,  # the abstract base: never raised on its own
    "StreamError": ErrorClass.INTERNAL, "StreamConsumed": ErrorClass.INTERNAL,
    "StreamClosed": ErrorClass.INTERNAL, "ResponseNotRead": ErrorClass.INTERNAL,
    "RequestNotRead": ErrorClass.INTERNAL, "CookieConflict": ErrorClass.INTERNAL,
}


def test_every_exception_httpx_exports_has_a_decided_class():
    exported = {name for name in httpx.__all__
                if isinstance(getattr(httpx, name), type)
                and issubclass(getattr(httpx, name), Exception)}
    assert exported == set(EXPECTED_EXCEPTIONS), "a new httpx exception: add it to the table"
    for name, error_class in EXPECTED_EXCEPTIONS.items():
        exc_type = getattr(httpx, name)
        try:
            exc = _instance(exc_type)
        except TypeError:
            exc = exc_type()  # the stream errors take no message
        assert class_of_exception(exc) is error_class, name


# The issue's table, literally; STATUS_CLASSES may say more but not otherwise.
REQUIRED_STATUSES = {
    429: ErrorClass.RATE_LIMITED, 500: ErrorClass.SERVER, 502: ErrorClass.SERVER,
    503: ErrorClass.SERVER, 504: ErrorClass.SERVER, 400: ErrorClass.INVALID_INPUT,
    404: ErrorClass.INVALID_INPUT, 413: ErrorClass.INVALID_INPUT, 401: ErrorClass.AUTH,
    403: ErrorClass.AUTH,
}


@pytest.mark.parametrize("status", sorted(STATUS_CLASSES))
def test_every_status_row(status):
    assert class_of_status(status) is STATUS_CLASSES[status]
    if status in REQUIRED_STATUSES:
        assert STATUS_CLASSES[status] is REQUIRED_STATUSES[status]
    response = httpx.Response(status)
    error = status_error(response, "https://host/path")
    assert error.error_class is STATUS_CLASSES[status]
    assert str(error).startswith(f"HTTP {status} ") and "from https://host/path" in str(error)


@pytest.mark.parametrize("hundred, status", [(1, 102), (3, 302), (4, 418), (5, 599)])
def test_every_fallback_row(hundred, status):
    assert status not in STATUS_CLASSES
    assert class_of_status(status) is CLASS_BY_HUNDRED[hundred]


def test_the_statuses_the_issue_names_and_the_503_that_says_when():
    assert {s: class_of_status(s) for s in REQUIRED_STATUSES} == REQUIRED_STATUSES
    assert not ErrorClass.AUTH.retryable and not ErrorClass.INVALID_INPUT.retryable
    assert status_error(httpx.Response(201), "https://h/p") is None
    error = status_error(httpx.Response(401), "https://host/path")
    assert str(error) == "HTTP 401 Unauthorized from https://host/path"
    # 503 is the server's trouble whatever it says (issue 9): SERVER, its Retry-After kept...
    error = status_error(httpx.Response(503, headers={"Retry-After": "12"}), "https://h/p")
    assert (error.error_class, error.retry_after_s) == (ErrorClass.SERVER, 12.0)
    assert str(error) == "HTTP 503 Service Unavailable from https://h/p (Retry-After: 12 s)"
    error = status_error(httpx.Response(429, headers={"Retry-After": "3"}), "https://h/p")
    assert (error.error_class, error.retry_after_s) == (ErrorClass.RATE_LIMITED, 3.0)
    # ...and honoured: the wait is at least what the server asked for
    rng = random.Random(0)
    assert POLICY.decide(ErrorClass.SERVER, 1, rng, retry_after_s=12.0).delay_s == 12.0


def test_retry_after_in_seconds_or_as_an_http_date():
    now = 1_800_000_000.0
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds(formatdate(now + 30, usegmt=True), now) == 30.0
    assert retry_after_seconds(formatdate(now - 30, usegmt=True), now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None and retry_after_seconds(" ", now) is None


def test_a_refused_connection_is_a_network_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nobody listens
    sink = HttpSink(f"http://127.0.0.1:{port}/x", "PUT", DeliveryOptions(timeout_s=5),
                    content_type="text/plain")
    with pytest.raises(DeliveryError) as info:
        sink.deliver(b"data", key="k" * 64)
    sink.close()
    assert info.value.error_class is ErrorClass.NETWORK
    assert str(info.value).startswith(f"PUT http://127.0.0.1:{port}/x failed: ConnectError")


# -- the sink on its own -----------------------------------------------------------------


def test_the_body_is_streamed_in_64_kib_pieces_with_progress_by_bytes(receiver):
    data = random.Random(1).randbytes(200_000)
    sent = []
    sink = HttpSink(receiver.url("/up"), "POST",
                    DeliveryOptions(headers=(("X-Team", "docs"),)), content_type="text/plain")
    receipt = sink.deliver(data, key="k" * 64, progress=sent.append)
    sink.close()
    assert sent == [CHUNK_BYTES, 2 * CHUNK_BYTES, 3 * CHUNK_BYTES, 200_000]
    [seen] = receiver.requests
    assert (seen.method, seen.path, seen.body) == ("POST", "/up", data)
    assert seen.headers["content-length"] == "200000" and "transfer-encoding" not in seen.headers
    assert seen.headers["x-team"] == "docs" and seen.headers["idempotency-key"] == "k" * 64
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert seen.headers["content-digest"] == f"sha-256=:{digest}:"
    doc_id = "doc-" + hashlib.sha256(b"k" * 64).hexdigest()[:8]
    assert (receipt.status, receipt.response_id) == (201, doc_id)


# -- through the job ------------------------------------------------------------------


def test_a_flaky_receiver_gets_the_document_once_after_every_kind_of_failure(
        tmp_path, tiny_model, receiver):
    receiver.script = [("status", 429, {"Retry-After": "7"}), ("status", 503), ("reset",),
                       ("slow", 1.5), ("status", 500)]
    store, job, params = make_job(tmp_path, tiny_model, sink=receiver.url("/docs/a"))
    events, slept = Recorder(), []
    final = run_job(store, job.id, HfTranslator(str(tiny_model)), policy=POLICY,
                    sleep=slept.append, rng=random.Random(3), events=events,
                    delivery=DeliveryOptions(timeout_s=0.5))

    assert final.state == "SUCCEEDED" and final.output_path == receiver.url("/docs/a")
    output = stored_output(store, job.id)
    assert len(receiver.requests) == 6
    assert receiver.deliveries == {job.idem_key: output} and receiver.replays == 0
    assert hashlib.sha256(receiver.requests[-1].body).hexdigest() == \
        store.artifact(job.id, "delivery").sha256 == hashlib.sha256(output).hexdigest()
    assert {r.headers["idempotency-key"] for r in receiver.requests} == {job.idem_key}
    assert {(r.method, r.path) for r in receiver.requests} == {("PUT", "/docs/a")}

    assert history(store, job) == [
        ("upload", "rate_limited", 1, "retry"), ("upload", "server", 1, "retry"),
        ("upload", "network", 1, "retry"), ("upload", "timeout", 1, "retry"),
        ("upload", "server", 2, "retry")]
    # the waits are the policy's, drawn in the same order; the first is the server's 7 s
    rng = random.Random(3)
    assert slept == [
        POLICY.decide(ErrorClass.RATE_LIMITED, 1, rng, retry_after_s=7).delay_s,
        POLICY.decide(ErrorClass.SERVER, 1, rng).delay_s,
        POLICY.decide(ErrorClass.NETWORK, 1, rng).delay_s,
        POLICY.decide(ErrorClass.TIMEOUT, 1, rng).delay_s,
        POLICY.decide(ErrorClass.SERVER, 2, rng).delay_s]
    assert slept[0] == 7.0 and all(0 < s <= 20 for s in slept[1:])
    assert [a.delay_s for a in store.attempts(job.id) if a.stage == "upload"] == slept
    assert [(r[2], r[3], r[4]) for r in events.retries] == [
        ("RATE_LIMITED", 2, 5), ("SERVER", 2, 3), ("NETWORK", 2, 5), ("TIMEOUT", 2, 5),
        ("SERVER", 3, 3)]
    assert events.progress[-1] == len(output)
    receipt = json.loads(store.artifact(job.id, "delivery").content)
    doc_id = "doc-" + hashlib.sha256(job.idem_key.encode()).hexdigest()[:8]
    assert receipt == {"sink": receiver.url("/docs/a"), "target": receiver.url("/docs/a"),
                       "status": 201, "response_id": doc_id}


def test_401_fails_at_once_and_the_token_is_nowhere(tmp_path, tiny_model, receiver, monkeypatch,
                                                    capsys, caplog):
    secret = f"tok-{uuid.uuid4().hex}"
    monkeypatch.setenv("UPLOAD_TOKEN", secret)
    receiver.script = [("status", 401)]
    caplog.set_level(logging.DEBUG)
    src, db, url = tmp_path / "doc.txt", tmp_path / "jobs.db", receiver.url("/private/doc")
    src.write_text("The cat sat on the mat.\n")
    code = main(["--db", str(db), "-v", "translate", str(src), "--src", "eng_Latn", "--tgt",
                 "fra_Latn", "--model", str(tiny_model), *FAST_ARGS, "--to", url,
                 "--header", "Authorization: Bearer $UPLOAD_TOKEN",
                 "--header", "X-Copy: ${UPLOAD_TOKEN}", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"HTTP 401 Unauthorized from {url}" in err
    assert "headers sent: Authorization, X-Copy" in err
    [seen] = receiver.requests  # one attempt, no retry
    assert seen.headers["authorization"] == f"Bearer {secret}"  # it was sent, expanded

    store = Store(db)
    job = store.jobs()[0]
    assert (job.state, job.stage, job.error_class) == ("FAILED", "upload", "auth")
    assert history(store, job) == [("upload", "auth", 1, "fail")]
    printed = [out, err]
    for argv in (["show", job.id], ["show", job.id, "--json"], ["logs", job.id],
                 ["logs", job.id, "--json"], ["status", "--json"]):
        assert main(["--db", str(db), *argv]) == 0
        printed.extend(capsys.readouterr())
    assert "HTTP 401" in "".join(printed)
    assert secret not in "".join(printed) + caplog.text
    for path in tmp_path.glob("jobs.db*"):  # the database, its WAL and shared memory
        assert secret.encode() not in path.read_bytes(), path.name
    conn = sqlite3.connect(db)
    assert secret not in "\n".join(conn.iterdump())


def test_an_exhausted_budget_fails_the_job_then_retry_delivers_exactly_once(
        tmp_path, tiny_model, receiver, capsys, monkeypatch):
    receiver.script = [("status", 503)] * 3
    store, job, params = make_job(tmp_path, tiny_model, sink=receiver.url("/docs/c"))
    slept = []
    with pytest.raises(JobFailed) as info:
        run_job(store, job.id, HfTranslator(str(tiny_model)), policy=POLICY,
                sleep=slept.append, rng=random.Random(5))
    assert info.value.error_class is ErrorClass.SERVER
    failed = store.job(job.id)
    assert (failed.state, failed.stage) == ("FAILED", "upload")
    assert failed.error_message.startswith("HTTP 503 Service Unavailable from ")
    assert "gave up after 3 server attempts" in failed.error_message
    assert history(store, job) == [("upload", "server", 1, "retry"),
                                   ("upload", "server", 2, "retry"),
                                   ("upload", "server", 3, "fail")]
    assert len(slept) == 2 and receiver.stored == 0

    # the server is back: retry runs the upload only, and a fresh round of attempts
    import models.hf

    monkeypatch.setattr(models.hf.HfTranslator, "translate_batch",
                        lambda *a, **k: pytest.fail("translated again"))
    code = main(["--db", str(store.path), "retry", job.id, "--no-progress", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["state"] == "SUCCEEDED"
    assert receiver.deliveries == {job.idem_key: stored_output(store, job.id)}
    assert len(receiver.requests) == 4 and receiver.replays == 0
    # delivered is delivered: neither retry nor the same translate sends again
    assert main(["--db", str(store.path), "retry", job.id, "--no-progress"]) == 0
    src = tmp_path / "doc.txt"
    assert main(["--db", str(store.path), "translate", str(src), "--src", "eng_Latn", "--tgt",
                 "fra_Latn", "--model", str(tiny_model), *FAST_ARGS, "--to",
                 receiver.url("/docs/c"), "--no-progress", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["note"] == \
        "already translated; nothing to do"
    assert len(receiver.requests) == 4


def test_a_retried_job_delivers_its_completed_output_as_a_new_delivery(tmp_path, tiny_model,
                                                                        receiver):
    from tests.test_retries import POISON, Poisoned

    store, job, params = make_job(tmp_path, tiny_model, text=f"Fine words here.\n\n{POISON}\n",
                                  sink=receiver.url("/docs/f"), missing="marker")
    fast = RetryPolicy(chunk_attempts=1, batch_retries=0)
    first = run_job(store, job.id, Poisoned(HfTranslator(str(tiny_model))),
                    policy=fast, sleep=lambda s: None)
    assert first.state == "FAILED" and "failed for good" in first.error_message
    with_gap = stored_output(store, job.id)
    assert receiver.deliveries == {job.idem_key: with_gap}  # delivered, with the source text

    store.reset_failed(job.id)
    healed = Poisoned(HfTranslator(str(tiny_model)), healed=True)
    assert run_job(store, job.id, healed, policy=fast).state == "SUCCEEDED"
    complete = stored_output(store, job.id)
    assert complete != with_gap
    new_key = f"{job.idem_key}-{hashlib.sha256(complete).hexdigest()[:16]}"
    # not dropped as a repeat of the first: a new key for new content
    assert receiver.deliveries == {job.idem_key: with_gap, new_key: complete}


def test_a_restart_continues_the_attempt_count_and_the_stored_wait(tmp_path, tiny_model,
                                                                    receiver):
    receiver.script = [("status", 502)] * 5
    store, job, params = make_job(tmp_path, tiny_model, sink=receiver.url("/docs/d"))
    translator = HfTranslator(str(tiny_model))
    slept = []

    def killed_in_the_second_wait(seconds):
        slept.append(seconds)
        if len(slept) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(store, job.id, translator, policy=POLICY, sleep=killed_in_the_second_wait)
    assert len(receiver.requests) == 2

    resumed = []
    with pytest.raises(JobFailed):
        run_job(store, job.id, translator, policy=POLICY, sleep=resumed.append)
    # one attempt was left of three; first the rest of the interrupted wait
    assert len(receiver.requests) == 3
    assert len(resumed) == 1 and slept[1] - 1 < resumed[0] <= slept[1]
    assert history(store, job) == [("upload", "server", 1, "retry"),
                                   ("upload", "server", 2, "retry"),
                                   ("upload", "server", 3, "fail")]


@pytest.mark.slow
def test_kill_9_during_an_upload_then_resume_delivers_exactly_once(tmp_path, tiny_model,
                                                                    receiver):
    receiver.script = [("stall", 300)]  # the receiver has the body; its answer never comes
    src, db = tmp_path / "doc.txt", tmp_path / "jobs.db"
    src.write_text("The cat sat on the mat.\n\nHello world. It is raining.\n")
    url = receiver.url("/docs/e")
    args = ["translate", str(src), "--src", "eng_Latn", "--tgt", "fra_Latn", "--model",
            str(tiny_model), *FAST_ARGS, "--to", url, "--http-timeout", "120", "--no-progress",
            "--json"]
    proc = start_cli(*args, db=db, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def started():
            assert proc.poll() is None, proc.communicate()
            return receiver.received.wait(0.05)

        wait_until(started, "an upload to start", interval=0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    store = Store(db)
    job = store.jobs()[0]
    assert (job.state, job.stage) == ("RUNNING", "upload")
    assert store.artifact(job.id, "delivery") is None  # killed before it heard back
    assert receiver.stored == 1

    result = json.loads(run_cli(*args, db=db).stdout)
    assert result["state"] == "SUCCEEDED" and result["note"] == "resumed"
    assert [r.headers["idempotency-key"] for r in receiver.requests] == [job.idem_key] * 2
    assert receiver.stored == 1 and receiver.replays == 1  # the server saw one delivery
    assert receiver.deliveries[job.idem_key] == stored_output(store, job.id)
    assert all(c.commits <= 1 for c in store.chunks(job.id))  # nothing translated twice
    assert [r.stage for r in store.stage_runs(job.id)].count("inference") == 1

    again = json.loads(run_cli(*args, db=db).stdout)
    assert again["note"] == "already translated; nothing to do"
    assert len(receiver.requests) == 2
