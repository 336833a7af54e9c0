"""A job killed at every batch boundary plans the batches an uninterrupted
run plans, and delivers the same bytes.

Each process of the chain commits one batch and SIGKILLs itself
(``$NLLB_PIPELINE_KILL_AFTER_COMMITS=1``, with the engine's next call in
flight), and the same command runs again, until the job is done: a kill
after batch 1, then after batch 2, and so on. The processes are forked by
``tests.warm``, so the chain's ~20 runs import torch once, not 20 times. At the defaults users run
(beams 4, ``--quality`` repair, CTranslate2 int8): on random weights every
chunk climbs the repair ladder, so the plan has several rounds whose pieces
a resumed run must plan exactly when an uninterrupted one does (only when
the round before is committed).
"""

from __future__ import annotations

import sqlite3

import pytest

from pipeline.faults import KILL_AFTER_COMMITS_VAR
from pipeline.samples import generate_text
from tests.conftest import cli_env, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _args(src, out, model):
    # The defaults, except a small batch budget so that the first round
    # alone has several batches to be killed between.
    return ["translate", str(src), "--src", "eng_Latn", "--tgt", "fra_Latn", "-o", str(out),
            "--model", str(model), "--batch-tokens", "96", "--no-progress"]


def _plan(db) -> list[tuple]:
    conn = sqlite3.connect(db)
    batches = conn.execute("SELECT label, seq, chunk_idxs, state FROM batches ORDER BY id").fetchall()
    chunks = conn.execute("SELECT idx, parent, rung, state, source, translation, flag "
                          "FROM chunks ORDER BY idx").fetchall()
    conn.close()
    return batches, chunks


def test_a_job_killed_after_every_batch_plans_and_delivers_what_an_uninterrupted_run_does(
        tmp_path, tiny_model):
    src = tmp_path / "doc.txt"
    src.write_text(generate_text(10, seed=5))
    reference = tmp_path / "reference.txt"
    run_cli(*_args(src, reference, tiny_model), db=tmp_path / "reference.db")
    ref_batches, ref_chunks = _plan(tmp_path / "reference.db")
    assert len({label.split(".")[0] for label, *_ in ref_batches}) >= 6
    assert any(rung > 0 for _, _, rung, *_ in ref_chunks)  # the ladder planned rounds

    db, out = tmp_path / "jobs.db", tmp_path / "out.txt"
    env = {**cli_env(db), KILL_AFTER_COMMITS_VAR: "1"}
    kills = 0
    for _ in range(len(ref_batches) + 5):
        proc = run_cli(*_args(src, out, tiny_model), db=db, env=env, check=False)
        if proc.returncode == 0:
            break
        assert proc.returncode == -9, proc.stderr[-2000:]
        kills += 1
    else:
        pytest.fail("the job never finished")

    batches, chunks = _plan(db)
    # Every committed batch was followed by a kill, except where nothing
    # was left to commit after it.
    assert kills >= sum(state == "committed" for *_, state in ref_batches) - 1
    assert batches == ref_batches
    assert chunks == ref_chunks
    assert out.read_bytes() == reference.read_bytes()
