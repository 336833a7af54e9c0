#!/usr/bin/env python3
"""What SQLite's ``synchronous`` setting costs the inference loop.

    python benchmarks/durability.py [--lines 20000] [--repeats 3]

The store runs in WAL mode with ``synchronous=NORMAL`` (``pipeline.store.base``):
a commit is written to the WAL but not fsynced; the WAL is fsynced when it is
checkpointed. ``FULL`` fsyncs the WAL at every commit. This runs the same
job (a ``--format lines`` corpus of unique lines, an instant translator whose
output the quality guards accept, ``benchmarks/_instant.py``, the default batch budget) under each
setting, in fresh databases in this machine's temporary folder, and prints
the inference stage's time per committed batch under each and their ratio:
what FULL would cost a GPU whose batches take tens of milliseconds.

A process killed at any instant loses nothing committed under either
setting (the WAL is in the operating system's cache; ``tests/test_resume.py``
and ``tests/test_kill_every_batch.py`` kill real processes). Only a power
loss or a kernel crash differs: under NORMAL it can take back the last
transactions since the last checkpoint (SQLite's default checkpoint is at
1,000 pages of WAL), which a resumed job translates again; the store is
never corrupt under either.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._instant import run_lines_job  # noqa: E402
from pipeline.store import Store  # noqa: E402


def corpus(path: Path, lines: int) -> None:
    words = ("the", "river", "keeps", "its", "promise", "every", "morning", "and", "night")
    path.write_text("".join(
        " ".join(words[(i * 7 + k) % len(words)] for k in range(4 + i % 9)) + f" {i}\n"
        for i in range(lines)))


def run_once(folder: Path, lines: int, synchronous: str) -> tuple[float, int]:
    """(inference seconds, committed batches) of one job."""
    src = folder / "corpus.txt"
    if not src.exists():
        corpus(src, lines)
    db = folder / f"{synchronous}-{time.monotonic_ns()}.db"
    store = Store(db)
    store.db.execute(f"PRAGMA synchronous={synchronous}")
    job_id, batches = run_lines_job(store, src, folder / "out.txt")
    seconds = sum(r.wall_s for r in store.stage_runs(job_id) if r.stage == "inference")
    store.close()
    return seconds, batches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"NORMAL": [], "FULL": []}
    with tempfile.TemporaryDirectory(dir=tempfile.gettempdir()) as tmp:
        for _ in range(args.repeats):
            for synchronous in figures:
                seconds, batches = run_once(Path(tmp), args.lines, synchronous)
                figures[synchronous].append(1000 * seconds / batches)
    print(f"{args.lines} lines, {batches} batches, median of {args.repeats} runs")
    normal, full = (statistics.median(figures[s]) for s in ("NORMAL", "FULL"))
    print(f"synchronous=NORMAL (the store's setting): {normal:.2f} ms per batch")
    print(f"synchronous=FULL (an fsync per commit):   {full:.2f} ms per batch")
    print(f"FULL / NORMAL: {full / normal:.2f}x the pipeline's time per batch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
