"""Read-only commands: status, show, logs, stats, profile, languages. They never import torch."""

from __future__ import annotations

import json
import time

from pipeline import config
from pipeline.errors import InvalidInput
from pipeline.progress import STAGES, overall_fraction
from pipeline.store import Job, Store


def open_store(args) -> Store:
    return Store(args.db or config.default_db_path())


def find_job(store: Store, job_id: str) -> Job:
    job = store.job(job_id)
    if job is None:
        raise InvalidInput(f"no job {job_id!r} (see 'nllb-pipeline status')")
    return job


def cmd_logs(args) -> int:
    store = open_store(args)
    job = find_job(store, args.job)
    attempts = store.attempts(job.id)
    if args.json:
        print(json.dumps([
            {k: getattr(a, k) for k in ("at", "stage", "batch_id", "chunk_idx", "error_class",
                                        "attempt", "decision", "delay_s", "trace_id", "message")}
            for a in attempts
        ], ensure_ascii=False))
        return 0
    if not attempts:
        print(f"job {job.id}: no failed attempts")
    for a in attempts:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(a.at))
        where = a.stage + (f" batch {a.batch_id}" if a.batch_id is not None else "") + (
            f" chunk {a.chunk_idx}" if a.chunk_idx is not None else "")
        wait = f" after {a.delay_s:.1f} s" if a.delay_s else ""
        print(f"{when} [{a.trace_id}] {where}: {a.error_class} attempt {a.attempt} -> "
              f"{a.decision}{wait}: {a.message}")
    return 0


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


def cmd_status(args) -> int:
    from pipeline.eta import format_eta

    store = open_store(args)
    rows, histories = [], {}
    for j in store.jobs(args.limit):
        eta = job_eta(store, j, histories)
        rows.append({"job": j.id, "state": j.state, "stage": j.stage,
                     "percent": round(job_percent(store, j), 1),
                     "eta_s": round(eta, 1) if eta is not None else None,
                     "input": j.input_path, "error": j.error_message})
    summary = store.queue_summary()
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no jobs")
    else:
        workers = ", ".join(f"{w} ({n})" for w, n in summary["workers"].items()) or "none"
        tokens = (f"; source tokens of active jobs {summary['active_tokens_done']}/"
                  f"{summary['active_tokens_total']}" if summary["active_tokens_total"] else "")
        print(f"documents {summary['documents_done']}/{summary['documents_total']} done; "
              f"queued {summary['queued']}; running on: {workers}{tokens}")
    for r in rows:
        eta = format_eta(r["eta_s"]) if r["state"] == "RUNNING" else ""
        print(f"{r['job']}  {r['state']:<9}  {r['stage']:<11}  {r['percent']:5.1f}%  "
              f"{eta:<14}  {r['input']}")
    return 0


def cmd_show(args) -> int:
    store = open_store(args)
    job = find_job(store, args.job)
    last_error = {}
    for a in store.attempts(job.id):
        if a.chunk_idx is not None:
            last_error[a.chunk_idx] = f"[{a.error_class}] {a.message}"
    info = {
        "job": job.id, "state": job.state, "stage": job.stage, "input": job.input_path,
        "input_sha256": job.input_sha256, "output": job.output_path,
        "params": json.loads(job.params), "idempotency_key": job.idem_key,
        "chunks": store.chunk_counts(job.id),
        "error": {"class": job.error_class, "message": job.error_message} if job.error_class else None,
        "stages": [
            {"stage": r.stage, "wall_s": round(r.wall_s, 3) if r.wall_s is not None else None,
             "units_total": r.units_total, "units_done": r.units_done, "device": r.device}
            for r in store.stage_runs(job.id)
        ],
        "delivery": _delivery(store, job),
        "failed_chunks": [
            {"chunk": c.idx, "source": c.source[:80], "attempts": c.attempts,
             "last_error": last_error.get(c.idx)}
            for c in store.chunks(job.id) if c.state == "failed"
        ],
    }
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
        return 0
    print(f"job {job.id}  {job.state}  (stage: {job.stage})")
    print(f"  input:  {job.input_path}")
    print(f"  output: {job.output_path}")
    params = info["params"]
    print(f"  model:  {params['model']}  {params['src_lang']} -> {params['tgt_lang']}  "
          f"beams={params['beams']}  format={params['fmt']}")
    print("  chunks: " + ", ".join(f"{k} {v}" for k, v in sorted(info["chunks"].items())))
    if info["error"]:
        print(f"  error:  [{job.error_class}] {job.error_message}")
    for r in info["stages"]:
        wall = f"{r['wall_s']:.2f} s" if r["wall_s"] is not None else "unfinished"
        print(f"  {r['stage']:<11} {wall:>12}  units {r['units_done']:g}/{r['units_total']:g}")
    if info["delivery"]:
        d = info["delivery"]
        extra = "".join(f"  {k}={d[k]}" for k in ("status", "response_id") if d.get(k))
        print(f"  delivered: {d['target']}  sha256={d['sha256'][:16]}…  {d['bytes']} bytes{extra}")
    for c in info["failed_chunks"]:
        print(f"  failed chunk {c['chunk']} ({c['attempts']} attempts, last: {c['last_error']}): "
              f"{c['source']!r}")
    return 0


def _delivery(store: Store, job: Job) -> dict | None:
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


def cmd_languages(args) -> int:
    from pipeline.languages import FLORES_CODES

    print("\n".join(FLORES_CODES))
    return 0


def cmd_stats(args) -> int:
    from pipeline.stats import job_stats

    store = open_store(args)
    stats = job_stats(store, args.since, time.time())
    if args.json:
        print(json.dumps(stats))
        return 0
    window = f"last {args.since:g} days" if args.since is not None else "all time"
    states = ", ".join(f"{k} {v}" for k, v in sorted(stats["by_state"].items()))
    retries = stats["retries"]
    success = stats["retry_success"]
    eta = stats["eta_error"]
    lines = [
        ("jobs", f"{stats['jobs']} ({window})" + (f": {states}" if states else "")),
        ("failure rate", f"{_pct(stats['failure_rate'])}  "
                         f"({stats['by_state'].get('FAILED', 0)} of {stats['finished']} finished)"),
        ("retries per job", f"mean {_num(retries['mean_per_job'], '.2f')}, "
                            f"max {retries['max_per_job']}  ({retries['total']} in all)"),
        ("retries by class", ", ".join(f"{k} {v}" for k, v in retries["by_class"].items())
         or "none"),
        ("retry success", f"{_pct(success['rate'])}  (" + ", ".join(
            f"{kind} {success[kind]['succeeded']}/{success[kind]['retried']}"
            for kind in ("chunks", "batches", "uploads")) + ")"),
        ("OOM splits", str(stats["splits"])),
        ("ETA error (median)", "  ".join(
            f"at {mark}%: {_num(err, '.1f')}{'%' if err is not None else ''}"
            for mark, err in eta["median_abs_pct_error"].items()) + f"  ({eta['jobs']} jobs)"),
    ]
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"{label:<{width}}  {value}")
    return 0


def cmd_profile(args) -> int:
    from pipeline.stats import profiles_table

    table = profiles_table(open_store(args))
    if args.json:
        print(json.dumps(table))
        return 0
    if not table:
        print("no inference runs yet")
    for row in table:
        print(f"{row['model']} on {row['device']} ({row['dtype']}): {row['jobs']} jobs, "
              f"history from {row['history_jobs']}")
        for stage in STAGES:
            rate = row["rates"].get(stage)
            rate_text = f"{rate:12.1f} units/s" if rate is not None else f"{'-':>12}"
            print(f"  {stage:<11}  weight {row['weights'][stage]:5.3f}  {rate_text}")
    return 0


def _pct(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
