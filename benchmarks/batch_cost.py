#!/usr/bin/env python3
"""The pipeline's own CPU per batch, with no engine, at each job size.

    python benchmarks/batch_cost.py [--sizes 5000,50000,500000] [--json]
    python benchmarks/batch_cost.py --sizes 300,600          # smoke

``scale.py`` gives the pipeline's overhead per batch as the difference of
two large figures (the pipeline's inference stage and a raw CTranslate2
loop on the same batches), measured minutes apart: on a shared machine
the load between them moves it more than the code does. This measures the
same cost directly. Each size is a job of unique lines (``scale.py``'s
corpus, ``--format lines``, ``--quality repair``) run in this process by
the real inference loop against ``_instant.InstantTranslator``, which
answers at once with output the guards accept; so the inference stage's
CPU time is all the pipeline's own: planning, tokens, judging, commits,
the memory, progress. The figure per batch at each size is printed beside
the smallest size's, with issue 18's target (at most 1.2x at 500,000
lines). The instant engine counts a token a word, so its batches hold
more lines than a real model's; what matters is that the figure does not
grow with the job.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._instant import run_lines_job  # noqa: E402
from benchmarks.scale import TARGET_GROWTH, stage_seconds, write_corpus  # noqa: E402
from pipeline.store import Store  # noqa: E402


def measure(size: int, work: Path, seed: int) -> dict:
    src = write_corpus(work / f"lines-{size}.txt", size, seed)
    db = work / f"batch-cost-{size}.db"
    store = Store(db)
    try:
        started = time.perf_counter()
        job_id, batches = run_lines_job(store, src, work / f"out-{size}.txt")
        wall, cpu = stage_seconds(db, job_id)
        return {"lines": size, "batches": batches, "job_s": time.perf_counter() - started,
                "inference_s": wall["inference"], "inference_cpu_s": cpu["inference"],
                "cpu_ms": cpu["inference"] / batches * 1000,
                "preprocess_cpu_s": cpu["preprocess"],
                "db_mib": db.stat().st_size / 2**20}
    finally:
        store.close()
        for path in work.glob(f"{db.name}*"):
            path.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,50000,500000",
                        help="lines per job, comma-separated (default 5000,50000,500000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        sizes = sorted(int(s) for s in args.sizes.split(","))
    except ValueError:
        parser.error("--sizes takes comma-separated integers")
    rows = []
    with tempfile.TemporaryDirectory(prefix="nllb-batch-cost-") as tmp:
        for size in sizes:
            rows.append(measure(size, Path(tmp), args.seed))
            row, first = rows[-1], rows[0]
            growth = row["cpu_ms"] / first["cpu_ms"]
            print(f"{size:>9,} lines: {row['batches']:>6,} batches, inference "
                  f"{row['inference_cpu_s']:.1f} CPU s: {row['cpu_ms']:.2f} ms CPU a batch"
                  + (f", {growth:.2f}x the {first['lines']:,}-line figure (target <= "
                     f"{TARGET_GROWTH}x)" if row is not first else "")
                  + f"; database {row['db_mib']:.0f} MiB", flush=True)
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
