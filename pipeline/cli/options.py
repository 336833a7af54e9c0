"""Option groups, each defined once, and what they build.

- global options (``--db``, ``--config``, ``--debug``, ``-v``): accepted
  before and after the subcommand;
- job options: what a job *is* (its idempotency key): languages, model,
  format, decoding, destination; built into ``service.JobOptions``;
- run options: how this process runs jobs (device, backend, fallback
  device, batch budget, threads, retries, fault injection, delivery
  credentials): the top layer of ``pipeline.settings`` (defaults, then the
  config file's ``[run]`` and ``[retry]``, then the environment, then
  flags), built into a ``service.Runtime``.

Every value is checked where it enters, and its error names where it came
from: a flag's type below (``nllb-pipeline: error: --threads must be >= 0,
not -3``), the config file's path and section, or the environment variable.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from pipeline import config, settings
from pipeline.cli.messages import LOG_FORMATS
from pipeline.errors import InvalidInput
from pipeline.service import JobOptions, Runtime
from pipeline.sinks.grammar import HTTP_METHODS
from pipeline.store import Store


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, as every other error of the CLI is."""

    def error(self, message: str):
        # "argument --threads: must be >= 0, not -3" -> "--threads must be >= 0, not -3"
        message = re.sub(r"^argument ([^:]+): (?=must )", r"\1 ", message)
        self.exit(2, f"nllb-pipeline: error: {message} (see '{self.prog} --help')\n")


def at_least(minimum: int, maximum: int | None = None):
    """An argparse type: an integer >= ``minimum`` (and <= ``maximum``).
    Its ``range`` (``1-16``, ``>= 0``) is what the option's help says."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None
        if maximum is not None and not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be between {minimum} and {maximum}, "
                                             f"not {value}")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, not {value}")
        return value
    parse.range = f"{minimum}-{maximum}" if maximum is not None else f">= {minimum}"
    return parse


def integer(text: str) -> int:
    """An argparse type: any integer (``int`` would say "invalid int value")."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None


def finite(minimum: float, *, above: bool = False):
    """An argparse type: a finite number >= ``minimum`` (> with ``above``);
    NaN and infinity are refused, as ``float()`` would accept them."""
    sign = ">" if above else ">="

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
        if not math.isfinite(value) or value < minimum or (above and value == minimum):
            raise argparse.ArgumentTypeError(f"must be a finite number {sign} {minimum:g}, "
                                             f"not {text}")
        return value
    parse.finite = True  # tests find every float option by this
    parse.range = f"{sign} {minimum:g}"
    return parse


def add_global_options(p: argparse.ArgumentParser, *, in_subcommand: bool) -> None:
    """On the main parser with real defaults; on every subcommand with
    suppressed ones, so a value given after the subcommand wins and one
    given before it is not reset."""
    def default(value):
        return argparse.SUPPRESS if in_subcommand else value

    p.add_argument("--db", type=Path, default=default(None), metavar="PATH",
                   help="job database (default: $NLLB_PIPELINE_DB or "
                        "~/.local/share/nllb-pipeline/jobs.db)")
    p.add_argument("--config", type=Path, default=default(None), metavar="PATH",
                   help="TOML config file with [retry] and [run] sections (default: "
                        "$NLLB_PIPELINE_CONFIG or ~/.config/nllb-pipeline/config.toml)")
    p.add_argument("--debug", action="store_true", default=default(False),
                   help="show tracebacks")
    p.add_argument("-v", "--verbose", action="store_true", default=default(False),
                   help="log what happens, each line after its time")
    p.add_argument("--log-format", default=default("text"), choices=LOG_FORMATS,
                   help="text: 'nllb-pipeline: warning: ...' (default); json: one JSON object "
                        "per line on stderr, with its time (errors and progress included)")


def add_job_options(p: argparse.ArgumentParser, *, output_dir: bool = False) -> None:
    """What a job is (part of its idempotency key), except the output path.
    ``output_dir``: the command's -o is --output-dir (submit), not --output."""
    add_language_options(p)
    like = ("file:PATH (one file), dir:DIR (DIR/NAME.<tgt>.EXT, like -o)" if output_dir else
            "file:PATH (like -o), dir:DIR (DIR/NAME.<tgt>.EXT)")
    p.add_argument("--to", default=None, metavar="SINK",
                   help=f"where the translation goes: {like} or an http(s):// URL (PUT by "
                        "default)")
    p.add_argument("--http-method", default=None, type=str.upper, choices=HTTP_METHODS,
                   help="method for an http(s) --to (default PUT)")
    p.add_argument("--relative-to", default=None, metavar="BASE",
                   help="with --to dir:DIR, keep the input's directory relative to BASE under DIR")
    add_model_option(p)
    p.add_argument("--format", default="auto", choices=("auto", *config.FORMATS),
                   help="the input's format (default auto: from its extension, and a .txt "
                        "without blank lines is read as lines)")
    p.add_argument("--jsonl", default="", metavar="FIELD",
                   help="input is JSON Lines: translate FIELD of each line; the output keeps "
                        "every field and adds \"translation\"")
    p.add_argument("--columns", default="", metavar="A,B",
                   help="csv, tsv, parquet: the columns to translate, by header name (or "
                        "1-based numbers for a CSV without a header row)")
    p.add_argument("--delimiter", default="", metavar="CHAR",
                   help="csv: the delimiter (default: the one of , ; tab | the first line has "
                        "most of; 'tab' or '\\t' for a tab)")
    p.add_argument("--in-place", action="store_true",
                   help="jsonl, csv, tsv, parquet: replace the field or columns with their "
                        "translation (default: add \"translation\" or <column>_<tgt>)")
    p.add_argument("--overwrite-translated", action="store_true",
                   help="po: translate entries that already have a msgstr too")
    p.add_argument("--no-fuzzy", dest="fuzzy", action="store_false",
                   help="po: do not mark machine translations fuzzy")
    p.add_argument("--wrap", default="keep", choices=config.WRAPS,
                   help="markdown, html: 'keep' (default) writes a translated paragraph on as "
                        "many lines as its source, as a diff-based review wants; 'reflow' "
                        "writes it on one line")
    add_decoding_options(p)
    p.add_argument("--missing", default="source", choices=("source", "marker"),
                   help="what a chunk that failed for good becomes in the output")


def add_language_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--src", required=True, metavar="CODE",
                   help="source language, a FLORES-200 code, e.g. eng_Latn ('nllb-pipeline "
                        "languages' lists them)")
    p.add_argument("--tgt", required=True, metavar="CODE",
                   help="target language, e.g. fra_Latn")


def add_model_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help=f"hub id or local directory (default: $NLLB_PIPELINE_MODEL or "
                        f"{config.DEFAULT_MODEL})")


def add_decoding_options(p: argparse.ArgumentParser, *, beam_list: bool = False) -> None:
    """How a sentence is decoded and checked: beams, chunk length, the output
    budget, the quality checks. ``beam_list``: --beams takes a comma-separated
    list (``eval --compare``), checked by the caller."""
    if beam_list:
        p.add_argument("--beams", default="4", metavar="N[,N...]",
                       help="beam width 1-16 (default 4); a list with --compare")
    else:
        p.add_argument("--beams", type=at_least(1, 16), default=4, metavar="1-16",
                       help="beam width, 1-16 (1 = greedy; default 4)")
    p.add_argument("--max-chunk-tokens", type=at_least(16, 1024), default=200,
                   metavar="16-1024",
                   help="longest chunk sent to the model, 16-1024 tokens (default 200)")
    p.add_argument("--length-ratio", type=finite(0, above=True), default=2.0, metavar="RATIO",
                   help="output budget: RATIO (> 0) x input tokens (rounded up to a length "
                        "bucket) + OFFSET (default 2.0); stops a looping model early")
    p.add_argument("--length-offset", type=at_least(0), default=16, metavar="OFFSET",
                   help="see --length-ratio: tokens, >= 0 (default 16)")
    p.add_argument("--quality", default="repair", choices=("repair", "flag", "off"),
                   help="a translation that loops, never stops, is in the wrong script, copies "
                        "its source or has an implausible length: repair it (decode again with "
                        "a repetition guard, then split it, then flag it; default), flag it, or "
                        "do not check")


def add_device_options(p: argparse.ArgumentParser, *, lists: bool = False) -> None:
    """Where and how fast the model runs. Unset flags fall back to the config
    file's [run], then to the defaults. ``lists``: --backend and --dtype
    take comma-separated lists (``eval --compare``), checked by the caller."""
    add_model_runtime_options(p, lists=lists)
    add_speed_options(p)


def add_model_runtime_options(p: argparse.ArgumentParser, *, lists: bool = False) -> None:
    """What runs the model (backend, device, number format, tokenizer): what
    a translation memory unit's key holds of a run."""
    p.add_argument("--device", default=None,
                   help="auto, cpu, cuda or cuda:N (default auto: the first GPU, else the CPU)")
    p.add_argument("--dtype", default=None,
                   help="auto, float32, float16, bfloat16, or with CTranslate2 int8, int8_float32, "
                        "int8_float16, int8_bfloat16, int16 (auto: int8 on CPU and "
                        "int8_float16 on CUDA with CTranslate2; float32 on CPU and bf16/fp16 on "
                        "CUDA with transformers)")
    p.add_argument("--backend", default=None, choices=None if lists else config.BACKENDS,
                   help="auto (CTranslate2 when it is installed and the model converts, else "
                        "transformers), hf or ctranslate2 (or $NLLB_PIPELINE_BACKEND)")
    p.add_argument("--tokenizer", default=None, metavar="HUB_ID_OR_DIR",
                   help="tokenizer for a converted CTranslate2 --model that has none of its own "
                        "(or $NLLB_PIPELINE_TOKENIZER)")


def add_speed_options(p: argparse.ArgumentParser) -> None:
    """How a run goes on and how fast: the fallback device, the batch
    budget, threads. Never part of a job or a memory key."""
    p.add_argument("--fallback-device", default=None, metavar="DEVICE",
                   help="go on on this device (e.g. cpu) when the GPU fails in a way retrying "
                        "cannot fix, instead of failing the job "
                        "(or $NLLB_PIPELINE_FALLBACK_DEVICE)")
    p.add_argument("--batch-tokens", type=at_least(1), default=None, metavar="N",
                   help="padded source tokens per batch, >= 1 (default: 8192 on CUDA, 2048 on "
                        "CPU)")
    p.add_argument("--threads", type=at_least(0), default=None, metavar="N",
                   help="CPU threads, >= 0: CTranslate2's threads per translation "
                        "(intra_threads) with that backend, torch's (set_num_threads) with "
                        "transformers (default 0: the library's own default; 1 is often "
                        "faster on a busy machine)")


def add_run_options(p: argparse.ArgumentParser) -> None:
    """How a job runs (not part of what it is)."""
    add_device_options(p)
    p.add_argument("--retry", dest="retry_policy", default=None, metavar="SPEC",
                   help="retry limits and backoff, e.g. 'chunk_attempts=3,batch_retries=2,"
                        "base=1,factor=1.6,cap=20,device_transient=3' (or $NLLB_PIPELINE_RETRY)")
    p.add_argument("--inject-faults", default=None, metavar="SPEC",
                   help="simulate failures, e.g. 'oom=0.2,transient=0.05,device_fatal=0.01,seed=7' "
                        "(or $NLLB_PIPELINE_INJECT_FAULTS); off by default")
    p.add_argument("--header", dest="headers", action="append", default=[], metavar="'NAME: VALUE'",
                   help="HTTP header for an http(s) --to, repeatable; $VAR and ${VAR} are read "
                        "from the environment. Never stored or logged: give it again to retry")
    p.add_argument("--signed-url", dest="signed_urls", action="append", default=[],
                   metavar="URL",
                   help="the whole presigned http(s) URL of a job whose --to was one (its "
                        "signature is stored as REDACTED), repeatable. Never stored: give it "
                        "again to resume, retry or run the job in a worker")
    p.add_argument("--http-timeout", type=finite(0, above=True), default=None, metavar="SECONDS",
                   help="timeout of one HTTP upload attempt, > 0 (default 30)")
    p.add_argument("--eta-drift", default=None, metavar="SPEC",
                   help="when a profile's ETAs drift: 'threshold=25,mark=50,jobs=10' (percent "
                        "error at a progress mark over the last N jobs; the default) or 'off' "
                        "(or $NLLB_PIPELINE_ETA_DRIFT)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output file that differs from the translation")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_json_option(p: argparse.ArgumentParser, help: str = "print the result as JSON") -> None:
    p.add_argument("--json", action="store_true", help=help)


# -- what they build -------------------------------------------------------------------


def settings_of(args) -> settings.Settings:
    """This command's run settings: defaults, the config file, the environment,
    then its flags (``pipeline.settings``)."""
    return settings.load(settings.Flags.from_args(args))


def db_path(args) -> tuple[Path, str | None]:
    """The job database and who named it (``settings.db_path``)."""
    return settings.db_path(getattr(args, "db", None))


def open_store(args, *, existing: bool = False) -> Store:
    """The job database. With ``existing`` (commands about jobs that must
    already be there: status, show, logs, stats, profile, retry, cancel, gc)
    nothing is created: a database named by --db or $NLLB_PIPELINE_DB that
    does not exist is a typo, refused; the default one that does not exist
    yet means nothing was ever queued, and reads as empty."""
    path, source = db_path(args)
    if existing and not path.exists():
        if source:
            raise InvalidInput(f"job database not found: {path} (from {source}); check the "
                               "path (only the commands that queue or run jobs create one)")
        return Store(":memory:")  # a new user's first 'status': no jobs, no file created
    # Every command opens the store here, and finds damage the same way
    # before it reads or writes anything.
    return Store(path, check=True)


def job_options(args, *, output: str | None = None, to: str | None = None,
                relative_to: str | None = None) -> JobOptions:
    return JobOptions(
        src=args.src, tgt=args.tgt, model=args.model, fmt=args.format,
        jsonl_field=args.jsonl, columns=args.columns, delimiter=args.delimiter,
        in_place=args.in_place,
        overwrite_translated=args.overwrite_translated, fuzzy=args.fuzzy, wrap=args.wrap,
        beams=args.beams, max_chunk_tokens=args.max_chunk_tokens,
        length_ratio=args.length_ratio, length_offset=args.length_offset,
        missing=args.missing, quality=args.quality, to=to, output=output,
        relative_to=relative_to, http_method=getattr(args, "http_method", None),
        memory=getattr(args, "tm", None),
    )


def runtime(args) -> Runtime:
    """Settings, retry policy, delivery options and the translator cache of this run,
    every one checked before anything is stored or loaded."""
    return Runtime.from_settings(settings_of(args))
