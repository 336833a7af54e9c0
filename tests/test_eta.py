"""ETA maths with a fake clock, against literal numbers and strings."""

from __future__ import annotations

import pytest

from pipeline.progress.eta import StageEta, format_eta


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_no_history_and_no_batch_yet_is_unknown():
    eta = StageEta(1000, None, Clock())
    assert eta.seconds_left() is None
    assert format_eta(eta.seconds_left()) == "ETA unknown"


def test_history_only_before_the_first_batch():
    eta = StageEta(1000, history_rate=50.0, clock=Clock())
    assert eta.seconds_left() == 20.0
    assert format_eta(eta.seconds_left()) == "ETA 20s"


def test_observed_only_without_history_uses_an_ema_over_batches():
    clock = Clock()
    eta = StageEta(1000, None, clock)
    clock.t += 10
    eta.observe(100)          # 10 units/s
    assert eta.seconds_left() == pytest.approx(90.0)
    clock.t += 5
    eta.observe(200)          # 20 units/s -> EMA 0.3*20 + 0.7*10 = 13
    assert eta.rate() == pytest.approx(13.0)
    assert eta.seconds_left() == pytest.approx(800 / 13.0)


def test_blend_moves_from_history_to_observed_as_the_stage_progresses():
    clock = Clock()
    eta = StageEta(1000, history_rate=100.0, clock=clock)
    clock.t += 10
    eta.observe(250)          # observed 25/s, 25% done: 0.25*25 + 0.75*100 = 81.25
    assert eta.rate() == pytest.approx(81.25)
    clock.t += 20
    eta.observe(750)          # 25/s again; 75% done: 0.75*25 + 0.25*100 = 43.75
    assert eta.rate() == pytest.approx(43.75)
    assert eta.seconds_left() == pytest.approx(250 / 43.75)


def test_frozen_during_a_retry_wait_and_the_wait_does_not_count_against_the_rate():
    clock = Clock()
    eta = StageEta(1000, None, clock)
    clock.t += 10
    eta.observe(100)                      # 10/s
    eta.freeze("retrying batch 3 in 30.0 s")
    before = eta.seconds_left()
    clock.t += 30
    assert format_eta(eta.seconds_left(), eta.frozen_reason) == \
        "ETA paused: retrying batch 3 in 30.0 s"
    eta.unfreeze()
    clock.t += 10
    eta.observe(200)                      # 100 units in 10 working seconds: still 10/s
    assert eta.rate() == pytest.approx(10.0)
    assert eta.seconds_left() == pytest.approx(before - 10)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "ETA 0s"), (59.4, "ETA 59s"), (60, "ETA 1m00s"), (192, "ETA 3m12s"),
    (3600, "ETA 1h00m"), (7322, "ETA 2h02m"),
])
def test_format(seconds, text):
    assert format_eta(seconds) == text


def test_job_eta_records_each_mark_once_with_elapsed_plus_left():
    from pipeline.progress.profiles import StageHistory

    clock = Clock()
    marks = []
    history = StageHistory({"preprocess": 0.0, "inference": 1.0, "postprocess": 0.0,
                            "upload": 0.0}, {"inference": 10.0})
    from pipeline.progress.eta import JobEta

    eta = JobEta(history, clock, elapsed_before=5.0, on_mark=lambda *m: marks.append(m))
    eta.stage_started("preprocess", 100)
    eta.stage_finished("preprocess")
    eta.stage_started("inference", 1000)
    clock.t += 20
    eta.stage_progress("inference", 200)      # 20%: observed 10/s, history 10/s
    assert marks == [(10, 25.0, 25.0 + 80.0)]
    eta.retrying("batch 3", 30.0, "OOM", 2, 3)
    assert eta.text() == "10 tok/s, ETA paused: retrying batch 3"
    clock.t += 30
    eta.stage_progress("inference", 600)      # 60%
    assert [m[0] for m in marks] == [10, 25, 50]
    eta.stage_progress("inference", 600)
    assert [m[0] for m in marks] == [10, 25, 50]  # each mark once


def test_before_inference_the_eta_comes_from_seconds_per_input_byte():
    from pipeline.progress.eta import JobEta
    from pipeline.progress.profiles import StageHistory

    weights = {"preprocess": 0.1, "inference": 0.7, "postprocess": 0.15, "upload": 0.05}
    with_history = JobEta(StageHistory(weights, {}, 3, seconds_per_byte=0.01), Clock())
    with_history.stage_started("preprocess", 5_000)
    assert with_history.seconds_left() == pytest.approx(50.0)
    assert with_history.text() == "ETA 50s"
    without = JobEta(StageHistory(weights), Clock())
    without.stage_started("preprocess", 5_000)
    assert without.text() == "ETA unknown"


WEIGHTS = {"preprocess": 0.1, "inference": 0.7, "postprocess": 0.14, "upload": 0.06}


def test_a_jobs_seconds_left_is_the_tokens_left_plus_the_weighted_tail():
    from pipeline.progress.eta import seconds_left

    # 1,000 tokens at 10 tok/s: 100 s of inference; the tail weighs 0.2/0.7 of it
    tail = 100 * 0.2 / 0.7
    assert seconds_left("inference", 400, 1000, 10.0, WEIGHTS, 0.5) == pytest.approx(60 + tail)
    assert seconds_left("inference", 1200, 1000, 10.0, WEIGHTS, 0.8) == pytest.approx(tail)
    # entering postprocess the whole tail is left; half of its weight done, half of it
    assert seconds_left("postprocess", 1000, 1000, 10.0, WEIGHTS, 0.8) == pytest.approx(tail)
    assert seconds_left("upload", 1000, 1000, 10.0, WEIGHTS, 0.9) == pytest.approx(tail / 2)
    assert seconds_left("inference", 0, 1000, None, WEIGHTS, 0.1) is None
    assert seconds_left("inference", 0, 1000, 0.0, WEIGHTS, 0.1) is None


def test_the_bar_and_the_read_commands_give_one_eta_for_one_rate(tmp_path):
    """JobEta (the bar, the stored snapshot) and views.job_eta (a job with no
    snapshot, from its profile's history) both call eta.seconds_left: at the
    same rate and weights they agree."""
    from pipeline import views
    from pipeline.progress.eta import JobEta
    from pipeline.progress.profiles import StageHistory
    from pipeline.store import Store

    store = Store(tmp_path / "jobs.db")
    job, _ = store.get_or_create_job(idem_key="k", params="{}", input_path="/in",
                                     input_sha256="h", input_bytes=1, output_path="/out")
    store.set_job_state(job.id, "RUNNING")
    with store._write() as db:
        db.execute("UPDATE jobs SET stage = 'inference' WHERE id = ?", (job.id,))
    store.start_stage(job.id, "inference", units_total=1000, model="m", backend="b",
                      device="cpu", dtype="float32")
    job = store.job(job.id)
    history = StageHistory(WEIGHTS, {"inference": 10.0}, 3)
    key = store.inference_profile(job.id)
    from_view = views.job_eta(store, job, {key: history}, (400, 1000))
    bar = JobEta(history, Clock())
    bar.stage_started("inference", 1000, 400)
    assert from_view == pytest.approx(bar.seconds_left()) == pytest.approx(60 + 100 * 0.2 / 0.7)
