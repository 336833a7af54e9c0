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
# Each stage's unit of progress (DESIGN.md, "Stages"): what its done/total count.
STAGE_UNITS: Mapping[str, str] = {
    "preprocess": "bytes", "inference": "tokens", "postprocess": "chunks", "upload": "bytes",
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


class LiveProgress(Events):
    """Keeps a running job's progress in the store, as its bar shows it.

    The runner feeds one ``JobEta`` (the ETA the bar shows too) through
    this observer, which saves a snapshot on every stage change, retry wait
    and committed batch, and at most once per ``min_interval_s`` for the
    finer-grained progress of the other stages (bytes read or sent):

        {"stage", "percent" (measured weights), "eta_s" (None: unknown),
         "stage_units": {"unit", "done", "total"} (the stage's own measure, the
         same the percent counts), "tokens_per_s", "at" (unix time of the snapshot),
         "waiting": {"what", "until", "error_class", "attempt", "limit"} or None,
         "weights": {stage: share}}

    ``status``, ``show`` and the HTTP API read it back, so every face shows
    the same percent and ETA (``pipeline.views.live_progress``). Before the
    run starts, a worker's job may hold ``{"stage", "note", "at"}`` instead:
    what it waits for (``pipeline.worker``: the model loading, room for it).
    """

    def __init__(self, eta, save: Callable[[dict], None], clock: Callable[[], float], *,
                 min_interval_s: float = 1.0):
        self.eta, self.save, self.clock, self.min_interval_s = eta, save, clock, min_interval_s
        self.waiting: dict | None = None
        self._saved_at = -float("inf")

    def stage_started(self, stage: str, total: float, done: float = 0.0) -> None:
        self.eta.stage_started(stage, total, done)
        self._save(force=True)

    def stage_progress(self, stage: str, done: float) -> None:
        self.eta.stage_progress(stage, done)
        forced = self.waiting is not None or stage == "inference"  # a batch committed
        self.waiting = None
        self._save(force=forced)

    def stage_finished(self, stage: str) -> None:
        self.eta.stage_finished(stage)
        self._save(force=True)

    def retrying(self, what: str, delay_s: float, error_class: str, attempt: int,
                 limit: int) -> None:
        self.eta.retrying(what, delay_s, error_class, attempt, limit)
        self.waiting = {"what": what, "until": self.clock() + delay_s,
                        "error_class": error_class, "attempt": attempt, "limit": limit}
        self._save(force=True)

    def snapshot(self) -> dict:
        eta = self.eta
        rate = eta.inference.rate() if eta.inference is not None else None
        left = None if self.waiting else eta.seconds_left()
        return {"stage": eta.stage, "percent": round(100.0 * eta.fraction, 2),
                "stage_units": {"unit": STAGE_UNITS.get(eta.stage, "units"),
                                "done": round(min(eta.stage_done, eta.stage_total)),
                                "total": round(eta.stage_total)},
                "eta_s": round(left, 1) if left is not None else None,
                "tokens_per_s": round(rate, 1) if rate and eta.stage == "inference" else None,
                "at": self.clock(), "waiting": self.waiting,
                "weights": {s: round(w, 4) for s, w in eta.weights.items()}}

    def _save(self, *, force: bool = False) -> None:
        now = self.clock()
        if force or now - self._saved_at >= self.min_interval_s:
            self._saved_at = now
            self.save(self.snapshot())
