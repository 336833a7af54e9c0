"""A finished job's own batches, replayed by hand through CTranslate2.

What ``backends.py`` and ``scale.py`` measure the pipeline against. After a
job has run, its batch plan is read back from the job database (committed
batches only, in the order they ran) and each batch is sent to
``ctranslate2.Translator.translate_batch`` as the pipeline sent it: the same
members, the same beam width and output budget, and the decoding of the
batch's repair-ladder rung (``pipeline.quality.ladder.decoding``: rungs 1
and 2 decode with a repetition guard), through the keywords
``models.ct2.translate_options`` gives the pipeline's own backend. So the
hand-written loop does the pipeline's inference work, the ladder's extra
decodes included, and nothing else; what the pipeline takes beyond it is
the pipeline's own cost.

The database is read with plain SQL (tables ``jobs``, ``batches``,
``chunks``), not through the store's verbs: the yardstick does not depend
on the code it measures. Not a benchmark itself (the leading underscore
keeps it out of ``tests/test_benchmarks.py``'s list).
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from models.ct2 import translate_options
from pipeline.config import JobParams
from pipeline.quality.ladder import decoding


@dataclass(frozen=True)
class Call:
    """One committed batch, as the pipeline ran it."""

    batch_id: int
    texts: list[str]
    options: dict  # translate_batch keywords besides the source and target prefix
    committed: list[str | None]  # what the batch committed per member (None: the ladder went on)

    @property
    def planned_tokens(self) -> int:
        """Tokens the call generates when every row runs to its budget
        (the budget counts the target language code)."""
        return len(self.texts) * (self.options["max_decoding_length"] - 1)


@dataclass(frozen=True)
class Replay:
    """What the hand-written loop took; engine: ``translate_batch`` alone."""

    wall_s: float  # tokenize + translate_batch + detokenize
    cpu_s: float
    engine_cpu_s: float
    batches: int
    generated: int  # target tokens, the language code and EOS not counted
    compared: int  # members whose translation the batch committed
    differing: int  # of those, how many came out otherwise here
    engine_calls: dict[int, float]  # batch id -> its translate_batch's wall seconds

    @property
    def engine_wall_s(self) -> float:
        return sum(self.engine_calls.values())


def job_params(db: Path, job_id: str) -> JobParams:
    with closing(_connect(db)) as conn:
        (params,) = conn.execute("SELECT params FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return JobParams.from_json(params)


def committed_batches(db: Path, job_id: str) -> int:
    """How many batches the job committed (what ``committed_calls`` yields)."""
    with closing(_connect(db)) as conn:
        (n,) = conn.execute("SELECT COUNT(*) FROM batches WHERE job_id = ? AND "
                            "state = 'committed'", (job_id,)).fetchone()
    return n


def committed_calls(db: Path, job_id: str, cap: int, *,
                    fixed_length: bool = False) -> Iterator[Call]:
    """The job's committed batches in the order they ran; ``cap``: the
    model's output limit (``TranslatorInfo.max_output_tokens``). One batch
    is read at a time, so a million-line job is never all in memory."""
    params = job_params(db, job_id)
    conn = _connect(db)
    try:
        plan = conn.execute("SELECT id, chunk_idxs FROM batches WHERE job_id = ? AND "
                            "state = 'committed' ORDER BY seq, id", (job_id,)).fetchall()
        for batch_id, idxs in plan:
            rows = conn.execute(
                "SELECT c.source, c.n_tokens, c.rung, c.state, c.translation, c.batch_id "
                "FROM json_each(?) e JOIN chunks c ON c.job_id = ? AND c.idx = e.value "
                "ORDER BY e.key", (idxs, job_id)).fetchall()
            # Members share one budget and one rung (pipeline.batching plans them so).
            _, n_tokens, rung, *_ = rows[0]
            settings = decoding(rung, params.beams, params.output_budget(n_tokens, cap))
            yield Call(batch_id, [r[0] for r in rows],
                       translate_options(settings, fixed_length=fixed_length),
                       [r[4] if r[3] == "done" and r[5] == batch_id else None for r in rows])
    finally:
        conn.close()


def replay(translator, tokenizer, calls: Iterable[Call], src_lang: str,
           tgt_lang: str) -> Replay:
    """Run ``calls`` on ``translator`` (a ``ctranslate2.Translator``) the
    way a user's own loop would: tokenize, translate, detokenize. Only the
    loop is timed, not the reading of the next call."""
    tokenizer.src_lang = src_lang
    wall = cpu = engine_cpu = 0.0
    batches = generated = compared = differing = 0
    engine_calls = {}
    for call in calls:
        t0, c0 = time.perf_counter(), time.process_time()
        ids = tokenizer(call.texts, add_special_tokens=True)["input_ids"]
        source = [tokenizer.convert_ids_to_tokens(x) for x in ids]
        t1, c1 = time.perf_counter(), time.process_time()
        results = translator.translate_batch(source, target_prefix=[[tgt_lang]] * len(source),
                                             **call.options)
        t2, c2 = time.perf_counter(), time.process_time()
        bodies = [_body(r.hypotheses[0], tokenizer.eos_token) for r in results]
        texts = [tokenizer.decode(tokenizer.convert_tokens_to_ids(b), skip_special_tokens=True)
                 for b in bodies]
        t3, c3 = time.perf_counter(), time.process_time()
        wall, cpu = wall + t3 - t0, cpu + c3 - c0
        engine_cpu += c2 - c1
        engine_calls[call.batch_id] = t2 - t1
        batches += 1
        generated += sum(len(b) for b in bodies)
        for text, committed in zip(texts, call.committed):
            if committed is not None:
                compared += 1
                differing += text != committed
    return Replay(wall, cpu, engine_cpu, batches, generated, compared, differing, engine_calls)


def _body(hypothesis: list[str], eos: str) -> list[str]:
    """The tokens after the target language code, without a final EOS."""
    body = hypothesis[1:]
    return body[:-1] if body and body[-1] == eos else body


def _connect(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(db, timeout=30)
