#!/usr/bin/env python3
"""What injected OOMs cost: the same document with OOM on 0%, 10% and 30% of batches.

    python benchmarks/faults.py [--sentences 300] [--rates 0,0.1,0.3] [--model DIR]

Each run translates the same generated document through the whole pipeline
(store, stages, retries) with ``FaultInjectingTranslator`` raising a real
``torch.OutOfMemoryError`` on the given fraction of multi-sentence calls.
An OOM splits the batch and shrinks the token budget (which regrows 10% per
successful batch), so the cost of a fault is the lost call plus smaller
batches for a while. Prints wall time, the ratio to the fault-free run, the
number of OOMs and batch splits, and checks that every run's output is
byte-identical to the fault-free one.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import HfTranslator, build_tiny_model  # noqa: E402
from models.faults import FaultInjectingTranslator, FaultSpec  # noqa: E402
from pipeline.config import JobParams, RunSettings  # noqa: E402
from pipeline.documents.inputs import read_input  # noqa: E402
from pipeline.jobs import submit  # noqa: E402
from pipeline.runner import run_job  # noqa: E402
from pipeline.samples import generate_text  # noqa: E402
from pipeline.store import Store  # noqa: E402


def one_run(workdir: Path, model: str, src: Path, rate: float, seed: int, settings: RunSettings):
    out = workdir / f"out-{rate}.txt"
    params = JobParams(model=model, src_lang="eng_Latn", tgt_lang="fra_Latn", fmt="text",
                       output=str(out), beams=1)
    store = Store(workdir / f"jobs-{rate}.db")
    job, _ = submit(store, params, read_input(src))
    translator = HfTranslator(model, settings)
    translator.load()  # load time is not what we measure
    faulty = FaultInjectingTranslator(translator, FaultSpec(oom=rate, seed=seed))
    start = time.perf_counter()
    final = run_job(store, job.id, faulty, settings=settings,
                    rng=random.Random(seed))
    seconds = time.perf_counter() - start
    splits = sum(b.state == "split" for b in store.batches(job.id))
    ooms = sum(a.decision == "split" for a in store.attempts(job.id))
    return {"rate": rate, "seconds": seconds, "state": final.state, "ooms": ooms,
            "split_batches": splits, "batches": len(store.batches(job.id)),
            "output": out.read_bytes()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--rates", default="0,0.1,0.3")
    parser.add_argument("--model", help="checkpoint dir or hub id (default: a tiny model)")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--batch-tokens", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: steady timings on a shared machine)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model = args.model or str(build_tiny_model(workdir / "tiny", d_model=args.d_model))
        src = workdir / "doc.txt"
        src.write_text(generate_text(args.sentences, seed=args.seed))
        settings = RunSettings(batch_tokens=args.batch_tokens, threads=args.threads)
        runs = [one_run(workdir, model, src, rate, args.seed, settings) for rate in rates]
    base = runs[0]
    rows = []
    for r in runs:
        rows.append({k: v for k, v in r.items() if k != "output"} | {
            "ratio": r["seconds"] / base["seconds"],
            "identical_output": r["output"] == base["output"],
        })
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{args.sentences} sentences, batch budget {args.batch_tokens} tokens, model {model}")
    print(f"{'OOM rate':>8} {'state':>10} {'seconds':>8} {'ratio':>6} {'OOMs':>5} {'splits':>6} "
          f"{'batches':>7}  identical")
    for r in rows:
        print(f"{r['rate']:>8.0%} {r['state']:>10} {r['seconds']:>8.2f} {r['ratio']:>6.2f} "
              f"{r['ooms']:>5} {r['split_batches']:>6} {r['batches']:>7}  {r['identical_output']}")
    return 0 if all(r["identical_output"] and r["state"] == "SUCCEEDED" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
