#!/usr/bin/env python3
"""The queue: submit rate, status latency with a full queue, one worker vs two.

    python benchmarks/job_queue.py [--documents 2000] [--worker-documents 60] [--model DIR]

1. Submits ``--documents`` small generated files in one ``submit`` command
   (in-process, no model loaded) and reports jobs per second.
2. Times ``status`` on that database (its default listing of 50 plus the
   queue summary), best of 5.
3. Runs ``--worker-documents`` of them with one worker process, then a fresh
   queue of the same documents with two worker processes (each with one
   torch thread, as a 2-core machine fits two), and reports documents per
   second for each, wall time including the workers' start-up.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.cli import main as cli  # noqa: E402
from pipeline.samples import generate_text  # noqa: E402

PARAMS = ["--src", "eng_Latn", "--tgt", "fra_Latn", "--beams", "1"]


def quiet(*argv: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli(list(argv))


def make_docs(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"doc{i:05d}.txt").write_text(generate_text(3, seed=i))


def run_workers(db: Path, count: int) -> float:
    env = dict(os.environ, NLLB_PIPELINE_DB=str(db), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "pipeline", "worker", "--idle-exit", "1",
                               "--threads", "1"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(count)]
    for p in procs:
        p.wait()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--worker-documents", type=int, default=60)
    parser.add_argument("--model", help="checkpoint directory (default: a tiny model)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.model:
            model = args.model
        else:
            from models.tiny import build_tiny_model

            model = str(build_tiny_model(tmp / "tiny"))
        docs = tmp / "docs"
        make_docs(docs, args.documents)
        db = tmp / "queue.db"
        start = time.perf_counter()
        quiet("--db", str(db), "submit", str(docs), *PARAMS, "--model", model)
        submit_s = time.perf_counter() - start
        status = []
        for _ in range(5):
            t = time.perf_counter()
            quiet("--db", str(db), "status")
            status.append(time.perf_counter() - t)
        print(f"submit: {args.documents} documents in {submit_s:.2f} s = "
              f"{args.documents / submit_s:.0f} jobs/s")
        print(f"status with {args.documents} queued jobs: best {min(status) * 1000:.1f} ms "
              f"of 5 (in-process)")

        rates = {}
        for workers in (1, 2):
            subset = tmp / f"subset{workers}"
            make_docs(subset, args.worker_documents)
            wdb = tmp / f"workers{workers}.db"
            quiet("--db", str(wdb), "submit", str(subset), *PARAMS, "--model", model)
            seconds = run_workers(wdb, workers)
            rates[workers] = args.worker_documents / seconds
            print(f"{workers} worker(s): {args.worker_documents} documents in {seconds:.1f} s "
                  f"= {rates[workers]:.2f} documents/s")
        print(f"two workers / one = {rates[2] / rates[1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
