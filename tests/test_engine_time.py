"""The engine's time and its waits for the pipeline, stored on each batch
(``batches.call_s``, ``idle_s``) and summed by ``show``.

What ``benchmarks/scale.py`` reads to tell a slower engine from a pipeline
that keeps it waiting. The figures are timings, so the tests assert bounds a
loaded machine cannot break: a call that sleeps 20 ms took at least 20 ms,
and an engine whose next call is held back by a 60 ms commit waited for
it.
"""

from __future__ import annotations

import json
import statistics
import time

from pipeline.executors import LocalExecutor
from pipeline.stages.inference import EngineWaits
from pipeline.translator import BatchResult
from tests.fakes import FakeTranslator
from tests.test_window import make_job, run


class SlowFake(FakeTranslator):
    """A call takes at least ``call_s``."""

    def __init__(self, call_s: float, **kwargs):
        super().__init__(**kwargs)
        self.call_s = call_s

    def translate_batch(self, texts, src_lang, tgt_lang, decoding):
        time.sleep(self.call_s)
        return super().translate_batch(texts, src_lang, tgt_lang, decoding)


def test_a_local_call_says_when_it_began_and_how_long_it_took_even_when_it_fails():
    executor = LocalExecutor()
    try:
        before = time.perf_counter()
        ok = executor.submit(SlowFake(0.02), ["a b"], "eng_Latn", "fra_Latn", None).result()
        failed = executor.submit(SlowFake(0.02, fail={"x"}), ["x"], "eng_Latn", "fra_Latn",
                                 None).result()
    finally:
        executor.close()
    assert ok.error is None and [t.text for t in ok.translations] == ["A B"]
    assert ok.call_s >= 0.02 and ok.began >= before
    assert type(failed.error).__name__ == "FakeTransient"  # the call's own exception
    assert failed.call_s >= 0.02 and failed.began >= ok.began + ok.call_s


def test_waits_are_counted_from_the_end_of_the_previous_call():
    waits = EngineWaits()
    assert waits.waited(BatchResult([], call_s=1.0, began=10.0)) is None  # the first call
    assert waits.waited(BatchResult([], call_s=0.5, began=11.25)) == 0.25
    assert waits.waited(BatchResult([], call_s=0.5, began=11.75)) == 0.0  # queued behind it
    assert waits.waited(BatchResult([], call_s=0.5, ran_on="actor 1")) is None  # elsewhere
    waits.forget()  # calls ran that it did not see
    assert waits.waited(BatchResult([], call_s=0.5, began=20.0)) is None
    assert waits.waited(BatchResult([], call_s=0.5, began=21.0)) == 0.5


TEXT = "\n\n".join(f"Paragraph {i} has a few words in it." for i in range(12))


def timed_batches(store, job):
    return [(b.call_s, b.idle_s) for b in store.batches(job.id) if b.state == "committed"]


def test_each_batch_stores_its_call_and_the_wait_before_it_and_show_sums_them(tmp_path, capsys):
    store, job = make_job(tmp_path, TEXT, "timed")
    assert run(store, job, SlowFake(0.01)).state == "SUCCEEDED"
    rows = timed_batches(store, job)
    assert len(rows) > 3
    assert all(call_s >= 0.01 for call_s, _ in rows)
    assert rows[0][1] is None and all(idle is not None and idle >= 0 for _, idle in rows[1:])

    from pipeline.cli.main import main

    assert main(["--db", str(tmp_path / "timed.db"), "show", job.id, "--json"]) == 0
    (group,) = json.loads(capsys.readouterr().out)["translated_by"]
    assert group["timed_batches"] == group["batches"] == len(rows)
    assert group["waits"] == len(rows) - 1
    assert abs(group["engine_s"] - sum(c for c, _ in rows)) < 0.002
    assert abs(group["waited_s"] - sum(i for _, i in rows[1:])) < 0.002
    assert main(["--db", str(tmp_path / "timed.db"), "show", job.id]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "translated by" in x)
    assert f"{len(rows)} batches; engine " in line and "ms a call), waited " in line


def test_an_engine_held_back_by_slow_commits_shows_the_wait(tmp_path, monkeypatch):
    """Commits that take 60 ms hold back the next submit (two calls in
    flight), so calls of no time wait about that long: the wait measures the
    pipeline, not the engine."""
    store, job = make_job(tmp_path, TEXT, "held")
    commit = store.commit_checked

    def slow_commit(*args, **kwargs):
        time.sleep(0.06)
        return commit(*args, **kwargs)

    monkeypatch.setattr(store, "commit_checked", slow_commit)
    assert run(store, job, FakeTranslator()).state == "SUCCEEDED"
    waits = [idle for _, idle in timed_batches(store, job)[2:]]
    assert len(waits) > 2 and statistics.median(waits) >= 0.03
