"""Progress on stderr: one listener of the pipeline's events, in two forms.

- On a terminal, a tqdm bar; log lines are written above it (through
  ``tqdm.write``), never glued onto it.
- In a file or a pipe (``2> job.log``, ``2>&1 | tee``, a service's journal),
  whole lines, one per update at a modest rate (a stage's start and end, and
  at most one every ``LINE_INTERVAL_S`` in between), never ``\\r``-joined,
  so the file reads like a log.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from pipeline.config import JobParams
from pipeline.progress import ProgressTracker
from pipeline.store import Job, Store

LINE_INTERVAL_S = 10.0  # a line at least this far apart, unless the stage changes


class _EtaProgress(ProgressTracker):
    """Overall weighted progress (weights measured on this profile's past
    jobs), the stage, tokens per second and an ETA that is frozen while a
    retry waits; subclasses draw it."""

    def __init__(self, history, elapsed_before: float):
        from pipeline.eta import JobEta

        self.eta = JobEta(history, time.time, elapsed_before=elapsed_before)
        super().__init__(self._render, weights=history.weights)

    def stage_started(self, stage: str, total: float, done: float = 0.0) -> None:
        self.eta.stage_started(stage, total, done)
        super().stage_started(stage, total, done)

    def stage_progress(self, stage: str, done: float) -> None:
        self.eta.stage_progress(stage, done)
        super().stage_progress(stage, done)

    def stage_finished(self, stage: str) -> None:
        self.eta.stage_finished(stage)
        super().stage_finished(stage)

    def retrying(self, what, delay_s, error_class, attempt, limit) -> None:
        self.eta.retrying(what, delay_s, error_class, attempt, limit)
        super().retrying(what, delay_s, error_class, attempt, limit)

    def _render(self, fraction: float, stage: str, detail: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class TqdmProgress(_EtaProgress):
    """The bar, for a terminal."""

    def __init__(self, history, elapsed_before: float, stream: TextIO | None = None):
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        super().__init__(history, elapsed_before)
        self.bar = tqdm(total=1000, desc="preprocess", unit="‰", dynamic_ncols=True,
                        bar_format="{desc:<12} {percentage:3.0f}%|{bar}| {elapsed}{postfix}",
                        file=stream or sys.stderr)
        # Log records go through tqdm.write while the bar is up: above it, whole.
        self._logging = logging_redirect_tqdm()
        self._logging.__enter__()

    def _render(self, fraction: float, stage: str, detail: str) -> None:
        self.bar.set_description_str(stage, refresh=False)
        self.bar.set_postfix_str(detail or self.eta.text(), refresh=False)
        self.bar.update(round(fraction * 1000) - self.bar.n)

    def close(self) -> None:
        self._logging.__exit__(None, None, None)
        self.bar.close()


class LineProgress(_EtaProgress):
    """Whole lines, for a file or a pipe:
    ``nllb-pipeline: progress  42% inference  35 tok/s, ETA 1m05s``."""

    def __init__(self, history, elapsed_before: float, stream: TextIO | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 interval_s: float = LINE_INTERVAL_S):
        self.stream, self.clock, self.interval_s = stream or sys.stderr, clock, interval_s
        self._last_at: float | None = None
        self._last_stage: str | None = None
        self._pending: str | None = None  # the newest line not written yet
        self._written: str | None = None
        super().__init__(history, elapsed_before)

    def retrying(self, what, delay_s, error_class, attempt, limit) -> None:
        super().retrying(what, delay_s, error_class, attempt, limit)
        if delay_s >= 1.0 and self._pending is not None:
            # A wait someone could notice: say why nothing moves, now.
            self._write(self._pending, self.clock())

    def _render(self, fraction: float, stage: str, detail: str) -> None:
        line = (f"nllb-pipeline: progress {100 * fraction:3.0f}% {stage:<11} "
                f"{detail or self.eta.text()}")
        now = self.clock()
        if (stage != self._last_stage or self._last_at is None
                or now - self._last_at >= self.interval_s):
            self._write(line, now)
            self._last_stage = stage
        else:
            self._pending = line

    def _write(self, line: str, now: float) -> None:
        if line != self._written:
            print(line, file=self.stream, flush=True)
            self._written = line
        self._last_at, self._pending = now, None

    def close(self) -> None:
        if self._pending is not None:  # where it ended, even within the interval
            self._write(self._pending, self.clock())


def progress_bar(store: Store, job: Job, translator) -> _EtaProgress:
    """The bar on a terminal, lines elsewhere."""
    from pipeline.profiles import history_for

    params = JobParams.from_json(job.params)
    history = history_for(store, translator, params.model)
    elapsed = store.wall_time(job.id)
    if sys.stderr.isatty():
        return TqdmProgress(history, elapsed)
    return LineProgress(history, elapsed)
