"""``nllb-pipeline eval``: chrF++ and BLEU of a test set through the pipeline,
one row per (backend, dtype, beams) with ``--compare``."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
import tempfile
from pathlib import Path

from pipeline import config, service
from pipeline.cli.options import (
    add_decoding_options,
    add_device_options,
    add_json_option,
    add_language_options,
    add_model_option,
    open_store,
    runtime,
)
from pipeline.errors import InvalidInput
from pipeline.documents.inputs import scan_input
from pipeline.store.records import MODES
from pipeline.quality import evaluate
from pipeline.store import Store


def add_eval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, metavar="SRC_FILE",
                   help="source sentences, one per line")
    p.add_argument("--ref", required=True, type=Path, metavar="REF_FILE",
                   help="reference translations, line-aligned with SRC_FILE")
    add_language_options(p)
    add_model_option(p)
    add_decoding_options(p, beam_list=True)
    p.add_argument("--tm", default="off", choices=MODES,
                   help="translation memory (default off: a score must come from the model; "
                        "with on or read the jobs run in the job database)")
    p.add_argument("--compare", action="store_true",
                   help="--backend, --dtype and --beams take comma-separated lists: one row "
                        "per combination")
    add_device_options(p, lists=True)
    p.add_argument("--keep", type=Path, default=None, metavar="DIR",
                   help="write each row's translation into DIR (default: discarded)")
    add_json_option(p, help="print the rows as JSON")


def _values(text: str | None, flag: str, compare: bool, check=None) -> list:
    if text is None:
        return [None]
    values = [v.strip() for v in str(text).split(",")]
    if any(not v for v in values):
        raise InvalidInput(f"{flag}: an empty value in {text!r}")
    if len(values) > 1 and not compare:
        raise InvalidInput(f"{flag} {text}: several values need --compare")
    return [check(v) if check else v for v in values]


def _beams(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise InvalidInput(f"--beams: {value!r} is not a whole number") from None
    if not 1 <= n <= 16:
        raise InvalidInput(f"--beams: {n} is outside 1-16")
    return n


def _backend(value: str) -> str:
    if value not in config.BACKENDS:
        raise InvalidInput(f"--backend: {value!r} is not one of {', '.join(config.BACKENDS)}")
    return value


def cmd_eval(args) -> int:
    from pipeline.languages import validate_language

    validate_language(args.src)
    validate_language(args.tgt)
    sources = evaluate.read_lines(args.input, "source file")
    references = evaluate.read_lines(args.ref, "reference file")
    evaluate.check_aligned(sources, references, args.input, args.ref)
    combos = list(itertools.product(
        _values(args.backend, "--backend", args.compare, _backend),
        _values(args.dtype, "--dtype", args.compare),
        _values(args.beams, "--beams", args.compare, _beams)))
    runs = []
    for backend, dtype, beams in combos:  # every run option checked before any job runs
        combo = argparse.Namespace(**{**vars(args), "backend": backend, "dtype": dtype})
        runs.append((combo, beams, runtime(combo)))
    source = scan_input(args.input)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nllb-eval-")))
        out_dir = args.keep or work
        out_dir.mkdir(parents=True, exist_ok=True)
        # The memory's jobs live in the job database; a score without it
        # comes from a scratch store, so nothing is reused or left behind.
        store = open_store(args) if args.tm != "off" else Store(work / "eval.db")
        rows = [_row(store, source, args, combo, beams, run, out_dir, sources, references, k)
                for k, (combo, beams, run) in enumerate(runs)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    else:
        _print(rows, args, len(sources))
    return 0 if all(r["state"] == "SUCCEEDED" for r in rows) else 1


def _row(store: Store, source, args, combo, beams: int, run, out_dir: Path,
         sources: list[str], references: list[str], k: int) -> dict:
    options = service.JobOptions(
        src=args.src, tgt=args.tgt, model=args.model, fmt="lines", beams=beams,
        max_chunk_tokens=args.max_chunk_tokens, length_ratio=args.length_ratio,
        length_offset=args.length_offset, quality=args.quality,
        output=str(out_dir / f"{args.input.stem}.{k}.{args.tgt}.txt"), memory=args.tm)
    events = None
    if not (args.json or getattr(args, "no_progress", False)):
        from pipeline.cli.progress_bar import progress_bar

        events = progress_bar
    job = service.translate_or_resume(store, source, options, run, events_for=events).job
    row = {"job": job.id, "state": job.state, "beams": beams, "backend": combo.backend or "auto",
           "device": combo.device or "auto", "dtype": combo.dtype or "auto", "lines": len(sources)}
    ran = store.translated_by(job.id)
    if ran:  # what really ran (auto resolved)
        row.update(backend=ran[0][0], device=ran[0][1], dtype=ran[0][2])
    if job.state != "SUCCEEDED":
        return {**row, "error": job.error_message, "chrf": None, "bleu": None,
                "signature": None, "tokens_per_s": None, "flags": {}}
    hypotheses = Path(job.output_path).read_text(encoding="utf-8").splitlines()
    scores = evaluate.score(hypotheses, references, args.tgt)
    report = store.quality_report(job.id)
    inference_s = sum(r.wall_s or 0.0 for r in store.stage_runs(job.id) if r.stage == "inference")
    translator = run.translators(service.job_params(options, source))
    # generated tokens, as the tokenizer counts the output again (its
    # language code and EOS left out)
    produced = sum(n - 2 for n, line in zip(translator.count_tokens(hypotheses), hypotheses)
                   if line.strip())
    return {**row, "chrf": scores.chrf, "bleu": scores.bleu,
            "signature": {"chrf": scores.chrf_signature, "bleu": scores.bleu_signature},
            "tokens_per_s": round(produced / inference_s, 1) if inference_s > 0 else None,
            "generated_tokens": produced, "inference_s": round(inference_s, 3),
            "flags": report["flags"], "flagged": len(report["flagged"]),
            "reused": store.job_counters([job.id])[job.id].reused,
            "output": job.output_path if args.keep else None}


def _print(rows: list[dict], args, lines: int) -> None:
    print(f"eval: {lines} lines, {args.src} -> {args.tgt}, model "
          f"{args.model or config.default_model()}, --quality {args.quality}, --tm {args.tm}")
    print(f"{'backend':<12} {'device':<7} {'dtype':<14} {'beams':>5} {'chrF++':>7} {'BLEU':>6} "
          f"{'tokens/s':>9}  flags")
    for r in rows:
        if r["state"] != "SUCCEEDED":
            print(f"{r['backend']:<12} {r['device']:<7} {r['dtype']:<14} {r['beams']:>5}  "
                  f"{r['state']}: {r.get('error')}")
            continue
        flags = ", ".join(f"{k} {v}" for k, v in sorted(r["flags"].items())) or "none"
        tps = f"{r['tokens_per_s']:.1f}" if r["tokens_per_s"] is not None else "-"
        print(f"{r['backend']:<12} {r['device']:<7} {r['dtype']:<14} {r['beams']:>5} "
              f"{r['chrf']:>7.2f} {r['bleu']:>6.2f} {tps:>9}  {flags}")
    done = [r for r in rows if r["signature"]]
    if done:
        print(f"chrF++ signature: {done[0]['signature']['chrf']}")
        print(f"BLEU signature:   {done[0]['signature']['bleu']}")
    sys.stdout.flush()
