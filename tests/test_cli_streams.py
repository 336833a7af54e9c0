"""The real CLI in a subprocess, as a shell runs it: progress written to a
pipe, output read by ``head``, SIGTERM (issue 9). The commands with a model
run in processes ``tests.warm`` forks (torch imported once)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import pytest

from pipeline.cli.progress_bar import LineProgress
from pipeline.progress.profiles import StageHistory
from pipeline.progress import DEFAULT_WEIGHTS
from pipeline.samples import generate_text
from pipeline.store import Store
from tests.conftest import ROOT, cli_env, run_cli, start_cli, wait_for_commits

PROGRESS = re.compile(r"nllb-pipeline: progress +\d+% (preprocess|inference|postprocess|upload) "
                      r"+\d\d:\d\d  ((\d+ tok/s, )?ETA .*|retrying .*)")
# with -v: a record after its time; a note ("converting ...") has no level word
LOG = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} nllb-pipeline: "
                 r"((debug|info|warning|error): )?.*")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}")


def _translate_args(src, model, *extra):
    return ["translate", str(src), "--src", "eng_Latn", "--tgt", "fra_Latn", "--model",
            str(model), "--beams", "1", "--length-ratio", "0.5", "--length-offset", "4",
            "--threads", "1", *extra]


def _start(args, db, **kw):
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], env=cli_env(db),
                            cwd=ROOT, text=True, **kw)


@pytest.mark.slow
def test_progress_to_a_pipe_is_whole_lines_and_log_lines_stay_apart(tmp_path, tiny_model):
    src = tmp_path / "doc.txt"
    src.write_text(generate_text(4, seed=4))
    proc = start_cli(*_translate_args(src, tiny_model, "-v"), db=tmp_path / "jobs.db",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "\r" not in err  # a terminal's bar would redraw with \r
    lines = err.splitlines()
    progress = [line for line in lines if PROGRESS.fullmatch(line)]
    logs = [line for line in lines if LOG.fullmatch(line)]
    assert progress and logs, err
    # every line is one thing: a progress line, a log record, or a message of ours
    assert all(PROGRESS.fullmatch(line) or LOG.fullmatch(line)
               or line.startswith("nllb-pipeline: ") for line in lines), err
    assert not any(TIMESTAMP.search(line, 1) for line in lines), "a log record glued on a line"
    # one per stage start and end at most (the run is shorter than the interval), ending at 100%
    assert {PROGRESS.fullmatch(line).group(1) for line in progress} == {
        "preprocess", "inference", "postprocess", "upload"}
    assert len(progress) <= 8 and progress[-1].startswith("nllb-pipeline: progress 100% upload")


def test_line_progress_is_rate_limited_but_shows_every_stage_and_the_end():
    class Stream:
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    stream, now = Stream(), [0.0]
    history = StageHistory(weights=DEFAULT_WEIGHTS, rates={}, jobs=0)
    bar = LineProgress(history, 0.0, stream, clock=lambda: now[0], interval_s=10.0, tick_s=None)
    bar.stage_started("preprocess", 10)
    bar.stage_finished("preprocess")
    bar.stage_started("inference", 1000)
    for done in range(1, 1001):  # an update every 0.1 s for 100 s
        now[0] += 0.1
        bar.stage_progress("inference", done)
    now[0] += 0.1
    bar.retrying("batch 12", 30.0, "OOM", 2, 3)  # a long wait is said at once
    assert stream.text.splitlines()[-1].endswith("retrying batch 12 in 30.0 s (OOM, attempt 2/3)")
    bar.stage_finished("inference")
    bar.close()
    lines = stream.text.splitlines()
    inference = [line for line in lines if " inference " in line]
    assert 10 <= len(inference) <= 13  # 100 s at one line per 10 s, not 1,000 lines
    assert "\r" not in stream.text and all(PROGRESS.fullmatch(line) for line in lines)
    assert lines[-1].startswith("nllb-pipeline: progress  80% inference")  # the end is shown


def test_logs_piped_into_head_stops_quietly(tmp_path):
    db = tmp_path / "jobs.db"
    store = Store(db)
    job, _ = store.get_or_create_job(idem_key="k", params="{}", input_path="/in", input_sha256="h",
                                     input_bytes=1, output_path="/o")
    with store._write():  # far more than a pipe holds (64 KiB)
        for i in range(3000):
            store.record_attempt(job.id, "inference", error_class="oom", message="x" * 80,
                                 attempt=1, decision="split", batch_id=None, chunk_idx=i)
    store.close()
    proc = _start(["logs", job.id], db, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()  # what `head -1` does: read a line, then go away
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert f"] inference chunk 0: oom attempt 1 -> split: {'x' * 80}" in first
    assert err == ""  # no BrokenPipeError, no "Exception ignored"
    assert proc.returncode == 141  # 128 + SIGPIPE, as a shell reports `yes | head`


@pytest.mark.slow
def test_sigterm_on_translate_says_how_to_resume_exits_143_and_the_job_resumes_at_once(
        tmp_path, tiny_model):
    src, db = tmp_path / "book.txt", tmp_path / "jobs.db"
    src.write_text(generate_text(30, seed=5))
    args = _translate_args(src, tiny_model, "--batch-tokens", "64", "--no-progress", "--json")
    proc = start_cli(*args, db=db, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    wait_for_commits(proc, db, 2, lambda proc: "translate ended before it was stopped")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert err.strip().splitlines()[-1] == (
        "nllb-pipeline: error: terminated (SIGTERM); run the same command again to resume")
    store = Store(db)
    [job] = store.jobs(10)
    assert (job.state, job.lease_owner) == ("RUNNING", None), err  # given back, not left held
    # translated, or replaced by the repair ladder's pieces (random weights)
    committed = {c.idx for c in store.chunks(job.id) if c.state in ("done", "replaced")}
    assert committed and len(committed) < len(store.chunks(job.id))
    store.close()

    proc = start_cli(*args, db=db, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert '"note": "resumed"' in out and '"state": "SUCCEEDED"' in out
    # No lease to wait out: the stopped run gave its lease back (a lease
    # left to expire would read 'expired' when the second run took it).
    store = Store(db)
    leases = list(store.db.query("SELECT worker, how FROM leases WHERE job_id = ? ORDER BY id",
                                 (job.id,)))
    store.close()
    assert [row["how"] for row in leases] == ["released", "released"]
    assert leases[0]["worker"] != leases[1]["worker"]


def _wait_for_commits(proc, db, n: int) -> None:
    wait_for_commits(proc, db, n, lambda proc: "translate ended before it was killed")


def test_after_kill_9_status_and_show_say_what_is_true(tmp_path, tiny_model):
    src, db = tmp_path / "book.txt", tmp_path / "jobs.db"
    src.write_text(generate_text(30, seed=6))
    # --quality off: random weights fail every check, and the repair ladder's
    # first round replaces chunks instead of counting their tokens done
    args = _translate_args(src, tiny_model, "--batch-tokens", "64", "--no-progress",
                           "--quality", "off")
    proc = start_cli(*args, db=db, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_commits(proc, db, 3)
    proc.kill()  # SIGKILL: no lease given back, its expiry ~30 s away
    proc.communicate(timeout=60)

    status = run_cli("status", db=db, timeout=60)
    summary, row = status.stdout.splitlines()[:2]
    assert "running on: none" in summary, status.stdout  # not the dead process
    assert " INTERRUPTED " in row

    store = Store(db)
    [job] = store.jobs(10)
    done, total = store.token_counts(job.id)
    assert 0 < done < total
    store.close()
    show = run_cli("show", job.id, "--json", db=db, timeout=60)
    stages = json.loads(show.stdout)["stages"]
    assert [(s["stage"], s["state"]) for s in stages] == [
        ("preprocess", "finished"), ("inference", "interrupted")]
    assert (stages[1]["units_done"], stages[1]["units_total"]) == (done, total)
    show = run_cli("show", job.id, db=db, timeout=60)
    [line] = [line for line in show.stdout.splitlines() if line.startswith("  inference ")]
    assert f"interrupted  units {done:g}/{total:g}" in line, show.stdout
