"""The command line: parse, call a verb of ``pipeline.service``, render.

The model backend (torch) is imported only by the commands that translate,
so ``status`` and ``show`` answer at once.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pipeline.cli import queue, read, translate
from pipeline.cli.options import (add_global_options, add_job_options, add_json_option,
                                  add_run_options)
from pipeline.errors import PipelineError

log = logging.getLogger("nllb_pipeline")


def _fail(message: str, code: int) -> int:
    print(f"nllb-pipeline: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nllb-pipeline",
        description="Translate long documents with NLLB-200, resumably.",
    )
    add_global_options(parser, in_subcommand=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    add_global_options(common, in_subcommand=True)

    def command(name: str, help: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(func=func)
        return p

    p = command("translate", "translate a document (resumes an interrupted job)",
                translate.cmd_translate)
    p.add_argument("input", type=Path)
    p.add_argument("-o", "--output", help="output file (default: NAME.<tgt>.EXT next to the input)")
    add_job_options(p)
    add_run_options(p)
    add_json_option(p)

    p = command("submit", "queue documents as jobs without translating them yet",
                queue.cmd_submit)
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
    add_job_options(p)
    add_json_option(p)

    p = command("demo", "translate a bundled sample with a tiny offline model", translate.cmd_demo)
    p.add_argument("-o", "--output-dir", type=Path, default=Path("nllb-demo"))
    p.add_argument("--tgt", default="fra_Latn")
    add_json_option(p)

    p = command("status", "list jobs", read.cmd_status)
    p.add_argument("--limit", type=int, default=50)
    add_json_option(p)

    p = command("stats", "failure rate, retries, OOM splits and ETA accuracy over past jobs",
                read.cmd_stats)
    p.add_argument("--since", type=float, default=None, metavar="DAYS",
                   help="only jobs created in the last DAYS days (default: all)")
    add_json_option(p)

    p = command("profile", "stage weights and rates per (model, device, dtype)", read.cmd_profile)
    add_json_option(p)

    p = command("show", "one job's parameters, stages, chunks and output", read.cmd_show)
    p.add_argument("job")
    add_json_option(p)

    p = command("bench", "stage timings on generated documents of several sizes", queue.cmd_bench)
    p.add_argument("--model", default=None, help="hub id or local directory (default: as translate)")
    p.add_argument("--sizes", default="50,200,1000", help="document sizes in sentences")
    p.add_argument("--plot", type=Path, default=None, help="also draw a stacked bar chart (PNG)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--batch-tokens", type=int, default=0)
    add_json_option(p)

    p = command("retry", "re-run a failed or interrupted job's remaining work", translate.cmd_retry)
    p.add_argument("job")
    add_run_options(p)
    add_json_option(p)

    p = command("worker", "run queued jobs until stopped (SIGTERM: after the batch)",
                queue.cmd_worker)
    p.add_argument("--max-jobs", type=int, default=None, help="stop after N jobs")
    p.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                   help="stop when the queue has been empty this long")
    add_run_options(p)
    add_json_option(p)

    p = command("gc", "drop finished jobs' chunks and outputs, keep jobs and stats", queue.cmd_gc)
    p.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    add_json_option(p)

    p = command("cancel", "cancel a job (a running one stops after its batch)", queue.cmd_cancel)
    p.add_argument("job")
    add_json_option(p)

    p = command("logs", "a job's attempt history: every failure and decision", read.cmd_logs)
    p.add_argument("job")
    add_json_option(p)

    p = command("languages", "list the 202 language codes", read.cmd_languages)
    add_json_option(p)
    return parser


if __name__ == "__main__":
    sys.exit(main())
