#!/usr/bin/env python3
"""Peak memory of each stage against the size of the document.

    python benchmarks/peak_memory.py [--sizes 10000,100000,1000000] [--format lines]
                                     [--model DIR | --tiny] [--no-inference] [--json]

--format parquet writes the corpus as a Parquet file instead (an id column
and the sentences in a "text" column, row groups of --row-group rows,
100,000 by default; pandas and pyarrow write up to 1,048,576) and translates
its "text" column (issue 21: a million rows within the same bound).

For each size a corpus of that many unique lines is generated, submitted,
and run one stage per process: each process runs the job until a stage
finishes, then gives it back to the queue (the worker's SIGTERM path) and
reports its own peak RSS (VmHWM). A stage's figure is therefore its
own, never masked by an earlier stage's peak, and each includes the
interpreter and the imports (the "baseline" row: a process that imports
and opens the store, and stops before the first stage).

The translator is the tests' fake (upper-cases, no model) unless --model
names a checkpoint or --tiny builds the tiny random-weight one (its
processes then hold torch and the model, and count tokens with its real
tokenizer). --no-inference does not run inference: its translations are
written straight into the store (each chunk's source), so the other stages
can be measured on a real model at a million lines without waiting for it. Prints, per stage,
the peak at each size and the growth per line between the smallest and the largest size
in KB (the target of issue 18: at most 1.2 GB at 1,000,000 lines, and at
most 0.3 KB per line between 10,000 and 1,000,000).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = ("preprocess", "inference", "postprocess", "upload")
_WORDS = ("river stone light morning table garden letter window city music paper "
          "road winter story bread field horse voice ocean mountain friend dream").split()


def write_corpus(path: Path, lines: int, *, seed: int = 0) -> None:
    """``lines`` unique sentences, one per line; unique by a spelled-out
    counter, so no chunk is a repeat of another."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for n in range(lines):
            words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 14))]
            f.write(f"Sentence {_spelled(n)} says the {' '.join(words)}.\n")


def write_parquet_corpus(path: Path, rows: int, *, seed: int = 0,
                         group: int = 100_000) -> None:
    """The same sentences as ``write_corpus``, as a Parquet table of rows
    (id, text), written a row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    schema = pa.schema([("id", pa.int64()), ("text", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, group):
            ids = list(range(start, min(rows, start + group)))
            texts = [f"Sentence {_spelled(n)} says the "
                     f"{' '.join(rng.choice(_WORDS) for _ in range(rng.randint(5, 14)))}."
                     for n in ids]
            writer.write_table(pa.table({"id": ids, "text": texts}, schema=schema))


def _spelled(n: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        out += letters[n % 26]
        n //= 26
        if not n:
            return out


def peak_rss_mb() -> float:
    """This process's peak resident set. VmHWM rather than ``ru_maxrss``:
    a child's ``ru_maxrss`` starts at its parent's peak (it survives fork
    and exec), and the parent here held the whole corpus once."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _translator(model: str | None):
    if model:
        from models import HfTranslator

        return HfTranslator(model)
    from tests.fakes import FakeTranslator

    return FakeTranslator()


def run_one_stage(db: str, job_id: str, model: str | None, *, infer: bool = True) -> dict:
    """Run the job's next stage in this process; its name, peak RSS and wall time."""
    from pipeline.config import RunSettings
    from pipeline.progress import Events
    from pipeline.runner import run_job
    from pipeline.store import Store

    store = Store(db)
    stage = store.job(job_id).stage
    translator = _translator(model)
    if stage == "inference" and not infer:
        started = time.perf_counter()
        with store.transaction():
            store.db.execute("UPDATE chunks SET state = 'done', translation = source "
                             "WHERE job_id = ? AND state IN ('pending', 'waiting')", (job_id,))
            store.db.execute("UPDATE jobs SET stage = 'postprocess' WHERE id = ?", (job_id,))
        return {"stage": "inference (skipped)", "peak_mb": peak_rss_mb(),
                "wall_s": time.perf_counter() - started}
    shutdown = threading.Event()

    class StopAfterTheStage(Events):
        def stage_finished(self, name: str) -> None:
            shutdown.set()

    started = time.perf_counter()
    run_job(store, job_id, translator, events=StopAfterTheStage(), shutdown=shutdown,
            settings=RunSettings(batch_tokens=8192, max_batch_size=1024))
    return {"stage": stage, "peak_mb": peak_rss_mb(),
            "wall_s": time.perf_counter() - started}


def measure(size: int, fmt: str, model: str | None, workdir: Path, *,
            infer: bool = True, row_group: int = 100_000) -> list[dict]:
    from pipeline.config import JobParams
    from pipeline.documents.inputs import read_input
    from pipeline.jobs import submit
    from pipeline.store import Store

    parquet = fmt == "parquet"
    src = workdir / f"corpus-{size}.{'parquet' if parquet else 'txt'}"
    if parquet:
        write_parquet_corpus(src, size, group=row_group)
    else:
        write_corpus(src, size)
    db = workdir / f"jobs-{size}.db"
    params = JobParams(model=model or "fake", src_lang="eng_Latn", tgt_lang="fra_Latn",
                       fmt=fmt, output=str(workdir / f"corpus-{size}.out.{src.suffix[1:]}"),
                       beams=1, quality="off", columns="text" if parquet else "")
    # Submitting reads the input in this process; it is not a stage.
    job, _ = submit(Store(db), params, read_input(src))
    rows = []
    baseline = _child(db, job.id, model, baseline=True)
    rows.append({**baseline, "stage": "baseline"})
    for _ in STAGES:
        rows.append(_child(db, job.id, model, infer=infer))
    state = Store(db).job(job.id)
    if state.state != "SUCCEEDED":
        raise SystemExit(f"job {job.id} ended {state.state}: {state.error_message}")
    return rows


def _child(db: Path, job_id: str, model: str | None, *, baseline: bool = False,
           infer: bool = True) -> dict:
    args = [sys.executable, __file__, "--child", str(db), job_id]
    if model:
        args += ["--model", model]
    if baseline:
        args.append("--baseline")
    if not infer:
        args.append("--no-inference")
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"stage process failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--format", default="lines")
    parser.add_argument("--model")
    parser.add_argument("--tiny", action="store_true", help="build and use the tiny model")
    parser.add_argument("--no-inference", action="store_true")
    parser.add_argument("--row-group", type=int, default=100_000,
                        help="--format parquet: rows per row group of the corpus")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        db, job_id = args.child
        if args.baseline:
            from pipeline.store import Store

            Store(db).job(job_id)
            _translator(args.model)
            print(json.dumps({"stage": "baseline", "peak_mb": peak_rss_mb(), "wall_s": 0.0}))
            return 0
        print(json.dumps(run_one_stage(db, job_id, args.model, infer=not args.no_inference)))
        return 0
    sizes = sorted(int(s) for s in args.sizes.split(","))
    table: dict[int, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if args.tiny:
            from models import build_tiny_model

            model = str(build_tiny_model(Path(tmp) / "tiny"))
        for size in sizes:
            table[size] = measure(size, args.format, model, Path(tmp),
                                  infer=not args.no_inference, row_group=args.row_group)
            if not args.json:
                print(f"{size:>9} lines: " + "  ".join(
                    f"{r['stage']} {r['peak_mb']:.0f} MB/{r['wall_s']:.0f} s"
                    for r in table[size]), flush=True)
    growth = {}
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        for k, row in enumerate(table[hi]):
            growth[row["stage"]] = (row["peak_mb"] - table[lo][k]["peak_mb"]) * 1024 / (hi - lo)
    if args.json:
        print(json.dumps({"sizes": table, "kb_per_line": growth}))
        return 0
    if growth:
        print(f"growth per line between {sizes[0]} and {sizes[-1]} lines (KB): " + "  ".join(
            f"{stage} {kb:.3f}" for stage, kb in growth.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
