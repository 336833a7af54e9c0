#!/usr/bin/env python3
"""Throughput of the two backends, raw and inside the pipeline.

    python benchmarks/backends.py                          # tiny, mid and 600m, CPU
    python benchmarks/backends.py --models 600m --sentences 36
    python benchmarks/backends.py --device cuda --json
    python benchmarks/backends.py --models tiny --sentences 8   # the smoke test's

One generated document of mixed sentence lengths (``pipeline.samples``:
mostly short, some long, a few very long), the same model, the pipeline's
default output-length rule, beam width (4) and ``--quality`` (repair), one
thread each, one run:

  (a) raw:       CTranslate2's own ``Translator.translate_batch`` on the
                 pipeline's own committed batches (read back from (b)'s
                 database, ``benchmarks/_replay.py``), each with its ladder
                 rung's decoding; only the ``translate_batch`` calls timed
                 (no tokenizing, no store, nothing else);
  (b) ct2:       the pipeline (``run_job``: preprocess, the store's
                 transactions, inference, postprocess, upload) with the
                 CTranslate2 backend at its CPU default, int8 (int8_float16
                 on CUDA);
  (c) hf32:      the pipeline with the transformers backend in float32;
  (d) hf-bf16:   the same in bfloat16, where the CPU has bf16 instructions
                 (always on CUDA).

The figure is generated target tokens per second (the job's whole run for
(b)-(d), model loaded and warmed up beforehand), of CPU time (this
process's, every thread) and of wall time. With one thread per backend the
CPU figure is the work itself; on a shared machine other processes' load
stretches the wall time and not the CPU time, so the ratios are taken from
CPU time. The 1-minute load average before each method is printed too. Random
weights never emit EOS, so every translation runs to exactly its budget
(``min = max``: a real model's worst case).

What is generated depends on the repair ladder: on random weights nearly
every output loops, so most chunks are decoded again with a guard, split,
and their pieces decoded again. Each pipeline run's tokens are therefore
counted from its own committed batches (each row runs to its budget), not
from the document's chunks: pieces the ladder copies rather than translates
(punctuation between clauses) are chunks no batch decodes, and the
transformers runs may climb the ladder for other chunks than CTranslate2's
(their arithmetic differs). (a) replays (b)'s batches, so it must generate
exactly (b)'s tokens and the same translations: both checked.
``--quality off`` measures the decoding alone, one batch per sentence set.

Models, all with the tiny model's tokenizer (no weights can be downloaded):

  tiny   the test model: d_model 64, 2+2 layers, its ~2,200-token vocabulary;
  mid    d_model 512, 6+6 layers, 8 heads, ffn 2048;
  600m   NLLB-200-distilled-600M's architecture: d_model 1024, 12+12 layers,
         16 heads, ffn 4096.

mid and 600m get NLLB's real vocabulary size (256,206 rows of embedding and
output projection; the output projection is most of a decoding step's cost
in the 600M model) and the real init (std 0.02) so deep random activations
stay finite. Their tokenizer only produces ids below ~2,200, so the source
side's embedding lookup is cheaper than with the real tokenizer's mix of
ids: nothing a benchmark of speed would notice. Models are built once into
``$XDG_CACHE_HOME/nllb-pipeline/bench-models`` (600m: 2.4 GB).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.ct2 import Ct2Translator  # noqa: E402
from models.hf import HfTranslator  # noqa: E402
from models.tiny import build_tiny_model, is_tiny_model  # noqa: E402
from pipeline.config import JobParams, RunSettings, cache_dir  # noqa: E402
from pipeline.documents.inputs import read_input  # noqa: E402
from pipeline.jobs import submit  # noqa: E402
from pipeline.runner import run_job  # noqa: E402
from pipeline.samples import generate_text  # noqa: E402
from pipeline.store import Store  # noqa: E402

from benchmarks._replay import committed_calls, replay  # noqa: E402

SRC, TGT = "eng_Latn", "fra_Latn"
logging.getLogger("nllb_pipeline").setLevel(logging.ERROR)  # "chunks came back empty": noise
NLLB_VOCAB = 256206
SHAPES = {
    "tiny": {},
    "mid": {"d_model": 512, "layers": 6, "heads": 8, "ffn_dim": 2048,
            "model_vocab_size": NLLB_VOCAB, "init_std": 0.02},
    "600m": {"d_model": 1024, "layers": 12, "heads": 16, "ffn_dim": 4096,
             "model_vocab_size": NLLB_VOCAB, "init_std": 0.02},
}
SENTENCES = {"tiny": 300, "mid": 100, "600m": 36}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="tiny,mid,600m", help="of tiny, mid, 600m (default all)")
    p.add_argument("--sentences", type=int, default=0,
                   help="sentences per document (default: tiny 300, mid 100, 600m 36)")
    p.add_argument("--beams", type=int, default=4, help="beam width (default 4, the pipeline's)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--threads", type=int, default=1, help="threads per backend (default 1)")
    p.add_argument("--quality", choices=("repair", "flag", "off"), default="repair",
                   help="the pipeline's --quality (default repair, as the CLI's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = p.parse_args(argv)
    args.models = args.models.split(",")
    if set(args.models) - set(SHAPES):
        p.error(f"--models takes some of {', '.join(SHAPES)}")
    return args


def model_dir(name: str) -> Path:
    directory = cache_dir() / "bench-models" / name
    if not is_tiny_model(directory):
        print(f"building the {name} model in {directory} ...", file=sys.stderr, flush=True)
        build_tiny_model(directory, **SHAPES[name])
    return directory


def pipeline_run(translator, model: Path, text: str, args, work: Path, name: str):
    """(b)-(d): one whole job; (CPU s, wall s), and the calls it committed."""
    src = work / f"{name}.txt"
    src.write_text(text)
    params = JobParams(model=str(model), src_lang=SRC, tgt_lang=TGT, fmt="text",
                       output=str(work / f"{name}.out.txt"), beams=args.beams,
                       quality=args.quality)
    store = Store(work / f"{name}.db")
    job, _ = submit(store, params, read_input(src))
    started, cpu = time.perf_counter(), time.process_time()
    final = run_job(store, job.id, translator, settings=translator.settings)
    seconds = (time.process_time() - cpu, time.perf_counter() - started)
    assert final.state == "SUCCEEDED", final
    store.close()
    cap = translator.describe().max_output_tokens
    return seconds, list(committed_calls(work / f"{name}.db", job.id, cap, fixed_length=True))


def raw_ct2(translator: Ct2Translator, calls: list) -> tuple:
    """(a): CTranslate2 alone on (b)'s calls; (CPU s, wall s) inside
    ``translate_batch``, and the replay's counts."""
    done = replay(translator._load(), translator.checkpoint.tokenizer, calls, SRC, TGT)
    return (done.engine_cpu_s, done.engine_wall_s), done


def warm(translator) -> None:
    from pipeline.translator import Decoding

    translator.load()
    translator.translate_batch(["A short warm-up sentence."], SRC, TGT,
                               Decoding(beams=2, max_new_tokens=8))


def bf16_on(device: str) -> bool:
    import torch

    return device.startswith("cuda") or torch.cpu._is_avx512_bf16_supported()


def bench_model(name: str, args) -> dict:
    model = model_dir(name)
    text = generate_text(args.sentences or SENTENCES[name], seed=args.seed)
    settings = RunSettings(device=args.device, threads=args.threads)
    figures: dict = {"model": name, "sentences": args.sentences or SENTENCES[name],
                     "quality": args.quality}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ct2 = Ct2Translator(str(model), settings, fixed_length=True)
        warm(ct2)  # the conversion, if any, happens here, outside the timing
        load_b = os.getloadavg()[0]
        seconds_b, calls = pipeline_run(ct2, model, text, args, work, "b")
        tokens = sum(c.planned_tokens for c in calls)
        load_a = os.getloadavg()[0]
        seconds_a, done = raw_ct2(ct2, calls)
        # The replay ran (b)'s work: every row to its budget, the same outputs.
        assert done.generated == tokens, (done.generated, tokens)
        assert done.differing == 0, f"{done.differing} of {done.compared} translations differ"
        figures["tokens"] = {"a_raw_ct2": tokens, "b_pipeline_ct2": tokens}
        figures["batches"] = len(calls)
        figures["ct2_compute_type"] = ct2.compute_type
        figures["a_raw_ct2"] = seconds_a
        figures["b_pipeline_ct2"] = seconds_b
        figures["load"] = {"b_pipeline_ct2": load_b, "a_raw_ct2": load_a}
        del ct2
        for key, dtype in (("c_pipeline_hf_float32", "float32"),
                           ("d_pipeline_hf_bfloat16", "bfloat16")):
            if dtype == "bfloat16" and not bf16_on(args.device):
                figures[key] = None
                continue
            hf = HfTranslator(str(model), RunSettings(device=args.device, dtype=dtype,
                                                      threads=args.threads), fixed_length=True)
            warm(hf)
            figures["load"][key] = os.getloadavg()[0]
            figures[key], calls = pipeline_run(hf, model, text, args, work, key)
            figures["tokens"][key] = sum(c.planned_tokens for c in calls)
            del hf
    return figures


def report(f: dict) -> None:
    keys = [k for k in f if k[:2] in ("a_", "b_", "c_", "d_")]
    cpu = {k: f["tokens"][k] / f[k][0] for k in keys if f[k]}
    wall = {k: f["tokens"][k] / f[k][1] for k in keys if f[k]}
    print(f"\n{f['model']}: {f['sentences']} sentences, --quality {f['quality']}; CTranslate2: "
          f"{f['batches']} batches, {f['tokens']['b_pipeline_ct2']} tokens generated")
    labels = {"a_raw_ct2": f"(a) raw CTranslate2 ({f['ct2_compute_type']})",
              "b_pipeline_ct2": f"(b) pipeline, CTranslate2 {f['ct2_compute_type']}",
              "c_pipeline_hf_float32": "(c) pipeline, transformers float32",
              "d_pipeline_hf_bfloat16": "(d) pipeline, transformers bfloat16"}
    print(f"  {'':<40} {'tokens':>7} {'CPU s':>8} {'tokens/s':>9}  {'wall s':>8} "
          f"{'tokens/s':>9}  load")
    for key, label in labels.items():
        if f.get(key):
            print(f"  {label:<40} {f['tokens'][key]:7d} {f[key][0]:8.2f} {cpu[key]:9.1f}  "
                  f"{f[key][1]:8.2f} {wall[key]:9.1f}  {f['load'][key]:.1f}")
        else:
            print(f"  {label:<40}  (no bf16 on this CPU)")
    ratios = {}
    for name, rates in (("cpu", cpu), ("wall", wall)):
        b = rates["b_pipeline_ct2"]
        ratios[name] = {"(b)/(a)": b / rates["a_raw_ct2"],
                        "(b)/(c)": b / rates["c_pipeline_hf_float32"]}
        if f.get("d_pipeline_hf_bfloat16"):
            ratios[name]["(b)/(d)"] = b / rates["d_pipeline_hf_bfloat16"]
        print(f"  by {name + ' time:':<11}" + "   ".join(
            f"{k} = {v:.2f}" for k, v in ratios[name].items()))
    f["ratios"] = ratios


def main(argv=None) -> int:
    args = parse_args(argv)
    import ctranslate2

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{args.threads} thread(s) per backend, device {args.device}, beams {args.beams}, "
          f"ctranslate2 {ctranslate2.__version__}")
    if args.device == "cpu" and not ctranslate2.get_cuda_device_count():
        print("no CUDA device on this machine: CPU figures only")
    results = []
    for name in args.models:
        figures = bench_model(name, args)
        report(figures)
        results.append(figures)
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
