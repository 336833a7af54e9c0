"""Time left in a stage: history's rate, moving to the observed rate.

    rate  = w * observed + (1 - w) * history,   w = fraction of the stage done
    ETA   = remaining units / rate

``observed`` is an exponential moving average of units per second over
committed batches (``alpha`` = 0.3), not the instantaneous rate, so one slow
batch does not swing the estimate. At the start only history speaks; near
the end only this job does. With no history the ETA is unknown until the
first batch is observed; with neither, it stays unknown.

While a retry waits (or the job is paused) the ETA is frozen: the clock
time spent waiting is not counted against the rate, and the display says
why instead of counting down.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pipeline.progress.events import overall_fraction


class StageEta:
    def __init__(self, total_units: float, history_rate: float | None,
                 clock: Callable[[], float], *, alpha: float = 0.3, done_units: float = 0.0):
        self.total, self.history, self.clock, self.alpha = total_units, history_rate, clock, alpha
        self.done = done_units
        self.observed: float | None = None
        self._last = (clock(), done_units)
        self.frozen_reason: str | None = None
        self._paused = 0.0  # seconds spent frozen since the last observation
        self._frozen_at: float | None = None

    def observe(self, done_units: float) -> None:
        """A batch was committed: ``done_units`` of the stage are done."""
        now = self.clock()
        last_at, last_done = self._last
        elapsed = now - last_at - self._paused
        if done_units > last_done and elapsed > 0:
            rate = (done_units - last_done) / elapsed
            self.observed = rate if self.observed is None else (
                self.alpha * rate + (1 - self.alpha) * self.observed)
        self.done = done_units
        self._last, self._paused = (now, done_units), 0.0

    def freeze(self, reason: str) -> None:
        if self._frozen_at is None:
            self._frozen_at = self.clock()
        self.frozen_reason = reason

    def unfreeze(self) -> None:
        if self._frozen_at is not None:
            self._paused += self.clock() - self._frozen_at
        self._frozen_at, self.frozen_reason = None, None

    def rate(self) -> float | None:
        """Units per second, blended as in the module docstring; None if unknown."""
        if self.observed is None:
            return self.history
        if self.history is None:
            return self.observed
        w = min(1.0, self.done / self.total) if self.total else 1.0
        return w * self.observed + (1 - w) * self.history

    def seconds_left(self) -> float | None:
        rate = self.rate()
        if rate is None or rate <= 0:
            return None
        return max(0.0, self.total - self.done) / rate


def seconds_left(stage: str, done_tokens: float, total_tokens: float, rate: float | None,
                 weights: Mapping[str, float], fraction: float) -> float | None:
    """A job's seconds left from inference's ``rate`` (tokens per second):
    the tokens still to translate, plus the stages after inference
    (postprocess and upload), predicted from inference's whole time by the
    stage ``weights``. In postprocess or upload, the part of that tail's
    weight not yet done (``fraction``: the job's overall weighted progress).
    None while the rate is unknown.

    The one ETA formula: the bar and the stored snapshot (``JobEta``, with
    the rate it observes) and the read commands for a job without a
    snapshot (``pipeline.views``, with its profile's rate) both call it."""
    if not rate:
        return None
    tail = total_tokens / rate * (weights["postprocess"] + weights["upload"]) / weights["inference"]
    if stage == "inference":
        return max(0.0, total_tokens - done_tokens) / rate + tail
    tail_share = (weights["postprocess"] + weights["upload"]) / sum(weights.values())
    return tail * max(0.0, 1.0 - fraction) / tail_share if tail_share else 0.0


def format_eta(seconds: float | None, frozen_reason: str | None = None) -> str:
    """``ETA 3m12s``, ``ETA unknown``, or ``ETA paused: <reason>``."""
    if frozen_reason:
        return f"ETA paused: {frozen_reason}"
    if seconds is None:
        return "ETA unknown"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"ETA {hours}h{minutes:02d}m"
    if minutes:
        return f"ETA {minutes}m{secs:02d}s"
    return f"ETA {secs}s"


class JobEta:
    """The whole job's time left, as an observer of pipeline events.

    Inference is timed with a ``StageEta``; what comes after it (postprocess
    and upload) is predicted from inference's time by the stage weights. The
    first time the job passes 10, 25, 50, 75 and 90% of its weighted progress with
    a known ETA, ``on_mark(percent, elapsed_s, predicted_total_s)`` is
    called, so predictions can be checked against the actual total later.
    """

    MARKS = (10, 25, 50, 75, 90)

    def __init__(self, history, clock: Callable[[], float], *, elapsed_before: float = 0.0,
                 on_mark: Callable[[int, float, float], None] | None = None):
        self.history, self.weights, self.clock = history, history.weights, clock
        self.started, self.elapsed_before = clock(), elapsed_before
        self.on_mark, self.marked = on_mark, set()
        self.stage, self.stage_total, self.fraction = "preprocess", 0.0, 0.0
        self.stage_done = 0.0  # in the stage's own unit (STAGE_UNITS)
        self.inference: StageEta | None = None

    # -- events -------------------------------------------------------------

    def stage_started(self, stage: str, total: float, done: float = 0.0) -> None:
        self.stage, self.stage_total, self.stage_done = stage, total, done
        if stage == "inference":
            self.inference = StageEta(total, self.history.rates.get("inference"), self.clock,
                                      done_units=done)
        self._advance(done / total if total else 0.0)

    def stage_progress(self, stage: str, done: float) -> None:
        if stage == "inference" and self.inference is not None:
            self.inference.unfreeze()
            self.inference.observe(done)
        self.stage_done = done
        self._advance(done / self.stage_total if self.stage_total else 1.0)

    def stage_finished(self, stage: str) -> None:
        self.stage_done = self.stage_total
        self._advance(1.0)

    def retrying(self, what: str, delay_s: float, error_class: str, attempt: int,
                 limit: int) -> None:
        if self.inference is not None:
            self.inference.freeze(f"retrying {what}")

    def message(self, text: str) -> None:
        pass

    # -- estimates ----------------------------------------------------------

    def elapsed(self) -> float:
        return self.elapsed_before + self.clock() - self.started

    def seconds_left(self) -> float | None:
        if self.inference is None:
            # Before any token is counted: the profile's seconds per input byte.
            per_byte = getattr(self.history, "seconds_per_byte", None)
            if self.stage == "preprocess" and per_byte and self.stage_total:
                return self.stage_total * per_byte * (1.0 - self.fraction)
            return None
        return seconds_left(self.stage, self.inference.done, self.inference.total,
                            self.inference.rate(), self.weights, self.fraction)

    def text(self, since_event_s: float = 0.0) -> str:
        """``35 tok/s, ETA 1m05s``; ``since_event_s`` after the last event
        the ETA has counted down that much (a display between events)."""
        rate = self.inference.rate() if self.inference is not None else None
        frozen = self.inference.frozen_reason if self.inference is not None else None
        speed = f"{rate:.0f} tok/s, " if rate and self.stage == "inference" else ""
        left = self.seconds_left()
        if left is not None and not frozen:
            left = max(0.0, left - since_event_s)
        return speed + format_eta(left, frozen)

    def _advance(self, stage_fraction: float) -> None:
        self.fraction = max(self.fraction,
                            overall_fraction(self.stage, stage_fraction, self.weights))
        if self.on_mark is None:
            return
        for mark in self.MARKS:
            if mark in self.marked or self.fraction * 100 < mark:
                continue
            left = self.seconds_left()
            if left is None:
                return  # not knowable yet; try again at the next event
            self.marked.add(mark)
            elapsed = self.elapsed()
            self.on_mark(mark, elapsed, elapsed + left)
