"""Commands for batch work: submit, worker, cancel, gc, and bench."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from pipeline import config
from pipeline.cli_support import (delivery_options, job_params, make_translator, retry_policy,
                                  run_settings)
from pipeline.errors import InvalidInput
from pipeline.views import find_job, open_store

log = logging.getLogger("nllb_pipeline")


def cmd_submit(args) -> int:
    """Queue one job per document; fast, and never loads the model."""
    from pipeline.inputs import read_input
    from pipeline.jobs import submit
    from pipeline.languages import validate_language

    validate_language(args.src)
    validate_language(args.tgt)
    files: list[tuple[Path, Path | None]] = []  # (file, the directory it was found in)
    for item in args.inputs:
        if item.is_dir():
            files += [(f, item) for f in sorted(item.rglob(args.glob)) if f.is_file()]
        else:
            files.append((item, None))
    if args.idempotency_key and len(files) != 1:
        raise InvalidInput("--idempotency-key names one document; give exactly one input file")
    store = open_store(args)
    results, failures = [], 0
    for path, base in files:
        try:
            source = read_input(path)
            to = f"dir:{args.output_dir}" if args.output_dir else None
            params = job_params(args, source, to=to, output=None,
                                 relative_to=str(base) if base and args.output_dir else None)
            job, created = submit(store, params, source, priority=args.priority,
                                  key=args.idempotency_key)
            results.append({"input": str(path), "job": job.id, "state": job.state,
                            "created": created})
        except InvalidInput as exc:
            if args.idempotency_key:
                raise
            failures += 1
            results.append({"input": str(path), "error": str(exc)})
    if args.json:
        print(json.dumps(results))
    else:
        for r in results:
            if "error" in r:
                print(f"error   {r['input']}: {r['error']}", file=sys.stderr)
            else:
                print(f"{r['job']}  {'queued' if r['created'] else 'exists':<7} {r['input']}")
    return 1 if failures else 0


def cmd_bench(args) -> int:
    """Jobs of generated documents; their timings become the profile's history."""
    from models.checkpoint import resolve_model
    from models.hf import HfTranslator
    from pipeline.bench import bench_sizes, format_table, growth_exponents, plot

    try:
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        raise InvalidInput(f"--sizes takes sentence counts like 50,200,1000, not {args.sizes!r}")
    if not sizes or min(sizes) < 1:
        raise InvalidInput("--sizes needs positive sentence counts")
    args.retry_policy = None
    settings = run_settings(args)
    model = resolve_model(args.model or config.default_model())
    store = open_store(args)
    rows = bench_sizes(store, lambda params: HfTranslator(model, settings), model,
                       sorted(sizes), settings=settings)
    growth = growth_exponents(rows)
    if args.plot:
        plot(rows, args.plot)
    if args.json:
        print(json.dumps({"rows": rows, "growth_exponents": growth}))
        return 0
    print(format_table(rows))
    print("growth exponent (1.0 = linear): " + ", ".join(
        f"{s} {g:.2f}" if g is not None else f"{s} n/a" for s, g in growth.items()))
    return 0


def cmd_worker(args) -> int:
    """Claims jobs one at a time; one model per distinct model and decoding settings."""
    import signal
    import threading

    from pipeline.worker import run_worker

    shutdown = threading.Event()

    def stop(signum, frame):
        log.warning("worker stopping after the current batch (signal %d)", signum)
        shutdown.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    settings, policy, delivery = run_settings(args), retry_policy(args), delivery_options(args)
    translators: dict[str, object] = {}

    def translator_for(params):
        key = params.model  # decoding settings come with each call
        if key not in translators:
            translators[key] = make_translator(params, settings, args)
        translator = translators[key]
        translator.check_language(params.src_lang)
        translator.check_language(params.tgt_lang)
        return translator

    counts = run_worker(open_store(args), translator_for, settings=settings, policy=policy,
                        shutdown=shutdown, max_jobs=args.max_jobs, idle_exit_s=args.idle_exit,
                        delivery=delivery)
    if args.json:
        print(json.dumps({"jobs": counts}))
    else:
        print("worker done: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                                 or "no jobs"))
    return 0


def cmd_gc(args) -> int:
    if args.older_than < 0:
        raise InvalidInput("--older-than takes a number of days >= 0")
    n = open_store(args).gc(args.older_than * 86400)
    print(json.dumps({"collected_jobs": n}) if args.json else f"collected {n} finished job(s)")
    return 0


def cmd_cancel(args) -> int:
    """Partial results stay in the store; 'retry JOB' continues the job."""
    store = open_store(args)
    job = find_job(store, args.job)
    outcome = store.request_cancel(job.id)
    text = {"canceled": "canceled",
            "requested": "cancel requested: the job stops after its current batch"}.get(
        outcome, f"already {outcome}; nothing to cancel")
    if args.json:
        print(json.dumps({"job": job.id, "outcome": outcome}))
    else:
        print(f"job {job.id}: {text}")
    return 0
