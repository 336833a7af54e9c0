"""The page in real headless Chromium, driven by Playwright, over a real
``serve`` and real workers on the tiny model (issue 11).

Needs the ``playwright`` package (the ``test`` extra) and a Chromium
binary: Debian's ``chromium`` package, which ``scripts/dev.py test``
installs when it runs as root (``$NLLB_PIPELINE_CHROMIUM`` names another).
Playwright's own browser download is not used. Without either, the test is
skipped and says which is missing. Screenshots go to ``test-artifacts/``
(``$NLLB_PIPELINE_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from pipeline.samples import generate_text
from tests.conftest import ROOT, cli_env, start_cli, wait_until
from tests.test_serve import start_serve, stop

# One Chromium at a time: under pytest-xdist the browser files share one worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("chromium")]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
HOSTILE = "<img src=x onerror=alert(1)>.txt"
FAST_RETRY = "chunk_attempts=1,batch_retries=0,base=0"


def chromium() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[test]'; "
                    "scripts/dev.py test installs it)")
    path = (os.environ.get("NLLB_PIPELINE_CHROMIUM") or shutil.which("chromium")
            or shutil.which("chromium-browser"))
    if not path:
        pytest.skip("no Chromium binary: apt-get install chromium (scripts/dev.py test does "
                    "this when run as root), or set $NLLB_PIPELINE_CHROMIUM")
    return path


def artifacts() -> Path:
    folder = Path(os.environ.get("NLLB_PIPELINE_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def worker(db, env, *extra):
    return start_cli("--db", str(db), "worker", "--threads", "1", *extra, db=db, env=env,
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def submit(page, name: str, data: bytes, tgt: str = "French") -> None:
    """Fill the form as a user does: a file, a language typed and picked."""
    page.set_input_files("#file", files=[{"name": name, "mimeType": "text/plain",
                                          "buffer": data}])
    page.fill("#tgt-search", tgt)
    page.locator("#tgt-list li").first.click()
    page.fill("#beams", "1")
    if not page.locator("#more-options").evaluate("d => d.open"):
        page.click("#more-options summary")
    page.fill("#length_ratio", "0.5")
    page.fill("#length_offset", "4")
    page.click("#submit-button")


def cli_translation(doc: Path, model: Path) -> bytes:
    """What ``nllb-pipeline translate`` writes for the document, with the
    options the form was given."""
    import contextlib
    import io

    from pipeline.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--db", str(doc.parent / "cli.db"), "translate", str(doc), "--src",
                     "eng_Latn", "--tgt", "fra_Latn", "--model", str(model), "--beams", "1",
                     "--length-ratio", "0.5", "--length-offset", "4", "--threads", "1",
                     "--json"]) == 0
    return doc.with_name(f"{doc.stem}.fra_Latn{doc.suffix}").read_bytes()


def show_a_retry_wait(db, url) -> str:
    """A job held by this process whose saved progress is a retry's wait,
    as a worker's LiveProgress saves it."""
    import httpx

    from pipeline.store import Store

    job_id = httpx.post(f"{url}/api/jobs", headers={"X-Requested-With": "test"},
                        data={"src": "eng_Latn", "tgt": "fra_Latn"},
                        files={"file": ("waiting.txt", b"Words that wait.\n", "text/plain")}
                        ).json()["id"]
    store = Store(db)
    worker_id = f"{socket.gethostname()}:{os.getpid()}:test"
    assert store.claim_job(job_id, worker_id, ttl=600)
    run = store.start_stage(job_id, "preprocess", units_total=1, worker=worker_id)
    store.finish_stage(job_id, run, "inference", worker_id)
    store.set_progress(job_id, worker_id, json.dumps({
        "stage": "inference", "percent": 42.5, "eta_s": None, "tokens_per_s": 118.0,
        "at": time.time(), "weights": {"preprocess": 0.05, "inference": 0.85,
                                       "postprocess": 0.05, "upload": 0.05},
        "waiting": {"what": "batch 12", "until": time.time() + 30, "error_class": "OOM",
                    "attempt": 2, "limit": 3}}))
    return job_id


def card(page, name: str):
    return page.locator(".card", has=page.locator(".name", has_text=name)).first


def test_the_task_centre_in_a_real_browser(tmp_path, tiny_model):
    executable = chromium()
    from playwright.sync_api import expect, sync_playwright

    db = tmp_path / "jobs.db"
    env = {**cli_env(db), "NLLB_PIPELINE_MODEL": str(tiny_model)}
    document = generate_text(12, seed=11)
    (tmp_path / "doc.txt").write_text(document)
    serve, url = start_serve(db, "--workers", "0", env=env)
    # The first job meets a worker whose every model call fails, and which
    # runs that one job; the rest meet a healthy worker.
    faulty = worker(db, env, "--max-jobs", "1", "--inject-faults", "transient=1.0,seed=1",
                    "--retry", FAST_RETRY)
    healthy = None
    shots = artifacts()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1360, "height": 900},
                                          permissions=["notifications", "clipboard-read",
                                                       "clipboard-write"],
                                          accept_downloads=True)
            context.add_init_script("""
                window.__notified = [];
                const Real = window.Notification;
                window.Notification = class extends Real {
                  constructor(title, options) { super(title, options);
                                                window.__notified.push(options.body); }
                };""")
            page = context.new_page()
            page.set_default_timeout(15_000)
            problems = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"),
                                              dialog.dismiss()))
            page.goto(url + "/")
            expect(page.locator("#live")).to_contain_text("live")

            # 1. A job that fails shows its error; Retry makes it succeed.
            submit(page, "fails-first.txt", b"This document meets a broken worker first.\n")
            failing = card(page, "fails-first.txt")
            expect(failing).to_have_attribute("data-state", "FAILED", timeout=60_000)
            expect(failing.locator(".error")).to_contain_text("device_transient")
            faulty.wait(timeout=30)
            healthy = worker(db, env)
            # This view gets no event stream (as behind a proxy that buffers): it polls.
            page.route("**/api/events*", lambda route: route.abort())
            failing.click()
            expect(page.locator("#detail-error")).to_contain_text("chunk(s) failed for good")
            expect(page.locator("#detail-attempts")).to_contain_text("injected by --inject-faults")
            trace = page.locator("#detail-attempts code").first.inner_text()
            page.click("#act-copy")
            expect(page.locator("#detail .toasts")).to_contain_text("Error log copied")
            copied = page.evaluate("navigator.clipboard.readText()")
            assert f"[{trace}]" in copied and "device_transient" in copied
            page.click("#act-retry")
            expect(failing).to_have_attribute("data-state", "SUCCEEDED", timeout=60_000)
            expect(page.locator("#detail-state")).to_have_text("SUCCEEDED", timeout=10_000)
            expect(page.locator("#live")).to_have_text("live (polling)")
            page.click("#detail-close")
            page.unroute("**/api/events*")

            # 2. A document through the form reaches SUCCEEDED with a full stage bar.
            submit(page, "doc.txt", document.encode())
            done = card(page, "doc.txt")
            expect(done).to_have_attribute("data-state", "SUCCEEDED", timeout=60_000)
            expect(done.locator(".bar .seg")).to_have_count(4)
            for fill in done.locator(".bar .fill").all():
                assert fill.evaluate("f => f.style.width") == "100%"
            page.wait_for_function("window.__notified.length >= 2")
            assert "doc.txt: translated" in page.evaluate("window.__notified")

            # 3. The detail view; the download is what the CLI writes.
            done.click()
            expect(page.locator("#detail-name")).to_have_text("doc.txt")
            expect(page.locator("#live")).to_have_text("live (events)")
            expect(page.locator("#detail-stages tbody tr")).to_have_count(4)
            expect(page.locator("#detail-chunks")).to_contain_text("0 failed")
            with page.expect_download() as download:
                page.click("#act-download")
            assert download.value.suggested_filename == "doc.fra_Latn.txt"
            downloaded = Path(download.value.path()).read_bytes()
            assert downloaded == cli_translation(tmp_path / "doc.txt", tiny_model)
            page.click("#act-preview")
            expect(page.locator("#preview")).to_have_text(downloaded.decode())
            page.screenshot(path=str(shots / "browser-detail.png"))
            page.click("#act-template")
            expect(page.locator("#submit-message")).to_contain_text("Options of doc.txt")
            assert page.input_value("#beams") == "1"
            expect(page.locator("#detail")).to_be_hidden()  # the form is in view, not covered

            # 4. A hostile file name is shown as text.
            submit(page, HOSTILE, b"A document with a hostile name.\n", tgt="deu_Latn")
            hostile = card(page, "onerror")
            expect(hostile.locator(".name")).to_have_text(HOSTILE)
            expect(hostile).to_have_attribute("data-state", "SUCCEEDED", timeout=60_000)
            assert page.locator("#cards img").count() == 0
            expect(hostile.locator(".langs")).to_have_text("English → German")

            # 5. While a retry waits, the card says so (a running job's saved progress).
            healthy.send_signal(signal.SIGTERM)
            healthy.wait(timeout=60)
            waiting = show_a_retry_wait(db, url)
            expect(card(page, "waiting.txt").locator(".wait-text")).to_have_text(
                re.compile(r"retrying batch 12 in (2[0-9]|30) s \(at [0-9:]+.*\), OOM, "
                           r"attempt 2/3"))
            expect(card(page, "waiting.txt").locator(".eta")).to_have_text("ETA paused")
            page.screenshot(path=str(shots / "browser-jobs.png"))

            # 6. Offline: a banner, and no requests until the connection is back.
            requests = []
            page.on("request", lambda r: requests.append(r.url) if "/api/" in r.url else None)
            context.set_offline(True)
            expect(page.locator("#offline")).to_be_visible()
            seen = len(requests)
            page.wait_for_timeout(4500)  # two list polls' worth
            assert len(requests) == seen, requests[seen:]
            assert page.locator("#act-retry").evaluate(
                "b => getComputedStyle(b).pointerEvents") == "none"
            page.screenshot(path=str(shots / "browser-offline.png"))
            context.set_offline(False)
            expect(page.locator("#offline")).to_be_hidden(timeout=10_000)
            # polling comes back by itself (the page's events arrive while
            # playwright waits, so the condition waits too)
            wait_until(lambda: page.wait_for_timeout(100) or len(requests) > seen,
                       "the page to poll again", timeout=10, interval=0)
            assert problems == []
            browser.close()
        assert waiting
    finally:
        for proc in (faulty, healthy):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        code, err = stop(serve)
    assert code == 0, err


def test_with_a_token_the_page_asks_for_it_once(tmp_path):
    executable = chromium()
    from playwright.sync_api import expect, sync_playwright

    db = tmp_path / "jobs.db"
    serve, url = start_serve(db, "--workers", "0", "--token", "let-me-in")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(url + "/")
            expect(page.locator("#token-dialog")).to_be_visible()
            page.fill("#token-input", "wrong")
            page.click("#token-ok")
            expect(page.locator("#token-error")).to_be_visible()  # refused: asked again
            page.fill("#token-input", "let-me-in")
            page.keyboard.press("Enter")
            expect(page.locator("#token-dialog")).to_be_hidden()
            expect(page.locator("#empty")).to_be_visible()  # the list loaded
            assert page.evaluate("sessionStorage.length + localStorage.length") == 0
            browser.close()
    finally:
        code, err = stop(serve)
    assert code == 0, err
