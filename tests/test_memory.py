"""The translation memory on the tiny model: what was translated before is
reused, never recomputed, never reused under another key, and the output is
the same as a run that inferred everything."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from models import HfTranslator
from pipeline import service
from pipeline.config import RunSettings
from pipeline.documents.inputs import read_input
from pipeline.memory.scope import MemoryScope, model_identity
from pipeline.retry import Backoff, RetryPolicy
from pipeline.samples import sentence
from pipeline.store import NewChunk, Store
from pipeline.translator import TranslatorInfo

NO_WAIT = RetryPolicy(backoff=Backoff(0, 1, 0), batch_backoff=Backoff(0, 1, 0))
BROKEN = "CUDA error: unspecified launch failure"


class Counting:
    """The real translator, recording every text it is asked to translate;
    texts in ``broken`` make a call fail (a transient device error), and
    ``info`` changes what it says it is."""

    def __init__(self, inner, *, broken=(), info: dict | None = None):
        self.inner, self.broken, self.info = inner, set(broken), info or {}
        self.texts: list[str] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def describe(self) -> TranslatorInfo:
        return replace(self.inner.describe(), **self.info)

    def translate_batch(self, texts, src, tgt, decoding):
        self.texts += texts
        if self.broken & set(texts):
            raise RuntimeError(BROKEN)
        return self.inner.translate_batch(texts, src, tgt, decoding)


@pytest.fixture(scope="module")
def hf(tiny_model):
    return HfTranslator(str(tiny_model), RunSettings(device="cpu"))


def distinct_sentences(n: int, seed: int) -> list[str]:
    rng, seen = random.Random(seed), []
    while len(seen) < n:
        s = sentence(rng)
        if s not in seen and len(s.split()) <= 20:
            seen.append(s)
    return seen


def translate(store: Store, doc: Path, model, translator, out: Path, *, tm=None, beams=1,
              tgt="fra_Latn", fmt="auto"):
    # --quality off: random weights send every chunk down the repair ladder
    # (a guarded decode is the same text again); these tests count what the
    # memory saves. The memory with the ladder: tests/test_quality_ladder.py.
    options = service.JobOptions(src="eng_Latn", tgt=tgt, model=str(model), fmt=fmt,
                                 beams=beams, length_ratio=0.5, length_offset=4,
                                 output=str(out), memory=tm, quality="off")
    runtime = service.Runtime(settings=RunSettings(device="cpu"), policy=NO_WAIT,
                              translators=lambda params: translator)
    return service.translate_or_resume(store, read_input(doc), options, runtime).job


def test_a_revised_document_infers_exactly_its_edited_sentences(tmp_path, tiny_model, hf):
    sentences = distinct_sentences(300, seed=5)
    paragraphs = lambda ss: "\n\n".join(" ".join(ss[i:i + 5]) for i in range(0, len(ss), 5))
    doc = tmp_path / "manual.txt"
    doc.write_text(paragraphs(sentences) + "\n")
    store = Store(tmp_path / "jobs.db")
    first = Counting(hf)
    job1 = translate(store, doc, tiny_model, first, tmp_path / "v1.txt")
    sources1 = {c.source for c in store.chunks(job1.id)}
    assert Counter(first.texts) == Counter(sources1)  # every sentence once

    edited = random.Random(1).sample(range(300), 30)
    for i in edited:
        sentences[i] = "Again, " + sentences[i][0].lower() + sentences[i][1:]
    doc.write_text(paragraphs(sentences) + "\n")
    second = Counting(hf)
    job2 = translate(store, doc, tiny_model, second, tmp_path / "v2.txt")
    chunks2 = store.chunks(job2.id)
    new = {c.source for c in chunks2} - sources1
    assert len(new) == 30 and all(s.startswith("Again, ") for s in new)
    assert sorted(second.texts) == sorted(new)  # the edited sentences, each once, nothing else
    assert store.job_counters([job2.id])[job2.id].reused == {"memory": len(chunks2) - 30, "document": 0}
    # Progress counts only what inference did: the edited sentences' tokens.
    inferred_tokens = sum(c.n_tokens for c in chunks2 if c.source in new)
    assert store.token_counts(job2.id) == (inferred_tokens, inferred_tokens)
    run = [r for r in store.stage_runs(job2.id) if r.stage == "inference"][-1]
    assert run.units_total == inferred_tokens

    scratch = translate(Store(tmp_path / "scratch.db"), doc, tiny_model, Counting(hf),
                        tmp_path / "scratch.txt")
    assert scratch.state == job2.state == "SUCCEEDED"
    assert (tmp_path / "v2.txt").read_bytes() == (tmp_path / "scratch.txt").read_bytes()


def test_each_distinct_line_of_a_repeating_document_is_inferred_once(tmp_path, tiny_model, hf):
    lines = distinct_sentences(30, seed=9)
    repeated = lines * 5
    random.Random(2).shuffle(repeated)
    doc = tmp_path / "subs.txt"
    doc.write_text("\n".join(repeated) + "\n")
    store = Store(tmp_path / "jobs.db")
    counting = Counting(hf)
    job = translate(store, doc, tiny_model, counting, tmp_path / "out.txt", fmt="lines",
                    tm="off")  # in-document repeats are translated once in every mode
    assert Counter(counting.texts) == Counter(lines)
    chunks = store.chunks(job.id)
    assert store.job_counters([job.id])[job.id].reused == {"memory": 0, "document": 120}
    firsts = [c for c in chunks if c.dup_of is None]
    assert sorted(c.source for c in firsts) == sorted(lines)
    assert all(c.batch_id is None and c.commits == 0 for c in chunks if c.dup_of is not None)
    tokens = sum(c.n_tokens for c in firsts)
    assert store.token_counts(job.id) == (tokens, tokens)
    assert not list(store.memory_entries())  # --tm off: nothing stored

    # What a repeat got is what inference gives that line on its own.
    alone = tmp_path / "distinct.txt"
    alone.write_text("\n".join(lines) + "\n")
    translate(Store(tmp_path / "alone.db"), alone, tiny_model, Counting(hf),
              tmp_path / "alone.out.txt", fmt="lines")
    by_line = dict(zip(lines, (tmp_path / "alone.out.txt").read_text().splitlines()))
    assert (tmp_path / "out.txt").read_text().splitlines() == [by_line[s] for s in repeated]


def test_a_first_occurrence_that_fails_for_good_fails_its_repeats_and_retry_fills_them(
        tmp_path, tiny_model, hf):
    lines = distinct_sentences(6, seed=4)
    doc = tmp_path / "doc.txt"
    doc.write_text("\n".join(lines * 3) + "\n")
    store = Store(tmp_path / "jobs.db")
    job = translate(store, doc, tiny_model, Counting(hf, broken={lines[2]}),
                    tmp_path / "out.txt", fmt="lines")
    assert job.state == "FAILED"
    states = {(c.source, c.state) for c in store.chunks(job.id)}
    assert {s for s, state in states if state == "failed"} == {lines[2]}
    assert Counter(c.state for c in store.chunks(job.id))["failed"] == 3  # first and 2 repeats
    assert (lines[2], "waiting") not in states

    healthy = Counting(hf)
    runtime = service.Runtime(settings=RunSettings(device="cpu"), policy=NO_WAIT,
                              translators=lambda params: healthy)
    outcome = service.retry(store, job.id, runtime)
    assert outcome.job.state == "SUCCEEDED"
    assert healthy.texts == [lines[2]]  # the repeats waited for it, again
    assert all(c.state == "done" for c in store.chunks(job.id))
    translate(Store(tmp_path / "ref.db"), doc, tiny_model, Counting(hf), tmp_path / "ref.txt",
              fmt="lines")
    assert (tmp_path / "out.txt").read_bytes() == (tmp_path / "ref.txt").read_bytes()


def test_another_model_or_setting_never_reuses(tmp_path, tiny_model, hf, monkeypatch):
    from models.tiny import build_tiny_model
    from pipeline.memory import scope

    lines = distinct_sentences(12, seed=6)
    doc = tmp_path / "doc.txt"
    doc.write_text("\n".join(lines) + "\n")
    store = Store(tmp_path / "jobs.db")
    runs = iter(range(100))

    def inferred(translator=hf, model=tiny_model, **kw) -> int:
        counting = translator if isinstance(translator, Counting) else Counting(translator)
        translate(store, doc, model, counting, tmp_path / f"out{next(runs)}.txt", fmt="lines",
                  **kw)
        return len(counting.texts)

    assert inferred() == 12
    assert inferred(beams=2) == 12
    assert inferred(tgt="deu_Latn") == 12
    assert inferred(Counting(hf, info={"compute_type": "bfloat16"})) == 12
    assert inferred(Counting(hf, info={"backend": "ctranslate2"})) == 12
    assert inferred(Counting(hf, info={"device": "cuda:0"})) == 12
    other = build_tiny_model(tmp_path / "other-tiny", seed=1)
    assert inferred(HfTranslator(str(other), RunSettings(device="cpu")), model=other) == 12
    with monkeypatch.context() as m:
        m.setattr(scope, "OUTPUT_RULES", scope.OUTPUT_RULES + 1)  # this code's rules changed
        assert inferred() == 12
    # The control: the same key again reuses everything, and a device index is not a key.
    assert inferred(beams=2) == 0
    assert inferred(Counting(hf, info={"device": "cuda:1"})) == 0
    assert len({e.scope.digest for e in store.memory_entries()}) == 8


def test_read_mode_reuses_but_stores_nothing_and_off_does_neither(tmp_path, tiny_model, hf):
    lines = distinct_sentences(8, seed=7)
    doc = tmp_path / "doc.txt"
    store = Store(tmp_path / "jobs.db")
    doc.write_text("\n".join(lines[:4]) + "\n")
    translate(store, doc, tiny_model, Counting(hf), tmp_path / "a.txt", fmt="lines")
    assert len(list(store.memory_entries())) == 4

    doc.write_text("\n".join(lines) + "\n")
    reading = Counting(hf)
    job = translate(store, doc, tiny_model, reading, tmp_path / "b.txt", fmt="lines", tm="read")
    assert sorted(reading.texts) == sorted(lines[4:])
    assert len(list(store.memory_entries())) == 4  # the new lines were not stored
    assert store.memory_mode(job.id) == "read"

    doc.write_text("\n".join(reversed(lines)) + "\n")
    off = Counting(hf)
    job = translate(store, doc, tiny_model, off, tmp_path / "c.txt", fmt="lines", tm="off")
    assert sorted(off.texts) == sorted(lines)
    assert store.job_counters([job.id])[job.id].reused == {"memory": 0, "document": 0}
    assert len(list(store.memory_entries())) == 4


def test_the_memory_mode_is_not_part_of_what_a_job_is(tmp_path, tiny_model, hf):
    lines = distinct_sentences(4, seed=8)
    doc = tmp_path / "doc.txt"
    doc.write_text("\n".join(lines) + "\n")
    store = Store(tmp_path / "jobs.db")
    job = translate(store, doc, tiny_model, Counting(hf), tmp_path / "out.txt", fmt="lines",
                    tm="off")
    assert store.memory_mode(job.id) == "off"
    again = Counting(hf)
    same = translate(store, doc, tiny_model, again, tmp_path / "out.txt", fmt="lines", tm="on")
    assert same.id == job.id and again.texts == []  # already translated: nothing to do

    def submit(tm):
        options = service.JobOptions(src="eng_Latn", tgt="fra_Latn", model=str(tiny_model),
                                     output=str(tmp_path / "queued.txt"), memory=tm)
        return service.submit(store, read_input(doc), options)

    queued = submit("off")
    assert queued.created and store.memory_mode(queued.job.id) == "off"  # set in the insert
    again = submit("read")
    assert again.job.id == queued.job.id and not again.created  # the same job...
    assert store.memory_mode(queued.job.id) == "read"  # ...that runs with the mode asked for now
    submit(None)
    assert store.memory_mode(queued.job.id) == "read"  # no --tm: the job keeps its own


def test_model_identity_prefers_the_content_fingerprint():
    info = TranslatorInfo("hf", "/models/nllb", "cpu", "float32", 2048, 1024, 1024)
    assert model_identity(info) == "model:/models/nllb"

    class WithFingerprint:
        model, fingerprint = "/models/nllb", "ab" * 32

    assert model_identity(WithFingerprint()) == "fingerprint:" + "ab" * 32


# -- the store: one transaction, kept by gc, dropped by prune ---------------------


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


SCOPE = MemoryScope("model:/m", "hf", "cpu", "float32", "eng_Latn", "fra_Latn",
                    '{"beams":1}', model="/m")


def _job_with_chunks(store: Store, sources: list[str]):
    job, _ = store.get_or_create_job(idem_key="k", params="{}", input_path="/in",
                                     input_sha256="0", input_bytes=1, output_path="/out")
    assert store.claim_job(job.id, "w", 30)
    run = store.start_stage(job.id, "preprocess", units_total=1)
    scope_id = store.memory_scope_id(SCOPE)
    store.finish_preprocess(job.id, run, "w", "{}", [NewChunk(0, s, 3) for s in sources],
                            memory=scope_id)
    return job, scope_id


def test_a_commit_and_the_repeats_it_fills_are_one_transaction(tmp_path, monkeypatch):
    store = Store(tmp_path / "j.db")
    job, scope_id = _job_with_chunks(store, ["A.", "B.", "A."])
    assert [(c.state, c.dup_of) for c in store.chunks(job.id)] == [
        ("pending", None), ("pending", None), ("waiting", 0)]
    store.add_batches(job.id, [store.chunks(job.id, [0])])
    batch = store.pending_batches(job.id)[0]
    real = store._after_commit

    def then_die(*args):
        real(*args)
        raise KeyboardInterrupt  # the process dies after filling, before COMMIT

    monkeypatch.setattr(store, "_after_commit", then_die)
    with pytest.raises(KeyboardInterrupt):
        store.commit_batch(job.id, batch.id, {0: "a"}, "w", memory=scope_id)
    assert [c.state for c in store.chunks(job.id)] == ["pending", "pending", "waiting"]
    assert not list(store.memory_entries())
    monkeypatch.undo()
    store.commit_batch(job.id, batch.id, {0: "a"}, "w", memory=scope_id)
    assert [(c.state, c.translation, c.reused) for c in store.chunks(job.id)] == [
        ("done", "a", None), ("pending", None, None), ("done", "a", "document")]
    assert [(e.source, e.translation) for e in store.memory_entries()] == [("A.", "a")]


def test_gc_keeps_the_memory_and_prune_drops_what_was_not_used(tmp_path):
    clock = Clock()
    store = Store(tmp_path / "j.db", clock=clock)
    store.import_memory([(SCOPE, "Old.", "vieux"), (SCOPE, "Used.", "utilisé")])
    clock.now += 10 * 86400
    job, scope_id = _job_with_chunks(store, ["Used.", "New."])  # reuses "Used."
    assert [c.reused for c in store.chunks(job.id)] == ["memory", None]
    store.set_job_state(job.id, "SUCCEEDED")
    clock.now += 86400
    assert store.gc(0) == 1 and store.chunks(job.id) == []
    assert len(list(store.memory_entries())) == 2
    assert store.prune_memory(5 * 86400) == 1
    assert [(e.source, e.uses) for e in store.memory_entries()] == [("Used.", 1)]
    assert store.prune_memory(0) == 1 and store.memory_summary() == []


@pytest.mark.slow
def test_a_kill_9_mid_inference_loses_no_repeat_and_resumes_to_identical_output(
        tmp_path, tiny_model):
    import signal

    from pipeline.cli import main
    from tests.test_resume import _start, _wait_for_commits

    lines = distinct_sentences(120, seed=3)
    repeated = lines * 4
    random.Random(3).shuffle(repeated)
    doc = tmp_path / "subs.txt"
    doc.write_text("\n".join(repeated) + "\n")

    def args(out):
        return ["translate", str(doc), "--src", "eng_Latn", "--tgt", "fra_Latn", "-o", str(out),
                "--model", str(tiny_model), "--beams", "1", "--batch-tokens", "128",
                "--format", "lines", "--length-ratio", "0.5", "--length-offset", "4",
                "--no-progress", "--json", "--quality", "off"]  # repeats, not the ladder

    assert main(["--db", str(tmp_path / "reference.db"), *args(tmp_path / "reference.txt")]) == 0
    db, out = tmp_path / "jobs.db", tmp_path / "out.txt"
    proc = _start(args(out), db)
    _wait_for_commits(db, proc, 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    store = Store(db)
    job = store.jobs()[0]
    chunks = {c.idx: c for c in store.chunks(job.id)}
    repeats = [c for c in chunks.values() if c.dup_of is not None]
    # Whatever instant the kill hit, a repeat is filled exactly when its first
    # occurrence is committed: never one without the other.
    for c in repeats:
        first = chunks[c.dup_of]
        if first.state == "done":
            assert (c.state, c.translation, c.reused) == ("done", first.translation, "document")
        else:
            assert first.state == "pending" and c.state == "waiting"
    states = Counter(c.state for c in repeats)
    assert states["done"] and states["waiting"], "the kill must land mid-inference"
    memory_before = {e.source: e.translation for e in store.memory_entries()}
    assert memory_before == {c.source: c.translation for c in chunks.values()
                             if c.dup_of is None and c.state == "done"}

    assert main(["--db", str(db), *args(out)]) == 0  # the same command, in this process
    assert out.read_bytes() == (tmp_path / "reference.txt").read_bytes()
    chunks = store.chunks(job.id)
    assert all(c.state == "done" for c in chunks)
    assert all(c.commits == 1 for c in chunks if c.dup_of is None)  # each line inferred once
    assert all(c.batch_id is None for c in chunks if c.dup_of is not None)
    planned = [i for b in store.batches(job.id) if b.state == "committed" for i in b.chunk_idxs]
    assert sorted(planned) == sorted(c.idx for c in chunks if c.dup_of is None)
    memory = {e.source: e.translation for e in store.memory_entries()}
    assert len(memory) == 120 and all(memory[s] == t for s, t in memory_before.items())


def test_no_repeat_waits_forever_whatever_became_of_its_first_occurrence(tmp_path):
    store = Store(tmp_path / "j.db")
    job, _ = _job_with_chunks(store, ["A.", "B.", "C.", "A.", "B.", "C."])
    store.db.execute("UPDATE chunks SET state = 'done', translation = 'a' WHERE idx = 0")
    store.db.execute("UPDATE chunks SET state = 'failed' WHERE idx = 1")
    store.db.execute("UPDATE chunks SET state = 'replaced' WHERE idx = 2")  # by pieces
    assert store.settle_waiting(job.id) == 0
    # A repeat of a replaced chunk is replaced by the same pieces (postprocess
    # joins its first's pieces for it): nothing to translate again.
    assert [(c.state, c.translation, c.dup_of) for c in store.chunks(job.id)][3:] == [
        ("done", "a", 0), ("failed", None, 1), ("replaced", None, 2)]
    store.db.execute("UPDATE chunks SET state = 'done' WHERE idx = 5")
    store.db.execute("UPDATE chunks SET state = 'waiting' WHERE idx = 5")
    store.db.execute("UPDATE chunks SET state = 'skipped' WHERE idx = 2")  # any other state
    assert store.settle_waiting(job.id) == 1
    assert [(c.state, c.dup_of) for c in store.chunks(job.id)][5] == ("pending", None)
    assert store.settle_waiting(job.id) == 0
