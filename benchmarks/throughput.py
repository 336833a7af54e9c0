#!/usr/bin/env python3
"""Throughput of the pipeline against two hand-written baselines, same model, same run.

    python benchmarks/throughput.py                       # tiny model (d_model 64, 2 layers)
    python benchmarks/throughput.py --d-model 256 --layers 3 --sentences 200
    python benchmarks/throughput.py --model DIR_OR_HUB_ID --device cuda --json

One generated document (``pipeline.samples.generate_text``: mostly short
sentences, some long, a few very long), three ways, one loaded model:

  (a) naive:    one chunk at a time through ``model.generate``;
  (b) fixed32:  batches of 32 chunks in input order, padded to the longest;
  (c) pipeline: the real ``translate`` command (``pipeline.cli.main`` in-process,
                a temporary ``--db`` and output): read + preprocess, the store's
                transactions, the length-sorted token-budget batches, the
                progress bar (rendered into a buffer), postprocess and upload.

(a) and (b) translate exactly the chunks (c) stored (read back from its job
store in ``idx`` order); the figure is source tokens (``n_tokens``) per second.

Why the fixed-length rule is fair: a random-weight model never emits EOS, and
a real one stops at data-dependent points, so "time to translate" would
otherwise measure the weights, not the method. Here every ``generate`` call
runs exactly ``JobParams.max_new_tokens(longest_input, cap)`` new tokens
(``min_new_tokens == max_new_tokens``), the pipeline's own budget rule: a
sequence's output length is a fixed function of its input length and a batch
runs as long as its longest member: a real model's worst case. The pipeline's
translator does the same with ``fixed_length=True``, and beams, greedy
decoding and ``inference_mode`` are equal, so (a), (b) and (c) differ only in
batching and the pipeline's bookkeeping. A wrapper asserts every ``generate``
call returned exactly its budget. The model is loaded and warmed up first.

Overhead of (c) = (wall time - time inside ``translate_batch``) / wall time:
preprocess, store transactions, progress, postprocess and upload.

On a shared or loaded CPU, torch's default threads can make big batches
(and so the pipeline) many times slower from one run to the next; use
``--threads 1 --repeat 3`` there (the fastest round of each method counts).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and benchmarks/queue.py
# would shadow the standard library's queue module (which torch imports).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import models.nllb as nllb  # noqa: E402
from models.tiny import build_tiny_model  # noqa: E402
from pipeline import cli  # noqa: E402
from pipeline.config import JobParams, RunSettings  # noqa: E402
from pipeline.samples import generate_text  # noqa: E402
from pipeline.store import Store  # noqa: E402

SRC, TGT = "eng_Latn", "fra_Latn"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model directory or hub id (default: build a tiny model)")
    p.add_argument("--d-model", type=int, default=64, help="tiny model width")
    p.add_argument("--layers", type=int, default=2, help="tiny model layers")
    p.add_argument("--sentences", type=int, default=400, help="sentences in the document")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beams", type=int, default=1)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--batch-tokens", type=int, default=0,
                   help="pipeline token budget (0 = its default: 4096 on CPU, 8192 on CUDA)")
    p.add_argument("--fixed-batch", type=int, default=32, help="batch size of method (b)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--repeat", type=int, default=1,
                   help="rounds of (c), (a), (b); the fastest time of each counts (noisy hosts)")
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    return p.parse_args(argv)


class GenerateCounter:
    """Wraps ``model.generate`` to check the length rule and count decoder work."""

    def __init__(self, model):
        self.inner, self.calls, self.steps, self.padded_out = model.generate, 0, 0, 0
        model.generate = self

    def __call__(self, **kw):
        out = self.inner(**kw)
        # output = decoder start token + exactly the budget: no early stop anywhere
        assert out.shape[1] == kw["max_new_tokens"] + 1, (out.shape, kw["max_new_tokens"])
        self.calls += 1
        self.steps += kw["max_new_tokens"]
        self.padded_out += out.shape[0] * kw["max_new_tokens"]
        return out

    def reset(self) -> dict:
        figures = {"generate_calls": self.calls, "decoder_steps": self.steps,
                   "padded_output_tokens": self.padded_out}
        self.calls = self.steps = self.padded_out = 0
        return figures


def direct(tr, texts: list[str], beams: int) -> list[str]:
    """Methods (a) and (b): what translate_batch does, by hand, with the same rule."""
    tok = tr.tokenizer
    tok.src_lang = SRC
    enc = tok(texts, return_tensors="pt", padding=True, truncation=False).to(tr._device)
    budget = tr.params.max_new_tokens(enc["input_ids"].shape[1], tr.max_input_tokens - 2)
    with torch.inference_mode():
        out = tr._model.generate(
            **enc, forced_bos_token_id=tok.convert_tokens_to_ids(TGT), max_new_tokens=budget,
            min_new_tokens=budget, num_beams=beams, do_sample=False,
        )
    return tok.batch_decode(out, skip_special_tokens=True)


def timed_batches(tr, batches: list[list[str]], beams: int) -> float:
    start = time.perf_counter()
    for texts in batches:
        direct(tr, texts, beams)
    return time.perf_counter() - start


def run_pipeline(tr, work: Path, args, round_: int) -> tuple[float, float, Path]:
    """Method (c): ``nllb-pipeline translate`` in-process, with ``tr`` as its model."""
    doc, db, output = work / "doc.txt", work / f"jobs{round_}.db", work / f"out{round_}.txt"
    doc.write_text(generate_text(args.sentences, seed=args.seed), encoding="utf-8")
    inside, real, built = [0.0], tr.translate_batch, []

    def translate_batch(*a, **kw):
        start = time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            inside[0] += time.perf_counter() - start

    tr.translate_batch = translate_batch

    def factory(model, params, settings=RunSettings(), **kw):  # what cli constructs
        rule = ("model", "beams", "length_ratio", "length_offset")
        assert all(getattr(params, f) == getattr(tr.params, f) for f in rule), params
        assert (settings.device, settings.dtype) == (tr.settings.device, tr.settings.dtype)
        built.append(params)
        tr.params = params  # same length rule; the job's own output path
        return tr

    argv = ["--db", str(db), "translate", str(doc), "--src", SRC, "--tgt", TGT,
            "-o", str(output), "--model", tr.model_id, "--format", "text",
            "--device", args.device, "--dtype", args.dtype, "--beams", str(args.beams),
            "--batch-tokens", str(args.batch_tokens)]  # no --json: it turns the bar off
    stdout, stderr, cls = io.StringIO(), io.StringIO(), nllb.NllbTranslator
    nllb.NllbTranslator = factory  # cli imports it from models.nllb at call time
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            start = time.perf_counter()
            rc = cli.main(argv)  # the progress bar renders into `stderr`
            wall = time.perf_counter() - start
    finally:
        nllb.NllbTranslator = cls
        del tr.translate_batch
    if rc != 0 or not built:
        sys.exit(f"pipeline failed (exit {rc}):\n{stdout.getvalue()}\n{stderr.getvalue()}")
    assert "%" in stderr.getvalue() and output.is_file(), "no progress bar, or no output"
    return wall, inside[0], db


def main(argv=None) -> int:
    args = parse_args(argv)
    for var in ("NLLB_PIPELINE_INJECT_FAULTS", "NLLB_PIPELINE_RETRY"):  # a clean run
        os.environ.pop(var, None)
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="nllb-bench-"))
    os.environ["NLLB_PIPELINE_CONFIG"] = str(work / "absent.toml")  # no user config file
    try:
        return bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(args, work: Path) -> int:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the tiny model's "Writing model shards" bar
    model_dir = args.model or str(build_tiny_model(work / "tiny", d_model=args.d_model,
                                                   layers=args.layers))
    settings = RunSettings(device=args.device, dtype=args.dtype, batch_tokens=args.batch_tokens)
    params = JobParams(model=nllb.resolve_model(model_dir), src_lang=SRC, tgt_lang=TGT,
                       fmt="text", output=str((work / "doc.fra_Latn.txt").resolve()),
                       beams=args.beams)
    tr = nllb.NllbTranslator(params.model, params, settings, fixed_length=True)
    model = tr.load()
    counter = GenerateCounter(model)
    for _ in range(2):  # warm-up: first-call allocations, kernel selection
        direct(tr, ["A short warm-up sentence.", "Another one, a little bit longer."], args.beams)
    counter.reset()
    cfg = model.config
    info = {
        "device": str(tr._device), "dtype": tr.dtype_name, "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "gpu": torch.cuda.get_device_name(tr._device) if tr._device.type == "cuda" else None,
        "model": args.model or f"tiny d_model={args.d_model} layers={args.layers}",
        "d_model": cfg.d_model, "layers": f"{cfg.encoder_layers}+{cfg.decoder_layers}",
        "parameters_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "beams": args.beams, "batch_tokens": args.batch_tokens or tr.default_batch_tokens(),
    }
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()), flush=True)

    k, rounds = args.fixed_batch, []  # each round: (c) on a fresh store, then (a), (b)
    for i in range(args.repeat):
        wall_c, inside_c, db = run_pipeline(tr, work, args, i)
        work_c = counter.reset()
        if i == 0:
            store = Store(db)
            (job,) = store.jobs(2)
            assert job.state == "SUCCEEDED", job
            chunks = [c for c in store.chunks(job.id) if c.batch_id is not None]  # translated
            stages = {r.stage: round(r.wall_s, 3) for r in store.stage_runs(job.id)}
            n_batches_c = len(store.batches(job.id))
            store.close()
            texts = [c.source for c in chunks]
            tokens = sum(c.n_tokens for c in chunks)
            assert tr.count_tokens(texts) == [c.n_tokens for c in chunks]
            print(f"document: {args.sentences} sentences -> {len(chunks)} chunks, {tokens} "
                  f"source tokens; pipeline: {n_batches_c} batches", flush=True)
        wall_a = timed_batches(tr, [[t] for t in texts], args.beams)
        work_a = counter.reset()
        wall_b = timed_batches(tr, [texts[j:j + k] for j in range(0, len(texts), k)], args.beams)
        work_b = counter.reset()
        rounds.append({"a": wall_a, "b": wall_b, "c": wall_c, "c_inside": inside_c})
        print(f"round {i + 1}/{args.repeat}: naive {wall_a:.2f} s, fixed{k} {wall_b:.2f} s, "
              f"pipeline {wall_c:.2f} s (load {os.getloadavg()[0]:.2f})", flush=True)
    wall_a, wall_b = min(r["a"] for r in rounds), min(r["b"] for r in rounds)
    wall_c, inside_c = min((r["c"], r["c_inside"]) for r in rounds)

    rows = [("(a) naive", wall_a, work_a), (f"(b) fixed{k}", wall_b, work_b),
            ("(c) pipeline", wall_c, work_c)]
    tps = {name: tokens / wall for name, wall, _ in rows}
    overhead = 100.0 * (wall_c - inside_c) / wall_c
    print(f"\n{'method':<14}{'seconds':>9}{'src tok/s':>11}{'vs (a)':>8}"
          f"{'generate calls':>16}{'padded out tok':>16}")
    for name, wall, work_ in rows:
        print(f"{name:<14}{wall:9.2f}{tps[name]:11.1f}{tps[name] / tps['(a) naive']:7.2f}x"
              f"{work_['generate_calls']:16d}{work_['padded_output_tokens']:16d}")
    r_naive, r_fixed = wall_a / wall_c, wall_b / wall_c  # same tokens: ratio of tok/s
    print("\npipeline stages, round 1 (s): " + ", ".join(f"{s} {w}" for s, w in stages.items()))
    print(f"pipeline: {wall_c:.2f} s wall, {inside_c:.2f} s inside translate_batch")
    print(f"pipeline/naive = {r_naive:.2f}x (target >= 5x)")
    print(f"pipeline/fixed{k} = {r_fixed:.2f}x (target >= 1.3x)")
    print(f"overhead = {overhead:.2f}% (target < 5%)")
    if args.json:
        print(json.dumps({
            "machine": info, "sentences": args.sentences, "chunks": len(chunks),
            "source_tokens": tokens, "pipeline_batches": n_batches_c, "stages_s": stages,
            "methods": {name: {"seconds": round(wall, 4), "tok_per_s": round(tps[name], 2),
                               **work_} for name, wall, work_ in rows},
            "pipeline_over_naive": round(r_naive, 3), "pipeline_over_fixed": round(r_fixed, 3),
            "translate_batch_s": round(inside_c, 4), "overhead_pct": round(overhead, 3),
            "rounds": rounds,
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
