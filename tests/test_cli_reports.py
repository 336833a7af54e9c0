"""What the live log, ``logs``, ``show`` and ``stats`` report agrees (issue 9):
one name per batch everywhere, nothing logged twice, and chunks the model
returned empty are on record, not only in a log line."""

from __future__ import annotations

import json
import logging
import re
from types import SimpleNamespace as Row

from pipeline.batching import batch_labels
from pipeline.cli import main
from pipeline.config import JobParams, RunSettings
from pipeline.documents.inputs import read_input
from pipeline.jobs import submit
from pipeline.runner import run_job
from pipeline.store import Store
from tests.fakes import NO_WAITS, FakeTranslator

SENTENCES = [f"Sentence number {w} is here." for w in (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")]
POISON = "This sentence always breaks the device."


def test_batch_labels_count_from_one_and_name_split_parts_after_their_parent():
    batches = [Row(id=1, seq=0, parent_id=None), Row(id=2, seq=1, parent_id=None),
               Row(id=3, seq=1, parent_id=2), Row(id=4, seq=1, parent_id=2),
               Row(id=5, seq=1, parent_id=3), Row(id=6, seq=1, parent_id=3),
               Row(id=7, seq=2, parent_id=None)]
    assert batch_labels(batches) == {1: "1", 2: "2", 3: "2.1", 4: "2.2", 5: "2.1.1",
                                     6: "2.1.2", 7: "3"}


def _job(tmp_path, text: str):
    src = tmp_path / "doc.txt"
    src.write_text(text)
    params = JobParams(model="fake", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                       output=str(tmp_path / "out.txt"))
    store = Store(tmp_path / "jobs.db")
    job, _ = submit(store, params, read_input(src))
    return store, job


def _cli(capsys, *argv) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_the_live_log_logs_and_show_name_each_batch_alike_and_say_it_once(tmp_path, capsys,
                                                                          caplog):
    # one paragraph, so every chunk plans into one batch that the OOMs split twice
    store, job = _job(tmp_path, " ".join(SENTENCES[:7] + [POISON]) + "\n")
    translator = FakeTranslator(oom_above=2, fail={POISON})
    with caplog.at_level(logging.WARNING, logger="nllb_pipeline"):
        final = run_job(store, job.id, translator, settings=RunSettings(batch_tokens=4096),
                        policy=NO_WAITS, sleep=lambda s: None)
    assert final.state == "FAILED"  # the poisoned chunk failed for good
    db = str(tmp_path / "jobs.db")

    live = {}  # trace id -> the batch the live log named
    for record in caplog.records:
        message = record.getMessage()
        found = re.match(r"\[(\w{8})\] (?:chunk \d+ of )?batch ([\d.]+) failed", message)
        if found:
            assert found.group(1) not in live, f"logged twice: {message}"
            live[found.group(1)] = found.group(2)
    assert any("." in name for name in live.values())  # split parts were named
    assert not any("ran out of memory" in r.getMessage() for r in caplog.records)  # said once

    logs = json.loads(_cli(capsys, "--db", db, "logs", job.id, "--json"))
    logged = {e["trace_id"]: e["batch"] for e in logs if e["trace_id"] in live}
    assert logged == live  # every attempt the live log named, `logs --json` names alike
    text = _cli(capsys, "--db", db, "logs", job.id)
    for trace_id, name in live.items():
        assert re.search(rf"\[{trace_id}\] inference batch {re.escape(name)}[ :]", text), name
    assert not re.search(r"batch \d{3,}", text)  # no row ids

    shown = json.loads(_cli(capsys, "--db", db, "show", job.id, "--json"))
    [failed] = shown["failed_chunks"]
    poison_lines = [m for m in caplog.messages if f"chunk {failed['chunk']} of batch" in m]
    assert poison_lines and all(f"of batch {failed['batch']} failed" in m for m in poison_lines)
    assert f"failed chunk {failed['chunk']} (batch {failed['batch']}, " in _cli(
        capsys, "--db", db, "show", job.id)


def test_chunks_that_came_back_empty_are_in_show_and_stats(tmp_path, capsys):
    text = "\n\n".join(SENTENCES[:4]) + "\n"
    store, job = _job(tmp_path, text)
    final = run_job(store, job.id, FakeTranslator(empty={SENTENCES[1], SENTENCES[3]}),
                    policy=NO_WAITS, sleep=lambda s: None)
    assert final.state == "SUCCEEDED"
    empty = [c.idx for c in store.chunks(job.id) if c.source in (SENTENCES[1], SENTENCES[3])]
    db = str(tmp_path / "jobs.db")

    shown = json.loads(_cli(capsys, "--db", db, "show", job.id, "--json"))
    assert shown["empty_chunks"] == empty
    assert (f"  empty:  2 chunk(s) came back empty from the model and kept their source text: "
            f"chunks {empty[0]}, {empty[1]}") in _cli(capsys, "--db", db, "show", job.id)
    stats = json.loads(_cli(capsys, "--db", db, "stats", "--json"))
    assert stats["empty_chunks"] == {"chunks": 2, "jobs": 1}
    assert "empty chunks        2 in 1 job(s)" in _cli(capsys, "--db", db, "stats")
    # the output kept the source text where the model gave nothing
    assert SENTENCES[1] in (tmp_path / "out.txt").read_text()


def test_an_interrupted_stage_run_shows_where_the_next_run_took_over(tmp_path):
    from pipeline import views

    store, job = _job(tmp_path, "One sentence.\n")
    first = store.start_stage(job.id, "preprocess", units_total=900)
    store.start_stage(job.id, "preprocess", units_total=900, units_done=400)  # resumed there
    runs = views.stage_runs(store, store.job(job.id), 0.0)
    assert [(r["state"], r["units_done"]) for r in runs][0] == ("interrupted", 400)
    assert runs[0]["wall_s"] is None and runs[0]["stage"] == "preprocess" and first
