"""The translation memory on the command line: ``--tm`` for jobs, and
``nllb-pipeline tm stats|export|import|prune``.

These parse, call ``pipeline.memory.exchange`` and render. Only ``tm
import`` loads a model's tokenizer (to know the model's identity and
languages); it never loads weights.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pipeline import config
from pipeline.cli.options import (add_json_option, add_model_runtime_options, at_least, finite,
                                  open_store, settings_of)
from pipeline.store.records import MODES


def add_memory_option(p: argparse.ArgumentParser) -> None:
    """``--tm``: how a job uses the memory. Not part of what the job is."""
    p.add_argument("--tm", default=None, choices=MODES,
                   help="translation memory: 'on' reuses and stores translations, 'read' only "
                        "reuses, 'off' neither (default: on for a new job, else the job's "
                        "own); never changes the output")


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``tm`` and its subcommands to the main parser's subparsers."""
    tm = sub.add_parser("tm", help="the translation memory: stats, TMX export/import, prune",
                        description="The translation memory: every committed translation, "
                                    "reused when the same text comes with the same key.",
                        parents=parents)
    tm.set_defaults(func=lambda args: tm.print_help() or 2)
    commands = tm.add_subparsers(dest="tm_command", metavar="COMMAND")

    def command(name: str, help: str, func) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=help, description=help, parents=parents)
        p.set_defaults(func=func)
        return p

    p = command("stats", "units per model, language pair and settings; reuse so far", cmd_stats)
    add_json_option(p)

    p = command("export", "write the memory as a TMX 1.4 file", cmd_export)
    p.add_argument("file", type=Path, metavar="FILE.tmx", help="the TMX file to write")
    p.add_argument("--src", default=None, help="only this source language")
    p.add_argument("--tgt", default=None, help="only this target language")
    p.add_argument("--model", default=None, help="only translations of this model")
    add_json_option(p)

    p = command("import", "add a TMX 1.4 file's units of one language pair for a model",
                cmd_import)
    p.add_argument("file", type=Path, metavar="FILE.tmx", help="the TMX 1.4 file to read")
    p.add_argument("--model", required=True,
                   help="the model the translations are filed under (hub id or directory)")
    p.add_argument("--src", required=True, help="source language, e.g. eng_Latn")
    p.add_argument("--tgt", required=True, help="target language, e.g. fra_Latn")
    # For units from other tools: the output settings of the jobs that may
    # reuse them, as translate takes them.
    p.add_argument("--beams", type=at_least(1, 16), default=4, metavar="1-16",
                   help="beam width, 1-16, of the jobs that may reuse units from other tools "
                        "(default 4)")
    p.add_argument("--length-ratio", type=finite(0, above=True), default=2.0, metavar="RATIO",
                   help="output budget ratio (> 0) of those jobs, as for translate "
                        "(default 2.0)")
    p.add_argument("--length-offset", type=at_least(0), default=16, metavar="TOKENS",
                   help="output budget offset (>= 0) of those jobs, as for translate "
                        "(default 16)")
    p.add_argument("--quality", default="repair", choices=("repair", "flag", "off"),
                   help="quality mode of those jobs, as for translate (default repair)")
    # The backend, device kind and compute type are part of a unit's key;
    # how fast a job runs (threads, batch budget, fallback) is not.
    add_model_runtime_options(p)
    p.add_argument("--replace", action="store_true",
                   help="a unit already stored with another translation takes the file's "
                        "(default: the stored one stays)")
    add_json_option(p)

    p = command("prune", "drop units not stored or reused for DAYS days", cmd_prune)
    p.add_argument("--older-than", type=finite(0), required=True, metavar="DAYS",
                   help="units neither stored nor reused for this many days, >= 0")
    add_json_option(p)


# -- commands ---------------------------------------------------------------------------


def cmd_stats(args) -> int:
    from pipeline.memory.exchange import memory_stats

    stats = memory_stats(open_store(args, existing=True))
    if args.json:
        print(json.dumps(stats, ensure_ascii=False))
        return 0
    print(f"memory: {stats['units']} unit(s) in {len(stats['scopes'])} scope(s)")
    for s in stats["scopes"]:
        settings = " ".join(f"{k}={v}" for k, v in s["settings"].items())
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(s["last_used_at"]))
        print(f"  {s['units']:>8}  {s['model'] or s['identity']}  {s['src_lang']} -> "
              f"{s['tgt_lang']}  {s['backend']} {s['device']} {s['compute_type']}  {settings}  "
              f"(reused {s['uses']} times, {s['imported']} imported, last used {used})")
    chunks = stats["stored_chunks"]
    print(f"stored chunks: {chunks['total']}; reused from the memory "
          f"{chunks['reused_from_memory']}, repeats in their document "
          f"{chunks['reused_in_document']}")
    return 0


def cmd_export(args) -> int:
    from models.checkpoint import resolve_model  # no torch import
    from pipeline.languages import validate_language
    from pipeline.memory.exchange import export_tmx

    for code in (args.src, args.tgt):
        if code is not None:
            validate_language(code)
    model = resolve_model(args.model) if args.model else None
    report = export_tmx(open_store(args, existing=True), args.file, src_lang=args.src, tgt_lang=args.tgt,
                        model=model, tool_version=config.package_version())
    if args.json:
        print(json.dumps(vars(report)))
    else:
        left = f" ({report.left_out} left out: characters XML cannot hold)" if report.left_out \
            else ""
        print(f"exported {report.units} unit(s) to {report.path}{left}")
    return 0


def cmd_import(args) -> int:
    from models.checkpoint import resolve_model
    from pipeline.languages import validate_language
    from pipeline.memory.exchange import import_tmx
    from pipeline.memory.scope import scope_for
    from pipeline.executors import TranslatorCache

    validate_language(args.src)
    validate_language(args.tgt)
    if not args.file.is_file():
        from pipeline.errors import InvalidInput

        raise InvalidInput(f"no such file: {args.file}")
    # The key reads the model, the languages and the output settings of a
    # job; the rest of these parameters is what any job would have.
    params = config.JobParams(model=resolve_model(args.model), src_lang=args.src,
                              tgt_lang=args.tgt, fmt="text", output="", beams=args.beams,
                              length_ratio=args.length_ratio, length_offset=args.length_offset,
                              quality=args.quality)

    def scope():
        translator = TranslatorCache(settings_of(args).run)(params)
        return scope_for(params, translator.describe())

    report = import_tmx(open_store(args), args.file, scope, src=args.src, tgt=args.tgt,
                        replace=args.replace)
    if args.json:
        print(json.dumps(vars(report)))
        return 0
    conflicts = (f", {report.replaced} replaced" if args.replace else
                 f", {report.kept} kept as stored (another translation in the file; "
                 f"--replace takes the file's)" if report.kept else "")
    skipped = report.skipped_markup + report.skipped_empty
    print(f"imported {report.added} new unit(s) of {report.units} from {report.path}; "
          f"{report.same} already known{conflicts}"
          + (f"; skipped {report.skipped_markup} with inline markup, {report.skipped_empty} "
             f"empty" if skipped else ""))
    return 0


def cmd_prune(args) -> int:
    from pipeline.memory.exchange import prune

    n = prune(open_store(args, existing=True), args.older_than)
    print(json.dumps({"pruned_units": n}) if args.json else f"pruned {n} unit(s)")
    return 0

