"""Failures during inference, on the tiny model: nothing lost, nothing redone."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import time

import pytest

from models import HfTranslator
from models.faults import FaultInjectingTranslator, FaultSpec
from pipeline.executors.local import LOCAL_WINDOW
from pipeline.config import JobParams, RunSettings
from pipeline.errors import ErrorClass, JobFailed
from pipeline.documents.inputs import read_input
from pipeline.jobs import submit
from pipeline.progress import Events
from pipeline.retry import Backoff, RetryPolicy
from pipeline.runner import run_job
from pipeline.samples import generate_text
from pipeline.store import Store
from tests.conftest import run_cli, start_cli, wait_until

FAST = RetryPolicy(backoff=Backoff(0.01, 2.0, 0.05), batch_backoff=Backoff(0.02, 2.0, 0.1))
POISON = "This sentence always breaks the device."


class Recorder(Events):
    def __init__(self):
        self.retries = []

    def retrying(self, what, delay_s, error_class, attempt, limit):
        self.retries.append((what, round(delay_s, 4), error_class, attempt, limit))


class Poisoned:
    """The real translator, except that any call containing POISON fails."""

    def __init__(self, inner, error=lambda: RuntimeError("CUDA error: unspecified launch failure"),
                 *, healed: bool = False):
        self.inner, self.error, self.calls, self.healed = inner, error, [], healed

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def translate_batch(self, texts, src, tgt, decoding):
        self.calls.append(list(texts))
        if POISON in texts and not self.healed:
            raise self.error()
        return self.inner.translate_batch(texts, src, tgt, decoding)


def make_job(tmp_path, model, text, name="doc", quality="off"):
    """A job on the tiny model. Its random weights never stop, so at --quality
    repair every chunk would climb the repair ladder; these tests are about
    retries and batches, so the ladder is off (it runs at the defaults in
    test_determinism, test_resume, test_worker and test_quality_ladder)."""
    src = tmp_path / f"{name}.txt"
    src.write_text(text)
    params = JobParams(model=str(model), src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                       output=str(tmp_path / f"{name}.out.txt"), beams=1, length_ratio=0.5,
                       length_offset=4, quality=quality)
    store = Store(tmp_path / f"{name}.db")
    job, _ = submit(store, params, read_input(src))
    return store, job, params


def clean_output(tmp_path, model, text):
    store, job, params = make_job(tmp_path, model, text, name="clean")
    run_job(store, job.id, HfTranslator(str(model)))
    return (tmp_path / "clean.out.txt").read_bytes()


SETTINGS = RunSettings(batch_tokens=300)


@pytest.mark.slow
def test_injected_oom_on_30_percent_of_batches_gives_byte_identical_output(tmp_path, tiny_model):
    text = generate_text(120, seed=11)
    store, job, params = make_job(tmp_path, tiny_model, text)
    translator = FaultInjectingTranslator(HfTranslator(str(tiny_model)),
                                          FaultSpec(oom=0.3, seed=3))
    slept = []
    final = run_job(store, job.id, translator, settings=SETTINGS, policy=FAST, sleep=slept.append,
                    rng=random.Random(0))
    assert final.state == "SUCCEEDED"
    assert translator.injected["oom"] >= 3
    splits = [a for a in store.attempts(job.id) if a.decision == "split"]
    assert len(splits) == translator.injected["oom"]
    # every OOM split its batch; later batches may be split up front, as the
    # budget shrank below their size
    batches = store.batches(job.id)
    assert {a.batch_id for a in splits} <= {b.id for b in batches if b.state == "split"}
    assert sum(b.state == "split" for b in batches) >= len(splits)
    # an OOM is handled by splitting, never by falling back to chunk-by-chunk
    assert not [a for a in store.attempts(job.id) if a.decision in ("chunks", "retry")]
    assert all(b.parent_id is not None for b in batches if b.id > max(a.batch_id for a in splits))
    assert slept == []  # an OOM split does not wait
    assert (tmp_path / "doc.out.txt").read_bytes() == clean_output(tmp_path, tiny_model, text)
    assert all(c.commits == 1 for c in store.chunks(job.id) if c.batch_id is not None)


@pytest.mark.slow
def test_transient_errors_on_20_percent_of_chunk_attempts_give_identical_output(tmp_path,
                                                                                tiny_model):
    text = generate_text(80, seed=12)
    store, job, params = make_job(tmp_path, tiny_model, text)
    translator = FaultInjectingTranslator(HfTranslator(str(tiny_model)),
                                          FaultSpec(transient=0.2, seed=5))
    slept = []
    final = run_job(store, job.id, translator, settings=SETTINGS, policy=FAST, sleep=slept.append,
                    rng=random.Random(0))
    assert final.state == "SUCCEEDED"
    assert translator.injected["transient"] >= 5
    retries = [a for a in store.attempts(job.id) if a.decision == "retry"]
    assert retries and all(a.error_class == "device_transient" for a in retries)
    assert slept and max(slept) <= 0.05
    assert (tmp_path / "doc.out.txt").read_bytes() == clean_output(tmp_path, tiny_model, text)


def test_a_chunk_that_always_fails_is_skipped_after_two_batch_retries_then_retry_completes(
        tmp_path, tiny_model):
    text = generate_text(30, seed=13).replace("\n\n", f"\n\n{POISON}\n\n", 1)
    store, job, params = make_job(tmp_path, tiny_model, text)
    poisoned = Poisoned(HfTranslator(str(tiny_model)))
    events, slept = Recorder(), []
    final = run_job(store, job.id, poisoned, settings=SETTINGS, policy=FAST, sleep=slept.append,
                    rng=random.Random(7), events=events)

    assert final.state == "FAILED"
    failed = [c for c in store.chunks(job.id) if c.state == "failed"]
    assert [c.source for c in failed] == [POISON]
    assert "1 chunk(s) failed for good" in final.error_message
    assert all(c.state == "done" for c in store.chunks(job.id) if c.source != POISON)
    bad_batch = next(b for b in store.batches(job.id) if failed[0].idx in b.chunk_idxs
                     and b.state != "split")
    assert bad_batch.state == "skipped" and bad_batch.attempts == 2  # retried exactly twice
    assert failed[0].attempts == 9  # 3 tries alone in each of 3 rounds
    decisions = [a.decision for a in store.attempts(job.id)]
    assert decisions.count("retry_batch") == 2 and decisions.count("skip") == 1
    # the progress display was told about every wait, with the class and attempt
    # named as 'logs' and 'show' name it (pipeline.batching.batch_labels: seq + 1)
    assert (f"batch {bad_batch.seq + 1}", ) == tuple({r[0] for r in events.retries
                                                      if r[0].startswith("batch")})
    assert all(r[2] == "DEVICE_TRANSIENT" for r in events.retries)
    assert len(slept) == len(events.retries)
    # the output was delivered with the gap filled by the source text
    out = (tmp_path / "doc.out.txt").read_text()
    assert POISON in out

    store.reset_failed(job.id)
    before = {c.idx: c.translation for c in store.chunks(job.id) if c.state == "done"}
    healed = Poisoned(HfTranslator(str(tiny_model)), healed=True)
    final = run_job(store, job.id, healed, settings=SETTINGS, policy=FAST, sleep=slept.append)
    assert final.state == "SUCCEEDED"
    assert healed.calls == [[POISON]]  # only the failed chunk was translated again
    assert {c.idx: c.translation for c in store.chunks(job.id) if c.idx in before} == before
    assert all(c.commits == 1 for c in store.chunks(job.id) if c.batch_id is not None)


def test_the_gap_marker_option(tmp_path, tiny_model):
    store, job, params = make_job(tmp_path, tiny_model, f"Fine words here.\n\n{POISON}\n")
    import dataclasses

    params = dataclasses.replace(params, missing="marker")
    store.db.execute("UPDATE jobs SET params = ? WHERE id = ?", (params.canonical_json(), job.id))
    run_job(store, job.id, Poisoned(HfTranslator(str(tiny_model))), policy=FAST,
            sleep=lambda s: None)
    assert f"[untranslated: {POISON}]" in (tmp_path / "doc.out.txt").read_text()


def test_a_non_retryable_error_fails_at_once_with_one_attempt(tmp_path, tiny_model):
    store, job, params = make_job(tmp_path, tiny_model, f"{POISON}\n\nAnother line here.\n")
    poisoned = Poisoned(HfTranslator(str(tiny_model)), error=lambda: ValueError("bug"))
    with pytest.raises(JobFailed, match="internal error: bug"):
        run_job(store, job.id, poisoned, policy=FAST, sleep=lambda s: pytest.fail("waited"))
    attempts = store.attempts(job.id)
    assert [(a.error_class, a.decision) for a in attempts] == [("internal", "fail")]
    assert store.job(job.id).state == "FAILED"
    # The failing text was sent once, never again. The other line's batch may
    # have been in flight already (the window keeps the next call queued
    # behind the engine's), and that call is all: nothing is sent after the
    # failure is seen.
    assert sum(POISON in call for call in poisoned.calls) == 1
    assert len(poisoned.calls) <= LOCAL_WINDOW


def test_a_device_side_assert_fails_the_job_and_says_to_restart(tmp_path, tiny_model):
    store, job, params = make_job(tmp_path, tiny_model, f"{POISON}\n")
    poisoned = Poisoned(HfTranslator(str(tiny_model)),
                        error=lambda: RuntimeError("CUDA error: device-side assert triggered"))
    with pytest.raises(JobFailed) as info:
        run_job(store, job.id, poisoned, policy=FAST, sleep=lambda s: None)
    assert info.value.error_class is ErrorClass.DEVICE_FATAL
    assert "restart the process" in store.job(job.id).error_message
    # restarting (a fresh run of the same job) continues where it stopped
    final = run_job(store, job.id, HfTranslator(str(tiny_model)))
    assert final.state == "SUCCEEDED"


@pytest.mark.slow
def test_kill_9_during_a_retry_wait_then_resume_continues_the_attempt_counts(tmp_path,
                                                                             tiny_model):
    src = tmp_path / "one.txt"
    src.write_text("A single sentence that keeps failing.\n")
    db, out = tmp_path / "jobs.db", tmp_path / "one.out.txt"
    args = ["translate", str(src), "--src", "eng_Latn", "--tgt", "fra_Latn", "-o", str(out),
            "--model", str(tiny_model), "--beams", "1", "--no-progress", "--json",
            "--inject-faults", "transient=1.0,seed=1"]
    slow = ["--retry", "chunk_attempts=3,batch_retries=1,base=30,cap=30"]
    proc = start_cli(*args, *slow, db=db, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def waiting():
        try:
            conn = sqlite3.connect(db, timeout=1)
            if conn.execute("SELECT COUNT(*) FROM attempts WHERE decision = 'retry'").fetchone()[0]:
                return True
        except sqlite3.OperationalError:
            pass
        assert proc.poll() is None, proc.communicate()

    wait_until(waiting, "a retry wait")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = Store(db)
    job = store.jobs()[0]
    assert store.chunks(job.id)[0].attempts == 1
    assert store.batches(job.id)[0].not_before is not None  # the wait is on record

    fast = ["--retry", "chunk_attempts=3,batch_retries=1,base=0.01,cap=0.01"]
    # the stored wait (30 s) would still hold: clear it as a user would by waiting it out
    store.db.execute("UPDATE batches SET not_before = ?", (time.time(),))
    proc = run_cli(*args, *fast, db=db, check=False)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["state"] == "FAILED"
    chunk = store.chunks(job.id)[0]
    # 3 tries per round, 2 rounds: 6 in all. A restart that reset the counts
    # would have given it a 7th.
    assert chunk.attempts == 6 and chunk.state == "failed"
    tries = [a.attempt for a in store.attempts(job.id) if a.chunk_idx == 0]
    assert tries == [1, 2, 3, 1, 2, 3]


def test_an_oom_split_in_a_retry_round_keeps_the_round(tmp_path, tiny_model):
    """Halves of a batch split during batch retry 1 start in round 1 too, so
    their chunks get that round's tries rather than being skipped at once."""
    # Sentences of one length bucket: one batch of several chunks, which
    # fails, is retried as a batch, and then runs out of memory.
    text = "\n\n".join(f"The {w} job waits in the queue." for w in ("first", "second", "third"))
    store, job, params = make_job(tmp_path, tiny_model, text)
    inner = HfTranslator(str(tiny_model))
    ooms = []

    class Scripted:
        """Every call fails until the batch retry starts; then one OOM; then all is well."""

        def __getattr__(self, name):
            return getattr(inner, name)

        def translate_batch(self, texts, src, tgt, decoding):
            in_retry = any(a.decision == "retry_batch" for a in store.attempts(job.id))
            if not in_retry:
                raise RuntimeError("CUDA error: unspecified launch failure (scripted)")
            if not ooms and len(texts) > 1:
                import torch

                ooms.append(len(texts))
                raise torch.OutOfMemoryError("CUDA out of memory (scripted)")
            return inner.translate_batch(texts, src, tgt, decoding)

    policy = RetryPolicy(chunk_attempts=1, batch_retries=1, backoff=Backoff(0, 1, 0),
                         batch_backoff=Backoff(0, 1, 0))
    final = run_job(store, job.id, Scripted(), policy=policy, sleep=lambda s: None)
    assert final.state == "SUCCEEDED", store.attempts(job.id)
    assert ooms
    halves = [b for b in store.batches(job.id) if b.parent_id is not None]
    assert halves and all(b.attempts == 1 for b in halves)
    assert all(c.state == "done" for c in store.chunks(job.id))
