"""The page for keyboard and screen-reader users (issue 22), in real headless
Chromium: axe-core finds no serious or critical violation on the empty
page, the form, a list of 50 jobs, the detail dialog and the offline
banner; a document is submitted, a job opened, retried and closed from the
keyboard alone; focus and a selection survive a poll; the language picker
announces its highlight; /jobs/{id} opens a job and back closes it.
Screenshots at 375 and 1440 px go to the test artifacts (``test-artifacts/``
or ``$NLLB_PIPELINE_TEST_ARTIFACTS``).

The server runs in this process (``tests.api_support.served``) without
workers: the jobs' states are set in the store, as a worker would.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time

import pytest
from starlette.testclient import TestClient

from pipeline.store import Store
from tests.api_support import make_app, post_doc, served
from tests.test_browser import CHROMIUM_ARGS, artifacts, chromium

# One Chromium at a time: under pytest-xdist the browser files share one worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("chromium")]

SERIOUS = ("serious", "critical")


def axe_violations(page, what: str) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        pytest.skip("axe-playwright-python is not installed (pip install -e '.[test]')")
    found = Axe().run(page).response["violations"]
    return [f"{what}: {v['id']} ({v['impact']}): {v['help']} at "
            f"{[n['target'] for n in v['nodes']][:3]}" for v in found if v["impact"] in SERIOUS]


@contextlib.contextmanager
def browser_page(url: str, width: int = 1440, height: int = 900):
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": width, "height": height},
                                      bypass_csp=True)  # axe's script is injected
        page = context.new_page()
        page.set_default_timeout(10_000)
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(url)
        yield page, context, problems
        browser.close()
    assert problems == []


def holder(db, job_id: str, *, waiting: bool = False, percent: float = 30.0) -> None:
    """The job RUNNING under a lease of this process, with a live snapshot."""
    store = Store(db)
    worker = f"{socket.gethostname()}:{os.getpid()}:test"
    assert store.claim_job(job_id, worker, ttl=600)
    store.set_progress(job_id, worker, json.dumps({
        "stage": "preprocess", "percent": percent, "eta_s": 40.0, "tokens_per_s": None,
        "at": time.time(), "weights": None,
        "stage_units": {"unit": "bytes", "done": 300, "total": 1000},
        "waiting": {"what": "batch 4", "until": time.time() + 300, "error_class": "OOM",
                    "attempt": 2, "limit": 3} if waiting else None}))


def fifty_jobs(tmp_path) -> tuple:
    app = make_app(tmp_path)
    client = TestClient(app)
    ids = [post_doc(client, f"Document number {i}.\n", name=f"report-{i:02d}.txt").json()["id"]
           for i in range(50)]
    store = Store(tmp_path / "jobs.db")
    for job_id in ids[:5]:
        store.set_job_state(job_id, "FAILED", error_class="device_transient",
                            error_message="3 chunk(s) failed for good")
    for job_id in ids[5:15]:
        store.set_job_state(job_id, "SUCCEEDED")
    store.request_cancel(ids[15])
    holder(tmp_path / "jobs.db", ids[16], waiting=True)
    return app, ids


def test_axe_finds_nothing_serious_and_screenshots_are_kept(tmp_path):
    shots = artifacts()
    empty = make_app(tmp_path / "empty")
    problems = []
    with served(empty) as url, browser_page(url + "/") as (page, context, _):
        page.wait_for_selector("#empty:not([hidden])")
        problems += axe_violations(page, "empty page")
        page.click("#tgt-search")
        page.keyboard.type("fre")
        page.keyboard.press("ArrowDown")
        problems += axe_violations(page, "the form, picker open")
        page.keyboard.press("Escape")
        page.click("#submit-button")  # nothing chosen: the form says what is missing
        problems += axe_violations(page, "the form with an error")
    app, ids = fifty_jobs(tmp_path)
    for width in (1440, 375):
        with served(app) as url, browser_page(url + "/", width) as (page, context, _):
            page.wait_for_selector(".card >> nth=49")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            if width == 1440:
                problems += axe_violations(page, "a list of 50 jobs")
            page.screenshot(path=str(shots / f"centre-list-{width}.png"), full_page=True)
            page.locator(".card", has_text="report-00.txt").locator(".name").click()
            page.wait_for_selector("#detail-attempts, #detail-no-attempts:not([hidden])")
            page.wait_for_function("document.querySelector('#detail-name').textContent "
                                   "=== 'report-00.txt'")
            if width == 1440:
                problems += axe_violations(page, "the detail dialog")
            page.screenshot(path=str(shots / f"centre-detail-{width}.png"))
            page.keyboard.press("Escape")
            context.set_offline(True)
            page.wait_for_selector("#offline:not([hidden])")
            if width == 1440:
                problems += axe_violations(page, "the offline banner")
            page.screenshot(path=str(shots / f"centre-offline-{width}.png"))
            context.set_offline(False)
    assert problems == []
    for name in ("list", "detail", "offline"):
        for width in (375, 1440):
            assert (shots / f"centre-{name}-{width}.png").stat().st_size > 0


def test_from_the_keyboard_alone_submit_open_retry_close(tmp_path):
    app, ids = fifty_jobs(tmp_path)
    failed = ids[0]
    with served(app) as url, browser_page(url + "/") as (page, context, _):
        page.wait_for_selector(".card >> nth=49")
        # submit: the file comes from the picker (no keyboard reaches an OS dialog)
        page.set_input_files("#file", files=[{"name": "typed.txt", "mimeType": "text/plain",
                                              "buffer": b"Typed from the keyboard.\n"}])
        page.focus("#file")
        assert page.evaluate("getComputedStyle(document.querySelector('#drop'))"
                             ".outlineStyle") == "solid"  # the picker shows its focus
        page.keyboard.press("Tab")  # From: English already chosen
        assert page.evaluate("document.activeElement.id") == "src-search"
        page.keyboard.press("Tab")
        page.keyboard.type("Germ")
        page.keyboard.press("Enter")
        assert page.input_value("#tgt-search") == "German (deu_Latn)"
        page.focus("#submit-button")
        page.keyboard.press("Enter")
        page.wait_for_selector(".card .name >> text=typed.txt")
        assert "Queued typed.txt" in page.inner_text("#submit-message")

        # open the failed job: Tab to its card's link, Enter
        link = page.locator(f"#name-{failed}")
        link.focus()
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#detail').open")
        page.wait_for_function("document.querySelector('#detail-state').textContent === "
                               "'FAILED'")
        assert page.evaluate("document.activeElement.closest('dialog')?.id") == "detail"
        assert page.url.endswith(f"/jobs/{failed}")
        for _ in range(40):  # Tab stays in the dialog
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.closest('dialog')?.id") == "detail"
        # retry it: Tab to Retry, Enter
        while page.evaluate("document.activeElement.id") != "act-retry":
            page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#detail-state').textContent === "
                               "'QUEUED'")
        assert Store(tmp_path / "jobs.db").job(failed).state == "QUEUED"
        # close it: Escape, and focus is back on the card's link
        page.keyboard.press("Escape")
        page.wait_for_function("!document.querySelector('#detail').open")
        assert page.evaluate("document.activeElement.id") == f"name-{failed}"
        page.wait_for_url(url + "/")  # back to the list's URL


def test_focus_and_selection_survive_a_poll_and_the_picker_announces(tmp_path):
    app, ids = fifty_jobs(tmp_path)
    store = Store(tmp_path / "jobs.db")
    target = ids[30]
    with served(app) as url, browser_page(url + "/") as (page, context, _):
        page.wait_for_selector(".card >> nth=49")
        page.locator(f".card[data-id='{ids[31]}'] .select").check()
        page.focus(f"#name-{target}")
        page.evaluate("window.scrollTo(0, 400)")
        before = page.evaluate("window.scrollY")
        rendered = page.evaluate("document.querySelector('#cards').children.length")
        # a change the next poll brings: the focused job and another one move on
        holder(tmp_path / "jobs.db", target, percent=55.0)
        store.set_job_state(ids[32], "CANCELED")
        page.wait_for_function(f"document.querySelector('[data-id=\"{target}\"]').dataset.state "
                               "=== 'RUNNING'", timeout=15_000)
        assert page.evaluate("document.activeElement.id") == f"name-{target}"
        assert page.locator(f".card[data-id='{ids[31]}'] .select").is_checked()
        assert page.inner_text("#bulk-count") == "1 selected"
        assert page.evaluate("window.scrollY") == before
        assert page.evaluate("document.querySelector('#cards').children.length") == rendered
        bar = page.locator(f".card[data-id='{target}'] .bar")
        assert bar.get_attribute("role") == "progressbar"
        assert bar.get_attribute("aria-valuenow") == "55"
        assert "preprocess 300 of 1,000 bytes" in bar.get_attribute("aria-valuetext")
        # the running job moved to the top: the attention block
        assert page.locator(".card").first.get_attribute("data-id") in (target, ids[16])

        # a job the page never saw unfinished (from the CLI, another tab) is announced
        elsewhere = post_doc(TestClient(app), "Submitted elsewhere.\n", name="elsewhere.txt")
        store.set_job_state(elsewhere.json()["id"], "SUCCEEDED")
        page.wait_for_function("document.querySelector('#toasts').textContent"
                               ".includes('elsewhere.txt: translated')", timeout=15_000)
        assert page.evaluate("document.activeElement.id") == f"name-{target}"

        # the picker: every language, the highlight announced, Tab moves on
        page.focus("#tgt-search")
        assert page.locator("#tgt-list [role=option]").count() == 202
        page.keyboard.press("ArrowDown")
        active = page.get_attribute("#tgt-search", "aria-activedescendant")
        assert active and page.get_attribute(f"#{active}", "aria-selected") == "true"
        page.fill("#tgt-search", "")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "model"
        assert page.locator("#tgt-list").is_hidden()


def test_a_job_url_opens_it_back_closes_it_and_retry_now_reaches_the_server(tmp_path):
    app, ids = fifty_jobs(tmp_path)
    waiting = ids[16]
    with served(app) as url, browser_page(f"{url}/jobs/{waiting}") as (page, context, _):
        page.wait_for_function("document.querySelector('#detail-name').textContent === "
                               "'report-16.txt'")
        assert page.locator("#detail-wait").is_visible()
        assert "retrying batch 4 in" in page.inner_text("#detail-wait-text")
        page.click("#act-wake")
        page.wait_for_function("document.querySelector('#detail .toasts')?.textContent"
                               ".includes('retrying now')")
        assert Store(tmp_path / "jobs.db").wake_requested(waiting)
        page.keyboard.press("Escape")
        page.wait_for_url(url + "/")
        # opened from the list: a history entry, and back closes it
        page.locator(f"#name-{ids[3]}").click()
        page.wait_for_function("document.querySelector('#detail').open")
        assert page.url.endswith(f"/jobs/{ids[3]}")
        page.go_back()
        page.wait_for_function("!document.querySelector('#detail').open")
        assert page.url == url + "/"
        page.go_forward()
        page.wait_for_function("document.querySelector('#detail').open")

        # the server goes away: the banner offers "retry now", which comes back at once
        page.keyboard.press("Escape")
        page.route("**/api/**", lambda route: route.abort())
        page.wait_for_selector("#offline:not([hidden])", timeout=15_000)
        page.wait_for_function("/next try in [3-9] s/.test(document.querySelector("
                               "'#offline-next').textContent)", timeout=30_000)
        page.unroute("**/api/**")
        page.click("#offline-retry")
        page.wait_for_selector("#offline", state="hidden", timeout=2_000)


def test_search_older_pages_and_bulk_cancel_from_the_page(tmp_path):
    from pipeline.config import JobParams

    app = make_app(tmp_path)
    store = Store(tmp_path / "jobs.db")
    for i in range(230):  # more than the page's 200
        params = JobParams(model="m", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                           output=str(tmp_path / f"out{i}.txt"))
        store.get_or_create_job(idem_key=f"k{i}", params=params.canonical_json(),
                                input_path=str(tmp_path / f"{'notes_' if i % 50 == 0 else 'doc'}"
                                               f"{i:03d}.txt"),
                                input_sha256=f"{i:064x}", input_bytes=10,
                                output_path=params.output)
    with served(app) as url, browser_page(url + "/") as (page, context, _):
        page.wait_for_selector(".card >> nth=199")
        assert page.locator(".card").count() == 200
        page.click("#more")
        page.wait_for_function("document.querySelectorAll('.card').length === 230")
        assert page.locator("#more").is_hidden()
        page.fill("#search", "notes_")
        page.wait_for_function("document.querySelectorAll('.card').length === 5")
        names = sorted(page.locator(".card .name").all_inner_texts())
        assert names == [f"notes_{i:03d}.txt" for i in range(0, 230, 50)]
        page.locator(".card .select").nth(0).check()
        page.locator(".card .select").nth(1).check()
        assert page.inner_text("#bulk-count") == "2 selected"
        page.click("#bulk-cancel")
        page.wait_for_function("document.querySelector('#toasts').textContent"
                               ".includes('2 job(s) canceled')")
        page.wait_for_function("[...document.querySelectorAll('.card')].filter("
                               "c => c.dataset.state === 'CANCELED').length === 2")
        assert sorted(j.state for j in store.jobs(300)).count("CANCELED") == 2
        page.fill("#search", "")
        page.wait_for_function("document.querySelectorAll('.card').length === 200")
