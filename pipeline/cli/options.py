"""Option groups, each defined once, and what they build.

- global options (``--db``, ``--config``, ``--debug``, ``-v``): accepted
  before and after the subcommand;
- job options: what a job *is* (its idempotency key): languages, model,
  format, decoding, destination; built into ``service.JobOptions``;
- run options: how this process runs jobs (device, batch budget, threads,
  retries, fault injection, delivery credentials); built into a
  ``service.Runtime`` from defaults, then the config file's ``[run]`` and
  ``[retry]``, then the environment, then flags.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline import config
from pipeline.errors import InvalidInput
from pipeline.service import JobOptions, Runtime, TranslatorCache
from pipeline.store import Store


def add_global_options(p: argparse.ArgumentParser, *, in_subcommand: bool) -> None:
    """On the main parser with real defaults; on every subcommand with
    suppressed ones, so a value given after the subcommand wins and one
    given before it is not reset."""
    def default(value):
        return argparse.SUPPRESS if in_subcommand else value

    p.add_argument("--db", type=Path, default=default(None),
                   help="job database (default: $NLLB_PIPELINE_DB or "
                        "~/.local/share/nllb-pipeline/jobs.db)")
    p.add_argument("--config", type=Path, default=default(None),
                   help="TOML config file with [retry] and [run] sections (default: "
                        "$NLLB_PIPELINE_CONFIG or ~/.config/nllb-pipeline/config.toml)")
    p.add_argument("--debug", action="store_true", default=default(False),
                   help="show tracebacks")
    p.add_argument("-v", "--verbose", action="store_true", default=default(False),
                   help="log what happens")


def add_job_options(p: argparse.ArgumentParser) -> None:
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
                   help="output budget: RATIO x input tokens (rounded up to a length bucket) "
                        "+ OFFSET (default 2.0); stops a looping model early")
    p.add_argument("--length-offset", type=int, default=16, help="see --length-ratio (default 16)")
    p.add_argument("--missing", default="source", choices=("source", "marker"),
                   help="what a chunk that failed for good becomes in the output")
    p.add_argument("--quality", default="repair", choices=("repair", "flag", "off"),
                   help="a translation that loops, never stops, is in the wrong script, copies "
                        "its source or has an implausible length: repair it (decode again with "
                        "a repetition guard, then split it, then flag it; default), flag it, or "
                        "do not check")


def add_run_options(p: argparse.ArgumentParser) -> None:
    """How a job runs (not part of what it is)."""
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


def add_json_option(p: argparse.ArgumentParser, help: str = "print the result as JSON") -> None:
    p.add_argument("--json", action="store_true", help=help)


# -- what they build -------------------------------------------------------------------


def open_store(args) -> Store:
    return Store(args.db or config.default_db_path())


def job_options(args, *, output: str | None = None, to: str | None = None,
                relative_to: str | None = None) -> JobOptions:
    return JobOptions(
        src=args.src, tgt=args.tgt, model=args.model, fmt=args.format,
        jsonl_field=args.jsonl, beams=args.beams, max_chunk_tokens=args.max_chunk_tokens,
        length_ratio=args.length_ratio, length_offset=args.length_offset,
        missing=args.missing, quality=args.quality, to=to, output=output,
        relative_to=relative_to,
        http_method=getattr(args, "http_method", None),
    )


def delivery_options(args):
    """How this run reaches the sink: headers (with $VAR expanded), timeout, overwrite."""
    from pipeline.sinks import DeliveryOptions, parse_headers

    return DeliveryOptions(headers=parse_headers(getattr(args, "headers", None) or ()),
                           timeout_s=getattr(args, "http_timeout", 30.0),
                           overwrite=getattr(args, "overwrite", False))


def file_config(args) -> dict:
    return config.load_config_file(getattr(args, "config", None),
                                   required=getattr(args, "config", None) is not None)


def retry_policy(args):
    """Defaults, then the config file's [retry], then $NLLB_PIPELINE_RETRY or --retry."""
    from pipeline.retry import parse_policy

    base = parse_policy(config.retry_spec_from_config(file_config(args)))
    return parse_policy(getattr(args, "retry_policy", None), base)


def run_settings(args) -> config.RunSettings:
    """Defaults, then the config file's [run], then flags that were given."""
    run = file_config(args).get("run") or {}
    unknown = set(run) - {"device", "dtype", "batch_tokens", "threads"}
    if unknown:
        raise InvalidInput(f"config file: unknown [run] key(s) {', '.join(sorted(unknown))}")
    return config.RunSettings(
        device=args.device if args.device != "auto" else run.get("device", "auto"),
        dtype=args.dtype if args.dtype != "auto" else run.get("dtype", "auto"),
        batch_tokens=args.batch_tokens or int(run.get("batch_tokens", 0)),
        threads=args.threads or int(run.get("threads", 0)),
    )


def runtime(args) -> Runtime:
    """Settings, retry policy, delivery options and the translator cache of this run,
    every one checked before anything is stored or loaded."""
    settings = run_settings(args)
    policy = retry_policy(args)
    delivery = delivery_options(args)
    if getattr(args, "inject_faults", None):
        from models.faults import FaultSpec

        FaultSpec.parse(args.inject_faults)  # a bad spec is refused before any work
    translators = TranslatorCache(
        settings, inject_faults=getattr(args, "inject_faults", None),
        announce=lambda text: print(f"nllb-pipeline: {text}", file=sys.stderr))
    return Runtime(settings, policy, delivery, translators)
