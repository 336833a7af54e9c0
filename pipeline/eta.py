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

from collections.abc import Callable


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
