"""The translators a worker shares between its jobs (``TranslatorCache``):
held by each job for its run, given back only when no job holds them, and
a job for another model waits for room instead of hanging (a Ray cluster
with CPUs for one model's actors: ``tests/test_ray.py`` runs the real one).
"""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.config import JobParams, RunSettings
from pipeline.documents.inputs import read_input
from pipeline.errors import JobCanceled, WorkerStopping
from pipeline.executors import TranslatorCache
from pipeline.jobs import submit
from pipeline.store import Store
from pipeline.worker import claim_next, run_worker
from tests.conftest import wait_until
from tests.fakes import NO_WAITS, FakeTranslator


class Room(TranslatorCache):
    """A cache with room for ``capacity`` units of translators, each model
    taking ``sizes.get(model, 1)``, like a Ray cluster with CPUs for so many
    actors; it records what it built and closed, and refuses to build
    without room (on Ray, actors that would wait for ever)."""

    def __init__(self, capacity: int = 1, sizes: dict[str, int] | None = None):
        super().__init__(RunSettings(device="cpu"))
        self.capacity, self.sizes = capacity, sizes or {}
        self.built: list[str] = []
        self.closed: list[str] = []
        self.wanted = ""  # the model being built (what _has_room asks about)

    def _used(self) -> int:
        return sum(self.sizes.get(model, 1) for model, _ in self._translators)

    def _make_room(self, key, stop, say) -> None:
        self.wanted = key[0]
        super()._make_room(key, stop, say)

    def _has_room(self) -> bool:
        return self._used() + self.sizes.get(self.wanted, 1) <= self.capacity

    def _build(self, model: str) -> FakeTranslator:
        assert self._has_room(), f"{model} built without room beside {self._translators}"
        self.built.append(model)
        return Closable(lambda: self.closed.append(model))


class Closable(FakeTranslator):
    """Refuses to translate once closed: no job may use a translator given back."""

    def __init__(self, on_close):
        super().__init__()
        self.on_close, self.is_closed = on_close, False

    def translate_batch(self, texts, src_lang, tgt_lang, decoding):
        assert not self.is_closed, "a job used a translator that was given back"
        return super().translate_batch(texts, src_lang, tgt_lang, decoding)

    def close(self) -> None:
        self.is_closed = True
        self.on_close()


def params(model: str) -> JobParams:
    return JobParams(model=model, src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text", output="out.txt")


def in_thread(target) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(target()), daemon=True)
    thread.start()
    return thread, out


def test_a_translator_no_job_holds_is_given_back_to_make_room():
    cache = Room()
    with cache.lease(params("a")) as a:
        assert isinstance(a, FakeTranslator)
    with cache.lease(params("b")):
        pass
    with cache.lease(params("b")):  # kept while there is no need to give it back
        pass
    assert cache.built == ["a", "b"] and cache.closed == ["a"]


def test_a_job_for_another_model_waits_for_the_job_holding_the_room_and_goes_first():
    cache = Room()

    def hold(model: str, seconds: float = 0.0):
        def run():
            with cache.lease(params(model)):
                time.sleep(seconds)
            return model
        return run

    with cache.lease(params("a")):
        b, b_done = in_thread(hold("b"))
        wait_until(lambda: cache._room_wanted, "b waiting for room", timeout=10, interval=0.01)
        # Another job for the model already there waits too, behind b: else
        # jobs for a, as long as they keep coming, would keep b waiting.
        a2, a2_done = in_thread(hold("a"))
        time.sleep(0.2)
        assert not b_done and not a2_done and cache.built == ["a"]
    b.join(10)
    a2.join(10)
    assert b_done == ["b"] and a2_done == ["a"]
    assert cache.built == ["a", "b", "a"] and cache.closed == ["a", "b"]


def test_giving_back_the_idle_ones_is_not_enough_while_a_held_one_takes_the_room():
    cache = Room(2, {"big": 2})
    with cache.lease(params("b")):
        pass  # b: idle
    with cache.lease(params("a")):  # a: held
        thread, out = in_thread(lambda: cache.lease(params("big")).__enter__())
        wait_until(lambda: cache.closed == ["b"], "b given back", timeout=10, interval=0.01)
        time.sleep(0.2)
        assert not out and cache.built == ["b", "a"]  # still waiting for a's job
    thread.join(10)
    assert out and cache.built == ["b", "a", "big"] and cache.closed == ["b", "a"]


def test_a_wait_for_room_ends_when_its_check_raises_or_the_cache_closes():
    cache, stop = Room(), threading.Event()

    def check() -> None:
        if stop.is_set():
            raise JobCanceled("job b canceled")

    def wait_for_b():
        try:
            with cache.lease(params("b"), check=check):
                return "got b"
        except (JobCanceled, WorkerStopping) as exc:
            return str(exc)

    with cache.lease(params("a")):
        thread, out = in_thread(wait_for_b)
        wait_until(lambda: cache._room_wanted, "b waiting for room", timeout=10, interval=0.01)
        stop.set()
        thread.join(10)
        assert out == ["job b canceled"] and not cache._room_wanted and not cache._building
        stop.clear()
        thread, out = in_thread(wait_for_b)
        wait_until(lambda: cache._room_wanted, "b waiting for room", timeout=10, interval=0.01)
        cache.close()
        thread.join(10)
        assert out == ["the worker is stopping"]
    assert cache.built == ["a"]


def queue(tmp_path, models: list[str]) -> tuple[Store, list[str]]:
    store = Store(tmp_path / "jobs.db")
    ids = []
    for n, model in enumerate(models):
        p = JobParams(model=model, src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                      output=str(tmp_path / f"{n}.out"))
        source = tmp_path / f"{n}.txt"
        source.write_text(f"Document {n} for {model}.\n", encoding="utf-8")
        ids.append(submit(store, p, read_input(source))[0].id)
    return store, ids


def test_a_worker_running_two_jobs_at_once_over_two_models_with_room_for_one(tmp_path):
    store, ids = queue(tmp_path, ["a", "b", "a", "b", "a"])
    cache = Room()
    counts = run_worker(store, cache, jobs=2, idle_exit_s=0, poll_s=0.01, policy=NO_WAITS)
    assert counts == {"SUCCEEDED": 5}
    assert not any(cache._users.values()) and not cache._room_wanted
    # Never two at once: each model built after the other was given back.
    assert len(cache.built) - len(cache.closed) == 1
    assert all(x != y for x, y in zip(cache.built, cache.built[1:]))


def test_what_a_job_waits_for_shows_on_every_face_until_its_run_starts(tmp_path):
    from pipeline import views

    store, (job_id,) = queue(tmp_path, ["b"])
    cache, heard = Room(), []
    with cache.lease(params("a")):  # another job's
        thread, counts = in_thread(lambda: run_worker(
            Store(store.path), cache, idle_exit_s=0, poll_s=0.01, policy=NO_WAITS))

        def note() -> str | None:
            job = store.job(job_id)
            return views.job_view(store, job, time.time())["note"] if job.lease_owner else None

        heard.append(wait_until(note, "a note on the waiting job", timeout=10))
        view = views.job_view(store, store.job(job_id), time.time())
        assert view["state"] == "RUNNING" and view["percent"] == 0.0
    thread.join(10)
    assert counts == [{"SUCCEEDED": 1}]
    assert heard == ["waiting for room to load the model: the jobs on a hold it"]
    # Its run's own progress replaced the note.
    last = views.live_progress(store.job(job_id))
    assert "percent" in last and "note" not in last
    with cache.lease(params("c"), say=heard.append):
        pass
    with cache.lease(params("c"), say=heard.append):  # loaded: nothing to wait for
        pass
    assert heard[1:] == ["loading the model"]


def test_a_worker_stopped_while_its_job_waits_for_room_gives_the_job_back(tmp_path):
    store, (job_id,) = queue(tmp_path, ["b"])
    cache, shutdown = Room(), threading.Event()
    with cache.lease(params("a")):  # another job's, on another thread of the worker
        thread, counts = in_thread(lambda: run_worker(
            Store(store.path), cache, shutdown=shutdown, idle_exit_s=0, poll_s=0.01,
            policy=NO_WAITS))
        wait_until(lambda: cache._room_wanted, "the job waiting for room", timeout=10,
                   interval=0.01)
        shutdown.set()
        thread.join(10)
    assert counts == [{"QUEUED": 1}]
    job = store.job(job_id)
    assert job.state == "QUEUED" and not job.lease_owner and not job.error_message
    assert cache.built == ["a"]


def test_a_job_canceled_while_it_waits_for_room_is_canceled_there(tmp_path):
    store, (job_id,) = queue(tmp_path, ["b"])
    cache = Room()
    with cache.lease(params("a")):  # another job's, on another thread of the worker
        thread, counts = in_thread(lambda: run_worker(
            Store(store.path), cache, idle_exit_s=0, poll_s=0.01, policy=NO_WAITS))
        wait_until(lambda: cache._room_wanted, "the job waiting for room", timeout=10,
                   interval=0.01)
        assert store.request_cancel(job_id) == "requested"
        thread.join(10)
        # Ended while the room was still taken: by the wait's own check.
        assert counts == [{"CANCELED": 1}]
    job = store.job(job_id)
    assert job.state == "CANCELED" and not job.lease_owner and cache.built == ["a"]


@pytest.mark.timeout(60)
def test_the_lease_is_renewed_while_a_job_waits_for_its_translator(tmp_path):
    store, (job_id,) = queue(tmp_path, ["slow"])
    ttl, seen = 0.3, []
    other = Store(store.path)

    def slow_to_load(params: JobParams) -> FakeTranslator:
        time.sleep(4 * ttl)  # four leases long: one not renewed would have expired
        seen.append(claim_next(other, "another-worker", ttl))
        return FakeTranslator()

    counts = run_worker(store, slow_to_load, settings=RunSettings(lease_seconds=ttl),
                        idle_exit_s=0, poll_s=0.01, policy=NO_WAITS)
    assert seen == [None] and counts == {"SUCCEEDED": 1}
    other.close()
