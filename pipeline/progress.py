"""Progress over the four weighted stages, as pure maths plus an observer.

Overall progress = sum of the weights of finished stages + the current
stage's weight times its fraction done. The runner reports events; this
module turns them into a fraction that never goes backwards within a job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pipeline.config import STAGES

DEFAULT_WEIGHTS: Mapping[str, float] = {
    "preprocess": 0.10, "inference": 0.70, "postprocess": 0.15, "upload": 0.05,
}


def overall_fraction(stage: str, stage_fraction: float,
                     weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> float:
    """Fraction of the whole job done when ``stage`` is ``stage_fraction`` done.

    ``stage == "done"`` is 1.0. Weights need not sum to 1; they are normalised.
    """
    if stage == "done":
        return 1.0
    total = sum(weights[s] for s in STAGES)
    before = sum(weights[s] for s in STAGES[: STAGES.index(stage)])
    within = min(max(stage_fraction, 0.0), 1.0) * weights[stage]
    return (before + within) / total


class Events:
    """What the runner reports. Observers override what they need."""

    def stage_started(self, stage: str, total: float, done: float = 0.0) -> None: ...
    def stage_progress(self, stage: str, done: float) -> None: ...
    def stage_finished(self, stage: str) -> None: ...
    def retrying(self, what: str, delay_s: float, error_class: str, attempt: int,
                 limit: int) -> None: ...
    def message(self, text: str) -> None: ...


class ProgressTracker(Events):
    """Turns stage events into a monotone overall fraction for a renderer.

    ``render(fraction, stage, detail)`` is called on every change.
    """

    def __init__(self, render: Callable[[float, str, str], None],
                 weights: Mapping[str, float] = DEFAULT_WEIGHTS):
        self.render = render
        self.weights = weights
        self.fraction = 0.0
        self.stage = "preprocess"
        self._total = 0.0

    def _update(self, stage: str, stage_fraction: float, detail: str = "") -> None:
        self.stage = stage
        # Never backwards: a split or retried batch must not shrink the bar.
        self.fraction = max(self.fraction, overall_fraction(stage, stage_fraction, self.weights))
        self.render(self.fraction, stage, detail)

    def stage_started(self, stage: str, total: float, done: float = 0.0) -> None:
        self._total = total
        self._update(stage, done / total if total else 0.0)

    def stage_progress(self, stage: str, done: float) -> None:
        self._update(stage, done / self._total if self._total else 1.0)

    def stage_finished(self, stage: str) -> None:
        self._update(stage, 1.0)

    def retrying(self, what: str, delay_s: float, error_class: str, attempt: int,
                 limit: int) -> None:
        self.render(self.fraction, self.stage,
                    f"retrying {what} in {delay_s:.1f} s ({error_class}, attempt {attempt}/{limit})")


class Fanout(Events):
    """Several observers as one."""

    def __init__(self, *observers):
        self.observers = [o for o in observers if o is not None]

    def stage_started(self, stage: str, total: float, done: float = 0.0) -> None:
        for o in self.observers:
            o.stage_started(stage, total, done)

    def stage_progress(self, stage: str, done: float) -> None:
        for o in self.observers:
            o.stage_progress(stage, done)

    def stage_finished(self, stage: str) -> None:
        for o in self.observers:
            o.stage_finished(stage)

    def retrying(self, what: str, delay_s: float, error_class: str, attempt: int,
                 limit: int) -> None:
        for o in self.observers:
            o.retrying(what, delay_s, error_class, attempt, limit)

    def message(self, text: str) -> None:
        for o in self.observers:
            o.message(text)
