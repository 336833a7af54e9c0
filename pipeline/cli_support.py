"""What the commands share: building job parameters, run settings, the retry
policy and the translator from parsed arguments."""

from __future__ import annotations

import sys

from pipeline import config
from pipeline.errors import InvalidInput


def job_params(args, source, *, to, output, relative_to) -> config.JobParams:
    """The parameters that make a job what it is (its idempotency key)."""
    from models.checkpoint import resolve_model  # no torch import at module level
    from pipeline.jobs import resolve_format
    from pipeline.sinks import resolve_target

    target = resolve_target(to, output, source, args.tgt,
                            http_method=getattr(args, "http_method", None),
                            relative_to=relative_to)
    return config.JobParams(
        model=resolve_model(args.model or config.default_model()), src_lang=args.src,
        tgt_lang=args.tgt,
        fmt="jsonl" if getattr(args, "jsonl", "") else resolve_format(args.format, source.path),
        jsonl_field=getattr(args, "jsonl", ""), output=target.output,
        sink=target.sink, http_method=target.http_method, beams=args.beams,
        max_chunk_tokens=args.max_chunk_tokens, missing=args.missing,
        length_ratio=args.length_ratio, length_offset=args.length_offset,
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


def make_translator(params, settings, args):
    """The NLLB backend for these parameters, wrapped for fault injection if asked."""
    from models.hf import HfTranslator

    spec = None
    if getattr(args, "inject_faults", None):
        from models.faults import FaultSpec

        spec = FaultSpec.parse(args.inject_faults)
    translator = HfTranslator(params.model, settings)
    translator.check_language(params.src_lang)
    translator.check_language(params.tgt_lang)
    if spec is not None:
        from models.faults import FaultInjectingTranslator

        print(f"nllb-pipeline: WARNING: fault injection is ON ({spec}); failures are simulated",
              file=sys.stderr)
        translator = FaultInjectingTranslator(translator, spec)
    return translator
