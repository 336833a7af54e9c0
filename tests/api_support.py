"""What the API tests share: an app over a fresh store, a real server on a
free port, a form post, and running the queue in this process."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from pipeline.api import ApiSettings, create_app
from tests.conftest import wait_until

FAST = {"beams": "1", "length_ratio": "0.5", "length_offset": "4"}  # quick tiny-model jobs
XHR = {"X-Requested-With": "test"}


def make_app(tmp_path: Path, model: Path | None = None, **settings):
    return create_app(ApiSettings(db=tmp_path / "jobs.db", default_model=str(model or "") or None,
                                  **settings))


def post_doc(client, data: bytes | str, *, name: str = "doc.txt", key: str | None = None,
             headers: dict | None = None, **fields):
    """POST /api/jobs with the document and the form fields (src/tgt default eng->fra)."""
    body = {"src": "eng_Latn", "tgt": "fra_Latn", **FAST, **fields}
    sent = {**XHR, **(headers or {})}
    if key is not None:
        sent["Idempotency-Key"] = key
    if isinstance(data, str):
        data = data.encode()
    return client.post("/api/jobs", files={"file": (name, data, "text/plain")}, data=body,
                       headers=sent)


@contextlib.contextmanager
def served(app):
    """The app under a real uvicorn on 127.0.0.1 (a free port), in a thread."""
    import uvicorn

    from pipeline.cli.serve import listen

    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, "the server to start", timeout=10)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        app.state.api.stopping.set()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def run_queue(db: Path, *, faults: str | None = None, retry: str | None = None,
              max_jobs: int | None = None) -> dict:
    """Run queued jobs in this process until the queue is empty (a worker
    with the tiny model, as ``nllb-pipeline worker`` would)."""
    from pipeline import service
    from pipeline.executors import TranslatorCache
    from pipeline.config import RunSettings
    from pipeline.retry import parse_policy
    from pipeline.store import Store

    settings = RunSettings(device="cpu", threads=1)
    runtime = service.Runtime(settings, parse_policy(retry),
                              translators=TranslatorCache(settings, inject_faults=faults))
    return service.run_worker(Store(db), runtime, max_jobs=max_jobs, idle_exit_s=0, poll_s=0.05)
