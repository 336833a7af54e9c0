"""Read-only commands: status, show, logs, stats, profile, languages.

They render what ``pipeline.views`` and ``pipeline.progress.stats`` compute (the
same data the HTTP API serves) and never import torch.
"""

from __future__ import annotations

import json
import time

from pipeline import views
from pipeline.cli.options import open_store
from pipeline.config import STAGES
from pipeline.service import find_job


def cmd_logs(args) -> int:
    store = open_store(args, existing=True)
    job = find_job(store, args.job)
    entries = views.job_logs(store, job)
    if args.json:
        print(json.dumps(entries, ensure_ascii=False))
        return 0
    if not entries:
        print(f"job {job.id}: no failed attempts")
    from pipeline.job_actions import log_line

    for a in entries:
        print(log_line(a))
    return 0


def cmd_status(args) -> int:
    store = open_store(args, existing=True)
    rows = views.status_rows(store, args.limit, time.time())
    summary = views.queue_summary(store, time.time())
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
        units = views.units_text(r)
        print(f"{r['job']}  {r['state']:<11}  {r['stage']:<11}  {r['percent']:5.1f}%  "
              + (f"{units}  " if units else "") +
              f"{_progress_text(r):<14}  {r['tgt'] or '?':<8}  {r['input']} -> "
              f"{'standard output' if r['output'] == '-' else r['output']}")
    return 0


def chunks_text(c: dict) -> str:
    """``142 of 1,077 done (138 reused), 0 failed, 935 pending; 300 split into
    853 pieces``: the page's sentence (``detail-view.js``), from the same
    ``views.chunk_progress``."""
    return (f"{c['done']:,} of {c['total']:,} done" + (f" ({c['reused']:,} reused, no "
            "inference)" if c["reused"] else "") + f", {c['failed']:,} failed, "
            f"{c['pending']:,} pending" + (f"; {c['split']:,} split by the quality ladder into "
                                          f"{c['pieces']:,} pieces, each counted as a chunk"
                                          if c["split"] else ""))


def _progress_text(view: dict) -> str:
    """What the bar says after its percent: ETA, a retry's wait, or why it stopped."""
    from pipeline.progress.eta import format_eta

    if view["note"]:
        return view["note"]
    if view["state"] != "RUNNING":
        return ""
    wait = view["waiting"]
    if wait:
        left = max(0.0, wait["until"] - time.time())
        return (f"retrying {wait['what']} in {left:.0f} s ({wait['error_class']}, "
                f"attempt {wait['attempt']}/{wait['limit']})")
    return format_eta(view["eta_seconds"])


def cmd_show(args) -> int:
    store = open_store(args, existing=True)
    job = find_job(store, args.job)
    info = views.job_detail(store, job, time.time())
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
        return 0
    progress = _progress_text(info)
    units = views.units_text(info)
    print(f"job {job.id}  {info['state']}  (stage: {job.stage}, {info['percent']:.1f}%"
          + (f", {units}" if units else "") + (f", {progress}" if progress else "") + ")")
    print(f"  input:  {job.input_path}")
    print(f"  output: {job.output_path}")
    params = info["params"]
    print(f"  model:  {params['model']}  {params['src_lang']} -> {params['tgt_lang']}  "
          f"beams={params['beams']}  format={params['fmt']}")
    print("  chunks: " + chunks_text(info["chunk_progress"]))
    reused = info["reused"]
    print(f"  reused: {reused['memory']} from the memory, {reused['document']} repeats in the "
          f"document (--tm {info['memory_mode']})")
    if info["error"]:
        print(f"  error:  [{job.error_class}] {job.error_message}")
    for r in info["stages"]:
        wall = f"{r['wall_s']:.2f} s" if r["wall_s"] is not None else r["state"]
        on = f"  on {r['device']} ({r['backend']} {r['dtype']})" if r["backend"] else ""
        print(f"  {r['stage']:<11} {wall:>12}  units {r['units_done']:g}/{r['units_total']:g}"
              f"{on}")
    for t in info["translated_by"]:
        print(f"  translated by {t['backend']} on {t['device']} ({t['compute_type']}): "
              f"{t['batches']} batches{_engine_text(t)}")
    for where, n in info["ran_on"].items():
        print(f"  ran on {where}: {n} batches")
    for switch in info["device_switches"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(switch["at"]))
        print(f"  device switch {when} [{switch['error_class']}]: {switch['message']}")
    if info["delivery"]:
        d = info["delivery"]
        extra = "".join(f"  {k}={d[k]}" for k in ("status", "response_id") if d.get(k))
        print(f"  delivered: {d['target']}  sha256={d['sha256'][:16]}…  {d['bytes']} bytes{extra}")
    for c in info["failed_chunks"]:
        batch = f"batch {c['batch']}, " if c["batch"] else ""
        print(f"  failed chunk {c['chunk']} ({batch}{c['attempts']} attempts, last: "
              f"{c['last_error']}): {c['source']!r}")
    if info["empty_chunks"]:
        empty = info["empty_chunks"]
        shown = ", ".join(map(str, empty[:20])) + (" ..." if len(empty) > 20 else "")
        print(f"  empty:  {len(empty)} chunk(s) came back empty from the model and kept their "
              f"source text: chunks {shown}")
    marks = info["placeholders"]
    if marks["protected"] or marks["fallbacks"]:
        print(f"  placeholders: {marks['protected']} protected, {marks['fallbacks']} chunk(s) "
              "translated as fragments")
    unknown = marks["unknown"]
    if unknown["pieces"]:
        named = ", ".join(f"{text} x{n}" for text, n in unknown["texts"].items())
        more = " ..." if sum(unknown["texts"].values()) < unknown["pieces"] else ""
        print(f"  unreadable: {unknown['pieces']} piece(s) the model cannot read, carried "
              f"through in place: {named}{more}")
    q = info["quality"]
    print(f"  quality: {q['mode']}; repairs: {_counts(q['repairs'])}; flags: {_counts(q['flags'])}")
    for c in q["flagged"][:SHOWN_FLAGS]:
        reused = ", reused from the memory" if c["reused"] == "memory" else ""
        print(f"  flagged chunk {c['chunk']} ({c['reason']}{reused}): {c['source']!r}")
    if len(q["flagged"]) > SHOWN_FLAGS:
        print(f"  ... {len(q['flagged']) - SHOWN_FLAGS} more flagged (show --json lists all)")
    return 0


SHOWN_FLAGS = 20


def _engine_text(group: dict) -> str:
    """The engine's time in a group of batches, and its waits for the
    pipeline: '; engine 43.9 s (340 ms a call), waited 0.2 s for the pipeline
    (1.5 ms a call)'."""
    if not group["timed_batches"]:
        return ""
    text = (f"; engine {group['engine_s']:.1f} s "
            f"({1000 * group['engine_s'] / group['timed_batches']:.0f} ms a call)")
    if group["waits"]:
        text += (f", waited {group['waited_s']:.1f} s for the pipeline "
                 f"({1000 * group['waited_s'] / group['waits']:.1f} ms a call)")
    return text


def _counts(by_reason: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in by_reason.items()) or "none"


def cmd_languages(args) -> int:
    from pipeline.languages import FLORES_CODES, language_name

    if args.json:
        print(json.dumps([{"code": c, "name": language_name(c)} for c in FLORES_CODES],
                         ensure_ascii=False))
        return 0
    print("\n".join(FLORES_CODES))
    return 0


def cmd_stats(args) -> int:
    from pipeline.progress.stats import job_stats

    store = open_store(args, existing=True)
    stats = job_stats(store, args.since, time.time())
    if args.json:
        print(json.dumps(stats))
        return 0
    window = f"last {args.since:g} days" if args.since is not None else "all time"
    states = ", ".join(f"{k} {v}" for k, v in sorted(stats["by_state"].items()))
    retries = stats["retries"]
    success = stats["retry_success"]
    eta = stats["eta_error"]
    quality = stats["quality"]
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
        ("OOM splits", str(stats["splits"]) + (
            f" (and {quality['oom_sentence_splits']} sentence(s) split alone)"
            if quality["oom_sentence_splits"] else "")),
        ("empty chunks", f"{stats['empty_chunks']['chunks']} in "
                         f"{stats['empty_chunks']['jobs']} job(s) (source text kept)"),
        ("quality flags", _counts(quality["flags"])),
        ("quality repairs", _counts(quality["repairs"])),
        ("fragment fallbacks", str(quality["placeholder_fallbacks"])),
        ("ETA error (median)", "  ".join(
            f"at {mark}%: {_num(err, '.1f')}{'%' if err is not None else ''}"
            for mark, err in eta["median_abs_pct_error"].items()) + f"  ({eta['jobs']} jobs)"),
        ("reused chunks", f"{_pct(stats['reused']['rate'])}  ({stats['reused']['from_memory']} "
                          f"from the memory, {stats['reused']['in_document']} repeats in their "
                          f"document, of {stats['reused']['chunks']} stored)"),
        ("reviews", f"{stats['reviews']['marked']} chunk(s) marked wrong, "
                    f"{stats['reviews']['corrected']} corrected, in {stats['reviews']['jobs']} "
                    "job(s)"),
    ]
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"{label:<{width}}  {value}")
    return 0


def cmd_profile(args) -> int:
    from pipeline.progress.stats import profiles_table

    table = profiles_table(open_store(args, existing=True))
    if args.json:
        print(json.dumps(table))
        return 0
    if not table:
        print("no inference runs yet")
    for row in table:
        print(f"{row['model']} on {row['device']} ({row['backend']} {row['dtype']}): "
              f"{row['jobs']} jobs, history from {row['history_jobs']}")
        for stage in STAGES:
            rate = row["rates"].get(stage)
            rate_text = f"{rate:12.1f} units/s" if rate is not None else f"{'-':>12}"
            print(f"  {stage:<11}  weight {row['weights'][stage]:5.3f}  {rate_text}")
    return 0


def _pct(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
