"""``--log-format json`` (issue 23, part 3): one object a line with time,
level, job, batch label, trace id, error class, decision and message, from
``translate``, ``worker`` and ``serve``; the text format is unchanged."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from pipeline.cli import main
from pipeline.store import Store
from tests.conftest import start_cli

KEYS = ["time", "level", "logger", "job", "batch", "trace_id", "error_class", "decision",
        "message"]
DOC = ("The river runs past the old stone bridge. A letter waits on the table.\n\n"
       "Morning light falls on the garden. The city sleeps under the winter moon.\n")


# The CLI installs its handlers on the root logger; each test gets it back as it was.
pytestmark = pytest.mark.usefixtures("restore_root_logging")


def records(err: str) -> list[dict]:
    out = [json.loads(line) for line in err.splitlines()]
    for r in out:
        assert list(r)[:len(KEYS)] == KEYS, r  # every key, in one order
    return out


def test_a_failed_attempt_logs_its_job_batch_trace_class_and_decision(tmp_path, capsys,
                                                                        trained_model):
    doc = tmp_path / "doc.txt"
    doc.write_text(DOC)
    db = tmp_path / "jobs.db"
    code = main(["--db", str(db), "--log-format", "json", "translate", str(doc), "--src",
                 "eng_Latn", "--tgt", "fra_Latn", "--model", str(trained_model), "--threads", "1",
                 "--inject-faults", "transient=0.5,seed=1", "--retry", "base=0", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    job = json.loads(out)["job"]
    lines = records(err)
    failed = [r for r in lines if r["decision"] is not None]
    attempts = Store(db).attempts(job)
    assert failed and len(failed) == len(attempts)
    for r, a in zip(failed, attempts):
        assert (r["level"], r["job"], r["trace_id"], r["error_class"], r["decision"]) == (
            "warning", job, a.trace_id, a.error_class, a.decision)
        assert r["batch"] and r["message"].startswith(f"[{a.trace_id}] ")
    # Lines about no failure say which job they are about, and null for the rest.
    fault_note = next(r for r in lines if r["message"].startswith("fault injection is ON"))
    assert fault_note["batch"] is None and fault_note["decision"] is None


def test_text_stays_one_readable_format(tmp_path, capsys, trained_model):
    doc = tmp_path / "doc.txt"
    doc.write_text(DOC)
    code = main(["--db", str(tmp_path / "jobs.db"), "translate", str(doc), "--src", "eng_Latn",
                 "--tgt", "fra_Latn", "--model", str(trained_model), "--threads", "1",
                 "--no-progress", "--inject-faults", "transient=0.5,seed=1", "--retry", "base=0"])
    err = capsys.readouterr().err.splitlines()
    assert code == 0
    warnings = [line for line in err if " failed: device_transient" in line]
    assert warnings and all(line.startswith("nllb-pipeline: warning: [") for line in warnings)
    assert not any(line.startswith("{") for line in err)


def test_a_worker_says_which_job_each_record_is_about(tmp_path, capsys, trained_model):
    db = tmp_path / "jobs.db"
    doc = tmp_path / "doc.txt"
    doc.write_text(DOC)
    assert main(["--db", str(db), "submit", str(doc), "--src", "eng_Latn", "--tgt", "fra_Latn",
                 "--model", str(trained_model), "--json"]) == 0
    job = json.loads(capsys.readouterr().out)[0]["job"]
    assert main(["--db", str(db), "--log-format", "json", "worker", "--max-jobs", "1",
                 "--threads", "1", "--no-progress"]) == 0
    lines = records(capsys.readouterr().err)
    started = next(r for r in lines if "started" in r["message"])
    ended = next(r for r in lines if "ended SUCCEEDED" in r["message"])
    assert started["job"] == ended["job"] == job and started["level"] == "note"


@pytest.mark.slow
def test_serve_logs_its_requests_as_json_with_v(tmp_path):
    db = tmp_path / "jobs.db"
    proc = start_cli("--db", str(db), "--log-format", "json", "-v", "serve", "--port", "0",
                     "--workers", "0", db=db, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("nllb-pipeline: serving http://"), line
        url = line.split()[2].rstrip("/")
        assert httpx.get(f"{url}/api/jobs").status_code == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    lines = records(err)
    access = [r for r in lines if r["logger"] == "uvicorn.access"]
    assert access and "GET /api/jobs" in access[0]["message"], err
    assert all(r["job"] is None for r in access)
