"""The command line: parse, call a verb of ``pipeline.service``, render.

The model backend (torch) is imported only by the commands that translate,
so ``status`` and ``show`` answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sqlite3
import sys
from pathlib import Path

from pipeline import config
from pipeline.cli import evaluate, messages, monitor, queue, read, serve, tm, translate
from pipeline.cli.executor import add_executor_options
from pipeline.cli.options import (
    Parser,
    add_device_options,
    add_global_options,
    add_job_options,
    add_json_option,
    add_run_options,
    at_least,
    db_path,
    finite,
    integer,
)
from pipeline.cli.review import add_review_command
from pipeline.errors import ErrorClass, PipelineError
from pipeline.io_errors import DiskFull, class_of_oserror, database_error

log = logging.getLogger("nllb_pipeline")


def _fail(message: str, code: int, log_format: str = "text") -> int:
    messages.error(message, log_format)
    return code


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, so that it unwinds as
    Ctrl-C does: the runner gives the job's lease back (the next run resumes
    it at once) and the command says so."""


@contextlib.contextmanager
def _sigterm_interrupts():
    def stop(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (an embedding caller): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stdout_gone() -> int:
    """The reader of our output went away (``logs | head``): not an error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit cannot fail again
    except (OSError, ValueError):
        pass
    return 128 + signal.SIGPIPE


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (README, "Exit codes")."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0), or a usage error already printed (2)
        return exc.code if isinstance(exc.code, int) else 2
    messages.configure(verbose=args.verbose, debug=args.debug, log_format=args.log_format)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    with _sigterm_interrupts():
        return _dispatch(args)


def _dispatch(args) -> int:
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in a traceback at exit
        return code
    except BrokenPipeError:
        return _stdout_gone()
    except PipelineError as exc:
        if args.debug:
            raise
        return _fail(str(exc), exc.exit_code, args.log_format)
    except Terminated:
        return _fail("terminated (SIGTERM); run the same command again to resume", 143,
                     args.log_format)
    except KeyboardInterrupt:
        return _fail("interrupted; run the same command again to resume", 130, args.log_format)
    except Exception as exc:
        if args.debug:
            raise
        # Damaged pages found by a read (writes say so themselves, in the store).
        mapped = database_error(exc, db_path(args)[0]) if isinstance(
            exc, sqlite3.DatabaseError) else None
        if isinstance(exc, OSError) and class_of_oserror(exc) is ErrorClass.DISK_FULL:
            mapped = DiskFull(f"disk full: {exc.strerror}" + (
                f": {exc.filename}" if exc.filename else "") + "; free space, then run the same "
                "command again to continue")
        if mapped is not None:
            return _fail(str(mapped), mapped.exit_code, args.log_format)
        # A bug: one line, the traceback with --debug.
        return _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
                     1, args.log_format)


JOB_HELP = "a job's id, or the start of it that names one job ('nllb-pipeline status' lists them)"


def _input(value: str) -> Path | str:
    """A path, or a storage URL kept as written (Path would fold its //)."""
    from pipeline.objects import is_url

    return value if is_url(value) else Path(value)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="nllb-pipeline",
        description="Translate long documents with NLLB-200, resumably.",
    )
    add_global_options(parser, in_subcommand=False)
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {config.package_version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = Parser(add_help=False)
    add_global_options(common, in_subcommand=True)

    def command(name: str, help: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(func=func)
        return p

    p = command("translate", "translate a document (resumes an interrupted job)",
                translate.cmd_translate)
    p.add_argument("input", type=_input,
                   help="the document to translate, or a storage URL (s3://bucket/doc.md); - "
                        "reads it from standard input")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="output file; - writes standard output (default: NAME.<tgt>.EXT next "
                        "to the input; standard output for input from standard input)")
    add_job_options(p)
    tm.add_memory_option(p)
    add_run_options(p)
    add_json_option(p)

    p = command("submit", "queue documents as jobs without translating them yet",
                queue.cmd_submit)
    p.add_argument("inputs", nargs="+", type=_input, metavar="INPUT",
                   help="files, or directories searched recursively; storage URLs, or "
                        "prefixes (s3://bucket/docs/) listed the same way")
    p.add_argument("-o", "--output-dir", type=Path, default=None,
                   help="deliver into this directory, keeping paths relative to a directory "
                        "INPUT (default: next to each input)")
    p.add_argument("--glob", default="*", help="file pattern inside directories (e.g. '*.md')")
    p.add_argument("--idempotency-key", default=None, metavar="KEY",
                   help="your own key for a single document: the same key again returns the "
                        "same job; with other parameters or input it is refused")
    p.add_argument("--priority", type=integer, default=0, metavar="N",
                   help="higher runs first, any integer (default 0)")
    add_job_options(p, output_dir=True)
    tm.add_memory_option(p)
    add_json_option(p)

    p = command("demo", "translate a bundled sample with a tiny offline model", translate.cmd_demo)
    p.add_argument("-o", "--output-dir", type=Path, default=Path("nllb-demo"), metavar="DIR",
                   help="where the sample and its translation go (default nllb-demo)")
    p.add_argument("--tgt", default="fra_Latn", metavar="CODE",
                   help="target language (default fra_Latn)")
    add_json_option(p)

    p = command("eval", "score a line-aligned test set through the pipeline: chrF++ and BLEU "
                        "(sacrebleu), tokens/s, quality flags", evaluate.cmd_eval)
    evaluate.add_eval_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = command("status", "list jobs", read.cmd_status)
    p.add_argument("--limit", type=at_least(1), default=50, metavar="N",
                   help="the newest N jobs, >= 1 (default 50)")
    add_json_option(p)

    p = command("stats", "failure rate, retries, OOM splits and ETA accuracy over past jobs",
                read.cmd_stats)
    p.add_argument("--since", type=finite(0), default=None, metavar="DAYS",
                   help="only jobs created in the last DAYS days, >= 0 (default: all)")
    add_json_option(p)

    p = command("profile", "stage weights and rates per (model, device, dtype)", read.cmd_profile)
    add_json_option(p)

    p = command("show", "one job's parameters, stages, chunks and output", read.cmd_show)
    p.add_argument("job", help=JOB_HELP)
    add_json_option(p)

    add_review_command(command, JOB_HELP)

    p = command("bench", "stage timings on generated documents of several sizes", queue.cmd_bench)
    p.add_argument("--model", default=None, help="hub id or local directory (default: as translate)")
    p.add_argument("--sizes", default="50,200,1000", metavar="N,N,...",
                   help="document sizes in sentences (default 50,200,1000)")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                   help="also draw a stacked bar chart (PNG)")
    add_device_options(p)
    add_json_option(p)

    p = command("retry", "re-run a failed or interrupted job's remaining work", translate.cmd_retry)
    p.add_argument("job", help=JOB_HELP)
    p.add_argument("--now", action="store_true",
                   help="a running job waiting out a retry's backoff tries again at once (its "
                        "worker notices within a second); runs nothing here")
    add_run_options(p)
    add_json_option(p)

    p = command("delete", "delete a finished, canceled or queued job with its chunks and log",
                queue.cmd_delete)
    p.add_argument("job", help=JOB_HELP)
    add_json_option(p)

    p = command("worker", "run queued jobs until stopped (SIGTERM: the job goes back to the queue)",
                queue.cmd_worker)
    p.add_argument("--max-jobs", type=at_least(1), default=None, metavar="N",
                   help="stop after N jobs, >= 1 (default: run until stopped)")
    p.add_argument("--idle-exit", type=finite(0), default=None, metavar="SECONDS",
                   help="stop when the queue has been empty this long, >= 0 (default: wait "
                        "for jobs)")
    add_executor_options(p)
    add_run_options(p)
    add_json_option(p)
    monitor.add_metrics_options(p)

    p = command("serve", "the web page and HTTP API over the job store, with queue workers",
                serve.cmd_serve)
    serve.add_serve_options(p)

    p = command("gc", "drop finished jobs' chunks and outputs, keep jobs and stats", queue.cmd_gc)
    p.add_argument("--older-than", type=finite(0), required=True, metavar="DAYS",
                   help="jobs that finished more than DAYS days ago, >= 0")
    add_json_option(p)

    p = command("cancel", "cancel jobs (a running one stops within seconds)", queue.cmd_cancel)
    p.add_argument("job", nargs="+", help=JOB_HELP + " (several: each is canceled; one not "
                   "found does not stop the others)")
    add_json_option(p)

    p = command("logs", "a job's attempt history: every failure and decision", read.cmd_logs)
    p.add_argument("job", help=JOB_HELP)
    add_json_option(p)

    p = command("languages", "list the 202 language codes", read.cmd_languages)
    add_json_option(p)

    tm.register(sub, [common])
    return parser


if __name__ == "__main__":
    sys.exit(main())
