"""What the read commands and the HTTP API show about jobs, as plain data.

``status``, ``show`` and ``logs`` on the command line and the job
endpoints of the API render these dicts; neither computes anything of its
own. Nothing here imports torch or loads a model.
"""

from __future__ import annotations

import json

from pipeline.config import STAGES
from pipeline.progress import overall_fraction
from pipeline.store import Job, Store


def job_percent(store: Store, job: Job) -> float:
    if job.state == "SUCCEEDED":
        return 100.0
    fraction = 0.0
    if job.stage == "inference":
        done, total = store.token_counts(job.id)
        fraction = done / total if total else 0.0
    stage = job.stage if job.stage in STAGES or job.stage == "done" else "preprocess"
    return 100.0 * overall_fraction(stage, fraction)


def job_eta(store: Store, job: Job, histories: dict | None = None) -> float | None:
    """Seconds left for a running job: its tokens still to translate at its
    profile's historical rate, plus the measured share of the stages after.
    None when there is no history or the job is not running. ``histories``
    caches one history per profile across the jobs of one listing."""
    if job.state != "RUNNING" or job.stage not in ("inference", "postprocess", "upload"):
        return None
    from pipeline.profiles import Profile, stage_history

    row = store.inference_profile(job.id)
    if row is None:
        return None
    histories = {} if histories is None else histories
    if row not in histories:
        histories[row] = stage_history(store, Profile(*row))
    history = histories[row]
    rate = history.rates.get("inference")
    if not rate:
        return None
    done, total = store.token_counts(job.id)
    w = history.weights
    tail = total / rate * (w["postprocess"] + w["upload"]) / w["inference"]
    return (total - done) / rate + tail if job.stage == "inference" else tail


def status_rows(store: Store, limit: int) -> list[dict]:
    """One row per job, newest first."""
    rows, histories = [], {}
    for j in store.jobs(limit):
        eta = job_eta(store, j, histories)
        rows.append({"job": j.id, "state": j.state, "stage": j.stage,
                     "percent": round(job_percent(store, j), 1),
                     "eta_s": round(eta, 1) if eta is not None else None,
                     "input": j.input_path, "error": j.error_message})
    return rows


def job_detail(store: Store, job: Job) -> dict:
    """Parameters, stage timings, chunk counts, failed chunks, delivery, and
    what placeholders and the quality checks did."""
    last_error = {}
    for a in store.attempts(job.id):
        if a.chunk_idx is not None:
            last_error[a.chunk_idx] = f"[{a.error_class}] {a.message}"
    return {
        "job": job.id, "state": job.state, "stage": job.stage, "input": job.input_path,
        "input_sha256": job.input_sha256, "output": job.output_path,
        "params": json.loads(job.params), "idempotency_key": job.idem_key,
        "chunks": store.chunk_counts(job.id),
        "error": {"class": job.error_class, "message": job.error_message}
        if job.error_class else None,
        "stages": [
            {"stage": r.stage, "wall_s": round(r.wall_s, 3) if r.wall_s is not None else None,
             "units_total": r.units_total, "units_done": r.units_done, "device": r.device}
            for r in store.stage_runs(job.id)
        ],
        "delivery": delivery(store, job),
        "failed_chunks": [
            {"chunk": c.idx, "source": c.source[:80], "attempts": c.attempts,
             "last_error": last_error.get(c.idx)}
            for c in store.chunks(job.id) if c.state == "failed"
        ],
        **quality(store, job),
    }


def quality(store: Store, job: Job) -> dict:
    """``placeholders``: protected pieces in the document's chunks and how
    many chunks fell back to fragments because one did not survive.
    ``quality``: the mode, ladder steps (repairs) and flags by reason, and
    the chunks accepted with a flag."""
    report = store.quality_report(job.id)
    return {
        "placeholders": {"protected": report["protected"], "fallbacks": report["fallbacks"]},
        "quality": {
            "mode": json.loads(job.params).get("quality", "repair"),
            "repairs": report["repairs"], "flags": report["flags"],
            "flagged": [{"chunk": idx, "reason": reason, "source": source[:80]}
                        for idx, reason, source in report["flagged"]],
        },
    }


def job_logs(store: Store, job: Job) -> list[dict]:
    """Every failed attempt and what was decided about it, oldest first."""
    return [
        {k: getattr(a, k) for k in ("at", "stage", "batch_id", "chunk_idx", "error_class",
                                    "reason", "attempt", "decision", "delay_s", "trace_id",
                                    "message")}
        for a in store.attempts(job.id)
    ]


def delivery(store: Store, job: Job) -> dict | None:
    """Where the output went, its checksum and what the sink answered."""
    artifact = store.artifact(job.id, "delivery")
    if artifact is None:
        return None
    info = {"target": artifact.path, "sha256": artifact.sha256, "bytes": artifact.bytes}
    if artifact.content:
        try:
            info.update(json.loads(artifact.content))
        except ValueError:
            pass
    return info
