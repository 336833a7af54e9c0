"""The Ray executor (``worker --executor ray``) on a local Ray instance the
tests start: CPU, the tiny model, two actors.

The in-process tests share one Ray instance and one pool of two actors
whose calls are slowed (``--inject-faults slow=...``) so that batches are
really in flight when an actor is killed or a job cancelled; the driver
tests run ``nllb-pipeline worker --executor ray`` as a process and kill it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipeline import service
from pipeline.config import RunSettings
from pipeline.errors import ErrorClass
from pipeline.executors import TranslatorCache
from pipeline.service import JobOptions, Runtime
from pipeline.store import Store
from tests.conftest import ROOT, cli_env, run_cli, start_cli, wait_until

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
ray_pool = pytest.importorskip("models.ray_pool")
ray_cluster = pytest.importorskip("models.ray_cluster")

# One Ray instance at a time: under pytest-xdist this file and the Ray
# benchmark's smoke run (tests/test_benchmarks.py) share one worker.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240), pytest.mark.xdist_group("ray")]

SETTINGS = RunSettings(device="cpu", batch_tokens=192)
SAMPLE = (ROOT / "pipeline" / "data" / "sample.md").read_text(encoding="utf-8")


def documents(folder: Path, n: int, *, size: int = 1400) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paragraphs = [p for p in SAMPLE.split("\n\n") if p.strip() and not p.startswith(("#", "```"))]
    paths = []
    for i in range(n):
        body, k = [f"Document number {i} begins here."], i
        while sum(map(len, body)) < size:
            body.append(paragraphs[k % len(paragraphs)])
            k += 3
        path = folder / f"doc{i:02d}.txt"
        path.write_text("\n\n".join(body) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def submit(db: Path, paths: list[Path], model: Path) -> list[str]:
    store = Store(db)
    try:
        results = service.submit_paths(store, paths, JobOptions(src="eng_Latn", tgt="fra_Latn",
                                                                model=str(model)))
        return [r.job.id for r in results]
    finally:
        store.close()


def outputs(paths: list[Path]) -> dict[str, bytes]:
    return {p.name: p.with_name(f"{p.stem}.fra_Latn{p.suffix}").read_bytes() for p in paths}


def local_outputs(tmp_path: Path, paths: list[Path], model: Path) -> dict[str, bytes]:
    """What a local worker makes of the same documents (copies of them)."""
    folder = tmp_path / "local"
    folder.mkdir()
    copies = []
    for p in paths:
        copies.append(folder / p.name)
        copies[-1].write_bytes(p.read_bytes())
    db = tmp_path / "local.db"
    submit(db, copies, model)
    store = Store(db)
    counts = service.run_worker(store, Runtime(SETTINGS, translators=TranslatorCache(SETTINGS)),
                                idle_exit_s=0, poll_s=0.05)
    store.close()
    assert counts == {"SUCCEEDED": len(paths)}
    return outputs(copies)


def commits(db: Path) -> list[int]:
    """How often each chunk a batch translated was committed (and any
    other chunk, if one was committed at all)."""
    store = Store(db)
    try:
        return [c for (c,) in store.db.execute(
            "SELECT commits FROM chunks WHERE batch_id IS NOT NULL OR commits > 0")]
    finally:
        store.close()


@pytest.fixture(scope="module")
def joined() -> bool:
    """A private Ray instance, joined as ``worker --executor ray`` joins it:
    with the worker's SIGTERM handler installed first. True if that handler
    is still SIGTERM's afterwards."""
    def ours(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, ours)
    try:
        ray_cluster.connect("local")
        return signal.getsignal(signal.SIGTERM) is ours
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="module")
def pool(tiny_model, joined):
    """Two actors on a private Ray instance, each call slowed by 0.05 s."""
    translators = ray_cluster.RayTranslators(SETTINGS, ray_cluster.PoolOptions(actors=2),
                                          inject_faults="slow=0.05")
    yield translators
    translators.close()


def drive(db: Path, translators, **kwargs) -> dict:
    store = Store(db)
    try:
        return service.run_worker(store, Runtime(SETTINGS, translators=translators), jobs=2,
                                  idle_exit_s=0, poll_s=0.05, **kwargs)
    finally:
        store.close()


def in_flight(translators) -> int:
    return sum(p._load[n] for p in translators.pools() for n in list(p._load))


def test_ten_documents_through_two_actors_match_a_local_worker(tmp_path, tiny_model, pool):
    paths = documents(tmp_path / "docs", 10, size=900)
    db = tmp_path / "ray.db"
    submit(db, paths, tiny_model)
    assert drive(db, pool) == {"SUCCEEDED": 10}
    assert outputs(paths) == local_outputs(tmp_path, paths, tiny_model)
    assert set(commits(db)) == {1}  # every translated chunk committed exactly once
    store = Store(db)
    ran_on = {where for job in store.jobs() for where in store.ran_on_counts(job.id)}
    actors = {where.split(" pid ")[0] for where in ran_on}
    batches = store.db.execute("SELECT COUNT(*) FROM batches WHERE state = 'committed'").fetchone()
    store.close()
    assert actors == {"actor 1", "actor 2"}, ran_on
    assert batches[0] >= 15  # enough batches for the window to matter


def test_an_actor_killed_while_it_holds_batches_costs_nothing(tmp_path, tiny_model, pool):
    paths = documents(tmp_path / "docs", 2, size=2400)
    db = tmp_path / "ray.db"
    job_ids = submit(db, paths, tiny_model)
    done = {}
    driver = threading.Thread(target=lambda: done.update(drive(db, pool)))
    driver.start()
    wait_until(lambda: in_flight(pool) >= 3, "3 batches in flight", timeout=60, interval=0.02)
    victim = pool.pools()[0].wheres()[0]
    os.kill(victim.pid, signal.SIGKILL)
    driver.join(120)
    assert done == {"SUCCEEDED": 2}
    assert outputs(paths) == local_outputs(tmp_path, paths, tiny_model)
    assert set(commits(db)) == {1}
    logs = [a for job in job_ids for a in run_logs(db, job)]
    lost = [a for a in logs if a["error_class"] == ErrorClass.WORKER_LOST.value]
    assert lost and all(a["decision"] == "resend" for a in lost)
    assert {a["ran_on"] for a in lost} == {str(victim)}
    text = run_cli("logs", job_ids[0], db=db).stdout + run_cli("logs", job_ids[1], db=db).stdout
    assert "worker_lost" in text and f"on actor {victim.actor} pid {victim.pid}" in text


def test_two_models_in_one_queue_take_turns_on_a_cluster_with_room_for_one_pool(
        tmp_path, tiny_model, trained_model, pool, caplog):
    # Two actors of one CPU each fill this two-CPU instance: the second
    # model's actors could never start beside the first's. A model's pool
    # is given back when no job holds it, and the job for the other model,
    # claimed at the same time (two jobs at once), waits for that.
    import logging

    paths = documents(tmp_path / "docs", 2, size=500)
    db = tmp_path / "ray.db"
    # The tiny model first: the tests above leave its pool loaded, so one
    # pool starts here, the trained model's, once the tiny model's job ends.
    submit(db, paths[:1], tiny_model)
    submit(db, paths[1:], trained_model)
    with caplog.at_level(logging.INFO, logger="nllb_pipeline"):
        assert drive(db, pool) == {"SUCCEEDED": 2}
    if ray.cluster_resources()["CPU"] < 4:  # room for one pool of two actors
        assert "to make room for" in caplog.text
        assert "waiting for their jobs to end" in caplog.text
    assert not pool._room_wanted and not any(pool._users.values())
    # The same translation as a local worker makes with the trained model
    # (the tiny model's is compared in the tests above and below).
    assert outputs(paths[1:]) == local_outputs(tmp_path, paths[1:], trained_model)


def test_a_pool_the_cluster_can_never_hold_is_a_one_line_error(tiny_model, pool):
    from pipeline.errors import InvalidInput

    cpus = int(ray.cluster_resources()["CPU"])
    with pytest.raises(InvalidInput, match=rf"{cpus + 1} actor\(s\) at --cpus-per-actor 1 need "
                                            rf"{cpus + 1} CPUs; the Ray cluster has {cpus} "):
        ray_cluster.pool_shape(ray_cluster.PoolOptions(actors=cpus + 1))


def run_logs(db: Path, job_id: str) -> list[dict]:
    import json

    return json.loads(run_cli("logs", job_id, "--json", db=db).stdout)


def test_cancel_while_batches_are_in_flight_commits_nothing_after_it(tmp_path, tiny_model,
                                                                    pool):
    from pipeline.samples import generate_text

    # Long enough (seconds on the actors; sentences that do not repeat) that
    # the cancel command, a process of its own, lands while batches remain.
    (tmp_path / "docs").mkdir()
    paths = [tmp_path / "docs" / "long.txt"]
    paths[0].write_text(generate_text(600, seed=5), encoding="utf-8")
    db = tmp_path / "ray.db"
    (job_id,) = submit(db, paths, tiny_model)
    done = {}
    driver = threading.Thread(target=lambda: done.update(drive(db, pool)))
    driver.start()
    store = Store(db)

    def committed() -> int:
        return store.db.execute("SELECT COUNT(*) FROM batches WHERE job_id = ? AND "
                                "state = 'committed'", (job_id,)).fetchone()[0]

    wait_until(lambda: committed() >= 2 and in_flight(pool) >= 2,
               "2 committed batches and 2 in flight", timeout=60, interval=0.02)
    assert "cancel requested" in run_cli("cancel", job_id, db=db).stdout
    at_cancel = committed()
    driver.join(60)
    assert done == {"CANCELED": 1}
    # At most the batch whose commit was under way when the cancel landed.
    assert committed() <= at_cancel + 1
    pending = store.db.execute("SELECT COUNT(*) FROM batches WHERE job_id = ? AND "
                               "state = 'pending'", (job_id,)).fetchone()[0]
    store.close()
    assert pending > 0  # there was work left to drop


def worker_args(*extra: str) -> list[str]:
    return ["worker", "--executor", "ray", "--ray-address", "local", "--actors", "1",
            "--idle-exit", "0", "--batch-tokens", "192", "--device", "cpu", *extra]


def test_a_driver_killed_mid_job_is_resumed_by_the_next_one(tmp_path, tiny_model):
    paths = documents(tmp_path / "docs", 1, size=2000)
    db = tmp_path / "ray.db"
    (job_id,) = submit(db, paths, tiny_model)
    proc = start_cli(*worker_args("--inject-faults", "slow=0.3"), db=db,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    store = Store(db)

    def committed() -> dict[int, float]:
        return dict(store.db.execute("SELECT id, committed_at FROM batches WHERE job_id = ? AND "
                                     "state = 'committed'", (job_id,)).fetchall())

    try:
        def three_committed():
            assert proc.poll() is None, proc.stdout.read().decode()
            return len(committed()) >= 3

        wait_until(three_committed, "3 committed batches", timeout=90, interval=0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray instance it started
        proc.wait()
    before = committed()
    assert before and store.job(job_id).state == "RUNNING"
    run = run_cli(*worker_args(), db=db, timeout=180)
    assert "1 SUCCEEDED" in run.stdout
    # One format for what it says, Ray's start included (no line of Ray's own).
    assert all(line.startswith("nllb-pipeline: ") for line in run.stderr.splitlines()), run.stderr
    after = committed()
    store.close()
    assert {k: after[k] for k in before} == before  # no committed batch ran again
    assert set(commits(db)) == {1}
    assert outputs(paths) == local_outputs(tmp_path, paths, tiny_model)


def test_ray_errors_are_worker_lost_and_remote_failures_keep_their_class():
    import ray.exceptions as rex

    for types, _ in ray_pool.ERROR_TABLE:
        assert ray_pool.classify(types.__new__(types)) is ErrorClass.WORKER_LOST
    remote = ray_pool.RemoteFailure("oom", "CUDA out of memory")
    assert ray_pool.classify(remote) is ErrorClass.OOM
    wrapped = rex.RayTaskError("translate", "Traceback ...", remote)
    assert ray_pool.classify(wrapped) is ErrorClass.OOM
    assert ray_pool.classify(ValueError("not Ray's")) is None


def test_worker_options_that_do_not_go_together_are_one_line_errors(tmp_path):
    db = tmp_path / "jobs.db"
    for args, message in [
        (["--actors", "2"], "--actors needs --executor ray"),
        (["--jobs", "3"], "--jobs above 1 needs --executor ray"),
        (["--executor", "ray", "--ray-address", "10.0.0.1:6379"], "--ray-address takes auto"),
        (["--executor", "ray", "--fallback-device", "cpu"], "--fallback-device does not apply"),
    ]:
        proc = run_cli("worker", "--idle-exit", "0", *args, db=db, check=False)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr


def test_joining_ray_keeps_the_workers_sigterm_handler(joined):
    """ray.init replaces SIGTERM's handler with one that exits at once: a
    worker stopped by SIGTERM then shut Ray down under its batches in
    flight, and the job failed instead of going back to the queue."""
    assert joined


def test_without_ray_installed_the_executor_says_how_to_install_it(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"
            "from pipeline.cli import main\n"
            "sys.exit(main(['worker', '--executor', 'ray', '--idle-exit', '0']))\n")
    proc = subprocess.run([sys.executable, "-c", code], env=cli_env(tmp_path / "jobs.db"),
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'nllb-pipeline[ray]'" in lines[0], proc.stderr


class _Remote:
    """A stand-in for an actor method: ``.remote()`` gives an object whose
    ``future()`` is the next of ``outcomes`` (a result or an exception)."""

    def __init__(self, outcomes):
        self.outcomes = outcomes

    def remote(self, *args):
        from concurrent.futures import Future

        outcome, future = self.outcomes.pop(0), Future()
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
        return type("Ref", (), {"future": lambda self: future})()


def fake_pool(monkeypatch, outcomes, *, give_up_after=3):
    """An ActorPool over one stand-in actor (pid 100): no Ray processes."""
    from models.ray_pool import ActorPool, Where
    from pipeline.translator import TranslatorInfo

    killed = []
    monkeypatch.setattr(ray_pool.ray, "kill", lambda handle, no_restart: killed.append(no_restart))
    handle = type("Handle", (), {})()
    handle.translate = _Remote(outcomes)
    handle.where = _Remote([])
    pool = ActorPool.__new__(ActorPool)
    info = TranslatorInfo("hf", "m", "cuda:0", "float16", 8192, 1024, 1024)
    # The real constructor asks live actors where they run: set its fields instead.
    pool._handles, pool._load, pool._deaths = {1: handle}, {1: 0}, {1: 0}
    pool._counted, pool._restarting, pool.give_up_after = set(), set(), give_up_after
    pool._lock, pool.timings = threading.Lock(), __import__("collections").deque()
    pool._where = {1: Where(1, 100, "n" * 16, "gpu-node", info)}
    pool.info = info
    monkeypatch.setattr(pool, "_await_restart", lambda n, handle: pool._restarting.discard(n))
    return pool, killed


def test_a_broken_device_restarts_its_actor_and_the_batch_is_worker_lost(monkeypatch):
    from pipeline.translator import Decoding

    fatal = ray_pool.RemoteFailure("device_fatal", "CUDA error: an illegal memory access")
    pool, killed = fake_pool(monkeypatch, [fatal, fatal, (100, [], 0.5)])
    result = pool.submit(["x"], "eng_Latn", "fra_Latn", Decoding()).result()
    exc = result.error
    assert ray_pool.classify(exc) is ErrorClass.WORKER_LOST
    assert "illegal memory access" in str(exc) and result.ran_on.startswith("actor 1 pid 100")
    assert killed == [False]  # killed so that Ray starts it again: a fresh CUDA context
    # A second failure of the same process is not a second death.
    assert pool.submit(["x"], "eng_Latn", "fra_Latn", Decoding()).result().error is not None
    assert pool._deaths[1] == 1 and pool.size == 1
    assert pool.submit(["x"], "eng_Latn", "fra_Latn", Decoding()).result().ran_on.startswith(
        "actor 1 pid 100")


def test_an_actor_lost_as_often_as_the_limit_is_given_up(monkeypatch):
    import ray.exceptions as rex

    from pipeline.errors import PipelineError
    from pipeline.translator import Decoding

    lost = rex.ActorDiedError()
    pool, killed = fake_pool(monkeypatch, [lost, lost], give_up_after=2)
    pool.submit(["x"], "eng_Latn", "fra_Latn", Decoding()).result()
    assert pool.size == 1 and killed == []  # Ray restarts it
    pool._where[1] = dataclasses_replace(pool._where[1], pid=101)  # the restarted process
    pool.submit(["x"], "eng_Latn", "fra_Latn", Decoding()).result()
    assert pool.size == 0 and killed == [True]  # given up: Ray must not restart it
    assert pool._deaths[1] == 2
    with pytest.raises(PipelineError, match="every Ray actor was given up"):
        pool.submit(["x"], "eng_Latn", "fra_Latn", Decoding())


def dataclasses_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)
