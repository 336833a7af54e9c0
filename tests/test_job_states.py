"""Job states that tell the truth: an interrupted job says so, a delivered
job whose output is gone can be delivered again (by retry and through the
queue), and status shows the ETA the job's own progress bar shows."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from models import HfTranslator
from pipeline import service, views
from pipeline.cli import main
from pipeline.progress.eta import JobEta
from pipeline.documents.inputs import read_input
from pipeline.progress.profiles import history_for
from pipeline.progress import Events
from pipeline.runner import run_job
from pipeline.samples import generate_text
from pipeline.store import Store
from tests.conftest import run_cli, start_cli, wait_until


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def forbid_model(monkeypatch):
    import models.hf

    def forbidden(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(models.hf.HfTranslator, "__init__", forbidden)


@pytest.mark.slow
def test_a_killed_translate_shows_as_interrupted_until_it_resumes(tmp_path, capsys,
                                                                 trained_model):
    # The trained model, at the defaults: it ends its sentences, where random
    # weights ran every line to its budget and up the repair ladder, which is
    # not what this test is about (the resumed run does the rest of the job).
    doc = tmp_path / "doc.txt"
    doc.write_text(generate_text(150, seed=8))
    db = tmp_path / "jobs.db"
    cmd = ["--db", str(db), "translate", str(doc), "--src", "eng_Latn", "--tgt", "fra_Latn",
           "--model", str(trained_model), "--batch-tokens", "128", "--no-progress"]
    proc = start_cli(*cmd, db=db, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def three_done():
        if not db.exists():
            return False
        store = Store(db)
        jobs = store.jobs(1)
        return jobs and store.chunk_counts(jobs[0].id).get("done", 0) >= 3

    wait_until(three_done, "3 translated chunks", interval=0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    code, out, _ = run(capsys, "--db", str(db), "status", "--json")
    [row] = json.loads(out)
    assert (row["state"], row["note"]) == ("INTERRUPTED", "resumes on the next run or worker")
    assert 0 < row["percent"] < 100 and row["eta_seconds"] is None
    code, out, _ = run(capsys, "--db", str(db), "status")
    assert "INTERRUPTED" in out and "resumes on the next run or worker" in out
    code, out, _ = run(capsys, "--db", str(db), "show", row["job"])
    assert out.splitlines()[0].startswith(f"job {row['job']}  INTERRUPTED  (stage: inference")
    code, out, _ = run(capsys, "--db", str(db), "show", row["job"], "--json")
    assert json.loads(out)["state"] == "INTERRUPTED"
    # the stored state is still RUNNING: the next run takes it over at once
    assert Store(db).job(row["job"]).state == "RUNNING"
    run_cli(*cmd, db=db)
    code, out, _ = run(capsys, "--db", str(db), "status", "--json")
    assert json.loads(out)[0]["state"] == "SUCCEEDED"


def translated(tmp_path, capsys, tiny_model):
    doc = tmp_path / "doc.txt"
    doc.write_text("A first sentence here.\n\nAnd a second one there.\n")
    db = tmp_path / "jobs.db"
    code, out, err = run(capsys, "--db", str(db), "translate", str(doc), "--src", "eng_Latn",
                         "--tgt", "fra_Latn", "--model", str(tiny_model), "--json")
    assert code == 0, err
    result = json.loads(out)
    return db, result["job"], tmp_path / "doc.fra_Latn.txt"


def test_retry_of_a_succeeded_job_whose_output_was_deleted_delivers_it_from_the_store(
        tmp_path, capsys, tiny_model, monkeypatch):
    db, job_id, output = translated(tmp_path, capsys, tiny_model)
    expected = output.read_bytes()
    code, out, _ = run(capsys, "--db", str(db), "retry", job_id)
    assert (code, "already succeeded and delivered; nothing to retry" in out) == (0, True)
    output.unlink()
    forbid_model(monkeypatch)  # the chunks are in the store: nothing to translate
    code, out, err = run(capsys, "--db", str(db), "retry", job_id)
    assert code == 0, err
    assert "delivered again from the store" in out
    assert output.read_bytes() == expected


def test_retry_after_gc_and_a_deleted_output_translates_again(tmp_path, capsys, tiny_model):
    db, job_id, output = translated(tmp_path, capsys, tiny_model)
    expected = output.read_bytes()
    code, out, _ = run(capsys, "--db", str(db), "gc", "--older-than", "0")
    assert "collected 1" in out
    output.unlink()
    code, out, err = run(capsys, "--db", str(db), "retry", job_id, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["state"] == "SUCCEEDED" and "translated again" in result["note"]
    assert output.read_bytes() == expected


def test_the_queue_delivers_a_collected_job_again_when_it_is_submitted_again(tmp_path, capsys,
                                                                             tiny_model):
    doc = tmp_path / "doc.txt"
    doc.write_text("Queued once.\n\nDelivered twice.\n")
    db = tmp_path / "jobs.db"
    submit = ["--db", str(db), "submit", str(doc), "--src", "eng_Latn", "--tgt", "fra_Latn",
              "--model", str(tiny_model), "--json"]
    worker = ["--db", str(db), "worker", "--idle-exit", "0", "--json"]
    code, out, _ = run(capsys, *submit)
    assert json.loads(out)[0]["created"] is True
    assert run(capsys, *worker)[0] == 0
    output = tmp_path / "doc.fra_Latn.txt"
    expected = output.read_bytes()
    # submitted again while delivered: the same job, nothing to do
    code, out, _ = run(capsys, *submit)
    assert json.loads(out)[0] | {"job": None} == {"input": str(doc), "job": None,
                                                  "state": "SUCCEEDED", "created": False,
                                                  "requeued": False}
    run(capsys, "--db", str(db), "gc", "--older-than", "0")
    output.unlink()
    code, out, _ = run(capsys, *submit)
    [row] = json.loads(out)
    assert (row["state"], row["created"], row["requeued"]) == ("QUEUED", False, True)
    code, out, _ = run(capsys, *worker)
    assert json.loads(out)["jobs"] == {"SUCCEEDED": 1}
    assert output.read_bytes() == expected


@pytest.mark.slow
def test_status_shows_the_eta_and_percent_the_progress_bar_shows(tmp_path, trained_model):
    """The bar's own JobEta and the status view of the same running job,
    compared at every committed batch of a real run, as of the moment the
    previous commit stored the job's progress (the engine runs the next
    batch meanwhile, so "now" differs between any two readers). On the
    trained model: random weights ran every line to its budget, which the
    comparison does not need."""
    doc = tmp_path / "doc.txt"
    doc.write_text(generate_text(40, seed=4))
    store = Store(tmp_path / "jobs.db")
    # --quality off: a chunk that fails a check is replaced by the repair
    # ladder's pieces, and until they commit nothing is done, so there is no
    # rate to compare.
    options = service.JobOptions(src="eng_Latn", tgt="fra_Latn", model=str(trained_model),
                                 quality="off")
    submitted = service.submit(store, read_input(doc), options)
    inner = HfTranslator(str(trained_model))
    bar = {}
    seen = []
    frozen: list[float] = []

    def clock() -> float:
        return frozen[-1] if frozen else time.time()

    class Bar(Events):
        def __init__(self):
            self.eta = JobEta(history_for(store, inner, str(trained_model)), clock)

        def stage_started(self, stage, total, done=0.0):
            self.eta.stage_started(stage, total, done)

        def stage_progress(self, stage, done):
            if stage == "inference":
                self.compare()  # before this commit: as the last one left both
            self.eta.stage_progress(stage, done)

        def stage_finished(self, stage):
            self.eta.stage_finished(stage)

        def compare(self):
            reader = Store(tmp_path / "jobs.db")
            job = reader.job(submitted.job.id)
            at = json.loads(job.progress)["at"]
            view = views.job_view(reader, job, at)
            frozen.append(at)
            seen.append((view["state"], view["percent"], view["eta_seconds"],
                         round(100 * self.eta.fraction, 1), self.eta.seconds_left()))
            frozen.pop()
            reader.close()

    class Watching:
        """The real translator."""

        def __getattr__(self, name):
            return getattr(inner, name)

    bar["bar"] = Bar()
    from pipeline.config import RunSettings

    final = run_job(store, submitted.job.id, Watching(), events=bar["bar"],
                    settings=RunSettings(batch_tokens=256))
    assert final.state == "SUCCEEDED"
    assert len(seen) >= 4
    assert {s[0] for s in seen} == {"RUNNING"}
    later = [s for s in seen[1:]]  # after the first batch both have observed a rate
    assert all(s[2] is not None and s[4] is not None for s in later)
    for state, percent, eta, bar_percent, bar_eta in later:
        assert abs(percent - bar_percent) <= 0.15  # both rounded to 0.1
        assert abs(eta - bar_eta) <= 0.5
