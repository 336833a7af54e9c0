#!/usr/bin/env python3
"""The read commands on a store of many jobs, against a raw query.

    python benchmarks/read_commands.py [--jobs 10000] [--repeats 5]

Plants ``--jobs`` jobs (with chunks, stage runs, attempts and ETA
predictions, as ``tests/test_stats.py`` does), then times in process, best
of ``--repeats``:

- ``status --json --limit N`` (every job rendered) against the baseline
  of reading the same rows with ``SELECT * FROM jobs`` and printing them
  as JSON: what the pipeline adds over the data it lists;
- ``stats --json`` (all time and ``--since 7``) and ``profile --json``;
- the per-job cost of ``status`` in microseconds.

It also times ``status --limit 50`` and ``stats`` as the user runs them (a
fresh process: imports included). The suite counts these commands' SQL
statements instead (``tests/test_stats.py``): a shared CI machine's clock
measures its load.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.cli import read  # noqa: E402


def best_of(repeats: int, fn, *args) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            fn(*args)
        best = min(best, time.perf_counter() - start)
    return best


def raw_listing(db: Path) -> None:
    conn = sqlite3.connect(db)
    cursor = conn.execute("SELECT * FROM jobs ORDER BY created_at DESC")
    names = [d[0] for d in cursor.description]
    print(json.dumps([dict(zip(names, row)) for row in cursor]))
    conn.close()


def cli_seconds(db: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline", *args, "--db", str(db)], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import tests.test_stats as planted

    planted.N_JOBS = args.jobs
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "jobs.db"
        planted.plant_many(db)
        print(f"store: {args.jobs} jobs, {args.jobs * 10} chunks")
        raw = best_of(args.repeats, raw_listing, db)
        status = best_of(args.repeats, read.cmd_status,
                         argparse.Namespace(db=str(db), limit=args.jobs, json=True))
        print(f"raw listing (SELECT * + json):      {raw * 1000:8.1f} ms")
        print(f"status --json --limit {args.jobs}:    {status * 1000:8.1f} ms  "
              f"({status / args.jobs * 1e6:.0f} us a job)")
        print(f"status / raw: {status / raw:.2f}x")
        for since in (None, 7.0):
            t = best_of(args.repeats, read.cmd_stats,
                        argparse.Namespace(db=str(db), since=since, json=True))
            print(f"stats --json{'' if since is None else ' --since 7'}: {t * 1000:8.1f} ms  "
                  f"({t / raw:.2f}x the raw listing)")
        t = best_of(args.repeats, read.cmd_profile, argparse.Namespace(db=str(db), json=True))
        print(f"profile --json: {t * 1000:8.1f} ms  ({t / raw:.2f}x the raw listing)")
        for command in (("status",), ("stats",)):
            t = min(cli_seconds(db, *command) for _ in range(max(1, args.repeats // 2)))
            print(f"nllb-pipeline {' '.join(command)} (a fresh process): {t * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
