"""The inference loop's cost per batch does not grow with the job.

Proved without a stopwatch (STYLE.md): the SQL statements each committed
batch runs are counted with ``sqlite3.Connection.set_trace_callback``, the
virtual-machine steps they take with ``set_progress_handler``, on a job of
1,000 chunks and one of 20,000; and every statement the loop ran is checked
with ``EXPLAIN QUERY PLAN`` for a scan of a job's chunks, batches or attempts.
"""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter

import pytest

from pipeline import views
from pipeline.config import JobParams, RunSettings
from pipeline.documents.inputs import read_input
from pipeline.jobs import submit
from pipeline.progress import Events
from pipeline.runner import run_job
from pipeline.store import Store
from tests.fakes import NO_WAITS, WordSwapTranslator
from pipeline.translator import Translation

# A job of 20,000 chunks, run once for the module: in one xdist worker, or
# each worker that gets one of its tests builds it again (11 s each).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hot_loop")]

STEP = 10  # VM instructions per progress-handler call


class PerBatchCost(Events):
    """Statements and VM steps between one committed batch and the next."""

    def __init__(self, store: Store):
        self.conn = store.db.conn
        self.statements: list[str] = []
        self.per_batch: list[tuple[int, int]] = []
        self.bounds: list[int] = []  # statements seen at each committed batch
        self._steps = 0
        self._mark = (0, 0)

    def _trace(self, sql: str) -> None:
        self.statements.append(sql)

    def _step(self) -> int:
        self._steps += 1
        return 0

    def stage_started(self, stage, total, done=0.0):
        if stage == "inference":
            self.conn.set_trace_callback(self._trace)
            self.conn.set_progress_handler(self._step, STEP)

    def stage_progress(self, stage, done):
        if stage == "inference":
            now = (len(self.statements), self._steps)
            self.per_batch.append((now[0] - self._mark[0], now[1] - self._mark[1]))
            self.bounds.append(now[0])
            self._mark = now

    def stage_finished(self, stage):
        if stage == "inference":
            self.conn.set_trace_callback(None)
            self.conn.set_progress_handler(None, STEP)


class LoopsOnLongTwists(WordSwapTranslator):
    """A line with "twist" in it and more than five words loops to its
    budget (as an untrained model does), decoded whole or with a guard; its
    clauses, five words or fewer, translate well: so the quality ladder
    runs all its rungs on those lines, down to pieces, and joins them."""

    def translate_batch(self, texts, src_lang, tgt_lang, decoding):
        good = super().translate_batch(texts, src_lang, tgt_lang, decoding)
        return [Translation("ha " * decoding.max_new_tokens, decoding.max_new_tokens, False)
                if "twist" in t and len(t.split()) > 5 else g for t, g in zip(texts, good)]


def run_corpus(tmp_path, lines: int, *, twists: int = 0) -> tuple[PerBatchCost, Store]:
    """A --format lines job of ``lines`` unique lines of equal token counts
    (the fake counts words), at the default quality (the fake's output
    passes the guards, as a trained model's mostly does), through the runner.
    With ``twists``, every ``twists``-th line makes the fake loop, so the
    quality ladder replaces it by pieces."""
    src = tmp_path / f"corpus{lines}-{twists}.txt"
    src.write_text("".join(
        f"line {i} takes a twist, says hello there, and goes on its way.\n"
        if twists and i % twists == 0 else f"line {i} says hello there\n" for i in range(lines)))
    params = JobParams(model="fake", src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="lines",
                       output=str(tmp_path / f"corpus{lines}-{twists}.out.txt"))
    store = Store(tmp_path / f"corpus{lines}-{twists}.db")
    job, _ = submit(store, params, read_input(src))
    cost = PerBatchCost(store)
    translator = LoopsOnLongTwists() if twists else WordSwapTranslator()
    final = run_job(store, job.id, translator, events=cost, policy=NO_WAITS,
                    settings=RunSettings())
    assert final.state == "SUCCEEDED", final.error_message
    return cost, store


@pytest.fixture(scope="module")
def small_and_large(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hot")
    return run_corpus(tmp, 1_000), run_corpus(tmp, 20_000)


def steady(per_batch: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The batches of the steady state: not the first (the plan is made
    before it) nor the last two (the window cannot refill; a batch of the remainder)."""
    return per_batch[1:-2]


@pytest.mark.slow
def test_statements_per_batch_are_the_same_for_a_job_20_times_larger(small_and_large):
    (small, small_store), (large, large_store) = small_and_large
    assert len(large.per_batch) > 15 * len(small.per_batch) > 1_000
    small_statements = Counter(n for n, _ in steady(small.per_batch))
    large_statements = Counter(n for n, _ in steady(large.per_batch))
    # A steady batch runs the same statements whatever the job's size (trigger
    # bodies count); a few batches also store an ETA prediction (10/25/50/75/90%).
    assert set(small_statements) == set(large_statements), (small_statements, large_statements)
    assert small_statements.most_common(1)[0][0] == large_statements.most_common(1)[0][0]
    assert sum(large_statements.values()) - large_statements.most_common(1)[0][1] <= 5
    # And they touch as many rows: VM steps per batch within 5% (a deeper
    # B-tree costs no extra step; a scan of the job would cost 20x).
    small_steps = statistics.median(s for _, s in steady(small.per_batch))
    large_steps = statistics.median(s for _, s in steady(large.per_batch))
    assert large_steps <= 1.05 * small_steps, (small_steps, large_steps)
    # The counters the loop keeps agree with a count of the chunks.
    for store in (small_store, large_store):
        job = store.jobs()[0]
        row = store.db.execute(
            "SELECT SUM(n_tokens) FROM chunks WHERE job_id = ? AND state = 'done' "
            "AND reused IS NULL AND dup_of IS NULL", (job.id,)).fetchone()
        assert store.token_counts(job.id) == (row[0], row[0])


# A scan of a job's rows, or a search that narrows them only to the job (or
# to the job's chunks in one state): either reads a number of rows that
# grows with the job.
_WHOLE_JOB = re.compile(r"\bSCAN (chunks|batches|attempts)\b|"
                        r"\bSEARCH (chunks|batches|attempts) USING (COVERING )?INDEX \w+ "
                        r"\(job_id=\?( AND state=\?)?\)")


def whole_job_reads(statements: list[str], store: Store) -> tuple[Counter, dict[str, str]]:
    """Each statement shape among ``statements`` (values replaced by ?)
    with how often it ran, and the query plans of those that read a whole
    job's chunks, batches or attempts."""
    runs: Counter = Counter()
    whole: dict[str, str] = {}
    for sql in statements:
        text = sql.strip()
        if not re.match(r"(SELECT|UPDATE|DELETE|INSERT)\b", text, re.I):
            continue  # BEGIN, COMMIT, SAVEPOINT, trigger bodies
        shape = re.sub(r"'[^']*'|\b\d+(\.\d+)?\b", "?", text)
        shape = re.sub(r"\?(, \?)+", "?", shape)  # IN lists of any length
        runs[shape] += 1
        if runs[shape] > 1:
            continue
        plan = " / ".join(row[3] for row in store.db.execute(f"EXPLAIN QUERY PLAN {text}"))
        if _WHOLE_JOB.search(plan) and not stops_at_first_row(text, plan):
            whole[shape] = plan
    return runs, whole


def stops_at_first_row(text: str, plan: str) -> bool:
    """A ``LIMIT 1`` search whose rows all qualify (every WHERE term is a
    term of the index search, and no sort reads them all first) answers
    with the first row it finds, however large the job: the next pending
    batch in plan order, the job's last chunk. A term ``x NOT IN (...)``
    steps over at most the listed rows (the batches in flight). A search
    with any other term walks the job's rows until one matches: the first
    piece of a text, searched in chunk order, read the whole job (0.37 s a
    piece at 1,000,000 lines) while it matched nothing."""
    if not re.search(r"\bLIMIT 1$", text) or "TEMP B-TREE" in plan:
        return False
    where = re.search(r"\bWHERE (.*?)(?:\bORDER BY\b|\bLIMIT\b)", text, re.S)
    terms = re.sub(r"\b\w+ NOT IN \([^)]*\)", "", where.group(1)) if where else ""
    filtered = set(re.findall(r"\b(\w+)\s*(?:=|!=|<|>|\bIS\b|\bIN\b)", terms))
    return filtered <= set(re.findall(r"(\w+)=\?", plan))


@pytest.mark.slow
def test_no_statement_of_the_loop_reads_a_whole_jobs_chunks_batches_or_attempts(
        small_and_large):
    (small, store), _ = small_and_large
    # The steady batches' statements (planning a round and settling repeats
    # run once per round, not per batch).
    runs, whole = whole_job_reads(small.statements[small.bounds[0]:small.bounds[-3]], store)
    assert len(runs) >= 8  # the loop's statements were seen at all
    assert whole == {}


@pytest.mark.slow
def test_the_quality_ladder_reads_no_whole_job_per_chunk_either(tmp_path):
    """Every tenth line loops, so its chunk goes down the ladder to pieces
    that are committed and joined: a statement that reads the whole job may
    run once per ladder round, never once per batch, piece or parent (a
    missing index made joining a parent's pieces scan the job's chunks)."""
    cost, store = run_corpus(tmp_path, 2_000, twists=10)
    job = store.jobs()[0]
    replaced = store.db.execute("SELECT COUNT(*) FROM chunks WHERE job_id = ? AND "
                                "state = 'replaced'", (job.id,)).fetchone()[0]
    assert replaced >= 150  # the ladder ran, on every twisted line
    runs, whole = whole_job_reads(cost.statements, store)
    rounds = store.db.execute("SELECT COUNT(*) FROM stage_runs WHERE job_id = ?",
                              (job.id,)).fetchone()[0] + 8  # generous: a few per round
    too_often = {shape: (runs[shape], plan) for shape, plan in whole.items()
                 if runs[shape] > rounds}
    assert too_often == {}


@pytest.mark.slow
def test_show_counts_a_whole_job_only_from_indexes(tmp_path):
    """``show`` (``views.job_detail``) counts a job's batches by backend and
    device and its ladder's attempts by reason: read from the rows (which
    carry the members' list and the messages), that took 0.17 s on a
    1,000,000-line job and put ``show`` over its 0.5 s. A statement may
    read a whole job's rows only from a covering index (every column it
    needs is in the index) or a partial one (it holds the few rows that
    matter: the flagged chunks, the pieces), or stop at its first row;
    the failed chunks, which ``show`` lists one by one, are read by state."""
    _, store = run_corpus(tmp_path, 300, twists=10)
    job = store.jobs()[0]
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    views.job_detail(store, job, time.time())
    store.db.conn.set_trace_callback(None)
    partial = {name for (name,) in store.db.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND sql LIKE '% WHERE %'")}
    assert {"chunks_flagged", "chunks_by_parent"} <= partial
    _, whole = whole_job_reads([s for s in statements if "state = 'failed'" not in s], store)

    def from_index_only(line: str) -> bool:
        index = re.search(r"USING (COVERING )?INDEX (\w+)", line)
        return bool(index and (index.group(1) or index.group(2) in partial))

    rows_read = {shape: line for shape, plan in whole.items() for line in plan.split(" / ")
                 if _WHOLE_JOB.search(line) and not from_index_only(line)}
    assert len(statements) > 8  # show's reads were seen at all
    assert rows_read == {}, "\n".join(f"{p}: {s}" for s, p in rows_read.items())
