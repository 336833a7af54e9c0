"""Commands that translate now: translate, retry, demo."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

from pipeline import config, job_actions, service
from pipeline.cli.options import job_options, open_store, runtime
from pipeline.cli.progress_bar import bar_unless
from pipeline.errors import InvalidInput
from pipeline.documents.inputs import scan_input
from pipeline.store import Store


def cmd_translate(args) -> int:
    output = args.output
    if _from_stdin(args) and output is None and args.to is None:
        output = "-"  # a filter: standard input to standard output
    return _translate(args, job_options(args, output=output, to=args.to,
                                        relative_to=args.relative_to))


def _from_stdin(args) -> bool:
    return str(args.input) == "-"


def _translate(args, options: service.JobOptions) -> int:
    # Everything a user can get wrong is checked before anything is stored,
    # the run's options first: a bad one is refused even for a finished job.
    from pipeline.documents.inputs import spool
    from pipeline.languages import validate_language

    run = runtime(args)
    validate_language(options.src)
    validate_language(options.tgt)
    if _from_stdin(args):
        # Kept in the store's working area under its hash: a job still, keyed
        # by the content, that a resumed run or a worker reads again.
        store = open_store(args)
        spooled = spool(sys.stdin.buffer, store.spool_dir())
        try:
            source = scan_input(spooled)
        except InvalidInput:  # empty, binary, not UTF-8: keep nothing of it
            spooled.unlink()
            spooled.parent.rmdir()
            raise
    else:
        # checked, never held: the document may be big
        source = scan_input(args.input, run.delivery.storage or None)
        store = open_store(args)
    outcome = service.translate_or_resume(store, source, options, run,
                                          events_for=bar_unless(args))
    return report(args, outcome, store)


def cmd_retry(args) -> int:
    """Failed chunks get fresh attempts; everything that succeeded is kept.
    With --now, a running job's retry wait ends instead."""
    if args.now:
        return _retry_now(args)
    run = runtime(args)
    store = open_store(args, existing=True)
    outcome = service.retry(store, args.job, run, events_for=bar_unless(args))
    return report(args, outcome, store)


def _retry_now(args) -> int:
    import json
    import time

    job, waiting = job_actions.wake(open_store(args, existing=True), args.job)
    if args.json:
        print(json.dumps({"job": job.id, "outcome": "requested", "ended_wait": waiting}))
    else:
        until = time.strftime("%H:%M:%S", time.localtime(waiting["until"]))
        print(f"job {job.id}: {waiting['what']} tries again now (it waited until {until} "
              f"after {waiting['error_class']}, attempt {waiting['attempt']}/{waiting['limit']})")
    return 0


def cmd_demo(args) -> int:
    """The bundled sample through the tiny model, at the defaults users run."""
    from importlib import resources

    from models.trained import trained_model_dir

    model_dir = trained_model_dir(log=lambda text: None if args.json else print(text))
    if not args.json:
        print(f"demo model: {model_dir}\n  a tiny NLLB-architecture model trained on this "
              "CPU-sized task: eng_Latn into an invented language it calls fra_Latn (a fixed "
              "word substitution that copies names, numbers and placeholders). The output "
              "is not French; the pipeline around it is the real thing.")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    sample = args.output_dir / "sample.md"
    sample.write_bytes((resources.files("pipeline") / "data" / "sample.md").read_bytes())
    args.input = sample
    defaults = service.JobOptions(src="eng_Latn", tgt=args.tgt)
    options = replace(defaults, model=str(model_dir), fmt="markdown",
                      output=str(args.output_dir / f"sample.{args.tgt}.md"))
    args.device, args.dtype, args.batch_tokens, args.threads = "cpu", None, None, None
    args.backend, args.tokenizer, args.fallback_device = None, None, None
    args.retry_policy, args.inject_faults, args.headers = None, None, []
    args.http_timeout, args.no_progress = 30.0, False
    args.overwrite = True  # the demo's own folder: replacing is expected
    return _translate(args, options)


def report(args, outcome: service.Outcome, store: Store) -> int:
    """The job's line (or JSON) on stdout; with ``-o -`` the translation
    goes there instead, and the line to stderr."""
    from pipeline.sinks import STDOUT

    job = outcome.job
    to_stdout = config.JobParams.from_json(job.params).sink == STDOUT
    if to_stdout and job.stage == "done":  # SUCCEEDED, or FAILED with gaps filled
        for piece in service.output(store, job.id).pieces:
            sys.stdout.buffer.write(piece)
        sys.stdout.flush()
    stream = sys.stderr if to_stdout else sys.stdout
    result = {
        "job": job.id, "state": job.state, "output": job.output_path,
        "chunks": store.chunk_counts(job.id),
        "seconds": round(outcome.seconds, 3) if outcome.seconds is not None else None,
        "note": outcome.note,
    }
    if getattr(args, "json", False):
        print(json.dumps(result), file=stream)
    else:
        line = f"job {job.id}: {job.state}"
        if job.output_path and job.state == "SUCCEEDED":
            line += " -> " + ("standard output" if to_stdout else job.output_path)
        if outcome.note:
            line += f" ({outcome.note})"
        print(line, file=stream)
    stream.flush()
    return 0 if job.state == "SUCCEEDED" else 1
