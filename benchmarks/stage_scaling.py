#!/usr/bin/env python3
"""How each stage's cost grows with document size.

    python benchmarks/stage_scaling.py [--sizes 100,400,1600] [--model DIR] [--threads 1]

Runs one job per size through the whole pipeline (tiny model unless --model),
with the model loaded before the first timed job, and prints per-stage wall
time, share and rate, then each stage's growth exponent between the smallest
and largest size (the slope in log-log: 1.0 is linear, 2.0 quadratic).
Linear is the goal; an exponent clearly above 1 is a stage that will hurt on
a whole book.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import HfTranslator, build_tiny_model  # noqa: E402
from pipeline.progress.bench import bench_sizes, format_table, growth_exponents  # noqa: E402
from pipeline.config import RunSettings  # noqa: E402
from pipeline.store import Store  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,400,1600")
    parser.add_argument("--model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.sizes.split(","))
    settings = RunSettings(threads=args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(build_tiny_model(Path(tmp) / "tiny"))
        rows = bench_sizes(Store(Path(tmp) / "jobs.db"),
                           lambda params: HfTranslator(model, settings), model, sizes,
                           settings=settings, workdir=Path(tmp))
    growth = growth_exponents(rows)
    if args.json:
        print(json.dumps({"rows": rows, "growth_exponents": growth}))
        return 0
    print(format_table(rows))
    print("growth exponent (1.0 = linear): " + ", ".join(
        f"{s} {g:.2f}" if g is not None else f"{s} n/a" for s, g in growth.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
