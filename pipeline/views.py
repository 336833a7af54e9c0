"""What the read commands and the HTTP API show about jobs, as plain data.

``status``, ``show`` and ``logs`` on the command line and the job
endpoints of the API render these dicts; neither computes anything of its
own. Nothing here imports torch or loads a model.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache

from pipeline.config import STAGES
from pipeline.progress import DEFAULT_WEIGHTS, overall_fraction
from pipeline.progress.eta import seconds_left
from pipeline.store import Job, Store


INTERRUPTED = "INTERRUPTED"
INTERRUPTED_NOTE = "resumes on the next run or worker"


def shown_state(job: Job, now: float) -> str:
    """The state to show: the stored one, except that a RUNNING job whose
    worker is gone (its process died on this host, or its lease expired)
    is INTERRUPTED; the next run of the same command or any worker resumes it."""
    from pipeline.runner import lease_is_live

    if job.state == "RUNNING" and not lease_is_live(job, now):
        return INTERRUPTED
    return job.state


def live_progress(job: Job) -> dict | None:
    """The snapshot the job's runner keeps (``pipeline.progress.LiveProgress``)."""
    if not job.progress:
        return None
    try:
        return json.loads(job.progress)
    except ValueError:
        return None


def queue_summary(store: Store, now: float) -> dict:
    """``Store.queue_summary`` with only the workers that may still be
    alive: a killed process's lease has not expired yet, but its jobs show
    as INTERRUPTED (``shown_state``), so it runs nothing."""
    from pipeline.runner import is_dead_local_worker

    summary = store.queue_summary()
    summary["workers"] = {w: n for w, n in summary["workers"].items()
                          if not is_dead_local_worker(w)}
    return summary


def job_percent(store: Store, job: Job, weights: dict | None = None,
                tokens: tuple[int, int] | None = None) -> float:
    """Overall percent from the stored stage and committed tokens, at
    ``weights`` (the profile's measured ones when known). ``tokens``:
    the job's (done, total) when the caller has read them already."""
    if job.state == "SUCCEEDED":
        return 100.0
    fraction = 0.0
    if job.stage == "inference":
        done, total = tokens or store.token_counts(job.id)
        fraction = done / total if total else 0.0
    stage = job.stage if job.stage in STAGES or job.stage == "done" else "preprocess"
    return 100.0 * (overall_fraction(stage, fraction, weights) if weights
                    else overall_fraction(stage, fraction))


def job_eta(store: Store, job: Job, histories: dict | None = None,
            tokens: tuple[int, int] | None = None) -> float | None:
    """Seconds left for a running job from its profile's history alone
    (``eta.seconds_left`` at the profile's rate and weights): the fallback
    when the job's runner has not saved a live estimate. ``histories``
    caches one history per profile."""
    if job.state != "RUNNING" or job.stage not in ("inference", "postprocess", "upload"):
        return None
    from pipeline.progress.profiles import Profile, stage_history

    row = store.inference_profile(job.id)
    if row is None:
        return None
    histories = {} if histories is None else histories
    if row not in histories:
        histories[row] = stage_history(store, Profile(*row))
    history = histories[row]
    if not history.rates.get("inference"):
        return None
    done, total = tokens or store.token_counts(job.id)
    fraction = overall_fraction(job.stage, done / total if total and job.stage == "inference"
                                else 0.0, history.weights)
    return seconds_left(job.stage, done, total, history.rates.get("inference"), history.weights,
                        fraction)


def stage_percents(percent: float, weights: dict) -> dict[str, float]:
    """How far each stage is, from the overall percent at these weights:
    the stages before the current one full, the ones after it empty."""
    return dict(_stage_percents(percent, tuple(weights[s] for s in STAGES)))


@lru_cache(maxsize=1024)  # a listing repeats 0 % and 100 % at the same weights
def _stage_percents(percent: float, shares: tuple[float, ...]) -> tuple:
    weights = dict(zip(STAGES, shares))
    total = sum(shares) or 1.0
    reached, before, out = percent / 100.0 * total, 0.0, {}
    for s in STAGES:
        share = weights[s]
        if share > 0:
            done = min(1.0, max(0.0, (reached - before) / share))
        else:
            done = 1.0 if reached > before else 0.0
        out[s] = round(100.0 * done, 1)
        before += share
    return tuple(out.items())


def job_progress(store: Store, job: Job, state: str, live: dict | None, weights: dict | None,
                 tokens: tuple[int, int] | None = None) -> tuple[float, dict | None]:
    """(percent, stage units) of a job: the one source of the numbers every
    face prints (the page, ``status``, ``show``), so they agree.

    A running job: both from its runner's snapshot, where the percent is the
    stage's units at the stage weights (the numbers its own progress bar
    shows). Otherwise, in inference, both from the stored token counters
    (``token_counts``: tokens of the chunks inference translates; a chunk
    split by the quality ladder hands its tokens on to its pieces, so the
    total never grows and the percent never goes back); in the other
    stages, the stage reached, at ``weights``."""
    if state == "SUCCEEDED":
        return 100.0, None
    if live and live.get("stage") == job.stage and "percent" in live:
        return live["percent"], live.get("stage_units")
    if job.stage == "inference":
        done, total = tokens or store.token_counts(job.id)
        fraction = done / total if total else 0.0
        percent = 100.0 * (overall_fraction("inference", fraction, weights) if weights
                           else overall_fraction("inference", fraction))
        return percent, {"unit": "tokens", "done": done, "total": total}
    return job_percent(store, job, weights, tokens), None


def units_text(view: dict) -> str:
    """``1,200/9,433 tokens``: the current stage's units, as ``status``,
    ``show`` and the page print them ("" when only the percent is known)."""
    units = view.get("stage_units")
    if not units or not units["total"] or view["state"] in ("SUCCEEDED", "CANCELED"):
        return ""
    return f"{units['done']:,}/{units['total']:,} {units['unit']}"


def job_view(store: Store, job: Job, now: float, histories: dict | None = None,
             tokens: tuple[int, int] | None = None, positions: dict | None = None) -> dict:
    """A job as every face shows it (status rows, ``show``, the API and its
    events): the honest state, the stage, percent and stage units
    (``job_progress``), the ETA as the job's own progress bar computes it
    (the runner saves it), the stage weights its bar is drawn at (measured,
    or the defaults before it has run), its place in the queue, and what it
    is. ``tokens``: the job's (done, total), when a listing has read them
    for all its jobs at once; ``positions``: ``Store.queue_positions``."""
    src, tgt, fmt = _summary(job.params)
    state = shown_state(job, now)
    saved = live_progress(job)
    live = saved if state == "RUNNING" else None
    weights = (saved or {}).get("weights")
    percent, units = job_progress(store, job, state, live, weights, tokens)
    if live:
        waiting = live.get("waiting")
        eta = live.get("eta_s")
        if eta is not None and not waiting:
            eta = max(0.0, eta - max(0.0, now - live["at"]))
        rate = live.get("tokens_per_s")
    else:
        waiting, rate = None, None
        eta = job_eta(store, job, histories, tokens) if state == "RUNNING" else None
    if job.state == "QUEUED" and positions is None:
        positions = {job.id: store.queue_position(job.id)}
    return {
        "id": job.id, "name": os.path.basename(job.input_path), "state": state,
        "stage": job.stage, "percent": round(percent, 1), "stage_units": units,
        "eta_seconds": round(eta, 1) if eta is not None else None,
        "tokens_per_s": rate, "waiting": waiting,
        "queue_position": (positions or {}).get(job.id) if job.state == "QUEUED" else None,
        "weights": _shares(weights or DEFAULT_WEIGHTS),
        "stage_percent": stage_percents(percent, weights or DEFAULT_WEIGHTS),
        "note": INTERRUPTED_NOTE if state == INTERRUPTED else (live or {}).get("note"),
        "src": src, "tgt": tgt, "format": fmt, "input": job.input_path, "output": job.output_path, "priority": job.priority,
        "created_at": job.created_at, "updated_at": job.updated_at,
        "finished_at": job.finished_at, "worker": job.lease_owner,
        "error": {"class": job.error_class, "message": job.error_message}
        if job.error_class else None,
    }


@lru_cache(maxsize=4096)  # a job's params never change: every poll re-renders the same
def _summary(params_json: str) -> tuple[str | None, str | None, str | None]:
    params = json.loads(params_json)
    return params.get("src_lang"), params.get("tgt_lang"), params.get("fmt")


def _shares(weights) -> dict[str, float]:
    return dict(_shares_of(tuple(weights[s] for s in STAGES)))


@lru_cache(maxsize=256)
def _shares_of(weights: tuple[float, ...]) -> tuple:
    total = sum(weights) or 1.0
    return tuple((s, round(w / total, 4)) for s, w in zip(STAGES, weights))


def status_rows(store: Store, limit: int, now: float) -> list[dict]:
    """One row per job, newest first (the fields of ``job_view``, plus the
    names ``status --json`` has always had: job, eta_s, error as text)."""
    rows, histories = [], {}
    jobs = store.jobs(limit)
    ids = [j.id for j in jobs]
    counters = store.job_counters(ids)  # one read per 500 jobs
    positions = store.queue_positions()
    for j in jobs:
        view = job_view(store, j, now, histories, counters[j.id].tokens, positions)
        rows.append({**view, "job": view["id"], "eta_s": view["eta_seconds"],
                     "error": j.error_message, "reused": counters[j.id].reused})
    return rows


def job_detail(store: Store, job: Job, now: float) -> dict:
    """``job_view``, plus parameters, stage timings, chunk counts, failed
    chunks (with the batch each failed in, named as the log names it),
    chunks the model returned empty, the delivery record, and what
    translated the batches (with the device switches, if any), and what the
    placeholders and the quality checks did (``quality``)."""
    last_error, last_batch = {}, {}
    failed = store.chunks_in_state(job.id, "failed")
    switches = store.attempts_with_decision(job.id, "fallback")
    for a in store.attempts_of_chunks(job.id, [c.idx for c in failed]):
        last_error[a.chunk_idx] = f"[{a.error_class}] {a.message}"
        last_batch[a.chunk_idx] = a.batch_id
    labels = store.batch_labels([*last_batch.values(), *(a.batch_id for a in switches)])
    runs = stage_runs(store, job, now)
    return {
        **job_view(store, job, now),
        "job": job.id, "stage": job.stage, "input": job.input_path,
        "input_sha256": job.input_sha256, "output": job.output_path,
        "params": json.loads(job.params), "idempotency_key": job.idem_key,
        "chunks": store.chunk_counts(job.id),
        "chunk_progress": chunk_progress(store, job),
        "has_output": has_output(store, job),
        # of the done chunks, those that got their translation without
        # inference: from the memory, or a repeat of an earlier chunk
        "reused": store.job_counters([job.id])[job.id].reused,
        "memory_mode": store.memory_mode(job.id),
        "stages": runs,
        # wall time of its stage runs, the unfinished ones to where they stopped
        "elapsed_s": round(sum(r["ran_s"] for r in runs), 3),
        # per group, its timed model calls' seconds, and the engine's waits
        # for the pipeline between calls in this process (none on Ray actors)
        "translated_by": [
            dict(zip(store.TRANSLATED_BY, row)) for row in store.translated_by(job.id)
        ],
        # committed batches per Ray actor ("actor 1 pid 4242 on node 1a2b3c4d")
        "ran_on": store.ran_on_counts(job.id),
        "device_switches": [
            {"at": a.at, "batch": labels.get(a.batch_id), "error_class": a.error_class,
             "message": a.message}
            for a in switches
        ],
        "delivery": delivery(store, job),
        "failed_chunks": [
            {"chunk": c.idx, "batch": labels.get(last_batch.get(c.idx)),
             "source": c.source[:80], "attempts": c.attempts, "last_error": last_error.get(c.idx)}
            for c in failed
        ],
        "empty_chunks": store.empty_chunks(job.id),  # translated to nothing: source kept
        **quality(store, job),
    }


def stage_runs(store: Store, job: Job, now: float) -> list[dict]:
    """The job's stage runs, oldest first, each ``finished``, ``running``
    (the live run of a running job) or ``interrupted`` (its process died,
    or it was stopped). ``units_done`` is honest for the unfinished ones:
    where the next run of the stage took over, or, for the last run, what
    the store holds now (inference's committed tokens, preprocess's written
    slices); postprocess and upload start again when resumed, so theirs is
    what they started from."""
    runs = store.stage_runs(job.id)
    live = shown_state(job, now) == "RUNNING"
    out = []
    for i, r in enumerate(runs):
        later = next((n for n in runs[i + 1:] if n.stage == r.stage), None)
        done = r.units_done
        if r.finished_at is not None:
            state = "finished"
        else:
            state = "running" if live and later is None and r.stage == job.stage else "interrupted"
            if later is not None:
                done = later.units_done  # where the next run began
            elif r.stage == "inference":
                tokens_done, tokens_total = store.token_counts(job.id)
                # units_total - what is left: right for a run that began at the
                # stage's start, and for one that took over part of it
                done = r.units_total - max(0, tokens_total - tokens_done)
            elif r.stage == "preprocess":
                last = store.last_slice(job.id)
                done = last.end_byte if last else done
            done = min(r.units_total, max(done or 0, 0)) if r.units_total is not None else done
        ran = r.wall_s
        if ran is None:  # to where it stopped: the next run, the job's end, or now
            after = runs[i + 1].started_at if i + 1 < len(runs) else None
            end = after or (now if state == "running" else job.finished_at or job.updated_at)
            ran = max(0.0, end - r.started_at)
        out.append({"stage": r.stage, "state": state,
                    "wall_s": round(r.wall_s, 3) if r.wall_s is not None else None,
                    "ran_s": round(ran, 3),  # wall_s, or to where an unfinished run stopped
                    "cpu_s": round(r.cpu_s, 3) if r.cpu_s is not None else None,
                    "units_total": r.units_total, "units_done": done, "device": r.device,
                    "backend": r.backend, "dtype": r.dtype})
    return out


def chunk_progress(store: Store, job: Job) -> dict:
    """The job's chunks as one story with its percent: ``total`` counts a
    chunk the quality ladder split as its pieces (``split`` chunks became
    ``pieces``), so it grows by pieces - 1 at each split while the token
    total (what the percent counts) does not; ``reused`` of the done ones
    came from the memory or repeat an earlier chunk (no inference, so no
    share of the percent's tokens)."""
    counts = store.chunk_counts(job.id)
    split = counts.get("replaced", 0)
    reused = store.job_counters([job.id])[job.id].reused
    pending = counts.get("pending", 0) + counts.get("waiting", 0)
    done, failed = counts.get("done", 0), counts.get("failed", 0)
    return {"total": done + pending + failed, "done": done, "pending": pending,
            "failed": failed, "reused": reused["memory"] + reused["document"], "split": split,
            "pieces": store.piece_count(job.id) if split else 0}


def has_output(store: Store, job: Job) -> bool:
    """The job's translation can be downloaded: postprocess built it (also
    when its delivery then failed, or chunks failed for good)."""
    if job.stage not in ("upload", "done"):
        return False
    artifact = store.artifact(job.id, "output")
    return artifact is not None and (artifact.content is not None or (
        artifact.path is not None and os.path.exists(artifact.path)))


def quality(store: Store, job: Job) -> dict:
    """``placeholders``: protected pieces in the document's chunks, how
    many chunks fell back to fragments because one did not survive, and
    ``unknown``: the pieces among them the model cannot read (emoji, ♪...)
    with the first distinct ones counted.
    ``quality``: the mode, ladder steps (repairs) and flags by reason, and
    the chunks accepted with a flag."""
    report = store.quality_report(job.id)
    return {
        "placeholders": {"protected": report["protected"], "fallbacks": report["fallbacks"],
                         "unknown": (store.skeleton_header(job.id) or {}).get(
                             "unknown", {"pieces": 0, "texts": {}})},
        "quality": {
            "mode": json.loads(job.params).get("quality", "repair"),
            "repairs": report["repairs"], "flags": report["flags"],
            "flagged": [{"chunk": idx, "reason": reason, "source": source[:80],
                         "reused": reused}  # memory, document (a repeat) or None
                        for idx, reason, source, reused in report["flagged"]],
        },
    }


def job_logs(store: Store, job: Job) -> list[dict]:
    """Every failed attempt and what was decided about it, oldest first;
    ``batch`` is the batch's name in the live log (``batch_labels``)."""
    attempts = store.attempts(job.id)
    labels = store.batch_labels(a.batch_id for a in attempts)
    return [
        {**{k: getattr(a, k) for k in ("at", "stage", "batch_id", "chunk_idx", "error_class",
                                       "reason", "attempt", "decision", "delay_s", "trace_id",
                                       "message", "ran_on")},
         "batch": labels.get(a.batch_id)}
        for a in attempts
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
