"""The command line: parse, call the pipeline, render. Nothing else.

The model backend (torch) is imported only by the commands that translate,
so ``status`` and ``show`` answer at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from pipeline import config
from pipeline.errors import InvalidInput, PipelineError
from pipeline.progress import ProgressTracker
from pipeline.store import Job, Store
from pipeline.cli_queue import cmd_bench, cmd_cancel, cmd_gc, cmd_submit, cmd_worker
from pipeline.cli_support import (delivery_options, job_params, make_translator, retry_policy,
                                  run_settings)
from pipeline.views import (cmd_languages, cmd_logs, cmd_profile, cmd_show, cmd_stats, cmd_status,
                            find_job, open_store)

log = logging.getLogger("nllb_pipeline")


def _fail(message: str, code: int) -> int:
    print(f"nllb-pipeline: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except PipelineError as exc:
        if args.debug:
            raise
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted; run the same command again to resume", 130)
    except Exception as exc:  # a bug: one line, the traceback with --debug
        if args.debug:
            raise
        return _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)", 1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nllb-pipeline",
        description="Translate long documents with NLLB-200, resumably.",
    )
    parser.add_argument("--db", type=Path, default=None,
                        help="job database (default: $NLLB_PIPELINE_DB or "
                             "~/.local/share/nllb-pipeline/jobs.db)")
    parser.add_argument("--config", type=Path, default=None,
                        help="TOML config file with [retry] and [run] sections (default: "
                             "$NLLB_PIPELINE_CONFIG or ~/.config/nllb-pipeline/config.toml)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("translate", help="translate a document (resumes an interrupted job)")
    p.add_argument("input", type=Path)
    _add_job_options(p)
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("submit", help="queue documents as jobs without translating them yet")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                   help="files, or directories searched recursively")
    p.add_argument("-o", "--output-dir", type=Path, default=None,
                   help="deliver into this directory, keeping paths relative to a directory "
                        "INPUT (default: next to each input)")
    p.add_argument("--glob", default="*", help="file pattern inside directories (e.g. '*.md')")
    p.add_argument("--idempotency-key", default=None, metavar="KEY",
                   help="your own key for a single document: the same key again returns the "
                        "same job; with other parameters or input it is refused")
    p.add_argument("--priority", type=int, default=0, help="higher runs first")
    p.add_argument("--json", action="store_true")
    _add_params_options(p)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("demo", help="translate a bundled sample with a tiny offline model")
    p.add_argument("-o", "--output-dir", type=Path, default=Path("nllb-demo"))
    p.add_argument("--tgt", default="fra_Latn")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("status", help="list jobs")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("stats", help="failure rate, retries, OOM splits and ETA accuracy over past jobs")
    p.add_argument("--since", type=float, default=None, metavar="DAYS",
                   help="only jobs created in the last DAYS days (default: all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("profile", help="stage weights and rates per (model, device, dtype)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("show", help="one job's parameters, stages, chunks and output")
    p.add_argument("job")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("bench", help="stage timings on generated documents of several sizes")
    p.add_argument("--model", default=None, help="hub id or local directory (default: as translate)")
    p.add_argument("--sizes", default="50,200,1000", help="document sizes in sentences")
    p.add_argument("--plot", type=Path, default=None, help="also draw a stacked bar chart (PNG)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--batch-tokens", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("retry", help="re-run a failed or interrupted job's remaining work")
    p.add_argument("job")
    _add_run_options(p)
    p.set_defaults(func=cmd_retry)

    p = sub.add_parser("worker", help="run queued jobs until stopped (SIGTERM: after the batch)")
    p.add_argument("--max-jobs", type=int, default=None, help="stop after N jobs")
    p.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                   help="stop when the queue has been empty this long")
    _add_run_options(p)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("gc", help="drop finished jobs' chunks and outputs, keep jobs and stats")
    p.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_gc)

    p = sub.add_parser("cancel", help="cancel a job (a running one stops after its batch)")
    p.add_argument("job")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("logs", help="a job's attempt history: every failure and decision")
    p.add_argument("job")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("languages", help="list the 202 language codes")
    p.set_defaults(func=cmd_languages)
    return parser


def _add_job_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", help="output file (default: NAME.<tgt>.EXT next to the input)")
    _add_params_options(p)
    _add_run_options(p)


def _add_params_options(p: argparse.ArgumentParser) -> None:
    """What a job is (part of its idempotency key), except the output path."""
    p.add_argument("--src", required=True, help="source language, e.g. eng_Latn")
    p.add_argument("--tgt", required=True, help="target language, e.g. fra_Latn")
    p.add_argument("--to", default=None, metavar="SINK",
                   help="where the translation goes: file:PATH (like -o), dir:DIR "
                        "(DIR/NAME.<tgt>.EXT) or an http(s):// URL (PUT by default)")
    p.add_argument("--http-method", default=None, type=str.upper, choices=("PUT", "POST"),
                   help="method for an http(s) --to (default PUT)")
    p.add_argument("--relative-to", default=None, metavar="BASE",
                   help="with --to dir:DIR, keep the input's directory relative to BASE under DIR")
    p.add_argument("--model", default=None,
                   help=f"hub id or local directory (default: $NLLB_PIPELINE_MODEL or "
                        f"{config.DEFAULT_MODEL})")
    p.add_argument("--format", default="auto", choices=("auto", *config.FORMATS))
    p.add_argument("--jsonl", default="", metavar="FIELD",
                   help="input is JSON Lines: translate FIELD of each line; the output keeps "
                        "every field and adds \"translation\"")
    p.add_argument("--beams", type=int, default=4, help="beam width (1 = greedy; default 4)")
    p.add_argument("--max-chunk-tokens", type=int, default=200,
                   help="longest chunk sent to the model, in tokens (default 200)")
    p.add_argument("--length-ratio", type=float, default=2.0,
                   help="output budget: RATIO x input tokens + OFFSET (default 2.0); "
                        "stops a looping model early")
    p.add_argument("--length-offset", type=int, default=16, help="see --length-ratio (default 16)")
    p.add_argument("--missing", default="source", choices=("source", "marker"),
                   help="what a chunk that failed for good becomes in the output")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Options of how a job runs (not part of what it is): translate and retry."""
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--dtype", default="auto", help="auto, float32, float16 or bfloat16")
    p.add_argument("--batch-tokens", type=int, default=0,
                   help="padded source tokens per batch (default: 8192 on CUDA, 2048 on CPU)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (default: torch's choice; 1 is often faster "
                        "on a busy machine)")
    p.add_argument("--retry", dest="retry_policy", default=os.environ.get("NLLB_PIPELINE_RETRY"),
                   metavar="SPEC",
                   help="retry limits and backoff, e.g. 'chunk_attempts=3,batch_retries=2,"
                        "base=1,factor=1.6,cap=20,device_transient=3' (or $NLLB_PIPELINE_RETRY)")
    p.add_argument("--inject-faults", default=os.environ.get("NLLB_PIPELINE_INJECT_FAULTS"),
                   metavar="SPEC",
                   help="simulate failures, e.g. 'oom=0.2,transient=0.05,seed=7' "
                        "(or $NLLB_PIPELINE_INJECT_FAULTS); off by default")
    p.add_argument("--header", dest="headers", action="append", default=[], metavar="'NAME: VALUE'",
                   help="HTTP header for an http(s) --to, repeatable; $VAR and ${VAR} are read "
                        "from the environment. Never stored or logged: give it again to retry")
    p.add_argument("--http-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="timeout of one HTTP upload attempt (default 30)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output file that differs from the translation")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


# -- translate ------------------------------------------------------------------


def _translate(args, *, show_progress: bool) -> int:
    from pipeline.inputs import read_input
    from pipeline.jobs import find_job, submit
    from pipeline.languages import validate_language
    from pipeline.sinks import check_target_free

    # Everything a user can get wrong is checked before anything is stored.
    validate_language(args.src)
    validate_language(args.tgt)
    source = read_input(args.input)
    delivery = delivery_options(args)
    settings = run_settings(args)
    params = job_params(args, source, to=getattr(args, "to", None), output=args.output,
                         relative_to=getattr(args, "relative_to", None))
    store = open_store(args)
    existing = find_job(store, params, source)
    if existing and existing.state == "SUCCEEDED" and _delivered(store, existing):
        return _report(args, existing, store, note="already translated; nothing to do")

    if existing and existing.state == "FAILED" and existing.stage == "done":
        print(f"nllb-pipeline: job {existing.id} ended FAILED: {existing.error_message}",
              file=sys.stderr)
        return 1
    ours = store.artifact(existing.id, "output") if existing else None
    check_target_free(params.sink, params.output, ours.content if ours else None,
                      overwrite=delivery.overwrite)
    policy = retry_policy(args)
    translator = make_translator(params, settings, args)
    job, created = submit(store, params, source)
    if not created:
        log.info("resuming job %s from stage %s", job.id, job.stage)
    if existing and existing.state == "SUCCEEDED":  # output file gone or changed
        if store.artifact(job.id, "output") is None:  # collected by gc: translate again
            store.restart(job.id)
        else:
            store.reopen_for_upload(job.id)
    return _run(args, store, job, translator, settings, policy, show_progress,
                note=None if created else "resumed", delivery=delivery)


def _run(args, store, job, translator, settings, policy, show_progress, note, *,
         delivery=None) -> int:
    from pipeline.runner import run_job

    events = _progress_bar(store, job, translator) if show_progress else None
    started = time.perf_counter()
    try:
        job = run_job(store, job.id, translator, settings=settings, events=events, policy=policy,
                      delivery=delivery)
    finally:
        if events is not None:
            events.close()
    return _report(args, job, store, seconds=time.perf_counter() - started, note=note)


def _delivered(store: Store, job: Job) -> bool:
    """The recorded delivery still stands: the file is there unchanged, or
    the upload to a URL is on record (it is never sent twice)."""
    from pipeline.config import JobParams
    from pipeline.sinks import sink_for

    delivery = store.artifact(job.id, "delivery")
    if delivery is None:
        return False
    return sink_for(JobParams.from_json(job.params)).still_delivered(delivery.sha256)


def cmd_translate(args) -> int:
    return _translate(args, show_progress=not args.no_progress and not args.json)


def cmd_retry(args) -> int:
    """Failed chunks get fresh attempts; everything that succeeded is kept."""
    store = open_store(args)
    job = find_job(store, args.job)
    if job.state == "SUCCEEDED":
        return _report(args, job, store, note="already succeeded; nothing to retry")
    if job.state == "RUNNING" and job.lease_owner:
        from pipeline.runner import is_dead_local_worker

        if not is_dead_local_worker(job.lease_owner) and (job.lease_expires or 0) > time.time():
            raise InvalidInput(f"job {job.id} is running ({job.lease_owner}); nothing to retry")
    from pipeline.config import JobParams

    params = JobParams.from_json(job.params)
    settings = run_settings(args)
    policy = retry_policy(args)
    delivery = delivery_options(args)
    needs_model = job.stage in ("preprocess", "inference") or store.chunk_counts(job.id).get(
        "failed", 0) > 0
    if needs_model:  # built before anything is reset: a model that fails to load changes nothing
        translator = make_translator(params, settings, args)
    else:
        from pipeline.translator import NoModel

        translator = NoModel()  # only postprocess/upload left, e.g. after a refused delivery
    reset = store.reset_failed(job.id)
    log.info("job %s: %d failed chunk(s) will be retried", job.id, reset)
    return _run(args, store, store.job(job.id), translator, settings, policy,
                not args.no_progress and not args.json, note=f"retried {reset} chunk(s)",
                delivery=delivery)


def cmd_demo(args) -> int:
    from importlib import resources

    from models.tiny import ensure_tiny_model

    model_dir = config.cache_dir() / "tiny-nllb"
    if not args.json:
        print(f"tiny demo model: {model_dir} (random weights: the 'translation' is noise)")
    ensure_tiny_model(model_dir)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    sample = args.output_dir / "sample.md"
    sample.write_bytes((resources.files("pipeline") / "data" / "sample.md").read_bytes())
    ns = argparse.Namespace(
        **vars(args), input=sample, src="eng_Latn", output=str(args.output_dir /
        f"sample.{args.tgt}.md"), model=str(model_dir), format="markdown", device="cpu",
        dtype="auto", beams=1, max_chunk_tokens=200, batch_tokens=0, missing="source",
        length_ratio=2.0, length_offset=16, no_progress=False, retry_policy=None, threads=0,
        inject_faults=None, overwrite=True,  # the demo's own folder: replacing is expected
    )
    return _translate(ns, show_progress=not args.json)


class _TqdmProgress(ProgressTracker):
    """The bar: overall weighted progress (weights measured on this profile's
    past jobs), the stage, tokens per second and an ETA that is frozen while
    a retry waits."""

    def __init__(self, history, elapsed_before: float):
        from tqdm import tqdm

        from pipeline.eta import JobEta

        self.eta = JobEta(history, time.time, elapsed_before=elapsed_before)
        self.bar = tqdm(total=1000, desc="preprocess", unit="‰", dynamic_ncols=True,
                        bar_format="{desc:<12} {percentage:3.0f}%|{bar}| {elapsed}{postfix}",
                        file=sys.stderr)
        super().__init__(self._render, weights=history.weights)

    def stage_started(self, stage: str, total: float, done: float = 0.0) -> None:
        self.eta.stage_started(stage, total, done)
        super().stage_started(stage, total, done)

    def stage_progress(self, stage: str, done: float) -> None:
        self.eta.stage_progress(stage, done)
        super().stage_progress(stage, done)

    def stage_finished(self, stage: str) -> None:
        self.eta.stage_finished(stage)
        super().stage_finished(stage)

    def retrying(self, what, delay_s, error_class, attempt, limit) -> None:
        self.eta.retrying(what, delay_s, error_class, attempt, limit)
        super().retrying(what, delay_s, error_class, attempt, limit)

    def _render(self, fraction: float, stage: str, detail: str) -> None:
        self.bar.set_description_str(stage, refresh=False)
        self.bar.set_postfix_str(detail or self.eta.text(), refresh=False)
        self.bar.update(round(fraction * 1000) - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _progress_bar(store: Store, job: Job, translator) -> _TqdmProgress:
    from pipeline.config import JobParams
    from pipeline.profiles import history_for

    params = JobParams.from_json(job.params)
    return _TqdmProgress(history_for(store, translator, params.model), store.wall_time(job.id))


def _report(args, job: Job, store: Store, *, seconds: float | None = None,
            note: str | None = None) -> int:
    counts = store.chunk_counts(job.id)
    result = {
        "job": job.id, "state": job.state, "output": job.output_path,
        "chunks": counts, "seconds": round(seconds, 3) if seconds is not None else None,
        "note": note,
    }
    if getattr(args, "json", False):
        print(json.dumps(result))
    else:
        line = f"job {job.id}: {job.state}"
        if job.output_path and job.state == "SUCCEEDED":
            line += f" -> {job.output_path}"
        if note:
            line += f" ({note})"
        print(line)
    return 0 if job.state == "SUCCEEDED" else 1



if __name__ == "__main__":
    sys.exit(main())
