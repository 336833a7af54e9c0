"""A sentence's translation does not depend on what it was batched with:
not on --batch-tokens, not on an OOM split, not on a retry, at the default
beam width users run (4) as well as greedy."""

from __future__ import annotations

import json
import random

import pytest

from models import HfTranslator
from models.faults import FaultInjectingTranslator, FaultSpec
from pipeline.batching import plan_batches
from pipeline.budget import length_bucket, output_budget
from pipeline.cli import main
from pipeline.config import JobParams, RunSettings
from pipeline.documents.inputs import read_input
from pipeline.jobs import submit
from pipeline.retry import Backoff, RetryPolicy
from pipeline.runner import run_job
from pipeline.samples import generate_text
from pipeline.store import Store
from tests.conftest import corpus_file

NO_WAIT = RetryPolicy(backoff=Backoff(0, 1, 0), batch_backoff=Backoff(0, 1, 0))


def translate(tmp_path, capsys, model, doc, name, *extra) -> bytes:
    out = tmp_path / f"{name}.out.txt"
    argv = ["--db", str(tmp_path / f"{name}.db"), "translate", str(doc), "--src", "eng_Latn",
            "--tgt", "fra_Latn", "--model", str(model), "-o", str(out), "--json", *extra]
    assert main(argv) == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    batches = Store(tmp_path / f"{name}.db").batches(result["job"])
    return out.read_bytes(), batches


# -- the budget rule ----------------------------------------------------------


def test_length_buckets_are_four_per_doubling_and_budgets_follow_them():
    assert [length_bucket(n) for n in (1, 4, 5, 16, 17, 20, 21, 32, 33, 64, 65, 100, 200)] == [
        4, 4, 8, 16, 20, 20, 24, 32, 40, 64, 80, 112, 224]
    for n in range(1, 1000):
        assert n <= length_bucket(n) <= max(n + 3, 1.25 * n)  # steps of 4 below 16
    assert output_budget(17, 2.0, 16, 1022) == 56  # ceil(2 x 20) + 16
    assert output_budget(600, 2.0, 16, 1022) == 1022  # capped


def test_a_plan_never_mixes_output_budgets():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class C:
        idx: int
        n_tokens: int

    rng = random.Random(4)
    items = [C(i, rng.randint(3, 200)) for i in range(400)]

    def budget(n):
        return output_budget(n, 2.0, 16, 1022)

    for tokens in (256, 2048, 8192):
        plan = plan_batches(items, tokens, 64, budget)
        assert sorted(c.idx for b in plan for c in b) == list(range(400))
        assert all(len({budget(c.n_tokens) for c in b}) == 1 for b in plan)
        assert all(len(b) * max(c.n_tokens for c in b) <= tokens or len(b) == 1 for b in plan)


@pytest.mark.slow
def test_cutting_a_longer_beam_search_afterwards_changes_translations(tiny_model):
    """Why budgets must be shared within a batch: beam search run to a
    longer budget and cut back is not the search at the shorter budget.
    (If this ever stops holding on the tiny model, the tests below lose
    their power to catch a regression.)"""
    import torch

    tr = HfTranslator(str(tiny_model), RunSettings(device="cpu"))
    tr.load()
    tok, model = tr.tokenizer, tr._model
    tok.src_lang = "eng_Latn"

    def cut_differs(text: str) -> bool:
        enc = tok([text], return_tensors="pt")
        own = 12
        with torch.inference_mode():
            runs = [model.generate(**enc, forced_bos_token_id=tok.convert_tokens_to_ids(
                "fra_Latn"), max_new_tokens=b, num_beams=4, do_sample=False)[0, :1 + own].tolist()
                for b in (own, 3 * own)]
        return runs[0] != runs[1]

    # one sentence shows it; any() stops searching at the first
    assert any(cut_differs(text) for text in generate_text(40, seed=5).split(". "))


# -- whole documents, at the defaults ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("beams", ["1", "4"])
def test_batch_tokens_256_and_4096_give_byte_identical_output(tmp_path, capsys, tiny_model,
                                                              beams):
    doc = tmp_path / "doc.txt"
    doc.write_text(generate_text(40, seed=21))
    small, small_batches = translate(tmp_path, capsys, tiny_model, doc, "small", "--beams", beams,
                                     "--batch-tokens", "256")
    large, large_batches = translate(tmp_path, capsys, tiny_model, doc, "large", "--beams", beams,
                                     "--batch-tokens", "4096")
    assert small == large
    # the two runs batched differently, and mixed lengths inside a batch
    assert len(small_batches) > len(large_batches)
    assert max(len(b.chunk_idxs) for b in large_batches) > 4


# A document of 30 sentences, and what a plain run at the defaults users run
# (beams 4, --quality repair) makes of it on transformers: each test below
# runs it another way and must deliver the same bytes. (Made once: on random
# weights every chunk climbs the repair ladder, so a run takes a while.)
CLEAN_TEXT = generate_text(30, seed=13)


def text_job(tmp_path, model, name):
    src = tmp_path / "doc.txt"
    src.write_text(CLEAN_TEXT)
    params = JobParams(model=str(model), src_lang="eng_Latn", tgt_lang="fra_Latn",
                       fmt="text", output=str(tmp_path / f"{name}.txt"))
    assert params.beams == 4 and params.length_ratio == 2.0  # the defaults users run
    store = Store(tmp_path / f"{name}.db")
    return params, store, submit(store, params, read_input(src))[0]


# The tests that compare with ``clean_output`` run in one xdist worker, so
# that it is translated once (under the group's mark), not once per worker.
CLEAN = pytest.mark.xdist_group("clean_output")


@pytest.fixture(scope="module")
def clean_output(tiny_model, tmp_path_factory) -> bytes:
    tmp_path = tmp_path_factory.mktemp("clean")
    _, store, job = text_job(tmp_path, tiny_model, "clean")
    assert run_job(store, job.id, HfTranslator(str(tiny_model))).state == "SUCCEEDED"
    return (tmp_path / "clean.txt").read_bytes()


@pytest.mark.slow
@CLEAN
def test_oom_on_30_percent_of_batches_and_transient_errors_at_the_default_beams(
        tmp_path, tiny_model, clean_output):
    _, store, faulty = text_job(tmp_path, tiny_model, "faulty")
    translator = FaultInjectingTranslator(HfTranslator(str(tiny_model)),
                                          FaultSpec(oom=0.3, transient=0.05, seed=7))
    final = run_job(store, faulty.id, translator, settings=RunSettings(batch_tokens=1024),
                    policy=NO_WAIT, sleep=lambda s: None, rng=random.Random(0))
    assert final.state == "SUCCEEDED"
    assert translator.injected["oom"] >= 3 and translator.injected["transient"] >= 1
    decisions = {a.decision for a in store.attempts(faulty.id)}
    assert {"split", "retry"} <= decisions or {"split", "chunks"} <= decisions
    assert (tmp_path / "faulty.txt").read_bytes() == clean_output
    assert all(c.commits == 1 for c in store.chunks(faulty.id) if c.state == "done"
               and c.batch_id is not None)


@pytest.mark.slow
@CLEAN
def test_a_stored_plan_that_mixes_budgets_is_split_before_it_runs(tmp_path, tiny_model,
                                                                   clean_output):
    """A plan stored by an older version (budgets mixed in one batch) runs
    as batches of one budget each, and the output is the same."""
    from pipeline.progress import Events
    from pipeline.runner import JobContext, new_worker_id
    from pipeline.stages import preprocess

    params, store, job = text_job(tmp_path, tiny_model, "old")
    translator = HfTranslator(str(tiny_model))
    worker = new_worker_id()
    assert store.claim_job(job.id, worker, 30)
    ctx = JobContext(store, store.job(job.id), params, translator, RunSettings(), worker,
                     Events())
    preprocess.run(ctx)
    store.add_batches(job.id, plan_batches(store.pending_chunks(job.id), 100_000, 256))
    (stored,) = store.batches(job.id)
    store.release_job(job.id, worker)
    assert run_job(store, job.id, translator).state == "SUCCEEDED"
    batches = store.batches(job.id)
    assert next(b for b in batches if b.id == stored.id).state == "split"
    cap = translator.describe().max_output_tokens
    for b in batches:
        if b.state == "committed":
            lengths = [c.n_tokens for c in store.chunks(job.id, b.chunk_idxs)]
            assert len({params.output_budget(n, cap) for n in lengths}) == 1
    assert (tmp_path / "old.txt").read_bytes() == clean_output


@pytest.mark.slow
def test_flores_200_sentences_at_beams_4_do_not_depend_on_the_batch_budget(tmp_path, capsys,
                                                                          trained_model):
    flores = corpus_file("flores200_devtest.eng_Latn.txt")
    doc = tmp_path / "flores.txt"
    doc.write_bytes(b"\n\n".join(flores.read_bytes().splitlines()[:200]) + b"\n")
    # The trained model, at the CLI's defaults (beams 4, --quality repair):
    # it ends its sentences, as users' models do, so the batches finish
    # hypotheses at different steps. Random weights, which run every
    # sentence to its budget, are tested above at both widths.
    small, many = translate(tmp_path, capsys, trained_model, doc, "small", "--batch-tokens", "256")
    large, few = translate(tmp_path, capsys, trained_model, doc, "large", "--batch-tokens", "4096")
    assert len(many) >= 3 * len(few)  # the same sentences in very different batches
    assert small == large
    assert small.count(b"\n\n") == 199
