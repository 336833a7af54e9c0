"""Running totals for monitoring, kept by the transactions that change them.

``/metrics`` (``pipeline.monitoring``) must answer in a few statements
however many jobs the store holds, and its counters must only go up: ``gc``
deletes chunks and batches, and a job's own counters go down with them. So
triggers add to ``metric_totals`` (one row per metric and label set) as
work is committed, in the same transaction:

- ``attempts_total`` {stage, error_class, decision}: every attempts row;
  ``quality_total`` {decision, reason}: the repair ladder's rows;
- ``tokens_total`` {kind: source|generated, backend, device, compute_type}:
  when a batch is committed, its planned source tokens and the tokens the
  model generated for it;
- ``reused_total`` {how: memory|document}: a chunk that got its translation
  without inference;
- ``jobs_finished_total`` {outcome}: a job entering SUCCEEDED, FAILED or
  CANCELED (a job retried by hand counts again when it ends again);
- ``stage_seconds`` {stage, model, backend, device, compute_type} (a
  histogram: ``_bucket`` rows per bucket index, not cumulative, ``_sum``,
  ``_count``): when a job ends SUCCEEDED or FAILED, each stage's wall time
  (its runs summed), labelled with the profile its last inference ran on;
- ``eta_error`` {mark} (a histogram): when a job ends SUCCEEDED, for each
  progress mark it predicted at, |predicted - actual| / actual.

``job_state_counts`` holds how many jobs are in each state now, kept by
triggers on the jobs table, so the gauge of jobs by state reads no job.

Migration 13 creates the table and the triggers and fills the totals from
what the store already holds. ``workers`` is where a queue worker says it is
alive while idle (a job's lease says so while it runs one).
"""

from __future__ import annotations

import json
import os
import socket

# Histogram buckets (upper bounds). Stage wall time in seconds, from a short
# document on a GPU to a night's corpus; ETA error as a ratio (0.25 = 25 %).
STAGE_SECONDS_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
                         7200.0, 14400.0, 43200.0, 86400.0)
ETA_ERROR_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
QUALITY_DECISIONS = ("flag", "guarded", "clauses", "fragments", "split_chunk")
FINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELED")
_UPSERT = " ON CONFLICT (metric, labels) DO UPDATE SET value = value + excluded.value"


def _labels(**exprs: str) -> str:
    return "json_object(" + ", ".join(f"'{k}', {v}" for k, v in exprs.items()) + ")"


def _bucket(value: str, bounds: tuple[float, ...]) -> str:
    """SQL: the index of the first bucket ``value`` fits (len(bounds): +Inf)."""
    whens = " ".join(f"WHEN {value} <= {b!r} THEN {i}" for i, b in enumerate(bounds))
    return f"CASE {whens} ELSE {len(bounds)} END"


def _add(metric: str, labels: str, value: str, rest: str) -> str:
    """INSERT the SELECT of (metric, labels, value) ``rest`` (FROM/WHERE,
    never empty: a WHERE keeps ON CONFLICT from reading as a join)."""
    return (f"INSERT INTO metric_totals (metric, labels, value) SELECT {metric}, {labels}, "
            f"{value} {rest}{_UPSERT};")


def _histogram(name: str, labels: dict[str, str], value: str, bounds, rest: str) -> str:
    return "\n".join((
        _add(f"'{name}_bucket'", _labels(**labels, bucket=_bucket(value, bounds)), "1", rest),
        _add(f"'{name}_sum'", _labels(**labels), value, rest),
        _add(f"'{name}_count'", _labels(**labels), "1", rest),
    ))


def _profile_of(job: str) -> dict[str, str]:
    """The profile (labels) of the job's latest inference run, '' where none."""
    def of(column: str) -> str:
        return (f"COALESCE((SELECT {column} FROM stage_runs WHERE job_id = {job} AND stage = "
                f"'inference' ORDER BY id DESC LIMIT 1), '')")
    return {"model": of("model"), "backend": of("backend"), "device": of("device"),
            "compute_type": of("dtype")}


def _stage_times(job: str) -> str:
    return (f"FROM (SELECT stage, SUM(wall_s) AS wall FROM stage_runs WHERE job_id = {job} "
            "AND finished_at IS NOT NULL GROUP BY stage) WHERE wall IS NOT NULL")


def _eta_errors(job: str) -> str:
    return (f"FROM (SELECT at_percent, ABS(predicted_total_s - actual) / actual AS err FROM "
            f"eta_predictions, (SELECT SUM(wall_s) AS actual FROM stage_runs WHERE job_id = "
            f"{job}) WHERE job_id = {job}) WHERE err IS NOT NULL")


def _on_job_end(job: str) -> str:
    return _histogram("stage_seconds", {"stage": "stage", **_profile_of(job)}, "wall",
                      STAGE_SECONDS_BUCKETS, _stage_times(job))


def migration() -> str:
    """Migration 13: the totals, their triggers, the backfill, the workers."""
    final = "(" + ", ".join(f"'{s}'" for s in FINAL_STATES) + ")"
    quality = "(" + ", ".join(f"'{d}'" for d in QUALITY_DECISIONS) + ")"
    tokens = {"backend": "COALESCE(NEW.backend, '')", "device": "COALESCE(NEW.device, '')",
              "compute_type": "COALESCE(NEW.compute_type, '')"}
    new_attempt = {"stage": "NEW.stage", "error_class": "NEW.error_class",
                   "decision": "NEW.decision"}
    ended = f"OLD.state NOT IN {final} AND NEW.state IN ('SUCCEEDED', 'FAILED')"
    triggers = f"""
    CREATE TRIGGER metric_attempts AFTER INSERT ON attempts BEGIN
    {_add("'attempts_total'", _labels(**new_attempt), "1", "WHERE true")}
    {_add("'quality_total'", _labels(decision="NEW.decision", reason="COALESCE(NEW.reason, '')"),
          "1", f"WHERE NEW.decision IN {quality}")}
    END;
    CREATE TRIGGER metric_batch_committed AFTER UPDATE OF state ON batches
        WHEN OLD.state = 'pending' AND NEW.state = 'committed' BEGIN
    {_add("'tokens_total'", _labels(kind="'source'", **tokens), "NEW.source_tokens", "WHERE true")}
    {_add("'tokens_total'", _labels(kind="'generated'", **tokens), "NEW.generated_tokens",
          "WHERE true")}
    END;
    CREATE TRIGGER metric_reused_insert AFTER INSERT ON chunks WHEN NEW.reused IS NOT NULL BEGIN
    {_add("'reused_total'", _labels(how="NEW.reused"), "1", "WHERE true")}
    END;
    CREATE TRIGGER metric_reused_update AFTER UPDATE OF reused ON chunks
        WHEN NEW.reused IS NOT NULL AND OLD.reused IS NULL BEGIN
    {_add("'reused_total'", _labels(how="NEW.reused"), "1", "WHERE true")}
    END;
    CREATE TRIGGER metric_job_finished AFTER UPDATE OF state ON jobs
        WHEN OLD.state NOT IN {final} AND NEW.state IN {final} BEGIN
    {_add("'jobs_finished_total'", _labels(outcome="NEW.state"), "1", "WHERE true")}
    END;
    CREATE TRIGGER metric_job_ended AFTER UPDATE OF state ON jobs WHEN {ended} BEGIN
    {_on_job_end("NEW.id")}
    END;
    CREATE TRIGGER metric_job_succeeded AFTER UPDATE OF state ON jobs
        WHEN OLD.state NOT IN {final} AND NEW.state = 'SUCCEEDED' BEGIN
    {_histogram("eta_error", {"mark": "at_percent"}, "err", ETA_ERROR_BUCKETS, _eta_errors("NEW.id"))}
    END;
    """
    attempt_cols = {"stage": "stage", "error_class": "error_class", "decision": "decision"}
    backfill = f"""
    {_add("'attempts_total'", _labels(**attempt_cols), "COUNT(*)",
          "FROM attempts GROUP BY stage, error_class, decision")}
    {_add("'quality_total'", _labels(decision="decision", reason="COALESCE(reason, '')"),
          "COUNT(*)", f"FROM attempts WHERE decision IN {quality} GROUP BY decision, reason")}
    {_add("'tokens_total'", _labels(kind="'source'", **{k: v.replace("NEW.", "")
                                                          for k, v in tokens.items()}),
          "SUM(source_tokens)", "FROM batches WHERE state = 'committed' "
          "GROUP BY backend, device, compute_type")}
    {_add("'reused_total'", _labels(how="reused"), "COUNT(*)",
          "FROM chunks WHERE reused IS NOT NULL GROUP BY reused")}
    {_add("'jobs_finished_total'", _labels(outcome="state"), "COUNT(*)",
          f"FROM jobs WHERE state IN {final} GROUP BY state")}
    """
    return f"""
    CREATE TABLE metric_totals (
        metric TEXT NOT NULL,
        labels TEXT NOT NULL,         -- JSON object of the label values
        value REAL NOT NULL,
        PRIMARY KEY (metric, labels)
    ) WITHOUT ROWID;
    ALTER TABLE batches ADD COLUMN generated_tokens INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE workers (
        id TEXT PRIMARY KEY,          -- the worker id leases carry
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at REAL NOT NULL,
        seen_at REAL NOT NULL         -- last said it is alive (idle or not)
    );
    CREATE TABLE job_state_counts (
        state TEXT PRIMARY KEY,
        n INTEGER NOT NULL            -- jobs in that state now
    ) WITHOUT ROWID;
    INSERT INTO job_state_counts SELECT state, COUNT(*) FROM jobs GROUP BY state;
    CREATE TRIGGER job_states_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO job_state_counts VALUES (NEW.state, 1)
        ON CONFLICT (state) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER job_states_delete AFTER DELETE ON jobs BEGIN
    UPDATE job_state_counts SET n = n - 1 WHERE state = OLD.state;
    END;
    CREATE TRIGGER job_states_update AFTER UPDATE OF state ON jobs
        WHEN OLD.state IS NOT NEW.state BEGIN
    UPDATE job_state_counts SET n = n - 1 WHERE state = OLD.state;
    INSERT INTO job_state_counts VALUES (NEW.state, 1)
        ON CONFLICT (state) DO UPDATE SET n = n + 1;
    END;
    {backfill}
    {_backfill_per_job()}
    {triggers}
    """


def _backfill_per_job() -> str:
    """The job-end histograms for the jobs that ended before migration 13."""
    profile = _profile_of("j.id")
    stage_rows = ("FROM jobs j JOIN (SELECT job_id, stage, SUM(wall_s) AS wall FROM stage_runs "
                  "WHERE finished_at IS NOT NULL GROUP BY job_id, stage) s ON s.job_id = j.id "
                  "WHERE j.state IN ('SUCCEEDED', 'FAILED') AND wall IS NOT NULL")
    eta_rows = ("FROM (SELECT p.at_percent, ABS(p.predicted_total_s - t.actual) / t.actual AS err "
                "FROM eta_predictions p JOIN jobs j ON j.id = p.job_id AND j.state = 'SUCCEEDED' "
                "JOIN (SELECT job_id, SUM(wall_s) AS actual FROM stage_runs GROUP BY job_id) t "
                "ON t.job_id = p.job_id) WHERE err IS NOT NULL")
    return "\n".join((
        _grouped_histogram("stage_seconds", {"stage": "s.stage", **profile}, "wall",
                           STAGE_SECONDS_BUCKETS, stage_rows),
        _grouped_histogram("eta_error", {"mark": "at_percent"}, "err", ETA_ERROR_BUCKETS,
                           eta_rows),
    ))


def _grouped_histogram(name: str, labels: dict[str, str], value: str, bounds,
                       rows: str) -> str:
    """``_histogram`` over many rows at once (summed per label set)."""
    inner = ", ".join(f"{v} AS l_{k}" for k, v in labels.items())
    grouped = {k: f"l_{k}" for k in labels}
    source = f"FROM (SELECT {inner}, {value} AS v, {_bucket(value, bounds)} AS b {rows})"
    group = "GROUP BY " + ", ".join(grouped.values())
    return "\n".join((
        _add(f"'{name}_bucket'", _labels(**grouped, bucket="b"), "COUNT(*)",
             f"{source} {group}, b"),
        _add(f"'{name}_sum'", _labels(**grouped), "SUM(v)", f"{source} {group}"),
        _add(f"'{name}_count'", _labels(**grouped), "COUNT(*)", f"{source} {group}"),
    ))


class TotalsMixin:
    """Read verbs behind ``/metrics``, a few aggregate statements per scrape."""

    def metric_totals(self) -> list[tuple[str, dict, float]]:
        """Every (metric, labels, value) row of the running totals."""
        return [(metric, json.loads(labels), value) for metric, labels, value in
                self.db.execute("SELECT metric, labels, value FROM metric_totals")]

    def job_gauges(self) -> dict:
        """Jobs by stored state, the oldest queued job's creation time, and
        the live leases: (jobs running under an unexpired lease, distinct
        holders), and RUNNING jobs whose lease expired (INTERRUPTED)."""
        # Counts kept by triggers; the oldest queued job from the state index
        # (a read of the queue, never of the jobs that ended).
        states = dict(self.db.execute("SELECT state, n FROM job_state_counts WHERE n > 0"))
        oldest_queued = self.db.execute("SELECT MIN(created_at) FROM jobs WHERE state = "
                                        "'QUEUED'").fetchone()[0]
        leases, holders, expired = self.db.execute(
            "SELECT COALESCE(SUM(lease_expires >= :now), 0), "
            "COUNT(DISTINCT CASE WHEN lease_expires >= :now THEN lease_owner END), "
            "COALESCE(SUM(lease_expires IS NULL OR lease_expires < :now), 0) "
            "FROM jobs WHERE state = 'RUNNING'", {"now": self.clock()}).fetchone()
        return {"states": states, "oldest_queued_at": oldest_queued, "leases": leases,
                "lease_holders": holders, "expired_leases": expired}

    def live_workers(self, within_s: float) -> int:
        """Workers seen in the last ``within_s`` seconds, or holding a live lease."""
        now = self.clock()
        return self.db.execute(
            "SELECT COUNT(*) FROM (SELECT id FROM workers WHERE seen_at >= ? UNION "
            "SELECT lease_owner FROM jobs WHERE state = 'RUNNING' AND lease_expires >= ?)",
            (now - within_s, now)).fetchone()[0]

    def running_tokens_per_s(self) -> float:
        """The source tokens per second of the running jobs' live progress, summed."""
        return self.db.execute(
            "SELECT COALESCE(SUM(json_extract(progress, '$.tokens_per_s')), 0) FROM jobs "
            "WHERE state = 'RUNNING' AND lease_expires >= ?", (self.clock(),)).fetchone()[0]

    def worker_seen(self, worker: str) -> None:
        """The worker is alive (registered on its first call)."""
        now = self.clock()
        with self._write() as db:
            db.execute("INSERT INTO workers (id, host, pid, started_at, seen_at) "
                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET seen_at = ?",
                       (worker, socket.gethostname(), os.getpid(), now, now, now))

    def worker_gone(self, worker: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM workers WHERE id = ?", (worker,))
