"""Progress maths against literal numbers, and the tracker against literal strings."""

from __future__ import annotations

import pytest

from pipeline.progress import DEFAULT_WEIGHTS, ProgressTracker, overall_fraction


@pytest.mark.parametrize(
    ("stage", "fraction", "expected"),
    [
        ("preprocess", 0.0, 0.0),
        ("preprocess", 0.5, 0.05),
        ("preprocess", 1.0, 0.10),
        ("inference", 0.0, 0.10),
        ("inference", 0.5, 0.45),
        ("inference", 1.0, 0.80),
        ("postprocess", 0.0, 0.80),
        ("postprocess", 1.0, 0.95),
        ("upload", 0.0, 0.95),
        ("upload", 1.0, 1.0),
        ("done", 0.0, 1.0),
        ("done", 0.3, 1.0),
    ],
)
def test_overall_fraction_with_default_weights(stage, fraction, expected):
    assert overall_fraction(stage, fraction) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("weights", [DEFAULT_WEIGHTS, {"preprocess": 3, "inference": 7,
                                                        "postprocess": 1, "upload": 0.3}])
def test_stage_boundaries_meet_exactly(weights):
    stages = ["preprocess", "inference", "postprocess", "upload"]
    assert overall_fraction("preprocess", 0.0, weights) == 0.0
    for stage, following in zip(stages, stages[1:]):
        assert overall_fraction(stage, 1.0, weights) == overall_fraction(following, 0.0, weights)
    assert overall_fraction("upload", 1.0, weights) == 1.0
    assert overall_fraction("done", 0.0, weights) == 1.0


def test_default_weights_are_the_documented_ones():
    assert dict(DEFAULT_WEIGHTS) == {
        "preprocess": 0.10, "inference": 0.70, "postprocess": 0.15, "upload": 0.05}


def test_stage_fraction_is_clamped():
    assert overall_fraction("inference", 1.7) == pytest.approx(0.80)
    assert overall_fraction("inference", -0.3) == pytest.approx(0.10)


def test_custom_weights_are_normalised():
    weights = {"preprocess": 1, "inference": 6, "postprocess": 2, "upload": 1}  # sums to 10
    assert overall_fraction("preprocess", 1.0, weights) == pytest.approx(0.1)
    assert overall_fraction("inference", 0.5, weights) == pytest.approx(0.4)
    assert overall_fraction("postprocess", 0.5, weights) == pytest.approx(0.8)
    assert overall_fraction("upload", 1.0, weights) == pytest.approx(1.0)


def test_unknown_stage_is_an_error():
    with pytest.raises(ValueError):
        overall_fraction("translate", 0.5)


class Recorder:
    def __init__(self):
        self.calls: list[tuple[float, str, str]] = []

    def __call__(self, fraction: float, stage: str, detail: str) -> None:
        self.calls.append((round(fraction, 6), stage, detail))


def test_tracker_follows_the_stages():
    rec = Recorder()
    t = ProgressTracker(rec)
    t.stage_started("preprocess", 10)
    t.stage_progress("preprocess", 5)
    t.stage_finished("preprocess")
    t.stage_started("inference", 200)
    t.stage_progress("inference", 100)
    t.stage_finished("inference")
    t.stage_started("postprocess", 1)
    t.stage_finished("postprocess")
    t.stage_started("upload", 1)
    t.stage_finished("upload")
    assert [c[:2] for c in rec.calls] == [
        (0.0, "preprocess"), (0.05, "preprocess"), (0.1, "preprocess"),
        (0.1, "inference"), (0.45, "inference"), (0.8, "inference"),
        (0.8, "postprocess"), (0.95, "postprocess"),
        (0.95, "upload"), (1.0, "upload"),
    ]


def test_tracker_resumed_stage_starts_where_it_was():
    rec = Recorder()
    t = ProgressTracker(rec)
    t.stage_started("inference", 200, done=150)
    assert rec.calls == [(round(0.10 + 0.70 * 0.75, 6), "inference", "")]


def test_tracker_never_goes_backwards():
    rec = Recorder()
    t = ProgressTracker(rec)
    t.stage_started("inference", 100)
    t.stage_progress("inference", 60)
    # A split or retried batch re-reports less work done than before.
    t.stage_progress("inference", 40)
    t.stage_started("inference", 120, done=40)  # a re-plan with a bigger total
    t.stage_progress("inference", 80)
    fractions = [c[0] for c in rec.calls]
    assert fractions == [0.1, 0.52, 0.52, 0.52, 0.566667]
    assert fractions == sorted(fractions)
    assert t.fraction == pytest.approx(0.10 + 0.70 * 80 / 120)


def test_tracker_renders_the_retry_detail_exactly():
    rec = Recorder()
    t = ProgressTracker(rec)
    t.stage_started("inference", 100)
    t.stage_progress("inference", 50)
    t.retrying("batch 12", 3.2, "oom", 2, 3)
    assert rec.calls[-1] == (0.45, "inference", "retrying batch 12 in 3.2 s (oom, attempt 2/3)")
    t.retrying("upload", 0.04, "network", 1, 5)
    assert rec.calls[-1][2] == "retrying upload in 0.0 s (network, attempt 1/5)"
    t.stage_progress("inference", 51)
    assert rec.calls[-1][2] == ""  # the detail goes once work moves on


def test_stage_with_nothing_to_do():
    rec = Recorder()
    t = ProgressTracker(rec)
    t.stage_started("inference", 0)
    assert rec.calls[-1][0] == pytest.approx(0.10)
    t.stage_progress("inference", 0)
    assert rec.calls[-1][0] == pytest.approx(0.80)  # zero of zero is all of it
