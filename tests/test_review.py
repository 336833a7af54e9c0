"""The review loop through the API (issue 23, part 4): list a job's chunks
source beside translation, flagged first; mark one wrong with a correction;
the output is delivered again with it, the memory keeps it as a human
translation (TMX says so), a new document with the sentence reuses it, and
stats and /metrics count marks and corrections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from pipeline.cli import main
from pipeline.store import Store
from tests.api_support import XHR, make_app, run_queue
from tests.test_metrics import scrape, value

BAD = "The horse walks along the road in winter."
DOC = (f"The river runs past the old stone bridge. {BAD}\n\n"
       "See https://example.org/map for the way. Morning light falls on the garden.\n\n"
       f"{BAD}\n")
CORRECTION = "Zorvath kel imbra tavos ren winterra."


def submit(client, text: str, name: str) -> str:
    answer = client.post("/api/jobs", files={"file": (name, text.encode(), "text/plain")},
                         data={"src": "eng_Latn", "tgt": "fra_Latn"}, headers=XHR)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["id"]


def chunks_of(client, job: str, **query) -> dict:
    answer = client.get(f"/api/jobs/{job}/chunks", params=query)
    assert answer.status_code == 200, answer.text
    return answer.json()


def review(client, job: str, idx: int, body: dict | None = None, raw: bytes | None = None):
    return client.post(f"/api/jobs/{job}/chunks/{idx}/review", headers=XHR,
                       content=raw if raw is not None else json.dumps(body or {}).encode())


@pytest.fixture
def delivered(tmp_path, trained_model):
    """A job of DOC, run to SUCCEEDED, and its client."""
    client = TestClient(make_app(tmp_path, trained_model))
    job = submit(client, DOC, "story.txt")
    assert client.post(f"/api/jobs/{job}/review", headers=XHR).status_code == 404  # not a route
    assert run_queue(tmp_path / "jobs.db") == {"SUCCEEDED": 1}
    return client, job


def test_a_correction_is_delivered_again_kept_as_human_and_reused(delivered, tmp_path,
                                                                   capsys, trained_model):
    client, job = delivered
    page = chunks_of(client, job)
    assert page["total"] == len(page["chunks"]) == 5 and page["offset"] == 0
    flagged = [c for c in page["chunks"] if c["flag"]]
    assert page["chunks"][:len(flagged)] == flagged  # flagged first
    rest = page["chunks"][len(flagged):]
    assert [c["idx"] for c in rest] == sorted(c["idx"] for c in rest)
    by_source = {c["source"]: c for c in page["chunks"]}
    bad = by_source[BAD]
    assert bad["translation"] and bad["review"] is None
    assert "See [1] for the way." in by_source  # placeholders as the model saw them

    answer = review(client, job, bad["idx"], {"correction": f"  {CORRECTION} "})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["redelivery"] == "queued" and body["memory"] is True
    assert body["chunk"]["translation"] == CORRECTION and body["chunk"]["flag"] is None
    assert body["chunk"]["review"]["was"] == bad["translation"]
    assert body["job"]["state"] == "QUEUED"
    # Its repeat later in the document takes the correction too.
    repeats = [c for c in chunks_of(client, job)["chunks"] if c["source"] == BAD]
    assert len(repeats) == 2 and {c["translation"] for c in repeats} == {CORRECTION}

    assert run_queue(tmp_path / "jobs.db") == {"SUCCEEDED": 1}
    output = client.get(f"/api/jobs/{job}/output").text
    assert output.count(CORRECTION) == 2
    detail = client.get(f"/api/jobs/{job}").json()
    assert Path(detail["delivery"]["target"]).read_text() == output  # delivered again

    store = Store(tmp_path / "jobs.db")
    [unit] = [u for u in store.memory_entries() if u.source == BAD]
    assert (unit.translation, unit.origin) == (CORRECTION, "human")
    tmx = tmp_path / "memory.tmx"
    assert main(["--db", str(tmp_path / "jobs.db"), "tm", "export", str(tmx)]) == 0
    text = tmx.read_text()
    unit_xml = next(u for u in text.split("</tu>") if CORRECTION in u)
    assert '<prop type="x-nllb-origin">human</prop>' in unit_xml
    other = tmp_path / "other.db"  # and imported elsewhere, it stays a human translation
    assert main(["--db", str(other), "tm", "import", str(tmx), "--model", str(trained_model),
                 "--src", "eng_Latn", "--tgt", "fra_Latn"]) == 0
    assert [u.origin for u in Store(other).memory_entries() if u.source == BAD] == ["human"]

    # A new document with the sentence: the memory gives the correction.
    again = submit(client, DOC + "\nThe ocean is far from the mountain.\n", "story-2.txt")
    assert run_queue(tmp_path / "jobs.db") == {"SUCCEEDED": 1}
    reused = [c for c in chunks_of(client, again)["chunks"] if c["source"] == BAD]
    assert reused[0]["reused"] == "memory" and reused[0]["translation"] == CORRECTION
    assert CORRECTION in client.get(f"/api/jobs/{again}/output").text

    # Marked without a correction: counted, nothing delivered again.
    other = by_source["The river runs past the old stone bridge."]
    marked = review(client, again, other["idx"] + 0, {})
    assert marked.status_code == 200 and marked.json()["redelivery"] is None
    assert marked.json()["chunk"]["review"]["correction"] is None
    samples = scrape(client)
    assert value(samples, "nllb_review_marks_total", kind="corrected") == 1
    assert value(samples, "nllb_review_marks_total", kind="marked") == 1
    capsys.readouterr()
    assert main(["--db", str(tmp_path / "jobs.db"), "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reviews"] == {"marked": 2, "corrected": 1,
                                                              "jobs": 2}


def test_bad_reviews_are_refused_with_what_is_wrong(delivered, tmp_path):
    client, job = delivered
    chunks = {c["source"]: c for c in chunks_of(client, job)["chunks"]}
    link = chunks["See [1] for the way."]["idx"]
    refused = [
        (review(client, job, link, {"correction": "Voir la carte."}), 400, "placeholders [1]"),
        (review(client, job, link, {"correction": "Voir [1] et [1]."}), 400, "placeholders"),
        (review(client, job, link, {"correction": "   "}), 400, "correction is empty"),
        (review(client, job, link, {"correction": "two\nlines [1]"}), 400, "one line"),
        (review(client, job, link, {"correction": 7}), 400, "must be a string"),
        (review(client, job, link, {"fix": "x"}), 400, "the body is"),
        (review(client, job, link, raw=b"{nope"), 400, "must be JSON"),
        (review(client, job, 999, {}), 404, "has no chunk 999"),
        (review(client, job, "x", {}), 400, "the chunk number must be an integer"),
        (review(client, "nope", 0, {}), 404, "no job 'nope'"),
        (client.get(f"/api/jobs/{job}/chunks", params={"limit": "0"}), 400, "limit must be"),
        (client.get(f"/api/jobs/{job}/chunks", params={"offset": "x"}), 400, "offset must be"),
        (client.post(f"/api/jobs/{job}/chunks/{link}/review", json={}), 403, "X-Requested-With"),
    ]
    for answer, status, said in refused:
        assert answer.status_code == status and said in answer.json()["error"]["message"], (
            said, answer.status_code, answer.text)
    assert Store(tmp_path / "jobs.db").review_counts(0.0)["marked"] == 0  # nothing written
    ok = review(client, job, link, {"correction": "Voir [1] pour le chemin."})
    assert ok.status_code == 200, ok.text
    # Queued again now: no review until it has been delivered.
    busy = review(client, job, link, {})
    assert busy.status_code == 409 and "is QUEUED" in busy.json()["error"]["message"]
    assert run_queue(tmp_path / "jobs.db") == {"SUCCEEDED": 1}
    assert "https://example.org/map" in client.get(f"/api/jobs/{job}/output").text


def test_pages_list_flagged_chunks_first_then_the_rest_in_order(delivered):
    client, job = delivered
    whole = chunks_of(client, job, limit=200)["chunks"]
    paged = []
    for offset in range(0, len(whole), 2):
        paged += chunks_of(client, job, offset=offset, limit=2)["chunks"]
    assert [c["idx"] for c in paged] == [c["idx"] for c in whole]


def test_the_command_line_has_the_same_verbs(delivered, tmp_path, capsys):
    client, job = delivered
    db = str(tmp_path / "jobs.db")
    capsys.readouterr()
    assert main(["--db", db, "review", job[:6], "--json"]) == 0
    page = json.loads(capsys.readouterr().out)
    assert page == chunks_of(client, job)
    bad = next(c for c in page["chunks"] if c["source"] == BAD)
    assert main(["--db", db, "review", job, "--chunk", str(bad["idx"]), "--correct",
                 CORRECTION]) == 0
    assert capsys.readouterr().out == (f"chunk {bad['idx']} of job {job} marked wrong, "
                                       "corrected; delivered again by the next worker\n")
    assert main(["--db", db, "review", job]) == 0
    listed = capsys.readouterr().out
    assert f"-> {CORRECTION!r}" in listed and "[corrected]" in listed
    for argv, said in ((["--chunk", "1"], "--chunk needs --wrong or --correct TEXT"),
                       (["--wrong"], "--wrong and --correct need --chunk IDX"),
                       (["--chunk", "1", "--wrong"], "is QUEUED")):
        assert main(["--db", db, "review", job, *argv]) == 2
        assert said in capsys.readouterr().err
