"""The queue workers ``serve --workers N`` runs: started, kept alive, stopped.

Each worker is an ordinary ``nllb-pipeline worker`` child process with the
run options ``serve`` was given, so a supervised worker behaves exactly like
one started by hand on the same database. The children run in their own
session: a Ctrl-C in the terminal reaches ``serve`` only, which stops them
in order instead of them racing it.

- A worker that exits while the server runs is started again after
  ``restart_delay_s``; one that keeps dying within ``STABLE_S`` of its
  start waits twice as long each time (up to ``MAX_DELAY_S``), so a worker
  that cannot start (a bad model directory) does not spin.
- ``stop()`` sends SIGTERM to every worker: each stops its job within a
  second or two (a model call in flight finishes first), gives it back to
  the queue and exits. One still running after
  ``grace_s`` is killed; its job is taken over at once by the next worker on
  this host (a dead process's lease is free), from its last committed batch.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger("nllb_pipeline")

STABLE_S = 10.0
MAX_DELAY_S = 30.0


@dataclass
class _Slot:
    proc: subprocess.Popen | None = None
    started: float = 0.0
    due: float = 0.0  # when to start the next process, after a death
    delay: float = 0.0


class WorkerSupervisor:
    """``count`` copies of ``command`` (argv), restarted when they die.

    ``clock`` (seconds) times the restarts: how long a worker lived and when
    the next one is due. The watcher reads it once per check of each worker,
    every ``check_s`` seconds of real time."""

    def __init__(self, command: Sequence[str], count: int, *, env: dict | None = None,
                 restart_delay_s: float = 1.0, grace_s: float = 30.0, check_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic):
        self.command, self.count, self.env = list(command), count, env
        self.restart_delay_s, self.grace_s, self.check_s = restart_delay_s, grace_s, check_s
        self.clock = clock
        self.restarts = 0
        self._slots = [_Slot() for _ in range(count)]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._stop_lock = threading.Lock()
        self._signaled: set[int] = set()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)

    def start(self) -> None:
        with self._lock:
            for slot in self._slots:
                self._spawn(slot)
        self._thread.start()

    def status(self) -> dict:
        with self._lock:
            running = [s.proc.pid for s in self._slots if s.proc and s.proc.poll() is None]
        return {"wanted": self.count, "running": running, "restarts": self.restarts}

    def stop(self, grace_s: float | None = None) -> list[int | None]:
        """Stop every worker (SIGTERM, then SIGKILL after the grace period);
        returns their exit codes. Safe to call more than once."""
        with self._stop_lock:  # a second caller waits for the first one's result
            self._stopping.set()
            with self._lock:
                procs = [s.proc for s in self._slots if s.proc is not None]
            for proc in procs:
                if proc.poll() is None and proc.pid not in self._signaled:
                    # Once: a second SIGTERM could land while the worker's
                    # interpreter shuts down and its handler is gone.
                    self._signaled.add(proc.pid)
                    proc.send_signal(signal.SIGTERM)
            return self._wait(procs, self.grace_s if grace_s is None else grace_s)

    def _wait(self, procs: list[subprocess.Popen], grace_s: float) -> list[int | None]:
        deadline = time.monotonic() + grace_s
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d did not stop in time; killing it (its job resumes on "
                            "the next worker)", proc.pid)
                proc.kill()
                proc.wait()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        return [p.returncode for p in procs]

    def _spawn(self, slot: _Slot) -> None:
        slot.proc = subprocess.Popen(self.command, env=self.env, start_new_session=True)
        slot.started = self.clock()
        log.info("started worker %d", slot.proc.pid)

    def _watch(self) -> None:
        while not self._stopping.wait(self.check_s):
            with self._lock:
                if self._stopping.is_set():
                    return
                for slot in self._slots:
                    self._tend(slot, self.clock())

    def _tend(self, slot: _Slot, now: float) -> None:
        if slot.proc is not None and slot.proc.poll() is not None:
            lived = now - slot.started
            slot.delay = (self.restart_delay_s if lived >= STABLE_S or not slot.delay
                          else min(MAX_DELAY_S, slot.delay * 2))
            log.warning("worker %d exited with code %s after %.0f s; starting another in %.0f s",
                        slot.proc.pid, slot.proc.returncode, lived, slot.delay)
            slot.proc, slot.due = None, now + slot.delay
        if slot.proc is None and now >= slot.due:
            self.restarts += 1
            self._spawn(slot)
