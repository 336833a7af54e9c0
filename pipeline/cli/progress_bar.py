"""Progress on stderr: one listener of the pipeline's events, in two forms.

- On a terminal, a tqdm bar; log lines are written above it (through
  ``tqdm.write``), never glued onto it.
- In a file or a pipe (``2> job.log``, ``2>&1 | tee``, a service's journal),
  whole lines, one per update at a modest rate (a stage's start and end, and
  at most one every ``LINE_INTERVAL_S`` in between), never ``\\r``-joined,
  so the file reads like a log; with ``--log-format json`` each line is a
  JSON object.

Both move while no event comes (a first batch can take a minute): a
``Ticker`` redraws the bar every second, so its elapsed time ticks and its
ETA counts down, and writes a line at least every ``LINE_INTERVAL_S``.

A worker that runs several jobs at once shows a compact line per job
(``nllb-pipeline: progress job 1a2b3c  42% inference ...``) instead of bars
that would overwrite each other.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from pipeline.cli.messages import json_line
from pipeline.config import JobParams
from pipeline.progress import ProgressTracker
from pipeline.store import Job, Store

LINE_INTERVAL_S = 10.0  # a line at least this often, and no more often unless the stage changes
TICK_S = 1.0  # how often the display moves without an event
BAR_FORMAT = "{desc:<12} {percentage:3.0f}%|{bar}| "


def format_elapsed(seconds: float) -> str:
    """``00:07``, ``12:34``, ``1:02:03`` (as tqdm writes elapsed time)."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Ticker:
    """Calls ``tick`` every ``interval_s`` on a daemon thread until closed."""

    def __init__(self, tick: Callable[[], None], interval_s: float = TICK_S):
        self.tick, self.interval_s = tick, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name="progress-tick", daemon=True)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def run(self, wait: Callable[[float], bool] | None = None) -> None:
        """Tick until ``wait(interval)`` says stop (tests pass a fake wait)."""
        wait = wait or self._stop.wait
        while not wait(self.interval_s):
            self.tick()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class _EtaProgress(ProgressTracker):
    """Overall weighted progress (weights measured on this profile's past
    jobs), the stage, tokens per second and an ETA that is frozen while a
    retry waits, with the time this run has taken; subclasses draw it.
    Events come from the job's thread and ticks from the ticker's, so
    drawing holds a lock."""

    def __init__(self, history, elapsed_before: float, *,
                 clock: Callable[[], float] = time.monotonic):
        from pipeline.progress.eta import JobEta

        self.clock = clock
        self.eta = JobEta(history, clock, elapsed_before=elapsed_before)
        self.started = self._event_at = clock()
        self._lock = threading.RLock()
        self._shown = (0.0, "preprocess", "")  # the last render's (fraction, stage, detail)
        super().__init__(self._render, weights=history.weights)

    def stage_started(self, stage: str, total: float, done: float = 0.0) -> None:
        with self._lock:
            self.eta.stage_started(stage, total, done)
            self._event_at = self.clock()
            super().stage_started(stage, total, done)

    def stage_progress(self, stage: str, done: float) -> None:
        with self._lock:
            self.eta.stage_progress(stage, done)
            self._event_at = self.clock()
            super().stage_progress(stage, done)

    def stage_finished(self, stage: str) -> None:
        with self._lock:
            self.eta.stage_finished(stage)
            self._event_at = self.clock()
            super().stage_finished(stage)

    def retrying(self, what, delay_s, error_class, attempt, limit) -> None:
        with self._lock:
            self.eta.retrying(what, delay_s, error_class, attempt, limit)
            super().retrying(what, delay_s, error_class, attempt, limit)

    def tick(self) -> None:
        """Draw again with the time that passed (no event came)."""
        with self._lock:
            self._draw(*self._shown, ticked=True)

    def detail(self, detail: str) -> str:
        """``00:07  35 tok/s, ETA 1m05s`` (or a retry's wait) as of now."""
        now = self.clock()
        text = detail or self.eta.text(since_event_s=now - self._event_at)
        return f"{format_elapsed(now - self.started)}  {text}"

    def _render(self, fraction: float, stage: str, detail: str) -> None:
        with self._lock:
            self._shown = (fraction, stage, detail)
            self._draw(fraction, stage, detail, ticked=False)

    def _draw(self, fraction: float, stage: str, detail: str, *, ticked: bool) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class TqdmProgress(_EtaProgress):
    """The bar, for a terminal."""

    def __init__(self, history, elapsed_before: float, stream: TextIO | None = None, *,
                 clock: Callable[[], float] = time.monotonic, tick_s: float | None = TICK_S):
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        super().__init__(history, elapsed_before, clock=clock)
        self.bar = tqdm(total=1000, desc="preprocess", unit="‰", dynamic_ncols=True,
                        bar_format=BAR_FORMAT, file=stream or sys.stderr)
        # Log records go through tqdm.write while the bar is up: above it, whole.
        self._logging = logging_redirect_tqdm()
        self._logging.__enter__()
        self.ticker = Ticker(self.tick, tick_s).start() if tick_s else None

    def _draw(self, fraction: float, stage: str, detail: str, *, ticked: bool) -> None:
        self.bar.set_description_str(stage, refresh=False)
        # Our own time and ETA after the bar (tqdm's {postfix} would add a comma).
        text = self.detail(detail).replace("{", "{{").replace("}", "}}")
        self.bar.bar_format = BAR_FORMAT + text
        self.bar.n = round(fraction * 1000)
        self.bar.refresh()  # update(0) would not redraw a new stage or a new time

    def close(self) -> None:
        if self.ticker is not None:
            self.ticker.close()
        with self._lock:
            self._logging.__exit__(None, None, None)
            self.bar.close()


class LineProgress(_EtaProgress):
    """Whole lines, for a file or a pipe:
    ``nllb-pipeline: progress  42% inference   01:05  35 tok/s, ETA 1m05s``;
    ``label`` (a job's id, when a worker runs several) comes after
    ``progress``."""

    def __init__(self, history, elapsed_before: float, stream: TextIO | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 interval_s: float = LINE_INTERVAL_S, tick_s: float | None = TICK_S,
                 log_format: str = "text", label: str = "",
                 wall_clock: Callable[[], float] = time.time):
        self.stream, self.interval_s = stream or sys.stderr, interval_s
        self.log_format, self.label, self.wall_clock = log_format, label, wall_clock
        self._last_at: float | None = None
        self._last_stage: str | None = None
        self._pending: tuple | None = None  # the newest render not written yet
        self._written: str | None = None
        super().__init__(history, elapsed_before, clock=clock)
        self.ticker = Ticker(self.tick, tick_s).start() if tick_s else None

    def retrying(self, what, delay_s, error_class, attempt, limit) -> None:
        super().retrying(what, delay_s, error_class, attempt, limit)
        with self._lock:
            if delay_s >= 1.0 and self._pending is not None:
                # A wait someone could notice: say why nothing moves, now.
                self._write(*self._pending)

    def _draw(self, fraction: float, stage: str, detail: str, *, ticked: bool) -> None:
        now = self.clock()
        due = self._last_at is None or now - self._last_at >= self.interval_s
        if ticked:
            if due:  # nothing happened for a while: say so, with the time it has taken
                self._write(fraction, stage, detail)
            return
        if stage != self._last_stage or due:
            self._write(fraction, stage, detail)
        else:
            self._pending = (fraction, stage, detail)

    def _write(self, fraction: float, stage: str, detail: str) -> None:
        text = self.detail(detail)
        label = f"job {self.label} " if self.label else ""
        if self.log_format == "json":
            line = json_line("info", f"{label}{100 * fraction:3.0f}% {stage} {text}",
                             at=self.wall_clock(), event="progress",
                             percent=round(100 * fraction, 1), stage=stage,
                             **({"job": self.label} if self.label else {}))
        else:
            line = f"nllb-pipeline: progress {label}{100 * fraction:3.0f}% {stage:<11} {text}"
        if line != self._written:
            print(line, file=self.stream, flush=True)
            self._written = line
        self._last_at, self._last_stage, self._pending = self.clock(), stage, None

    def close(self) -> None:
        if self.ticker is not None:
            self.ticker.close()
        with self._lock:
            if self._pending is not None:  # where it ended, even within the interval
                self._write(*self._pending)


def progress_bar(store: Store, job: Job, translator, *, log_format: str = "text",
                 compact: bool = False) -> _EtaProgress:
    """The bar on a terminal, lines elsewhere; with ``compact`` (a worker
    running several jobs at once) lines labelled with the job, everywhere."""
    from pipeline.progress.profiles import history_for

    params = JobParams.from_json(job.params)
    history = history_for(store, translator, params.model)
    elapsed = store.wall_time(job.id)
    if compact:
        return LineProgress(history, elapsed, log_format=log_format, label=job.id)
    if sys.stderr.isatty() and log_format == "text":
        return TqdmProgress(history, elapsed)
    return LineProgress(history, elapsed, log_format=log_format)


def bar_unless(args, *, compact: bool = False):
    """``progress_bar`` for this command's options, or None with
    --no-progress or --json."""
    if getattr(args, "no_progress", False) or getattr(args, "json", False):
        return None
    return functools.partial(progress_bar, log_format=getattr(args, "log_format", "text"),
                             compact=compact)
