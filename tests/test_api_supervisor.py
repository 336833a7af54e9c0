"""The workers ``serve`` keeps: restarted when they die, stopped in order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from pipeline.api.supervisor import WorkerSupervisor
from tests.conftest import wait_until

# Stand-in workers. Each says it has set up its SIGTERM handling by
# creating a file named by its pid in the folder it is given.
READY = "open(os.path.join(sys.argv[1], str(os.getpid())), 'w').close()\n"
# Exits 0 on SIGTERM, as ``nllb-pipeline worker`` does once its job is back
# in the queue.
POLITE = ("import os, signal, sys, time\n"
          "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
          f"{READY}time.sleep(60)\n")
STUBBORN = ("import os, signal, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            f"{READY}time.sleep(60)\n")


def _ready(supervisor, folder) -> list[int]:
    """The running workers that have set up their SIGTERM handling."""
    return [pid for pid in supervisor.status()["running"] if (folder / str(pid)).exists()]


def test_a_worker_that_dies_is_replaced_and_stop_asks_each_to_finish(tmp_path):
    supervisor = WorkerSupervisor([sys.executable, "-c", POLITE, str(tmp_path)], 2,
                                  restart_delay_s=0.1, check_s=0.05)
    supervisor.start()
    try:
        wait_until(lambda: len(supervisor.status()["running"]) == 2, "two workers")
        first = supervisor.status()["running"]
        os.kill(first[0], signal.SIGKILL)
        wait_until(lambda: supervisor.status()["restarts"] == 1
                   and len(_ready(supervisor, tmp_path)) == 2, "a ready replacement")
        now = supervisor.status()["running"]
        assert first[0] not in now and first[1] in now
    finally:
        codes = supervisor.stop(grace_s=10)
    assert codes == [0, 0]  # both stopped by their SIGTERM handler, none killed
    assert supervisor.status()["running"] == []
    time.sleep(0.3)
    assert supervisor.status()["restarts"] == 1  # nothing restarted after stop


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path, monkeypatch):
    supervisor = WorkerSupervisor([sys.executable, "-c", STUBBORN, str(tmp_path)], 1,
                                  check_s=0.05)
    supervisor.start()
    wait_until(lambda: _ready(supervisor, tmp_path), "the worker to ignore SIGTERM")
    waits = []
    real_wait = subprocess.Popen.wait

    def wait(proc, timeout=None):
        waits.append(timeout)
        return real_wait(proc, timeout)

    monkeypatch.setattr(subprocess.Popen, "wait", wait)
    assert supervisor.stop(grace_s=0.5) == [-signal.SIGKILL]
    # It was waited for no longer than the grace period (not the 60 s it
    # sleeps), then killed and reaped.
    assert len(waits) == 2 and 0 < waits[0] <= 0.5 and waits[1] is None


def test_a_worker_that_keeps_dying_waits_longer_each_time():
    now, reads = [0.0], [0]

    def clock() -> float:
        reads[0] += 1
        return now[0]

    def checked():
        """Wait until the watcher has made a whole check after this call
        (it reads the clock once per check)."""
        seen = reads[0]
        wait_until(lambda: reads[0] >= seen + 2, "the watcher's next check")

    supervisor = WorkerSupervisor([sys.executable, "-c", "raise SystemExit(3)"], 1,
                                  restart_delay_s=1.0, check_s=0.005, clock=clock)
    supervisor.start()
    try:
        due = 0.0
        # Each worker dies at once (the clock stands still while it runs):
        # the next is started 1 s later, then 2, 4, 8 s.
        for restarts, delay in enumerate([1.0, 2.0, 4.0, 8.0]):
            wait_until(lambda: not supervisor.status()["running"], "the worker to die")
            checked()  # its death is seen
            due += delay
            now[0] = due - 0.01
            checked()
            assert supervisor.restarts == restarts  # not yet
            now[0] = due
            wait_until(lambda: supervisor.restarts == restarts + 1, "the restart")
    finally:
        supervisor.stop(grace_s=1)


def test_serve_gives_its_workers_the_run_options_it_was_given(tmp_path):
    from pipeline.cli.main import build_parser
    from pipeline.cli.serve import worker_command

    parser = build_parser()
    args = parser.parse_args([
        "serve", "--workers", "2", "--port", "0", "--device", "cpu", "--batch-tokens", "256",
        "--threads", "1", "--retry", "chunk_attempts=2", "--inject-faults", "oom=0.1",
        "--header", "X-Key: $SECRET", "--header", "X-Other: 1", "--overwrite", "-v"])
    argv = worker_command(args, tmp_path / "jobs.db")
    assert argv[:5] == [sys.executable, "-m", "pipeline", "--db", str(tmp_path / "jobs.db")]
    worker = parser.parse_args(argv[3:])
    assert worker.command == "worker" and worker.verbose
    for name, value in [("device", "cpu"), ("batch_tokens", 256), ("threads", 1),
                        ("retry_policy", "chunk_attempts=2"), ("inject_faults", "oom=0.1"),
                        ("headers", ["X-Key: $SECRET", "X-Other: 1"]), ("overwrite", True)]:
        assert getattr(worker, name) == value, name
    assert worker.no_progress  # no bars from several processes on serve's terminal
    # Options left at their defaults stay out: the child reads the same environment.
    assert "--dtype" not in argv and "--http-timeout" not in argv
    assert "--workers" not in argv and "--port" not in argv
