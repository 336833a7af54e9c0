"""The workers ``serve`` keeps: restarted when they die, stopped in order."""

from __future__ import annotations

import os
import signal
import sys
import time

from pipeline.api.supervisor import WorkerSupervisor

# A stand-in worker: exits 0 on SIGTERM, as ``nllb-pipeline worker`` does
# once its job is back in the queue.
POLITE = ("import signal, sys, time\n"
          "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
          "time.sleep(60)\n")
STUBBORN = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n"


def _wait(condition, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_a_worker_that_dies_is_replaced_and_stop_asks_each_to_finish():
    supervisor = WorkerSupervisor([sys.executable, "-c", POLITE], 2, restart_delay_s=0.1,
                                  check_s=0.05)
    supervisor.start()
    try:
        _wait(lambda: len(supervisor.status()["running"]) == 2)
        first = supervisor.status()["running"]
        os.kill(first[0], signal.SIGKILL)
        _wait(lambda: supervisor.status()["restarts"] == 1
              and len(supervisor.status()["running"]) == 2)
        now = supervisor.status()["running"]
        assert first[0] not in now and first[1] in now
        time.sleep(0.5)  # let the new one install its handler
    finally:
        codes = supervisor.stop(grace_s=10)
    assert codes == [0, 0]  # both stopped by their SIGTERM handler, none killed
    assert supervisor.status()["running"] == []
    time.sleep(0.3)
    assert supervisor.status()["restarts"] == 1  # nothing restarted after stop


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace_period():
    supervisor = WorkerSupervisor([sys.executable, "-c", STUBBORN], 1, check_s=0.05)
    supervisor.start()
    time.sleep(0.5)  # let it install its handler
    started = time.monotonic()
    assert supervisor.stop(grace_s=0.5) == [-signal.SIGKILL]
    assert time.monotonic() - started < 5


def test_a_worker_that_keeps_dying_waits_longer_each_time():
    supervisor = WorkerSupervisor([sys.executable, "-c", "raise SystemExit(3)"], 1,
                                  restart_delay_s=0.2, check_s=0.02)
    supervisor.start()
    time.sleep(2.0)
    supervisor.stop(grace_s=1)
    # 0.2 + 0.4 + 0.8 s of waiting fit in 2 s; without backoff it would be ~8 restarts.
    assert 2 <= supervisor.restarts <= 4


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
