"""cancel: a queued job at once, a running one at its next check: after its
batch in inference, within 2 s of any stage's own work; SIGTERM likewise."""

from __future__ import annotations

import json
import threading
import time

import pytest

from models import HfTranslator
from pipeline.cli import main
from pipeline.config import JobParams, RunSettings
from pipeline.errors import JobCanceled, LeaseLost, WorkerStopping
from pipeline.progress import Events
from pipeline.runner import CHECK_EVERY_S, JobContext, run_job
from pipeline.samples import generate_text
from pipeline.stages import postprocess
from pipeline.store import Store
from tests.conftest import stored_output
from tests.fakes import NO_WAITS, FakeTranslator
from tests.test_retries import make_job
from tests.test_streaming import fake_job
from tests.test_upload_http import receiver  # noqa: F401 - a fixture


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


# -- within 2 s of any stage's own work ---------------------------------------------------
#
# The clock that paces the checks is the work's own: the fake translator and
# the stages' work advance it, and the test asks to stop at a chosen second
# of work. What is measured is the work done after the ask, not wall time.


class WorkClock:
    """Seconds of work done; ``ask`` is called once when ``at`` is passed."""

    def __init__(self, at: float, ask):
        self.now, self.at, self.ask, self.asked_at = 0.0, at, ask, None

    def __call__(self) -> float:
        return self.now

    def work(self, seconds: float) -> None:
        self.now += seconds
        if self.asked_at is None and self.now >= self.at:
            self.asked_at = self.now
            self.ask()

    def after_the_ask(self) -> float:
        return self.now - self.asked_at


class Costly(FakeTranslator):
    """Counting a text costs 10 ms of work."""

    def __init__(self, clock: WorkClock | None = None):
        super().__init__()
        self.clock = clock

    def count_tokens(self, texts):
        if self.clock is not None:
            for _ in texts:
                self.clock.work(0.01)
        return super().count_tokens(texts)


LONG = "\n".join(f"Line number {n} of a long corpus, said {n % 7} times over and over again."
                 for n in range(3000)) + "\n"  # a first slice of 20 s of work and more


def asker(how: str, store, job_id: str, shutdown: threading.Event):
    """What another process does: a cancel in the store, or SIGTERM's event."""
    return shutdown.set if how == "sigterm" else lambda: Store(store.path).request_cancel(job_id)


@pytest.mark.parametrize("how", ["cancel", "sigterm"])
def test_preprocess_stops_within_2_s_of_work_and_resumes(tmp_path, how):
    store, job, out = fake_job(tmp_path, LONG)
    shutdown = threading.Event()
    clock = WorkClock(5.0, asker(how, store, job.id, shutdown))
    final = run_job(store, job.id, Costly(clock), monotonic=clock, shutdown=shutdown,
                    policy=NO_WAITS)
    assert (final.state, final.stage) == ("CANCELED" if how == "cancel" else "QUEUED",
                                          "preprocess")
    assert clock.after_the_ask() <= 2.0
    assert store.last_slice(job.id) is None and store.chunks(job.id) == []  # inside slice 1

    store.reset_failed(job.id)
    assert run_job(store, job.id, Costly(), policy=NO_WAITS).state == "SUCCEEDED"
    assert out.read_text().splitlines()[2999] == LONG.splitlines()[2999].upper()


class SlowRendering:
    """Putting a chunk back costs 10 ms of work (postprocess's own)."""

    def __init__(self, monkeypatch, clock: WorkClock):
        real = postprocess._Assembler.text

        def text(assembler, chunk, spec=None):
            clock.work(0.01)
            return real(assembler, chunk, spec)

        monkeypatch.setattr(postprocess._Assembler, "text", text)


class AtStage(Events):
    """Moves ``clock.at`` to ``seconds`` after ``stage`` starts."""

    def __init__(self, clock: WorkClock, stage: str, seconds: float):
        self.clock, self.stage, self.seconds = clock, stage, seconds

    def stage_started(self, stage, total, done=0.0):
        if stage == self.stage:
            self.clock.at = self.clock.now + self.seconds


@pytest.mark.parametrize("how", ["cancel", "sigterm"])
def test_postprocess_stops_within_2_s_of_work_and_leaves_no_output(tmp_path, monkeypatch, how):
    store, job, out = fake_job(tmp_path, LONG)
    shutdown = threading.Event()
    clock = WorkClock(float("inf"), asker(how, store, job.id, shutdown))
    SlowRendering(monkeypatch, clock)
    final = run_job(store, job.id, FakeTranslator(), monotonic=clock, shutdown=shutdown,
                    events=AtStage(clock, "postprocess", 3.0), policy=NO_WAITS)
    assert final.stage == "postprocess" and clock.asked_at is not None
    assert clock.after_the_ask() <= 2.0
    assert not out.exists() and store.artifact(job.id, "output") is None
    assert list(store.output_file(job.id).parent.iterdir()) == []  # no temp file either

    store.reset_failed(job.id)
    assert run_job(store, job.id, FakeTranslator(), policy=NO_WAITS).state == "SUCCEEDED"
    assert out.read_text().splitlines()[2999] == LONG.splitlines()[2999].upper()


WIDE_BATCHES = RunSettings(batch_tokens=20_000)  # long lines: not one batch each


class SlowDelivery(AtStage):
    """Each 64 KiB sent costs 0.3 s of work."""

    def stage_progress(self, stage, done):
        if stage == "upload":
            self.clock.work(0.3)


@pytest.mark.slow
@pytest.mark.parametrize("sink", ["file", "http"])
def test_upload_stops_within_2_s_of_work_and_delivers_nothing(tmp_path, sink, receiver):
    wide = "".join(f"{n} " + "word " * 80 + "\n" for n in range(3000))  # 1.3 MB: 20 pieces
    url = receiver.url() if sink == "http" else ""
    store, job, out = fake_job(tmp_path, wide, sink=url)
    clock = WorkClock(float("inf"), lambda: Store(store.path).request_cancel(job.id))
    final = run_job(store, job.id, FakeTranslator(), monotonic=clock, policy=NO_WAITS,
                    events=SlowDelivery(clock, "upload", 1.0), settings=WIDE_BATCHES)
    assert (final.state, final.stage) == ("CANCELED", "upload")
    assert clock.after_the_ask() <= 2.0
    assert 3 * 0.3 < clock.now < 19 * 0.3  # it stopped part-way through the 20 pieces
    if sink == "http":
        assert receiver.stored == 0  # the request was cut short: nothing delivered
    else:
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("doc.out")) == []

    store.reset_failed(job.id)
    assert run_job(store, job.id, FakeTranslator(), policy=NO_WAITS,
                   settings=WIDE_BATCHES).state == "SUCCEEDED"
    delivered = receiver.deliveries[job.idem_key] if sink == "http" else out.read_bytes()
    assert delivered == stored_output(store, job.id)


# -- the checks themselves ------------------------------------------------------------------


def paced_context(tmp_path, clock):
    store, job, _ = fake_job(tmp_path, "One line.\n")
    assert store.claim_job(job.id, "w", 30)
    asked = []
    real = store.run_state

    def run_state(job_id):
        asked.append(clock())
        return real(job_id)

    store.run_state = run_state
    ctx = JobContext(store, job, JobParams.from_json(job.params), FakeTranslator(),
                     RunSettings(), "w", Events(), monotonic=clock, shutdown=threading.Event())
    return ctx, store, asked


def test_a_checkpoint_asks_the_store_twice_a_second_and_signals_at_once(tmp_path):
    clock = WorkClock(float("inf"), lambda: None)
    ctx, store, asked = paced_context(tmp_path, clock)
    for _ in range(1000):  # 10 s of work in 10 ms steps
        ctx.checkpoint()
        clock.work(0.01)
    assert 19 <= len(asked) <= 21  # every CHECK_EVERY_S, not every call
    assert all(b - a >= CHECK_EVERY_S - 1e-9 for a, b in zip(asked, asked[1:]))

    Store(store.path).request_cancel(ctx.job.id)
    with pytest.raises(JobCanceled):
        for _ in range(1000):
            ctx.checkpoint()
            clock.work(0.01)
    assert clock.now - asked[-2] <= CHECK_EVERY_S + 0.01

    ctx.shutdown.set()
    calls = len(asked)
    with pytest.raises((WorkerStopping, JobCanceled)):
        ctx.checkpoint()  # at once, not after the next half second
    ctx.stop.set()
    with pytest.raises(LeaseLost):
        ctx.checkpoint()
    assert len(asked) == calls + 1


def test_a_checkpoint_finds_a_takeover_without_waiting_for_the_heartbeat(tmp_path):
    clock = WorkClock(float("inf"), lambda: None)
    ctx, store, asked = paced_context(tmp_path, clock)
    ctx.checkpoint()
    other = Store(store.path, clock=lambda: time.time() + 60)  # our lease has expired there
    assert other.claim_job(ctx.job.id, "another worker", 30)
    with pytest.raises(LeaseLost, match="another worker"):
        for _ in range(100):
            ctx.checkpoint()
            clock.work(0.01)
    assert clock.now <= CHECK_EVERY_S + 0.01


def test_a_retry_wait_answers_a_cancel_a_lost_lease_and_sigterm(tmp_path):
    ctx, store, _ = paced_context(tmp_path, time.monotonic)
    started = time.monotonic()
    Store(store.path).request_cancel(ctx.job.id)
    with pytest.raises(JobCanceled):
        ctx.sleep(600)  # the default sleep: in steps that check
    store.db.execute("UPDATE jobs SET cancel_requested = 0")
    ctx.stop.set()
    with pytest.raises(LeaseLost):
        ctx.sleep(600)
    ctx.stop.clear()
    ctx.shutdown.set()
    with pytest.raises(WorkerStopping):
        ctx.sleep(600)
    assert time.monotonic() - started < 600  # none of them sat the wait out
