"""The progress display moves while no event comes (issue 20): a first batch
that takes half a minute must not leave the bar at ``preprocess 10% |
00:00, ETA unknown``, nor a log file without a line for 30 s. Clocks are
injected; the one test with threads waits on what it observes, not on time."""

from __future__ import annotations

import io
import re
import threading

import pytest

from pipeline.cli.progress_bar import (LineProgress, Ticker, TqdmProgress, format_elapsed)
from pipeline.config import JobParams
from pipeline.documents.inputs import read_input
from pipeline.jobs import submit
from pipeline.progress.profiles import StageHistory
from pipeline.progress import DEFAULT_WEIGHTS
from pipeline.runner import run_job
from pipeline.store import Store
from tests.conftest import wait_until
from tests.fakes import NO_WAITS, FakeTranslator

NO_HISTORY = StageHistory(weights=DEFAULT_WEIGHTS, rates={}, jobs=0)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _preprocess_then_a_slow_first_batch(bar, clock: Clock) -> None:
    """What the runner reports: preprocess in 1.8 s, then inference starts
    and its first batch has not come back yet."""
    bar.stage_started("preprocess", 1000)
    clock.now = 1.0
    bar.stage_progress("preprocess", 1000)
    clock.now = 1.8
    bar.stage_finished("preprocess")
    bar.stage_started("inference", 3839)


@pytest.mark.parametrize("seconds, elapsed", [(4.0, "00:04"), (7.0, "00:07"), (65.0, "01:05")])
def test_the_bar_shows_the_stage_it_is_in_and_its_time_ticks_between_events(seconds, elapsed):
    clock, stream = Clock(), io.StringIO()
    bar = TqdmProgress(NO_HISTORY, 0.0, stream, clock=clock, tick_s=None)
    _preprocess_then_a_slow_first_batch(bar, clock)
    clock.now = seconds
    bar.tick()  # what the ticker thread does every second
    frame = stream.getvalue().split("\r")[-1]
    bar.close()
    assert re.match(rf"inference +10%\|.*\| {elapsed}  ETA unknown", frame), frame


def test_the_eta_counts_down_between_events():
    clock, stream = Clock(), io.StringIO()
    history = StageHistory(weights=DEFAULT_WEIGHTS, rates={"inference": 100.0}, jobs=3)
    bar = TqdmProgress(history, 0.0, stream, clock=clock, tick_s=None)
    bar.stage_started("inference", 1000)
    first = stream.getvalue().split("\r")[-1].rstrip()
    clock.now = 5.0
    bar.tick()
    later = stream.getvalue().split("\r")[-1].rstrip()  # tqdm pads over a longer line
    bar.close()
    # 1,000 tokens at 100 tok/s, plus the stages after (20/70 of it): 12.857 s
    assert first.endswith("00:00  100 tok/s, ETA 13s") and later.endswith(
        "00:05  100 tok/s, ETA 8s"), (first, later)


def test_a_file_gets_a_line_at_least_every_10_s_while_the_first_batch_runs():
    clock, stream = Clock(), io.StringIO()
    bar = LineProgress(NO_HISTORY, 0.0, stream, clock=clock, interval_s=10.0, tick_s=None)
    _preprocess_then_a_slow_first_batch(bar, clock)
    for second in range(2, 35):  # the ticker, once a second, until 34.6 s
        clock.now = float(second)
        bar.tick()
    clock.now = 34.6
    bar.stage_progress("inference", 2000)  # the first batch commits
    bar.close()
    inference = [line for line in stream.getvalue().splitlines() if " inference " in line]
    times = [re.search(r" (\d\d):(\d\d)  ", line).groups() for line in inference]
    seconds = [int(m) * 60 + int(s) for m, s in times]
    assert seconds == [1, 12, 22, 32, 34], inference  # 1.8 s, then no gap over 10 s
    assert inference[0].endswith("inference   00:01  ETA unknown")
    assert inference[-1].startswith("nllb-pipeline: progress  46% inference   00:34  ")


def test_a_tick_within_the_interval_writes_nothing():
    clock, stream = Clock(), io.StringIO()
    bar = LineProgress(NO_HISTORY, 0.0, stream, clock=clock, interval_s=10.0, tick_s=None)
    bar.stage_started("inference", 100)
    for second in range(1, 10):
        clock.now = float(second)
        bar.tick()
    assert len(stream.getvalue().splitlines()) == 1


def test_json_lines_carry_the_time_and_the_figures():
    import json

    clock, stream = Clock(), io.StringIO()
    bar = LineProgress(NO_HISTORY, 0.0, stream, clock=clock, tick_s=None, log_format="json",
                       label="1a2b3c", wall_clock=lambda: 1700000000.25)
    bar.stage_started("inference", 100)
    [record] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert record == {"time": 1700000000.25, "level": "info", "logger": "nllb_pipeline",
                      "message": "job 1a2b3c  10% inference 00:00  ETA unknown",
                      "event": "progress", "percent": 10.0, "stage": "inference",
                      "job": "1a2b3c", "batch": None, "trace_id": None, "error_class": None,
                      "decision": None}


def test_the_ticker_ticks_until_told_to_stop():
    ticks, waits = [], iter([False, False, False, True])
    Ticker(lambda: ticks.append(1), 1.0).run(wait=lambda s: next(waits))
    assert len(ticks) == 3


@pytest.mark.parametrize("seconds, text", [(0, "00:00"), (7.9, "00:07"), (754, "12:34"),
                                           (3723, "1:02:03")])
def test_elapsed_is_written_as_tqdm_writes_it(seconds, text):
    assert format_elapsed(seconds) == text


class SlowFirstBatch(FakeTranslator):
    """A model whose first call returns only once ``release`` is set."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def translate_batch(self, texts, src_lang, tgt_lang, decoding):
        assert self.release.wait(60), "the test never released the first batch"
        return super().translate_batch(texts, src_lang, tgt_lang, decoding)


def test_lines_keep_coming_from_a_real_run_while_its_first_batch_is_in_the_model(tmp_path):
    src = tmp_path / "doc.txt"
    src.write_text("One sentence here.\n\nAnother one there.\n")
    store = Store(tmp_path / "jobs.db")
    params = JobParams(model="fake", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                       output=str(tmp_path / "out.txt"))
    job, _ = submit(store, params, read_input(src))

    class Lines(io.StringIO):
        def inference_lines(self) -> int:
            return sum(" inference " in line for line in self.getvalue().splitlines())

    stream, translator = Lines(), SlowFirstBatch()
    # a line every 20 ms at most, a tick every 5 ms: the same code, faster
    bar = LineProgress(NO_HISTORY, 0.0, stream, interval_s=0.02, tick_s=0.005)

    def release_after_three_lines():
        try:  # a timeout fails the assertion below; the model is released either way
            wait_until(lambda: stream.inference_lines() >= 3, "three inference lines",
                       timeout=60, interval=0.005)
        finally:
            translator.release.set()

    watcher = threading.Thread(target=release_after_three_lines)
    watcher.start()
    final = run_job(store, job.id, translator, events=bar, policy=NO_WAITS)
    watcher.join()
    bar.close()
    assert final.state == "SUCCEEDED"
    assert translator.calls  # the model was called, and held, while the lines came
    assert stream.inference_lines() >= 3
