"""submit: fast, idempotent queueing of documents (part of the batch-jobs issue)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from pipeline.cli import main
from tests.conftest import ROOT, cli_env, start_cli


def _submit_args(path, model, *extra):
    return ["submit", str(path), "--src", "eng_Latn", "--tgt", "fra_Latn", "--model", str(model),
            "--beams", "1", "--length-ratio", "0.5", "--length-offset", "4", "--json", *extra]


def test_eight_concurrent_submits_of_the_same_document_create_one_job(tmp_path, tiny_model):
    doc = tmp_path / "doc.txt"
    doc.write_text("The same document, submitted eight times at once.\n")
    db = tmp_path / "jobs.db"
    procs = [start_cli(*_submit_args(doc, tiny_model), db=db, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    results = [json.loads(out)[0] for out, _ in outs]
    assert len({r["job"] for r in results}) == 1
    assert sum(r["created"] for r in results) == 1
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM jobs").fetchone() == (1,)


def test_submit_does_not_import_torch(tmp_path, tiny_model):
    doc = tmp_path / "doc.txt"
    doc.write_text("Words to queue.\n")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline",
                           *_submit_args(doc, tiny_model)], env=cli_env(tmp_path / "j.db"),
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "torch" not in imported and "transformers" not in imported


def test_a_caller_key_reused_with_other_parameters_is_refused_and_nothing_written(
        tmp_path, tiny_model, capsys):
    doc = tmp_path / "doc.txt"
    doc.write_text("A document with a caller's key.\n")
    db = str(tmp_path / "jobs.db")
    assert main(["--db", db, *_submit_args(doc, tiny_model, "--idempotency-key", "order-42")]) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert main(["--db", db, *_submit_args(doc, tiny_model, "--idempotency-key", "order-42")]) == 0
    again = json.loads(capsys.readouterr().out)[0]
    assert (again["job"], again["created"]) == (first["job"], False)

    before = sqlite3.connect(db).execute("SELECT * FROM jobs").fetchall()
    code = main(["--db", db, "submit", str(doc), "--src", "eng_Latn", "--tgt", "deu_Latn",
                 "--model", str(tiny_model), "--idempotency-key", "order-42"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert f"idempotency key 'order-42' was used for job {first['job']}" in err[0]
    doc.write_text("Different input under the same key.\n")
    assert main(["--db", db, *_submit_args(doc, tiny_model, "--idempotency-key", "order-42")]) == 2
    capsys.readouterr()
    assert sqlite3.connect(db).execute("SELECT * FROM jobs").fetchall() == before


def test_a_directory_with_bad_files_queues_the_good_ones_and_names_the_bad(tmp_path, tiny_model,
                                                                          capsys):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Title\n\nSome text.\n")
    (docs / "sub" / "b.md").write_text("More text here.\n")
    (docs / "skip.txt").write_text("Not matched by the glob.\n")
    (docs / "bin.md").write_bytes(b"\x00\x01\x02")
    (docs / "latin1.md").write_bytes("Caf\xe9.".encode("latin-1"))
    (docs / "empty.md").write_bytes(b"")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    db = str(tmp_path / "jobs.db")
    code = main(["--db", db, *_submit_args(docs, tiny_model, "--glob", "*.md", "-o",
                                           str(out_dir))])
    results = json.loads(capsys.readouterr().out)
    assert code == 2  # bad input (README, "Exit codes"); the good files are queued all the same
    queued = sorted(r["input"] for r in results if "job" in r)
    assert queued == [str(docs / "a.md"), str(docs / "sub" / "b.md")]
    errors = {r["input"].rsplit("/", 1)[-1]: r["error"] for r in results if "error" in r}
    assert set(errors) == {"bin.md", "latin1.md", "empty.md"}
    assert "binary" in errors["bin.md"] and "UTF-8" in errors["latin1.md"]
    assert "empty" in errors["empty.md"]
    # the queued jobs deliver into out/, keeping their path below the directory
    from pipeline.store import Store

    outputs = sorted(j.output_path for j in Store(db).jobs())
    assert outputs == [str(out_dir / "a.fra_Latn.md"), str(out_dir / "sub" / "b.fra_Latn.md")]


def test_a_submitted_job_runs_with_retry(tmp_path, tiny_model, capsys):
    doc = tmp_path / "doc.txt"
    doc.write_text("Queued now, translated later.\n")
    db = str(tmp_path / "jobs.db")
    assert main(["--db", db, *_submit_args(doc, tiny_model)]) == 0
    job = json.loads(capsys.readouterr().out)[0]["job"]
    assert main(["--db", db, "retry", job, "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "SUCCEEDED"
    assert (tmp_path / "doc.fra_Latn.txt").exists()


def test_gc_keeps_jobs_and_stats_drops_chunks_and_a_rerun_still_works(tmp_path, tiny_model,
                                                                       capsys):
    from pipeline.store import Store

    doc = tmp_path / "doc.txt"
    doc.write_text("Translated, collected, and still known.\n")
    db = str(tmp_path / "jobs.db")
    args = ["--db", db, "translate", str(doc), "--src", "eng_Latn", "--tgt", "fra_Latn",
            "--model", str(tiny_model), "--beams", "1", "--json"]
    assert main(args) == 0
    job = json.loads(capsys.readouterr().out)["job"]
    assert main(["--db", db, "gc", "--older-than", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"collected_jobs": 0}  # too recent
    assert main(["--db", db, "gc", "--older-than", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"collected_jobs": 1}
    store = Store(db)
    assert store.chunks(job) == [] and store.artifact(job, "output") is None
    assert store.job(job).state == "SUCCEEDED" and len(store.stage_runs(job)) == 4
    assert main(args) == 0  # output still there: nothing to do
    assert json.loads(capsys.readouterr().out)["note"] == "already translated; nothing to do"
    (tmp_path / "doc.fra_Latn.txt").unlink()
    assert main(args) == 0  # output gone and collected: translated again
    assert json.loads(capsys.readouterr().out)["state"] == "SUCCEEDED"
    assert (tmp_path / "doc.fra_Latn.txt").exists()


def test_status_summarises_the_queue(tmp_path, tiny_model, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"d{i}.txt").write_text(f"Document number {i} in the queue.\n")
    db = str(tmp_path / "jobs.db")
    assert main(["--db", db, *_submit_args(docs, tiny_model)]) == 0
    capsys.readouterr()
    assert main(["--db", db, "status"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "documents 0/3 done; queued 3; running on: none"
