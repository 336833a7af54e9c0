"""The store's schema as numbered migrations, applied in order.

A migration is never edited once it has shipped: change the schema by
appending one. ``PRAGMA user_version`` records how many have been applied.
"""

from __future__ import annotations

from pipeline.store import reviews, totals

# A chunk's contribution to its job's counters (migration 8), as SQL over a
# row alias (NEW or OLD): source tokens as ``token_counts`` defines them (of
# the chunks inference translates; a replaced chunk's tokens are its
# pieces'), chunks by state, and chunks reused from the memory or from an
# earlier chunk of the document, and the placeholders the document's chunks
# carry.
CHUNK_STATES = ("pending", "waiting", "done", "failed", "replaced")
_TRANSLATED = "{r}.reused IS NULL AND {r}.dup_of IS NULL"
COUNTERS: dict[str, str] = {
    "tokens_done": f"CASE WHEN {_TRANSLATED} AND {{r}}.state = 'done' "
                   "THEN COALESCE({r}.share, {r}.n_tokens) ELSE 0 END",
    "tokens_total": f"CASE WHEN {_TRANSLATED} AND {{r}}.state != 'replaced' "
                    "THEN COALESCE({r}.share, {r}.n_tokens) ELSE 0 END",
    **{f"chunks_{state}": f"({{r}}.state = '{state}')" for state in CHUNK_STATES},
    "reused_memory": "({r}.reused IS 'memory')",
    "reused_document": "({r}.reused IS 'document')",
    # placeholders in the document's own chunks (never changes after insert)
    "protected_pieces": "CASE WHEN {r}.parent IS NULL AND {r}.protected IS NOT NULL "
                        "THEN json_array_length({r}.protected) ELSE 0 END",
}


def _counter_migration() -> str:
    columns = "\n".join(f"ALTER TABLE jobs ADD COLUMN {name} REAL NOT NULL DEFAULT 0;"
                        for name in COUNTERS)
    backfill = ",\n    ".join(
        f"{name} = (SELECT COALESCE(SUM({expr.format(r='c')}), 0) FROM chunks c "
        "WHERE c.job_id = jobs.id)" for name, expr in COUNTERS.items())

    def change(sign: str, row: str) -> str:
        return ", ".join(f"{name} = {name} {sign} {expr.format(r=row)}"
                         for name, expr in COUNTERS.items())

    both = ", ".join(f"{name} = {name} - {expr.format(r='OLD')} + {expr.format(r='NEW')}"
                     for name, expr in COUNTERS.items())
    watched = ("state", "share", "n_tokens", "reused", "dup_of")
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in watched)
    return f"""
    {columns}
    UPDATE jobs SET
    {backfill};
    CREATE TRIGGER chunks_count_insert AFTER INSERT ON chunks
    BEGIN UPDATE jobs SET {change("+", "NEW")} WHERE id = NEW.job_id; END;
    CREATE TRIGGER chunks_count_delete AFTER DELETE ON chunks
    BEGIN UPDATE jobs SET {change("-", "OLD")} WHERE id = OLD.job_id; END;
    CREATE TRIGGER chunks_count_update AFTER UPDATE OF {", ".join(watched)} ON chunks
        WHEN {changed}
    BEGIN UPDATE jobs SET {both} WHERE id = NEW.job_id; END;
    ALTER TABLE batches ADD COLUMN label TEXT;
    CREATE TEMP TABLE batch_label_backfill (id INTEGER PRIMARY KEY, label TEXT NOT NULL);
    INSERT INTO batch_label_backfill (id, label)
        WITH RECURSIVE numbered AS (
            SELECT id, parent_id, seq,
                   ROW_NUMBER() OVER (PARTITION BY parent_id ORDER BY id) AS part
            FROM batches),
        labelled (id, label) AS (
            SELECT id, CAST(seq + 1 AS TEXT) FROM numbered WHERE parent_id IS NULL
            UNION ALL
            SELECT n.id, l.label || '.' || n.part FROM numbered n JOIN labelled l
                ON n.parent_id = l.id)
        SELECT id, label FROM labelled;
    UPDATE batches SET label = (SELECT label FROM batch_label_backfill b
                                WHERE b.id = batches.id);
    DROP TABLE batch_label_backfill;
    CREATE INDEX attempts_by_batch ON attempts (batch_id, decision);
    CREATE INDEX attempts_by_chunk ON attempts (job_id, chunk_idx);
    CREATE INDEX attempts_by_decision ON attempts (job_id, decision);
    CREATE INDEX chunks_flagged ON chunks (job_id, idx) WHERE flag IS NOT NULL;
    DROP INDEX chunks_by_state;
    CREATE INDEX chunks_by_state ON chunks (job_id, state, idx);
    """


# 8: what the inference loop and the read commands need without reading a
# whole job. A job's counters (``COUNTERS``) are kept by triggers, so every
# write that changes a chunk keeps them right and no read sums a job's
# chunks. A batch's label (``12``, ``12.1``) is stored when it is planned.
# Attempts are found by batch, by chunk and by decision; flagged chunks by
# a partial index; chunks in one state come in index order.
_MIGRATION_8 = _counter_migration()


MIGRATIONS: tuple[str, ...] = (
    # 1: jobs, chunks, batches, stage runs, artifacts, attempts, lease history
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        idem_key TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,          -- QUEUED RUNNING SUCCEEDED FAILED CANCELED
        stage TEXT NOT NULL,          -- preprocess inference postprocess upload done
        params TEXT NOT NULL,         -- canonical JSON of JobParams
        input_path TEXT NOT NULL,
        input_sha256 TEXT NOT NULL,
        input_bytes INTEGER NOT NULL,
        output_path TEXT,
        error_class TEXT,
        error_message TEXT,
        lease_owner TEXT,
        lease_expires REAL,           -- unix time
        priority INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE INDEX jobs_by_state ON jobs (state, priority, created_at);
    CREATE TABLE chunks (
        job_id TEXT NOT NULL REFERENCES jobs (id),
        idx INTEGER NOT NULL,
        unit INTEGER NOT NULL,        -- the skeleton unit this chunk belongs to
        source TEXT NOT NULL,
        n_tokens INTEGER NOT NULL,
        state TEXT NOT NULL,          -- pending done failed
        translation TEXT,
        batch_id INTEGER,             -- the batch that committed it
        commits INTEGER NOT NULL DEFAULT 0,  -- times a translation was committed
        attempts INTEGER NOT NULL DEFAULT 0, -- failed attempts so far
        PRIMARY KEY (job_id, idx)
    );
    CREATE INDEX chunks_by_state ON chunks (job_id, state);
    CREATE TABLE batches (
        id INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs (id),
        seq INTEGER NOT NULL,         -- order of execution
        chunk_idxs TEXT NOT NULL,     -- JSON list of chunk indexes
        padded_tokens INTEGER NOT NULL,
        source_tokens INTEGER NOT NULL,
        state TEXT NOT NULL,          -- pending committed split skipped
        parent_id INTEGER,            -- the batch this one was split from
        attempts INTEGER NOT NULL DEFAULT 0,
        not_before REAL,              -- retry backoff: do not start before
        started_at REAL,
        committed_at REAL,
        worker TEXT
    );
    CREATE INDEX batches_by_job ON batches (job_id, state, seq);
    CREATE TABLE stage_runs (
        id INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs (id),
        stage TEXT NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL,
        wall_s REAL,
        units_total REAL,
        units_done REAL,
        device TEXT,
        model TEXT,
        worker TEXT
    );
    CREATE INDEX stage_runs_by_job ON stage_runs (job_id, stage);
    CREATE TABLE artifacts (
        job_id TEXT NOT NULL REFERENCES jobs (id),
        kind TEXT NOT NULL,           -- skeleton output delivery
        content BLOB,
        path TEXT,
        sha256 TEXT,
        bytes INTEGER,
        created_at REAL NOT NULL,
        PRIMARY KEY (job_id, kind)
    );
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs (id),
        stage TEXT NOT NULL,
        batch_id INTEGER,
        chunk_idx INTEGER,
        error_class TEXT NOT NULL,
        message TEXT NOT NULL,
        traceback TEXT,
        attempt INTEGER NOT NULL,
        delay_s REAL,
        decision TEXT NOT NULL,       -- retry split skip fail
        trace_id TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX attempts_by_job ON attempts (job_id, at);
    CREATE TABLE leases (
        id INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs (id),
        worker TEXT NOT NULL,
        acquired_at REAL NOT NULL,
        released_at REAL,
        how TEXT                      -- released expired lost
    );
    CREATE INDEX leases_by_job ON leases (job_id, acquired_at);
    """,
    # 2: the dtype of a stage run, the third part of a timing profile
    # (model, device, dtype) whose history sets progress weights and ETAs
    """
    ALTER TABLE stage_runs ADD COLUMN dtype TEXT;
    CREATE INDEX stage_runs_by_profile ON stage_runs (stage, model, device, dtype);
    CREATE INDEX jobs_by_created ON jobs (created_at);
    ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE eta_predictions (
        job_id TEXT NOT NULL REFERENCES jobs (id),
        at_percent INTEGER NOT NULL,  -- 10, 50, 90: overall progress when predicted
        elapsed_s REAL NOT NULL,      -- stage wall time spent so far
        predicted_total_s REAL NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (job_id, at_percent)
    );
    """,
    # 3: a running job's live progress (what its progress bar shows: stage,
    # percent at measured weights, ETA, rate, a retry's wait), and a
    # revision counter that moves whenever a job's visible state does, so a
    # list of jobs can be answered with "not modified" for free
    """
    ALTER TABLE jobs ADD COLUMN progress TEXT;  -- JSON, see pipeline.progress.LiveProgress
    CREATE TABLE revision (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
    INSERT INTO revision VALUES (1, 0);
    CREATE TRIGGER jobs_revision_insert AFTER INSERT ON jobs
    BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER jobs_revision_delete AFTER DELETE ON jobs
    BEGIN UPDATE revision SET n = n + 1; END;
    CREATE TRIGGER jobs_revision_update AFTER UPDATE OF state, stage, progress, error_class,
        error_message, output_path, priority, finished_at, cancel_requested, lease_owner ON jobs
    BEGIN UPDATE revision SET n = n + 1; END;
    """,
    # 4: the translation memory (pipeline/memory): every committed translation
    # under its key (a scope: model identity, backend, device kind, compute
    # type, languages, output settings; and the exact source text), how a
    # chunk got its translation without inference, and each job's memory mode
    """
    ALTER TABLE jobs ADD COLUMN memory_mode TEXT NOT NULL DEFAULT 'on';
    ALTER TABLE chunks ADD COLUMN reused TEXT;
    ALTER TABLE chunks ADD COLUMN dup_of INTEGER;
    CREATE INDEX chunks_by_dup_of ON chunks (job_id, dup_of) WHERE dup_of IS NOT NULL;
    CREATE TABLE memory_scopes (
        id INTEGER PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE,  -- SHA-256 of the canonical JSON of the fields below
        model TEXT NOT NULL,          -- the model as the job named it (shown, not keyed)
        identity TEXT NOT NULL,       -- fingerprint:HEX, or model:ID where there is none
        backend TEXT NOT NULL,
        device TEXT NOT NULL,         -- cpu, cuda: the kind, not the index
        compute_type TEXT NOT NULL,
        src_lang TEXT NOT NULL,
        tgt_lang TEXT NOT NULL,
        settings TEXT NOT NULL,       -- canonical JSON of the output settings
        created_at REAL NOT NULL
    );
    CREATE TABLE memory_units (
        scope INTEGER NOT NULL REFERENCES memory_scopes (id),
        source TEXT NOT NULL,         -- exactly the text the model was given
        translation TEXT NOT NULL,    -- exactly what was committed for it
        origin TEXT NOT NULL,         -- inferred imported
        created_at REAL NOT NULL,
        used_at REAL NOT NULL,        -- last stored or reused: what prune goes by
        uses INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (scope, source)
    ) WITHOUT ROWID;
    CREATE INDEX memory_units_by_use ON memory_units (used_at);
    """,
    # 5: which backend, device and compute type translated each batch (a job
    # may move between them: a resume on the other backend, a switch to the
    # fallback device), and the backend of a stage run: timing profiles
    # become (model, backend, device, dtype). Every run before this one was
    # the transformers backend's.
    """
    ALTER TABLE batches ADD COLUMN backend TEXT;
    ALTER TABLE batches ADD COLUMN device TEXT;
    ALTER TABLE batches ADD COLUMN compute_type TEXT;
    ALTER TABLE stage_runs ADD COLUMN backend TEXT;
    UPDATE stage_runs SET backend = 'hf' WHERE stage = 'inference' AND model IS NOT NULL;
    CREATE INDEX stage_runs_by_backend_profile ON stage_runs (stage, model, backend, device, dtype);
    """,
    # 6: chunks replaced by pieces (the fallback when a placeholder does not
    # survive, the repair ladder's split), placeholders, quality flags
    """
    ALTER TABLE chunks ADD COLUMN parent INTEGER;   -- the chunk this piece is part of
    ALTER TABLE chunks ADD COLUMN protected TEXT;   -- its placeholders: JSON spec (pipeline.documents.protect)
    ALTER TABLE chunks ADD COLUMN rung INTEGER NOT NULL DEFAULT 0;  -- repair ladder step
    ALTER TABLE chunks ADD COLUMN flag TEXT;        -- accepted with a quality flag: the reason
    ALTER TABLE chunks ADD COLUMN share REAL;       -- source tokens it stands for (NULL: n_tokens)
    CREATE INDEX chunks_by_parent ON chunks (job_id, parent);
    ALTER TABLE attempts ADD COLUMN reason TEXT;    -- a QUALITY attempt's reason (loop, copy...)
    """,
    # 7: where a batch ran, and where a failed attempt ran, when that was not
    # the worker's own process (a Ray actor: "actor 1 pid 4242 on node ab12...")
    """
    ALTER TABLE batches ADD COLUMN ran_on TEXT;
    ALTER TABLE attempts ADD COLUMN ran_on TEXT;
    """,
    _MIGRATION_8,
    # 9: preprocessing in slices (pipeline.stages.preprocess). Each slice of
    # the input is written with its skeleton, its chunks and where the next
    # slice starts, in one transaction, so an interrupted preprocess goes on
    # from its last slice and postprocess reads the skeleton a slice at a
    # time. A chunk that is the first of its text carries a 64-bit key of
    # that text, so a repeat in a later slice finds it by an index.
    """
    ALTER TABLE chunks ADD COLUMN source_key INTEGER;
    CREATE INDEX chunks_by_source_key ON chunks (job_id, source_key)
        WHERE source_key IS NOT NULL;
    CREATE TABLE skeleton_slices (
        job_id TEXT NOT NULL REFERENCES jobs (id),
        seq INTEGER NOT NULL,         -- 0, 1, ... in input order
        first_unit INTEGER NOT NULL,  -- its units are first_unit, first_unit + 1, ...
        first_chunk INTEGER NOT NULL, -- its chunks are idx first_chunk .. first_chunk + chunks - 1
        chunks INTEGER NOT NULL,
        end_byte INTEGER NOT NULL,    -- input offset where the next slice starts
        cursor TEXT NOT NULL,         -- JSON: the reader's and parser's tallies after it
        skeleton TEXT NOT NULL,       -- JSON of its pipeline.documents.document.Document
        PRIMARY KEY (job_id, seq)
    );
    """,
    # 10: a memory unit keeps the quality flag its text was delivered with
    # (a reuse is as flagged as the chunk it came from)
    """
    ALTER TABLE memory_units ADD COLUMN flag TEXT;  -- the reason (pipeline.quality.checks)
    """,
    # 11: a replaced chunk's pieces in order by one index. With (job_id,
    # parent) alone, SQLite preferred the primary key for "... AND parent = ?
    # ORDER BY idx" and read the whole job's chunks for every parent it
    # joined: 5.6 ms a parent at 5,000 lines, growing with the job.
    """
    DROP INDEX chunks_by_parent;
    CREATE INDEX chunks_by_parent ON chunks (job_id, parent, idx) WHERE parent IS NOT NULL;
    """,
    # 12: the CPU seconds the process spent while a stage ran (all its
    # threads), beside the wall time: whether a stage waited or worked, and
    # a figure that a busy machine does not move (benchmarks/scale.py)
    """
    ALTER TABLE stage_runs ADD COLUMN cpu_s REAL;
    """,
    # 13: the task centre (issue 22). "Retry now" ends a retry's wait: the
    # API or the CLI sets wake_requested, the waiting worker sees it within
    # a second and clears it. A request is found by its input and canonical
    # parameters whatever key it came with. The list's keyset pages walk
    # (created_at, id); what ended lately (a state's jobs by finished_at)
    # and the queue in claim order (priority, then age) are index ranges.
    """
    ALTER TABLE jobs ADD COLUMN wake_requested INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX jobs_by_input ON jobs (input_sha256);
    DROP INDEX jobs_by_created;
    CREATE INDEX jobs_by_created ON jobs (created_at, id);
    CREATE INDEX jobs_by_end ON jobs (state, finished_at) WHERE finished_at IS NOT NULL;
    CREATE INDEX jobs_queue ON jobs (priority DESC, created_at, id) WHERE state = 'QUEUED';
    """,
    # 14: running totals for /metrics, kept by triggers as work is committed
    # (pipeline.store.totals), the tokens a batch generated, and the workers
    # that say they are alive while idle
    totals.migration(),
    # 15: each profile's ETA drift (pipeline.monitoring.drift): the last judged
    # error, whether it drifts, how often it was recalibrated, and over how
    # many recent jobs its stage weights and rates are taken meanwhile
    """
    CREATE TABLE eta_drift (
        model TEXT NOT NULL,
        backend TEXT NOT NULL,
        device TEXT NOT NULL,
        dtype TEXT NOT NULL,
        error REAL NOT NULL,          -- median |predicted - actual| / actual at the mark
        drifting INTEGER NOT NULL,    -- 1 while past the threshold
        recalibrations INTEGER NOT NULL,
        history_jobs INTEGER NOT NULL, -- pipeline.profiles takes the last this many jobs
        checked_at REAL NOT NULL,
        PRIMARY KEY (model, backend, device, dtype)
    );
    """,
    # 16: readers' reviews of delivered chunks, counted in metric_totals
    # (pipeline.store.reviews)
    reviews.MIGRATION,
    # 17: the list's index holds each job's input path, so a search by name
    # walks the index and reads a job's row only when its name matches
    # (pipeline.store.listing): a third of the CPU a search cost on 10,000 jobs
    """
    DROP INDEX jobs_by_created;
    CREATE INDEX jobs_by_created ON jobs (created_at, id, input_path);
    """,
    # 18: what `show` counts over a job's batches (by backend, device and
    # where they ran) and its ladder's attempts (by decision and reason) is
    # read from an index that holds those columns, not from the rows (which
    # carry the members' list and the messages): 171 -> 51 ms on a
    # 1,000,000-line job's 25,000 batches and 67,000 attempts
    """
    CREATE INDEX batches_by_profile ON batches
        (job_id, state, backend, device, compute_type, ran_on, seq, committed_at);
    CREATE INDEX attempts_by_class ON attempts (job_id, error_class, decision, reason);
    """,
    # 19: how long each batch's model call took, and how long the engine
    # waited for the pipeline before it (pipeline.stages.inference), summed
    # by `show` from the profile index, which now holds them too
    """
    ALTER TABLE batches ADD COLUMN call_s REAL;
    ALTER TABLE batches ADD COLUMN idle_s REAL;
    DROP INDEX batches_by_profile;
    CREATE INDEX batches_by_profile ON batches
        (job_id, state, backend, device, compute_type, ran_on, seq, committed_at, call_s, idle_s);
    """,
)
