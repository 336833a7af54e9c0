"""cancel: a queued job at once, a running one after its current batch."""

from __future__ import annotations

import json

from models import HfTranslator
from pipeline.cli import main
from pipeline.config import RunSettings
from pipeline.progress import Events
from pipeline.runner import run_job
from pipeline.samples import generate_text
from pipeline.store import Store
from tests.test_retries import make_job


def test_cancel_a_queued_job_then_retry_continues_it(tmp_path, tiny_model, capsys):
    doc = tmp_path / "doc.txt"
    doc.write_text("Queued, canceled, then retried.\n")
    db = str(tmp_path / "jobs.db")
    assert main(["--db", db, "submit", str(doc), "--src", "eng_Latn", "--tgt", "fra_Latn",
                 "--model", str(tiny_model), "--beams", "1", "--json"]) == 0
    job = json.loads(capsys.readouterr().out)[0]["job"]
    assert main(["--db", db, "cancel", job, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "canceled"
    assert Store(db).job(job).state == "CANCELED"
    assert main(["--db", db, "cancel", job]) == 0
    assert "already CANCELED" in capsys.readouterr().out
    assert main(["--db", db, "retry", job, "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "SUCCEEDED"


class CancelAfterFirstBatch(Events):
    """What another process's 'cancel' does while this one translates."""

    def __init__(self, db, job_id):
        self.db, self.job_id, self.outcome = db, job_id, None

    def stage_progress(self, stage, done):
        if stage == "inference" and self.outcome is None:
            self.outcome = Store(self.db).request_cancel(self.job_id)


def test_cancel_a_running_job_stops_after_its_batch_keeps_results_and_retry_finishes(
        tmp_path, tiny_model):
    store, job, params = make_job(tmp_path, tiny_model, generate_text(60, seed=41))
    observer = CancelAfterFirstBatch(store.path, job.id)
    final = run_job(store, job.id, HfTranslator(str(tiny_model)),
                    settings=RunSettings(batch_tokens=200), events=observer)
    assert observer.outcome == "requested"
    assert final.state == "CANCELED" and final.lease_owner is None
    counts = store.chunk_counts(job.id)
    assert counts.get("done", 0) > 0 and counts.get("pending", 0) > 0  # partial results kept
    committed = sum(b.state == "committed" for b in store.batches(job.id))
    assert committed == 1  # it stopped right after the batch during which it was canceled

    final = run_job(store, job.id, HfTranslator(str(tiny_model)),
                    settings=RunSettings(batch_tokens=200))
    assert final.state == "SUCCEEDED"
    assert all(c.commits == 1 for c in store.chunks(job.id) if c.batch_id is not None)
