#!/usr/bin/env python3
"""What one transformers call costs besides the model's arithmetic.

    python benchmarks/hf_call.py                      # CPU per call and per step
    python benchmarks/hf_call.py --ids ids.json       # also write the token ids of a fixed set
    python benchmarks/hf_call.py --profile 1          # cProfile of calls at batch 1, beams 4

The random-weight test model and the trained one, one thread, float32
(``--generate``: through transformers' ``generate()`` instead of the
backend's own loop, ``models/hf_search.py``):
each call's CPU seconds (``time.process_time``, so a loaded machine does
not inflate them) split into the backend's three parts (``encode_batch``,
``run_encoded`` with ``generate()``, ``decode_batch``), at batch 1 and at
the batch sizes a first run of ``benchmarks/memory.py`` makes, beams 1 and 4.
The per-step cost is the difference of two calls forced to run 8 and 40
steps (``fixed_length``), divided by 32; what is left of a call at 8 steps
after 8 such steps is its fixed cost.

``--ids FILE`` writes the generated token ids of a fixed set of sentences
(batches of 1, 7 and 32; beams 1 and 4; float32 and bfloat16; both models),
so a change to the backend can be checked byte for byte against the ids
written before it.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import HfTranslator, build_tiny_model  # noqa: E402
from models.trained import trained_model_dir  # noqa: E402
from pipeline.budget import output_budget  # noqa: E402
from pipeline.config import RunSettings  # noqa: E402
from pipeline.samples import sentence  # noqa: E402
from pipeline.translator import Decoding  # noqa: E402

SRC, TGT = "eng_Latn", "fra_Latn"


def texts_of(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [sentence(rng) for _ in range(n)]


def cpu_of(fn, repeat: int) -> float:
    """The smallest CPU seconds of ``repeat`` runs (the least disturbed one)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def call_parts(tr: HfTranslator, texts: list[str], decoding: Decoding, repeat: int) -> dict:
    encoded = tr.encode_batch(texts, SRC)
    raw = tr.run_encoded(encoded, TGT, decoding)
    return {"encode": cpu_of(lambda: tr.encode_batch(texts, SRC), repeat),
            "generate": cpu_of(lambda: tr.run_encoded(encoded, TGT, decoding), repeat),
            "decode": cpu_of(lambda: tr.decode_batch(raw), repeat)}


def per_step(tr: HfTranslator, texts: list[str], beams: int, repeat: int) -> tuple[float, float]:
    """(CPU per decode step, fixed CPU per call) of calls forced to their budget."""
    tr.fixed_length = True
    try:
        encoded = tr.encode_batch(texts, SRC)
        short, long = (cpu_of(lambda n=n: tr.run_encoded(encoded, TGT, Decoding(beams, n)), repeat)
                       for n in (8, 40))
    finally:
        tr.fixed_length = False
    step = (long - short) / 32
    return step, short - 8 * step


def token_ids(tr: HfTranslator, texts: list[str]) -> dict:
    out = {}
    for size in (1, 7, 32):
        for beams in (1, 4):
            for i in range(0, len(texts), size):
                batch = texts[i:i + size]
                n = max(tr.count_tokens(batch))
                budget = output_budget(n, 1.0, 4, tr.describe().max_output_tokens)
                ids = tr.run_encoded(tr.encode_batch(batch, SRC), TGT, Decoding(beams, budget))
                out[f"b{size}-beams{beams}-{i}"] = ids
    return out


def opened(model: str, dtype: str, args) -> HfTranslator:
    tr = HfTranslator(model, RunSettings(device="cpu", threads=1, dtype=dtype))
    tr.load()
    if args.generate:
        tr._lean = False
    return tr


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5, help="runs per figure; the least is kept")
    p.add_argument("--batches", default="1,16,64", help="batch sizes (default 1,16,64)")
    p.add_argument("--ids", help="write the token ids of a fixed set of inputs to this JSON file")
    p.add_argument("--profile", type=int, metavar="BATCH",
                   help="print a cProfile of 20 calls at this batch size, beams 4, trained model")
    p.add_argument("--sort", default="tottime", help="cProfile sort key (tottime)")
    p.add_argument("--only", choices=("trained", "random"), help="one model only")
    p.add_argument("--generate", action="store_true",
                   help="decode with transformers' generate(), not the backend's own loop "
                        "(models/hf_search.py), to compare the two")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        models = {"trained": str(trained_model_dir()),
                  "random": str(build_tiny_model(Path(tmp) / "tiny"))}
        if args.only:
            models = {args.only: models[args.only]}
        if args.profile:
            tr = opened(models.get("trained", models.get("random")), "float32", args)
            texts = texts_of(args.profile, 1)
            encoded = tr.encode_batch(texts, SRC)
            tr.run_encoded(encoded, TGT, Decoding(4, 16))
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(20):
                tr.decode_batch(tr.run_encoded(tr.encode_batch(texts, SRC), TGT, Decoding(4, 16)))
            prof.disable()
            pstats.Stats(prof).sort_stats(args.sort).print_stats(60)
            return 0
        if args.ids:
            texts = texts_of(40, 3)
            ids = {}
            for name, model in models.items():
                for dtype in ("float32", "bfloat16"):
                    tr = opened(model, dtype, args)
                    ids[f"{name}-{dtype}"] = token_ids(tr, texts)
            Path(args.ids).write_text(json.dumps(ids, sort_keys=True))
            digest = hashlib.sha256(json.dumps(ids, sort_keys=True).encode()).hexdigest()
            print(f"token ids of {sum(len(v) for v in ids.values())} calls -> {args.ids} "
                  f"(sha256 {digest[:16]})")
            return 0

        for name, model in models.items():
            tr = opened(model, "float32", args)
            for beams in (1, 4):
                step, fixed = per_step(tr, texts_of(1, 1), beams, args.repeat)
                print(f"{name:<7} beams {beams}: batch 1: {step * 1000:6.2f} ms CPU per step, "
                      f"{fixed * 1000:6.1f} ms fixed per call (forced 8 and 40 steps)")
                for size in (int(s) for s in args.batches.split(",")):
                    texts = texts_of(size, 2)
                    n = max(tr.count_tokens(texts))
                    decoding = Decoding(beams, output_budget(n, 1.0, 4, 512))
                    parts = call_parts(tr, texts, decoding, args.repeat)
                    print(f"        batch {size:>3}, budget {decoding.max_new_tokens:>3}: "
                          + ", ".join(f"{k} {v * 1000:7.1f}" for k, v in parts.items())
                          + f" ms CPU (total {sum(parts.values()) * 1000:7.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
