"""What a worker shows while it runs (issue 20): a line when each job starts
and ends, the job's bar on a terminal (lines in a file), and a compact line
per job when it runs several at once."""

from __future__ import annotations

import functools
import logging
import re
import sys

from pipeline.cli import main
from pipeline.cli.progress_bar import LineProgress, TqdmProgress, progress_bar
from pipeline.config import JobParams
from pipeline.documents.inputs import read_input
from pipeline.jobs import submit
from pipeline.store import Store
from pipeline.worker import run_worker
from tests.fakes import NO_WAITS, FakeTranslator

PARAMS = ["--src", "eng_Latn", "--tgt", "fra_Latn", "--beams", "1", "--length-ratio", "0.5",
          "--length-offset", "4", "--quality", "off"]


def _queue_two(capsys, tmp_path, model) -> tuple[str, list[str]]:
    db = str(tmp_path / "jobs.db")
    for name in ("a", "b"):
        (tmp_path / f"{name}.txt").write_text(f"Document {name} has one sentence.\n")
        assert main(["--db", db, "submit", str(tmp_path / f"{name}.txt"), *PARAMS, "--model",
                     str(model)]) == 0
    ids = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    return db, ids


def _fake_job(store: Store, tmp_path, name: str, text: str):
    """A job for the stand-in translator over ``tmp_path/NAME.txt``, holding ``text``."""
    src = tmp_path / f"{name}.txt"
    src.write_text(text)
    params = JobParams(model="fake", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                       output=str(tmp_path / f"{name}.out"))
    return submit(store, params, read_input(src))[0]


def _notes(err: str, job_id: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(f"nllb-pipeline: job {job_id} ")]


def test_a_worker_on_a_terminal_says_when_each_job_starts_and_ends_and_draws_its_bar(
        capsys, monkeypatch, tmp_path, tiny_model):
    db, ids = _queue_two(capsys, tmp_path, tiny_model)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code = main(["--db", db, "worker", "--max-jobs", "2", "--threads", "1"])
    out, err = capsys.readouterr()
    assert (code, out) == (0, "worker done: 2 SUCCEEDED\n")
    lines = err.replace("\r", "\n").splitlines()
    for job_id, name in zip(ids, ("a", "b")):
        started, ended = _notes(err, job_id)
        assert started == (f"nllb-pipeline: job {job_id} started: {tmp_path / (name + '.txt')} "
                           "(eng_Latn -> fra_Latn)")
        assert re.fullmatch(rf"nllb-pipeline: job {job_id} ended SUCCEEDED in \d+\.\d s -> "
                            rf"{re.escape(str(tmp_path / (name + '.fra_Latn.txt')))}", ended)
        # between them, the job's bar (tqdm's frames, redrawn with \r)
        first, last = lines.index(started), lines.index(ended)
        frames = [line for line in lines[first:last] if "%|" in line]
        assert any(f.startswith("inference") for f in frames), lines[first:last]
        assert any(f.startswith("upload") and " 100%|" in f for f in frames), lines[first:last]


def test_a_worker_writing_to_a_file_gives_whole_lines(capsys, tmp_path, tiny_model):
    db, ids = _queue_two(capsys, tmp_path, tiny_model)
    assert main(["--db", db, "worker", "--max-jobs", "2", "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    for job_id in ids:
        assert [n.split()[3] for n in _notes(err, job_id)] == ["started:", "ended"]
    assert sum(line.startswith("nllb-pipeline: progress ") for line in err.splitlines()) >= 8


def test_no_progress_keeps_the_start_and_end_lines(capsys, tmp_path, tiny_model):
    db, ids = _queue_two(capsys, tmp_path, tiny_model)
    assert main(["--db", db, "worker", "--max-jobs", "2", "--threads", "1",
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "nllb-pipeline: progress" not in err and all(len(_notes(err, j)) == 2 for j in ids)


def test_several_jobs_at_once_get_a_compact_line_each_never_a_bar(tmp_path, capsys, caplog,
                                                                  monkeypatch):
    store = Store(tmp_path / "jobs.db")
    ids = []
    for name in ("a", "b", "c"):
        ids.append(_fake_job(store, tmp_path, name, f"Document {name}.\n\nIt has two "
                                                     "paragraphs.\n").id)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # even on a terminal
    shown = []

    def compact(store, job, translator):
        bar = progress_bar(store, job, translator, compact=True)
        shown.append(bar)
        return bar

    with caplog.at_level(logging.INFO, logger="nllb_pipeline"):
        counts = run_worker(store, lambda params: FakeTranslator(), jobs=2, max_jobs=3,
                            idle_exit_s=0, poll_s=0.01, policy=NO_WAITS, events_for=compact)
    assert counts == {"SUCCEEDED": 3}
    assert all(type(bar) is LineProgress for bar in shown) and len(shown) == 3
    err = capsys.readouterr().err
    for job_id in ids:  # each job's own lines, labelled, to its end
        mine = [line for line in err.splitlines()
                if line.startswith(f"nllb-pipeline: progress job {job_id} ")]
        assert mine and re.match(rf"nllb-pipeline: progress job {job_id} 100% upload ", mine[-1])
        notes = [r.getMessage() for r in caplog.records if r.getMessage().startswith(
            f"job {job_id} ")]
        assert [n.split()[2] for n in notes] == ["started:", "ended"]
    assert not any(isinstance(bar, TqdmProgress) for bar in shown)


def test_one_job_on_a_terminal_is_a_bar_and_json_logs_are_lines(tmp_path, monkeypatch):
    store = Store(tmp_path / "jobs.db")
    job = _fake_job(store, tmp_path, "a", "One.\n")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    make = functools.partial(progress_bar, store, job, FakeTranslator())
    bars = [make(), make(log_format="json")]
    for bar in bars:
        bar.close()
    # a JSON log is read by a program: lines (their form: test_progress_bar.py)
    assert [type(b) for b in bars] == [TqdmProgress, LineProgress]


def test_a_failed_job_is_one_error_line_that_names_it_once(tmp_path, caplog):
    store = Store(tmp_path / "jobs.db")
    job_id = _fake_job(store, tmp_path, "gone", "A document that goes away.\n").id
    src = tmp_path / "gone.txt"
    src.unlink()
    with caplog.at_level(logging.INFO, logger="nllb_pipeline"):
        assert run_worker(store, lambda params: FakeTranslator(), idle_exit_s=0, poll_s=0.01,
                          policy=NO_WAITS) == {"FAILED": 1}
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert error == f"job {job_id} failed: input file not found: {src}"
