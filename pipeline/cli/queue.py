"""Commands for batch work: submit, worker, cancel, gc, and bench."""

from __future__ import annotations

import json
import logging

from pipeline import job_actions, service
from pipeline.cli import messages
from pipeline.cli.monitor import start_worker_metrics
from pipeline.cli.options import job_options, open_store, runtime, settings_of
from pipeline.cli.progress_bar import bar_unless
from pipeline.errors import InvalidInput

log = logging.getLogger("nllb_pipeline")


def cmd_submit(args) -> int:
    """Queue one job per document; fast, and never loads the model."""
    from pipeline.languages import validate_language

    validate_language(args.src)
    validate_language(args.tgt)
    store = open_store(args)
    results = service.submit_paths(
        store, args.inputs, job_options(args, to=args.to, relative_to=args.relative_to),
        glob=args.glob, output_dir=args.output_dir, priority=args.priority,
        key=args.idempotency_key, storage=settings_of(args).delivery.storage)
    if args.json:
        print(json.dumps([
            {"input": str(r.input), "error": r.error} if r.error else
            {"input": str(r.input), "job": r.job.id, "state": r.job.state, "created": r.created,
             "requeued": r.requeued}
            for r in results]))
    else:
        for r in results:
            if r.error:
                messages.error(f"{r.input}: {r.error}", args.log_format)
            else:
                said = "queued" if r.created else "requeued" if r.requeued else "exists"
                print(f"{r.job.id}  {said:<8} {r.input}")
    # Every refusal is about the input or the parameters (README, "Exit codes").
    return 2 if any(r.error for r in results) else 0


def cmd_bench(args) -> int:
    """Jobs of generated documents; their timings become the profile's history."""
    from models import open_translator
    from models.checkpoint import resolve_model
    from pipeline import config
    from pipeline.progress.bench import bench_sizes, format_table, growth_exponents, plot

    try:
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        raise InvalidInput(f"--sizes takes sentence counts like 50,200,1000, not {args.sizes!r}")
    if not sizes or min(sizes) < 1:
        raise InvalidInput("--sizes needs positive sentence counts")
    settings = settings_of(args).run
    model = resolve_model(args.model or config.default_model())
    store = open_store(args)
    rows = bench_sizes(store, lambda params: open_translator(model, settings), model,
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
    """Claims jobs (``--jobs`` at a time); one model per model, shared by
    every job: in this process, or on Ray actors (``--executor ray``)."""
    import signal
    import threading

    from pipeline.cli.executor import check_executor_options, ray_translators

    check_executor_options(args)
    shutdown = threading.Event()

    def stop(signum, frame):
        log.warning("worker stopping (signal %d): its job goes back to the queue within "
                    "seconds (a model call in flight finishes first)", signum)
        shutdown.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    translators = exporter = None
    try:
        run = runtime(args)
        if args.executor != "ray":
            run.translators.check()  # a --device this machine lacks: refused before a claim
        store = open_store(args)
        exporter = start_worker_metrics(args, store.path)
        if args.executor == "ray":
            run.translators = ray_translators(args, run)
        translators = run.translators
        # One job at a time: its bar (lines in a file); several: a line each.
        counts = service.run_worker(store, run, shutdown=shutdown, max_jobs=args.max_jobs,
                                    idle_exit_s=args.idle_exit, jobs=args.jobs,
                                    events_for=bar_unless(args, compact=args.jobs > 1))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if translators is not None:
            translators.close()  # the models, or the Ray actors
        if exporter is not None:
            exporter.shutdown()
    if args.json:
        print(json.dumps({"jobs": counts}))
    else:
        print("worker done: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                                 or "no jobs"))
    # 1 when a job it ran ended FAILED, as 'translate' does for its one job; a
    # job given back to the queue (SIGTERM) or canceled is not a failure.
    return 1 if counts.get("FAILED") else 0


def cmd_gc(args) -> int:
    n = service.gc(open_store(args, existing=True), args.older_than)
    print(json.dumps({"collected_jobs": n}) if args.json else f"collected {n} finished job(s)")
    return 0


def cmd_cancel(args) -> int:
    """Partial results stay in the store; 'retry JOB' continues the job.
    Several jobs: each as alone (the API's POST /api/jobs/cancel); an id
    that names no job is an error line, and the exit code 2, at the end."""
    import sys

    from pipeline.errors import InvalidInput

    store, code, answers = open_store(args, existing=True), 0, []
    for job_id in args.job:
        try:
            job, outcome = service.cancel(store, job_id)
        except InvalidInput as exc:
            if len(args.job) == 1:
                raise
            print(f"nllb-pipeline: error: {exc}", file=sys.stderr)
            code = 2
            continue
        text = {"canceled": "canceled",
                "requested": "cancel requested: the job stops within seconds (a model call "
                             "in flight finishes first)"}.get(
            outcome, f"already {outcome}; nothing to cancel")
        answers.append({"job": job.id, "outcome": outcome})
        if not args.json:
            print(f"job {job.id}: {text}")
    if args.json:
        print(json.dumps(answers[0] if len(args.job) == 1 else answers))
    return code


def cmd_delete(args) -> int:
    """The job's rows go; its input and delivered output are the user's files and stay."""
    job = job_actions.delete(open_store(args, existing=True), args.job)
    if args.json:
        print(json.dumps({"deleted": job.id}))
    else:
        print(f"job {job.id}: deleted with its chunks, batches and log")
    return 0
