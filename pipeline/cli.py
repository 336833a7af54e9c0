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
from pipeline.progress import STAGES, ProgressTracker, overall_fraction
from pipeline.store import Job, Store

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
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("translate", help="translate a document (resumes an interrupted job)")
    p.add_argument("input", type=Path)
    _add_job_options(p)
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("demo", help="translate a bundled sample with a tiny offline model")
    p.add_argument("-o", "--output-dir", type=Path, default=Path("nllb-demo"))
    p.add_argument("--tgt", default="fra_Latn")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("status", help="list jobs")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("show", help="one job's parameters, stages, chunks and output")
    p.add_argument("job")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("languages", help="list the 202 language codes")
    p.set_defaults(func=cmd_languages)
    return parser


def _add_job_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--src", required=True, help="source language, e.g. eng_Latn")
    p.add_argument("--tgt", required=True, help="target language, e.g. fra_Latn")
    p.add_argument("-o", "--output", help="output file (default: NAME.<tgt>.EXT next to the input)")
    p.add_argument("--model", default=None,
                   help=f"hub id or local directory (default: $NLLB_PIPELINE_MODEL or "
                        f"{config.DEFAULT_MODEL})")
    p.add_argument("--format", default="auto", choices=("auto", *config.FORMATS))
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--dtype", default="auto", help="auto, float32, float16 or bfloat16")
    p.add_argument("--beams", type=int, default=4, help="beam width (1 = greedy; default 4)")
    p.add_argument("--max-chunk-tokens", type=int, default=200,
                   help="longest chunk sent to the model, in tokens (default 200)")
    p.add_argument("--batch-tokens", type=int, default=0,
                   help="padded source tokens per batch (default: 8192 on CUDA, 4096 on CPU)")
    p.add_argument("--length-ratio", type=float, default=2.0,
                   help="output budget: RATIO x input tokens + OFFSET (default 2.0); "
                        "stops a looping model early")
    p.add_argument("--length-offset", type=int, default=16, help="see --length-ratio (default 16)")
    p.add_argument("--missing", default="source", choices=("source", "marker"),
                   help="what a chunk that failed for good becomes in the output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


# -- translate ------------------------------------------------------------------


def _open_store(args) -> Store:
    return Store(args.db or config.default_db_path())


def _translate(args, *, show_progress: bool) -> int:
    from pipeline.inputs import read_input
    from pipeline.jobs import find_job, resolve_format, resolve_output, submit
    from pipeline.languages import validate_language

    # Everything a user can get wrong is checked before anything is stored.
    validate_language(args.src)
    validate_language(args.tgt)
    source = read_input(args.input)
    output = resolve_output(args.output, source, args.tgt)
    model_arg = args.model or config.default_model()
    from models.nllb import resolve_model  # no torch import at module level

    settings = config.RunSettings(device=args.device, dtype=args.dtype,
                                  batch_tokens=args.batch_tokens)
    params = config.JobParams(
        model=resolve_model(model_arg), src_lang=args.src, tgt_lang=args.tgt,
        fmt=resolve_format(args.format, source.path), output=str(output), beams=args.beams,
        max_chunk_tokens=args.max_chunk_tokens, missing=args.missing,
        length_ratio=args.length_ratio, length_offset=args.length_offset,
    )
    store = _open_store(args)
    existing = find_job(store, params, source)
    if existing and existing.state == "SUCCEEDED" and _delivered(store, existing):
        return _report(args, existing, store, note="already translated; nothing to do")

    from models.nllb import NllbTranslator
    from pipeline.runner import run_job

    translator = NllbTranslator(params.model, params, settings)
    translator.check_language(params.src_lang)
    translator.check_language(params.tgt_lang)
    job, created = submit(store, params, source)
    if not created:
        log.info("resuming job %s from stage %s", job.id, job.stage)
    if existing and existing.state == "SUCCEEDED":  # output file gone or changed
        store.reopen_for_upload(job.id)
    events = _progress_bar(job) if show_progress else None
    started = time.perf_counter()
    try:
        job = run_job(store, job.id, translator, settings=settings, events=events)
    finally:
        if events is not None:
            events.close()
    return _report(args, job, store, seconds=time.perf_counter() - started,
                   note=None if created else "resumed")


def _delivered(store: Store, job: Job) -> bool:
    """The recorded output file is still there, unchanged."""
    import hashlib

    delivery = store.artifact(job.id, "delivery")
    try:
        data = Path(delivery.path).read_bytes()
    except (OSError, AttributeError, TypeError):
        return False
    return hashlib.sha256(data).hexdigest() == delivery.sha256


def cmd_translate(args) -> int:
    return _translate(args, show_progress=not args.no_progress and not args.json)


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
        length_ratio=2.0, length_offset=16, no_progress=False,
    )
    return _translate(ns, show_progress=not args.json)


class _TqdmProgress(ProgressTracker):
    def __init__(self, job: Job):
        from tqdm import tqdm

        self.bar = tqdm(total=1000, desc="preprocess", unit="‰", dynamic_ncols=True,
                        bar_format="{desc:<12} {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}",
                        file=sys.stderr)
        super().__init__(self._render)

    def _render(self, fraction: float, stage: str, detail: str) -> None:
        self.bar.set_description_str(stage, refresh=False)
        self.bar.set_postfix_str(detail, refresh=False)
        self.bar.update(round(fraction * 1000) - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _progress_bar(job: Job) -> _TqdmProgress:
    return _TqdmProgress(job)


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


# -- status / show ---------------------------------------------------------------


def job_percent(store: Store, job: Job) -> float:
    if job.state == "SUCCEEDED":
        return 100.0
    fraction = 0.0
    if job.stage == "inference":
        done, total = store.token_counts(job.id)
        fraction = done / total if total else 0.0
    stage = job.stage if job.stage in STAGES or job.stage == "done" else "preprocess"
    return 100.0 * overall_fraction(stage, fraction)


def cmd_status(args) -> int:
    store = _open_store(args)
    rows = [
        {"job": j.id, "state": j.state, "stage": j.stage,
         "percent": round(job_percent(store, j), 1), "input": j.input_path,
         "error": j.error_message}
        for j in store.jobs(args.limit)
    ]
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no jobs")
    for r in rows:
        print(f"{r['job']}  {r['state']:<9}  {r['stage']:<11}  {r['percent']:5.1f}%  {r['input']}")
    return 0


def cmd_show(args) -> int:
    store = _open_store(args)
    job = store.job(args.job)
    if job is None:
        raise InvalidInput(f"no job {args.job!r} (see 'nllb-pipeline status')")
    info = {
        "job": job.id, "state": job.state, "stage": job.stage, "input": job.input_path,
        "input_sha256": job.input_sha256, "output": job.output_path,
        "params": json.loads(job.params), "idempotency_key": job.idem_key,
        "chunks": store.chunk_counts(job.id),
        "error": {"class": job.error_class, "message": job.error_message} if job.error_class else None,
        "stages": [
            {"stage": r.stage, "wall_s": round(r.wall_s, 3) if r.wall_s is not None else None,
             "units_total": r.units_total, "units_done": r.units_done, "device": r.device}
            for r in store.stage_runs(job.id)
        ],
        "failed_chunks": [
            {"chunk": c.idx, "source": c.source[:80]}
            for c in store.chunks(job.id) if c.state == "failed"
        ],
    }
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
        return 0
    print(f"job {job.id}  {job.state}  (stage: {job.stage})")
    print(f"  input:  {job.input_path}")
    print(f"  output: {job.output_path}")
    params = info["params"]
    print(f"  model:  {params['model']}  {params['src_lang']} -> {params['tgt_lang']}  "
          f"beams={params['beams']}  format={params['fmt']}")
    print(f"  chunks: " + ", ".join(f"{k} {v}" for k, v in sorted(info["chunks"].items())))
    if info["error"]:
        print(f"  error:  [{job.error_class}] {job.error_message}")
    for r in info["stages"]:
        wall = f"{r['wall_s']:.2f} s" if r["wall_s"] is not None else "unfinished"
        print(f"  {r['stage']:<11} {wall:>12}  units {r['units_done']:g}/{r['units_total']:g}")
    for c in info["failed_chunks"]:
        print(f"  failed chunk {c['chunk']}: {c['source']!r}")
    return 0


def cmd_languages(args) -> int:
    from pipeline.languages import FLORES_CODES

    print("\n".join(FLORES_CODES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
