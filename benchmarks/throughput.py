#!/usr/bin/env python3
"""Throughput of the pipeline against hand-written baselines, and what
batch-independent translations cost, same model, same run.

    python benchmarks/throughput.py --threads 1            # tiny model, beams 1 and 4
    python benchmarks/throughput.py --d-model 256 --layers 3 --sentences 200
    python benchmarks/throughput.py --model DIR_OR_HUB_ID --device cuda --beams 4 --json

One generated document (``pipeline.samples.generate_text``: mostly short
sentences, some long, a few very long), several ways, one loaded model, for
each beam width in ``--beams`` (default 1 and 4, 4 being the pipeline's own
default):

  (a) naive:    one chunk at a time through ``model.generate``;
  (b) fixed32:  batches of 32 chunks in input order, padded to the longest;
  (c) pipeline: the real ``translate`` command (``pipeline.cli.main`` in-process,
                a temporary ``--db`` and output): read + preprocess, the store's
                transactions, the planned batches, the progress bar (rendered
                into a buffer), postprocess and upload.

and three ways to batch the same chunks by hand, for the cost of making every
translation independent of its batch (beam search is not prefix-consistent,
so a search must end at its own budget):

  (d) cut:      the old plan (sorted by length, any lengths together), each
                batch run to its longest member's exact budget and the others
                cut afterwards: fast, but a sentence's translation depends on
                its neighbours;
  (e) per-row:  the same plan, each row stopped at its own exact budget inside
                generation (EOS forced at that step), the batch running on to
                its longest member: independent;
  (f) buckets:  what the pipeline does: budgets rounded up to a length bucket
                (``pipeline.budget``) and batches planned within one budget:
                independent.

(a)-(c) translate exactly the chunks (c) stored (read back in ``idx``
order); the figure is source tokens (``n_tokens``) per second.

Why the fixed-length rule is fair: a random-weight model never emits EOS,
and a real one stops at data-dependent points, so "time to translate" would
otherwise measure the weights, not the method. Here every row runs exactly
its budget (``min_new_tokens == max_new_tokens``): a real model's worst
case. (a), (b) and (f) use the pipeline's bucketed budget of the batch's
longest member; (d) and (e) the old exact rule ``ceil(2 x n) + 16``. Beams,
greedy decoding and ``inference_mode`` are equal, so the methods differ only
in batching and the pipeline's bookkeeping. The model is loaded and warmed
up first.

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
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import models.hf as hf  # noqa: E402
from models.checkpoint import resolve_model  # noqa: E402
from models.tiny import build_tiny_model  # noqa: E402
from pipeline import cli  # noqa: E402
from pipeline.batching import plan_batches  # noqa: E402
from pipeline.config import JobParams, RunSettings  # noqa: E402
from pipeline.samples import generate_text  # noqa: E402
from pipeline.store import Store  # noqa: E402

SRC, TGT = "eng_Latn", "fra_Latn"


def parse_args(argv=None) -> argparse.Namespace:
    defaults = hf.DEFAULT_BATCH_TOKENS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model directory or hub id (default: build a tiny model)")
    p.add_argument("--d-model", type=int, default=64, help="tiny model width (default 64)")
    p.add_argument("--layers", type=int, default=2, help="tiny model layers (default 2)")
    p.add_argument("--sentences", type=int, default=400,
                   help="sentences in the document (default 400)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beams", default="1,4",
                   help="beam widths to measure, comma-separated (default 1,4; the pipeline's "
                        f"default is {JobParams.__dataclass_fields__['beams'].default})")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--dtype", default="auto", help="default auto: float32 on CPU, bf16/fp16 on CUDA")
    p.add_argument("--batch-tokens", type=int, default=0,
                   help=f"pipeline token budget (default 0 = the backend's: {defaults['cpu']} "
                        f"on CPU, {defaults['cuda']} on CUDA)")
    p.add_argument("--fixed-batch", type=int, default=32,
                   help="batch size of method (b) (default 32)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (default 0 = torch's default)")
    p.add_argument("--quality", choices=("repair", "flag", "off"), default="repair",
                   help="the pipeline's --quality (default repair, as the CLI's; on random "
                        "weights nearly every output loops and the repair ladder runs more "
                        "batches, which the baselines do not: off compares batching alone)")
    p.add_argument("--repeat", type=int, default=1,
                   help="rounds of every method; the fastest time of each counts (default 1)")
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = p.parse_args(argv)
    try:
        args.beams = [int(b) for b in args.beams.split(",")]
    except ValueError:
        p.error(f"--beams takes widths like 1,4, not {args.beams!r}")
    return args


class GenerateCounter:
    """Wraps ``model.generate`` to check the length rule and count decoder work."""

    def __init__(self, model):
        self.inner, self.calls, self.steps, self.padded_out = model.generate, 0, 0, 0
        model.generate = self

    def __call__(self, **kw):
        out = self.inner(**kw)
        if "min_new_tokens" in kw:  # (e) stops each row itself, one step past its budget
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


class _StopEachRow:
    """A logits processor: row r emits EOS at its own step ``budgets[r]``
    and nothing else before it (random weights never stop on their own)."""

    def __init__(self, budgets: list[int], beams: int, eos: int, start_len: int):
        self.budgets = torch.tensor(budgets).repeat_interleave(beams)
        self.eos, self.start_len = eos, start_len

    def __call__(self, input_ids, scores):
        step = input_ids.shape[1] - self.start_len + 1  # new tokens after this one
        at_end = (self.budgets == step).to(scores.device)
        before = (self.budgets > step).to(scores.device)
        scores[before, self.eos] = -float("inf")
        forced = torch.full_like(scores[0], -float("inf"))
        forced[self.eos] = 0.0
        scores[at_end] = forced
        return scores


def direct(tr, texts: list[str], beams: int, budget: int, *, cut: list[int] | None = None,
           per_row: list[int] | None = None) -> list[str]:
    """Methods (a), (b), (d)-(f) by hand: one ``generate`` call of ``budget``
    new tokens; ``cut``: each row cut to its own budget afterwards;
    ``per_row``: each row stopped at its own budget inside generation."""
    from transformers import LogitsProcessorList

    tok = tr.tokenizer
    tok.src_lang = SRC
    enc = tok(texts, return_tensors="pt", padding=True, truncation=False).to(tr._device)
    extra = {}
    if per_row is not None:
        extra["logits_processor"] = LogitsProcessorList(
            [_StopEachRow(per_row, beams, tok.eos_token_id, 1)])
        budget = max(per_row) + 1  # the EOS step
    else:
        extra["min_new_tokens"] = budget
    with torch.inference_mode():
        out = tr._model.generate(
            **enc, forced_bos_token_id=tok.convert_tokens_to_ids(TGT), max_new_tokens=budget,
            num_beams=beams, do_sample=False, **extra,
        )
    rows = out.tolist()
    if cut is not None:
        rows = [row[: 1 + b] for row, b in zip(rows, cut)]
    return tok.batch_decode(rows, skip_special_tokens=True)


def exact_budget(n: int, cap: int) -> int:
    """The old rule, before length buckets."""
    return min(cap, math.ceil(2.0 * n) + 16)


def timed(tr, plan: list[list], texts: list[str], beams: int, mode: str) -> float:
    """Translate ``plan`` (batches of chunk positions) one way; seconds."""
    cap = tr.describe().max_output_tokens
    params = JobParams(model=tr.model_id, src_lang=SRC, tgt_lang=TGT, fmt="text", output="/x")
    start = time.perf_counter()
    for batch in plan:
        group = [texts[i] for i in batch]
        n = tr.count_tokens(group)
        if mode == "bucket":
            direct(tr, group, beams, params.output_budget(max(n), cap))
        elif mode == "cut":
            direct(tr, group, beams, exact_budget(max(n), cap),
                   cut=[exact_budget(x, cap) for x in n])
        else:
            direct(tr, group, beams, 0, per_row=[exact_budget(x, cap) for x in n])
    return time.perf_counter() - start


class _Pos:
    def __init__(self, idx: int, n_tokens: int):
        self.idx, self.n_tokens = idx, n_tokens


def plans(tr, texts: list[str], counts: list[int], budget_tokens: int) -> dict[str, list]:
    """Batches of positions into ``texts``: the old plan (any lengths
    together) and the pipeline's (one output budget per batch)."""
    cap = tr.describe().max_output_tokens
    params = JobParams(model=tr.model_id, src_lang=SRC, tgt_lang=TGT, fmt="text", output="/x")
    chunks = [_Pos(i, n) for i, n in enumerate(counts)]
    old = plan_batches(chunks, budget_tokens, 256)
    new = plan_batches(chunks, budget_tokens, 256, lambda n: params.output_budget(n, cap))
    return {"old": [[c.idx for c in b] for b in old], "new": [[c.idx for c in b] for b in new]}


def run_pipeline(tr, work: Path, args, beams: int, round_: int) -> tuple[float, float, Path]:
    """Method (c): ``nllb-pipeline translate`` in-process, with ``tr`` as its model."""
    doc = work / "doc.txt"
    db, output = work / f"jobs{beams}-{round_}.db", work / f"out{beams}-{round_}.txt"
    doc.write_text(generate_text(args.sentences, seed=args.seed), encoding="utf-8")
    inside, real, built = [0.0], tr.translate_batch, []

    def translate_batch(*a, **kw):
        start = time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            inside[0] += time.perf_counter() - start

    tr.translate_batch = translate_batch

    def factory(model, settings=RunSettings(), **kw):  # what cli constructs
        assert resolve_model(model) == tr.model_id, model
        assert (settings.device, settings.dtype) == (tr.settings.device, tr.settings.dtype)
        built.append(model)
        return tr

    argv = ["--db", str(db), "translate", str(doc), "--src", SRC, "--tgt", TGT,
            "-o", str(output), "--model", tr.model_id, "--format", "text",
            "--device", args.device, "--dtype", args.dtype, "--beams", str(beams),
            "--quality", args.quality,
            # The baselines are transformers loops: the pipeline runs on the
            # same backend (auto would take CTranslate2 where it converts).
            "--backend", "hf"]  # no --json: it turns the bar off
    if args.batch_tokens:  # 0: the backend's default, which the CLI refuses as a value
        argv += ["--batch-tokens", str(args.batch_tokens)]
    stdout, stderr, cls = io.StringIO(), io.StringIO(), hf.HfTranslator
    hf.HfTranslator = factory  # the CLI imports it from models.hf at call time
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            start = time.perf_counter()
            rc = cli.main(argv)  # the progress bar renders into `stderr`
            wall = time.perf_counter() - start
    finally:
        hf.HfTranslator = cls
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
    tr = hf.HfTranslator(resolve_model(model_dir), settings, fixed_length=True)
    tr.load()
    model = tr._model
    counter = GenerateCounter(model)
    for _ in range(2):  # warm-up: first-call allocations, kernel selection
        direct(tr, ["A short warm-up sentence.", "Another one, a little bit longer."], 1, 20)
    counter.reset()
    cfg, described = model.config, tr.describe()
    budget_tokens = args.batch_tokens or described.default_batch_tokens
    info = {
        "device": described.device, "dtype": described.compute_type, "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "gpu": torch.cuda.get_device_name(tr._device) if tr._device.type == "cuda" else None,
        "model": args.model or f"tiny d_model={args.d_model} layers={args.layers}",
        "d_model": cfg.d_model, "layers": f"{cfg.encoder_layers}+{cfg.decoder_layers}",
        "parameters_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "batch_tokens": budget_tokens,
    }
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    results = {"machine": info, "sentences": args.sentences, "beams": {}}
    for beams in args.beams:
        results["beams"][beams] = bench_beams(tr, counter, work, args, beams, budget_tokens)
    if args.json:
        print(json.dumps(results))
    return 0


def bench_beams(tr, counter, work: Path, args, beams: int, budget_tokens: int) -> dict:
    k, rounds = args.fixed_batch, []  # each round: (c) on a fresh store, then the others
    print(f"\n== beams {beams} ==", flush=True)
    for i in range(args.repeat):
        wall_c, inside_c, db = run_pipeline(tr, work, args, beams, i)
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
            counts = [c.n_tokens for c in chunks]
            tokens = sum(counts)
            assert tr.count_tokens(texts) == counts
            plan = plans(tr, texts, counts, budget_tokens)
            print(f"document: {args.sentences} sentences -> {len(chunks)} chunks, {tokens} "
                  f"source tokens; batches: pipeline {n_batches_c}, old plan "
                  f"{len(plan['old'])}, bucketed plan {len(plan['new'])}", flush=True)
        r = {"c": wall_c, "c_inside": inside_c}
        work_ = {"c": work_c}
        for name, batches, mode in (
                ("a", [[j] for j in range(len(texts))], "bucket"),
                ("b", [list(range(j, min(j + k, len(texts)))) for j in range(0, len(texts), k)],
                 "bucket"),
                ("d", plan["old"], "cut"), ("e", plan["old"], "per_row"),
                ("f", plan["new"], "bucket")):
            if name == "e":
                r[name] = timed(tr, batches, texts, beams, mode)  # not fixed-length: no counter
                counter.reset()
                work_[name] = {"generate_calls": len(batches), "decoder_steps": None,
                               "padded_output_tokens": None}
                continue
            r[name] = timed(tr, batches, texts, beams, mode)
            work_[name] = counter.reset()
        rounds.append(r)
        print(f"round {i + 1}/{args.repeat}: " + ", ".join(
            f"({m}) {r[m]:.2f} s" for m in "abcdef") + f" (load {os.getloadavg()[0]:.2f})",
            flush=True)
    best = {m: min(r[m] for r in rounds) for m in "abdef"}
    wall_c, inside_c = min((r["c"], r["c_inside"]) for r in rounds)
    best["c"] = wall_c
    names = {"a": "(a) naive", "b": f"(b) fixed{k}", "c": "(c) pipeline", "d": "(d) cut",
             "e": "(e) per-row", "f": "(f) buckets"}
    tps = {m: tokens / best[m] for m in best}
    print(f"\n{'method':<14}{'seconds':>9}{'src tok/s':>11}{'vs (a)':>8}"
          f"{'generate calls':>16}{'padded out tok':>16}")
    for m in "abcdef":
        w = work_[m]
        padded = w["padded_output_tokens"]
        print(f"{names[m]:<14}{best[m]:9.2f}{tps[m]:11.1f}{tps[m] / tps['a']:7.2f}x"
              f"{w['generate_calls']:16d}{padded if padded is not None else '-':>16}")
    overhead = 100.0 * (wall_c - inside_c) / wall_c
    print("\npipeline stages, round 1 (s): " + ", ".join(f"{s} {w}" for s, w in stages.items()))
    print(f"pipeline: {wall_c:.2f} s wall, {inside_c:.2f} s inside translate_batch")
    print(f"pipeline/naive = {best['a'] / wall_c:.2f}x (target >= 5x)")
    print(f"pipeline/fixed{k} = {best['b'] / wall_c:.2f}x (target >= 1.3x)")
    print(f"overhead = {overhead:.2f}% (target < 5%)")
    print(f"cost of batch independence: buckets/cut = {tps['f'] / tps['d']:.2f}x, "
          f"per-row/cut = {tps['e'] / tps['d']:.2f}x the old (batch-dependent) throughput")
    return {"chunks": len(chunks), "source_tokens": tokens, "pipeline_batches": n_batches_c,
            "stages_s": stages, "rounds": rounds,
            "methods": {names[m]: {"seconds": round(best[m], 4), "tok_per_s": round(tps[m], 2),
                                   **work_[m]} for m in "abcdef"},
            "pipeline_over_naive": round(best["a"] / wall_c, 3),
            "pipeline_over_fixed": round(best["b"] / wall_c, 3),
            "translate_batch_s": round(inside_c, 4), "overhead_pct": round(overhead, 3),
            "buckets_over_cut": round(tps["f"] / tps["d"], 3),
            "per_row_over_cut": round(tps["e"] / tps["d"], 3)}


if __name__ == "__main__":
    sys.exit(main())
