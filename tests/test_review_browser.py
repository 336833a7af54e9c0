"""The review loop end to end in headless Chromium (issue 23): over a real
``serve`` and a real worker on the trained test model, a reader opens a
delivered job, marks a chunk wrong, types a correction, downloads the
output delivered again, and a new document with the sentence reuses it.
Skipped, saying why, without Playwright or Chromium (tests/test_browser.py)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import cli_env, wait_until
from tests.test_browser import CHROMIUM_ARGS, artifacts, card, chromium, worker
from tests.test_serve import start_serve, stop

# One Chromium at a time: under pytest-xdist the browser files share one worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("chromium")]

BAD = "The horse walks along the road in winter."
DOC = f"The river runs past the old stone bridge. {BAD}\n\nMorning light falls on the garden.\n"
CORRECTION = "Zorvath kel imbra tavos ren winterra."
XHR = {"X-Requested-With": "test"}


def post(url: str, name: str, text: str) -> str:
    answer = httpx.post(f"{url}/api/jobs", headers=XHR, data={"src": "eng_Latn",
                                                              "tgt": "fra_Latn"},
                        files={"file": (name, text.encode(), "text/plain")})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def succeeded(url: str, job: str) -> bool:
    return httpx.get(f"{url}/api/jobs/{job}").json()["state"] == "SUCCEEDED"


def test_mark_correct_download_and_reuse_in_a_real_browser(tmp_path, trained_model):
    executable = chromium()
    from playwright.sync_api import expect, sync_playwright

    db = tmp_path / "jobs.db"
    env = {**cli_env(db), "NLLB_PIPELINE_MODEL": str(trained_model)}
    serve, url = start_serve(db, "--workers", "0", env=env)
    running = worker(db, env)
    try:
        job = post(url, "story.txt", DOC)
        wait_until(lambda: succeeded(url, job), "the job to succeed", timeout=120)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1360, "height": 900},
                                          accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(15_000)
            problems = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(url + "/")
            card(page, "story.txt").click()
            expect(page.locator("#review-toggle")).to_be_visible()
            page.click("#review-toggle")
            expect(page.locator("#review-summary")).to_contain_text("3 chunks")
            row = page.locator(".review-row", has=page.locator(".source", has_text=BAD))
            expect(row.locator(".translation")).not_to_be_empty()

            # Escape closes a correction being typed, not the panel.
            row.locator("button.mark").click()
            page.keyboard.press("Escape")
            expect(page.locator("#detail")).to_be_visible()
            expect(row.locator("form")).to_have_count(0)

            row.locator("button.mark").click()
            row.locator("input").fill(CORRECTION)
            row.locator("input").press("Enter")
            expect(page.locator(".toast", has_text="corrected")).to_be_visible()  # in the open dialog
            expect(row.locator(".translation")).to_have_text(CORRECTION)
            expect(row.locator(".badge.reviewed")).to_have_text("corrected")
            page.screenshot(path=str(artifacts() / "review.png"), full_page=True)

            # The worker renders and delivers the output again; download it.
            wait_until(lambda: succeeded(url, job) and CORRECTION in httpx.get(
                f"{url}/api/jobs/{job}/output").text, "the output to be delivered again")
            expect(page.locator("#detail-state")).to_have_text("SUCCEEDED", timeout=30_000)
            expect(page.locator("#act-download")).to_be_enabled()
            with page.expect_download() as download:
                page.click("#act-download")
            assert CORRECTION in download.value.path().read_text()

            # The same sentence in a new document comes from the memory.
            again = post(url, "story-2.txt", DOC + "\nThe ocean is far from the mountain.\n")
            wait_until(lambda: succeeded(url, again), "the new job to succeed", timeout=120)
            page.click("#detail-close")
            card(page, "story-2.txt").click()
            page.click("#review-toggle")
            reused = page.locator(".review-row", has=page.locator(".source", has_text=BAD))
            expect(reused.locator(".translation")).to_have_text(CORRECTION)
            expect(reused).to_contain_text("from the memory")
            assert problems == []
            browser.close()
    finally:
        running.terminate()
        running.wait(timeout=60)
        code, err = stop(serve)
    assert code == 0, err
