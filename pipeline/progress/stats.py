"""Figures over many jobs: outcomes, retries, splits, ETA accuracy, profiles.

Every figure is one SQL query over the jobs created in a window, so the
``stats`` command stays fast on a store with tens of thousands of jobs; the
only work left to Python is taking medians.

Definitions (the docstring of each figure is its contract):

- *finished* jobs are SUCCEEDED or FAILED: jobs that ran to an outcome.
  CANCELED jobs were stopped by a person and count in neither; they show up
  under ``by_state`` only.
- *failure rate* = FAILED / finished.
- a *retry* is an attempts row whose decision is ``retry`` (a chunk or an
  upload tried again), ``retry_batch`` (a batch tried again whole) or
  ``split`` (a batch split in two after running out of memory). ``chunks``,
  ``give_up``, ``skip`` and ``fail`` rows record failures that were not
  tried again, so they are not retries. Mean retries per job is over all
  jobs in the window, those with none included.
- *retry success rate*, over finished jobs only (so every outcome is final):
  (retried chunks that ended ``done`` + retried batches all of whose chunks
  ended ``done`` + jobs with a retried upload that ended SUCCEEDED) /
  (retried chunks + retried batches + jobs with a retried upload). A chunk
  is retried when it has a ``retry`` row of its own, a batch when it has a
  ``retry_batch`` row; a batch is judged by its chunks, not by its row's
  state, because a batch split after its retry succeeds through its halves.
- *splits*: attempts rows with decision ``split``; the engine splits a batch
  only after an OOM.
- *empty chunks*: chunks the model translated to nothing (only special
  tokens), whose source text the output kept instead, as of each job's last
  postprocess; with the number of jobs that have any.
- *quality*: attempts rows of the repair ladder, by reason: ``flags``
  (accepted with a flag), ``repairs`` (decoded again guarded, or split at
  clauses), ``placeholder_fallbacks`` (chunks translated as fragments
  because a placeholder did not survive), ``oom_sentence_splits`` (a
  sentence split after running out of memory alone). Not retries.
- *ETA error*: for SUCCEEDED jobs with predictions, at each mark (10, 50 and
  90 % progress) the median over jobs of |predicted - actual| / actual, in
  percent, where actual = ``Store.wall_time(job)`` (the sum of the job's
  stage run wall times). Jobs whose actual time is 0 are left out.
- *reused*: chunks that got their translation without inference, from the
  translation memory or as a repeat of an earlier chunk of their document,
  over the window's stored chunks (``gc`` drops a job's chunks, so collected
  jobs no longer count); rate = reused / chunks.
- *reviews*: chunks readers marked wrong (``pipeline.quality.review``), those
  marked with a correction, and the jobs they are in.
"""

from __future__ import annotations

import math
import statistics

from pipeline.progress.profiles import Profile, stage_history
from pipeline.store import Store

DAY_S = 86_400.0
FINISHED = ("SUCCEEDED", "FAILED")
ETA_MARKS = (10, 50, 90)


def job_stats(store: Store, since_days: float | None, now: float) -> dict:
    """The figures above over jobs created in the last ``since_days`` days
    before ``now`` (all jobs when ``since_days`` is None). Rates are
    fractions in [0, 1], or None where their denominator is 0."""
    cutoff = -math.inf if since_days is None else now - since_days * DAY_S
    by_state = store.jobs_by_state(cutoff)
    n_jobs = sum(by_state.values())
    finished = sum(by_state.get(s, 0) for s in FINISHED)

    by_class: dict[str, int] = {}
    splits = 0
    for error_class, decision, n in store.retries_by_class(cutoff):
        by_class[error_class] = by_class.get(error_class, 0) + n
        if decision == "split":
            splits += n
    total_retries = sum(by_class.values())
    empty_jobs, empty_chunks = store.empty_chunk_totals(cutoff)
    return {
        "since_days": since_days,
        "jobs": n_jobs,
        "by_state": by_state,
        "finished": finished,
        "failure_rate": by_state.get("FAILED", 0) / finished if finished else None,
        "retries": {
            "total": total_retries,
            "mean_per_job": total_retries / n_jobs if n_jobs else None,
            "max_per_job": store.max_retries_per_job(cutoff),
            "by_class": dict(sorted(by_class.items(), key=lambda kv: (-kv[1], kv[0]))),
        },
        "retry_success": _retry_success(store, cutoff),
        "splits": splits,
        "empty_chunks": {"chunks": empty_chunks, "jobs": empty_jobs},
        "quality": store.quality_counts(cutoff),
        "eta_error": _eta_error(store, cutoff),
        "reused": _reused(store, cutoff),
        "reviews": store.review_counts(cutoff),
    }


def _reused(store: Store, cutoff: float) -> dict:
    chunks, memory, document = store.reuse_in_window(cutoff)
    return {"chunks": chunks, "from_memory": memory, "in_document": document,
            "rate": (memory + document) / chunks if chunks else None}


def _retry_success(store: Store, cutoff: float) -> dict:
    parts = {kind: {"retried": n, "succeeded": ok}
             for kind, n, ok in store.retry_outcomes(cutoff)}
    retried = sum(p["retried"] for p in parts.values())
    succeeded = sum(p["succeeded"] for p in parts.values())
    return {"rate": succeeded / retried if retried else None, **parts}


def _eta_error(store: Store, cutoff: float) -> dict:
    errors: dict[int, list[float]] = {mark: [] for mark in ETA_MARKS}
    jobs = set()
    for job_id, mark, predicted, actual in store.eta_predictions_with_actuals(cutoff):
        if actual and mark in errors:
            errors[mark].append(abs(predicted - actual) / actual * 100.0)
            jobs.add(job_id)
    return {
        "jobs": len(jobs),
        "median_abs_pct_error": {
            mark: statistics.median(values) if values else None
            for mark, values in errors.items()
        },
    }


def profiles_table(store: Store, last_n: int = 20) -> list[dict]:
    """One row per (model, backend, device, dtype) seen on an inference stage run:
    how many jobs ran on it, and the stage weights and per-unit rates that
    ``stage_history`` derives from its last ``last_n`` succeeded jobs
    (``history_jobs`` of them had all four stages; 0 means the defaults)."""
    table = []
    for model, backend, device, dtype, n_jobs in store.profiles_seen():
        history = stage_history(store, Profile(model, backend, device, dtype), last_n)
        table.append({
            "model": model, "backend": backend, "device": device, "dtype": dtype, "jobs": n_jobs,
            "history_jobs": history.jobs, "weights": dict(history.weights),
            "rates": dict(history.rates),
        })
    return table
