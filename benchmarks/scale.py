#!/usr/bin/env python3
"""The pipeline at 5,000 to 1,000,000 lines against a hand-written CTranslate2 loop.

    python benchmarks/scale.py                        # 5,000, 50,000 and 500,000 lines, beams 1,4
    python benchmarks/scale.py --full                 # and 1,000,000
    python benchmarks/scale.py --sizes 5000,50000 --beams 1
    python benchmarks/scale.py --sizes 200 --beams 1  # the smoke test's

For each size, a file of that many unique generated lines (deterministic
from ``--seed``: English words, 5 to 40 per line, most near 16, as real
sentences run), and for each beam width:

1. **pipeline**: the whole job, ``nllb-pipeline translate --format lines
   --backend ctranslate2 --device cpu --threads 1`` at ``--beams`` and
   ``--quality`` (default repair, the CLI's), in a fresh database, as a
   subprocess of its own: its peak RSS is that process's alone
   (``os.wait4``). The stage times are the job's own (``stage_runs``); the
   model is converted beforehand, so no run pays for the conversion.
2. **raw**: the job's committed batches, read back from its database and
   run by hand through ``ctranslate2.Translator.translate_batch`` with the
   same beam width, output budget and ladder-rung decoding as the pipeline
   ran each (``benchmarks/_replay.py``): tokenize, translate, detokenize,
   one thread, the model loaded once beforehand. Its translations must
   equal what the pipeline committed (checked: else the comparison is not
   like for like, and the script exits 1).
3. **reads**: ``nllb-pipeline status`` and ``nllb-pipeline show JOB`` on the
   finished job, each a fresh process as a user runs it (best of 3, the
   interpreter's start included).

Figures: pipeline/raw throughput (raw seconds / pipeline inference-stage
seconds; target >= 0.9 at every size; the whole job's, reading the corpus
and writing the output included, is printed beside it), overhead per batch ((inference s -
raw s) / batches; target at 500,000 lines <= 1.2x the 5,000-line figure:
per-batch cost must not grow with the job; where the smallest size has
none, because the pipeline ran ahead of the raw loop, the target is that the
larger has none either), peak RSS, database size, and
the reads' latency (target < 0.5 s on the 1,000,000-line job). A markdown
table of every run ends the output.

Where the overhead goes: the job stores each batch's model call and how long
the engine waited for the pipeline before it (``batches.call_s``,
``idle_s``). So each run also prints the job's calls against the loop's
calls on the same batches (above 1: the same calls ran slower in the job's
process; the pipeline's bookkeeping is not in them) and the engine's wait
a batch (the pipeline keeping the engine idle: "the engine never waits"
is this near 0).

Wall time on a shared machine moves with the load (the 1-minute load
average is printed with each run), so each figure is also given by CPU
time: the inference stage's CPU seconds (``stage_runs.cpu_s``, every thread
of the process) against the raw loop's. The pipeline's own work counts in
full there even where it overlaps the engine's, so the CPU ratio is a lower
bound of what a quiet machine's wall ratio can be, and the CPU overhead per
batch is the bookkeeping itself, which must not grow with the job.

The model is the trained test model (``models/trained.py``: NLLB's
architecture at the tiny size, trained into an invented language): it ends
its sentences, so the quality ladder fires as rarely as on a real model and
the figures are those of the path users meet. ``--model random`` takes the
tiny model's random weights instead, which never emit EOS: every
translation runs to its budget and loops, and ``--quality repair`` decodes
most lines again with a guard and then in pieces (about 25x the decoding
work). Either way the raw loop replays every batch the pipeline ran,
ladder rungs included, so both sides do the same decoding. On a shared machine the load moves
both; the 1-minute load average is printed with each run.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks._replay import committed_batches, committed_calls, replay  # noqa: E402

SRC, TGT = "eng_Latn", "fra_Latn"
SIZES, FULL = (5_000, 50_000, 500_000), 1_000_000
TARGET_RATIO, TARGET_GROWTH, TARGET_READ_S = 0.9, 1.2, 0.5
SAMPLED_ABOVE = 100_000  # --raw-every's default reach: corpora over this many lines
_WORDS = (
    "the a an of to in and for on with at by from as is was are were be been has have had "
    "will would can could should may might must not no yes this that these those it its they "
    "them their we our you your he she his her who which what when where why how all each "
    "every some many more most other such only own same than too very just also still even "
    "again already always never often sometimes today yesterday tomorrow morning evening night "
    "day week month year time people person child children family friend teacher doctor "
    "farmer driver worker city town village country river mountain road bridge house school "
    "hospital market garden window door table book letter paper story news report document "
    "water food bread coffee rain snow wind weather summer winter spring autumn light "
    "music picture question answer problem reason idea plan work job money price number "
    "small large long short old new young early late good bad important different possible "
    "quiet loud warm cold bright dark happy tired careful simple difficult open closed "
    "go goes went come came make made take took give gave see saw know knew think thought "
    "say said tell told ask asked find found keep kept leave left bring brought begin began "
    "write wrote read translate translated carry carried build built learn learned move moved "
    "wait waited walk walked travel travelled decide decided explain explained remember"
).split()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=None,
                   help="lines per corpus, comma-separated (default 5000,50000,500000)")
    p.add_argument("--full", action="store_true", help="also 1,000,000 lines")
    p.add_argument("--beams", default="1,4", help="beam widths, comma-separated (default 1,4)")
    p.add_argument("--quality", choices=("repair", "flag", "off"), default="repair",
                   help="the pipeline's --quality (default repair, as the CLI's)")
    p.add_argument("--threads", type=int, default=1,
                   help="CTranslate2 threads, both sides (default 1)")
    p.add_argument("--model", default="trained",
                   help="'trained' (default: the trained test model, which ends its sentences "
                        "as a real model does), 'random' (the tiny model with random weights: "
                        "every line runs to its budget and down the quality ladder), or a "
                        "checkpoint directory")
    p.add_argument("--raw-every", type=int, default=1, metavar="N",
                   help="on corpora over --sample-above lines, replay only every Nth "
                        "committed batch "
                        "in the raw loop and scale its times by the batches left out (default "
                        "1: every batch; 10 saves most of an hour at 1,000,000 lines)")
    p.add_argument("--sample-above", type=int, default=SAMPLED_ABOVE, metavar="LINES",
                   help=f"where --raw-every starts (default {SAMPLED_ABOVE:,} lines)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = p.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(SIZES)
        args.beams = [int(b) for b in args.beams.split(",")]
    except ValueError:
        p.error("--sizes and --beams take comma-separated integers")
    if args.raw_every < 1 or args.sample_above < 0:
        p.error("--raw-every takes a positive integer, --sample-above a count of lines")
    if args.full and FULL not in args.sizes:
        args.sizes.append(FULL)
    args.sizes.sort()
    return args


# -- the corpus -------------------------------------------------------------------------------


def line_length(rng: random.Random) -> int:
    """Words in a line: 5 to 40, most near 16 (log-normal, as sentences run)."""
    return min(40, max(5, round(rng.lognormvariate(math.log(16), 0.45))))


def unique_lines(n: int, seed: int):
    """``n`` distinct lines, the same for the same seed. Duplicates are kept
    out by an 8-byte digest, not the lines themselves (a million lines)."""
    rng, seen = random.Random(seed), set()
    while len(seen) < n:
        words = rng.choices(_WORDS, k=line_length(rng))
        if len(words) > 12:
            words[len(words) // 2] += ","
        line = " ".join(words).capitalize() + rng.choice("......?!")
        digest = hashlib.blake2b(line.encode(), digest_size=8).digest()
        if digest not in seen:
            seen.add(digest)
            yield line


def write_corpus(path: Path, n: int, seed: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for line in unique_lines(n, seed):
            out.write(line + "\n")
    return path


# -- one run ----------------------------------------------------------------------------------


def cli(db: Path, *argv: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "--db", str(db), *argv]


def run_pipeline(corpus: Path, db: Path, model: str, beams: int, args) -> dict:
    """``translate`` in a process of its own: its wall time, peak RSS and result."""
    out, log, err = db.with_suffix(".out.txt"), db.with_suffix(".stdout"), db.with_suffix(".stderr")
    argv = cli(db, "translate", str(corpus), "--format", "lines", "--src", SRC, "--tgt", TGT,
               "-o", str(out), "--model", model, "--backend", "ctranslate2", "--device", "cpu",
               "--threads", str(args.threads), "--beams", str(beams), "--quality", args.quality,
               "--json")  # --json: the job's id on stdout, and no progress bar
    with log.open("w") as stdout, err.open("w") as stderr:  # files: no pipe to fill up
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, cwd=ROOT)
        # wait4: this child's own rusage (RUSAGE_CHILDREN would be the peak of
        # every child so far, so a smaller run after a larger one would inherit it).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:  # 1: the job failed; 2: bad usage or input (README, Exit codes)
        sys.exit(f"translate exited {proc.returncode}:\n{log.read_text()}\n"
                 f"{err.read_text()[-3000:]}")
    result = json.loads(log.read_text().strip().splitlines()[-1])
    if result["state"] != "SUCCEEDED":
        sys.exit(f"the job ended {result['state']}: {result}")
    out.unlink()
    return {"job": result["job"], "process_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024}


def stage_seconds(db: Path, job_id: str) -> tuple[dict[str, float], dict[str, float]]:
    """Wall and CPU seconds of each of the job's stages."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT stage, SUM(wall_s), SUM(cpu_s) FROM stage_runs "
                            "WHERE job_id = ? GROUP BY stage", (job_id,)).fetchall()
    finally:
        conn.close()
    return {s: w for s, w, _ in rows}, {s: c for s, _, c in rows}


def engine_times(db: Path, job_id: str) -> dict[int, tuple[float | None, float | None]]:
    """Each committed batch's model call and the engine's wait before it, as
    the job stored them (``batches.call_s``, ``idle_s``): batch id -> (s, s)."""
    conn = sqlite3.connect(db)
    try:
        return {b: (c, i) for b, c, i in conn.execute(
            "SELECT id, call_s, idle_s FROM batches WHERE job_id = ? AND state = 'committed'",
            (job_id,))}
    finally:
        conn.close()


def engine_figures(times: dict, raw, inference_s: float, total: int) -> dict:
    """Where the overhead per batch goes: the job's engine calls against the
    loop's on the same batches (``call_ratio``: the job's seconds over the
    loop's), the engine's waits for the pipeline between calls
    (``waited_ms`` a batch), and the stage's wall time outside any call
    (``outside_ms`` a batch: the waits, and loading the model before the
    first call)."""
    job_engine_s = sum(c for c, _ in times.values() if c is not None)
    # (the job's call, the loop's) per replayed batch, in plan order
    same = [(times[b][0], s) for b, s in raw.engine_calls.items() if times[b][0] is not None]
    thirds = [same[i * len(same) // 3:(i + 1) * len(same) // 3] for i in range(3)]
    return {"job_engine_s": job_engine_s,
            "call_ratio": _call_ratio(same),
            # the same, in the first, middle and last third of the plan: a
            # ratio that drifts is the machine changing over the hours, one
            # that does not is the job's process
            "call_ratio_thirds": [r for t in thirds if (r := _call_ratio(t)) is not None],
            "waited_ms": sum(i for _, i in times.values() if i is not None) / total * 1000,
            "outside_ms": (inference_s - job_engine_s) / total * 1000}


def _call_ratio(pairs: list[tuple[float, float]]) -> float | None:
    """The job's seconds over the loop's, on (job, loop) pairs of one batch."""
    loop_s = sum(s for _, s in pairs)
    return sum(c for c, _ in pairs) / loop_s if loop_s else None


def database_mib(db: Path) -> float:
    parts = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    return sum(p.stat().st_size for p in parts if p.exists()) / 2**20


def read_latency(argv: list[str], rounds: int = 3) -> float:
    """Best wall time of a read command, a fresh process each time, with its
    modules' bytecode cached as an installed package has it (a shell that
    sets PYTHONDONTWRITEBYTECODE would add about 0.15 s of compiling to
    every run)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=ROOT, env=env)
        best = min(best, time.perf_counter() - started)
    return best


def measure(size: int, beams: int, corpus: Path, work: Path, model: str, engine, tokenizer,
            cap: int, args) -> dict:
    db = work / f"scale-{size}-b{beams}.db"
    load = os.getloadavg()[0]
    run = run_pipeline(corpus, db, model, beams, args)
    stages, cpu = stage_seconds(db, run["job"])
    calls = committed_calls(db, run["job"], cap)
    every = args.raw_every if size > args.sample_above else 1
    total = committed_batches(db, run["job"])
    raw = replay(engine, tokenizer, itertools.islice(calls, 0, None, every), SRC, TGT)
    # A systematic sample (the plan runs in length order, so every Nth batch
    # spans the lengths as the whole does), scaled by the batches left out.
    scale = total / raw.batches
    status_s = read_latency(cli(db, "status"))
    show_s = read_latency(cli(db, "show", run["job"]))
    raw_s, raw_cpu_s = raw.wall_s * scale, raw.cpu_s * scale
    row = {"lines": size, "beams": beams, "batches": total, "replayed": raw.batches,
           "inference_s": stages["inference"], "job_s": sum(stages.values()),
           "process_s": run["process_s"], "raw_s": raw_s,
           "raw_engine_s": raw.engine_wall_s * scale,
           "ratio": raw_s / stages["inference"],
           "inference_cpu_s": cpu["inference"], "raw_cpu_s": raw_cpu_s,
           "cpu_ratio": raw_cpu_s / cpu["inference"],
           "cpu_overhead_ms": (cpu["inference"] - raw_cpu_s) / total * 1000,
           "overhead_ms": (stages["inference"] - raw_s) / total * 1000,
           "peak_rss_mib": run["peak_rss_mib"], "db_mib": database_mib(db),
           "status_s": status_s, "show_s": show_s, "compared": raw.compared,
           "differing": raw.differing, "load": load,
           **engine_figures(engine_times(db, run["job"]), raw, stages["inference"], total)}
    for path in work.glob(f"{db.name}*"):
        path.unlink()  # a 500,000-line database is large; its figures are taken
    return row


# -- the report -------------------------------------------------------------------------------


def mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def growth(row: dict, rows: list[dict], key: str = "overhead_ms") -> float | None:
    """Overhead per batch (``key``: wall or CPU) against the smallest size's at
    the same beams; None for the smallest itself, or where the smallest had
    none (the pipeline outran the raw loop there)."""
    first = next(r for r in rows if r["beams"] == row["beams"])
    if first is row or first[key] <= 0:
        return None
    return row[key] / first[key]


def growth_verdict(row: dict, rows: list[dict]) -> str | None:
    """The wall overhead's growth against the smallest size, as the table and
    the text say it: a ratio, or, where the smallest size had no overhead
    (the pipeline ran ahead of the raw loop), whether this size has any."""
    first = next(r for r in rows if r["beams"] == row["beams"])
    if first is row:
        return None
    g = growth(row, rows)
    if g is not None:
        return f"{g:.2f}x"
    return "none at either size" if row["overhead_ms"] <= 0 else "some, none at the smallest"


def growth_met(row: dict, rows: list[dict]) -> bool:
    g = growth(row, rows)
    return row["overhead_ms"] <= 0 if g is None else g <= TARGET_GROWTH


def print_run(row: dict, rows: list[dict]) -> None:
    smallest = next(r for r in rows if r["beams"] == row["beams"])["lines"]
    print(f"\n{row['lines']:,} lines, beams {row['beams']} (load {row['load']:.1f}): "
          f"{row['batches']} batches")
    print(f"  pipeline: inference {row['inference_s']:.2f} s, whole job {row['job_s']:.2f} s "
          f"(process {row['process_s']:.2f} s with start-up and model load)")
    if row["replayed"] < row["batches"]:
        print(f"  raw loop replayed {row['replayed']} of the {row['batches']} batches "
              f"(--raw-every); its times below are scaled to all of them")
    print(f"  raw loop: {row['raw_s']:.2f} s ({row['raw_engine_s']:.2f} s inside translate_batch); "
          f"translations identical: {row['compared'] - row['differing']} of {row['compared']}")
    print(f"  pipeline/raw throughput {row['ratio']:.2f}x (target >= {TARGET_RATIO}: "
          f"{mark(row['ratio'] >= TARGET_RATIO)}); the whole job, reading the corpus and "
          f"writing the output included: {row['raw_s'] / row['job_s']:.2f}x")
    print(f"  by CPU time: pipeline inference {row['inference_cpu_s']:.2f} s, raw "
          f"{row['raw_cpu_s']:.2f} s: {row['cpu_ratio']:.2f}x (a bound that load does not "
          f"move: the pipeline's own work counts in full even where it overlaps the engine's)")
    verdict = growth_verdict(row, rows)
    print(f"  overhead per batch {row['overhead_ms']:.2f} ms"
          + (f", against the {smallest:,}-line figure: {verdict} (target <= {TARGET_GROWTH}x at "
             f"500,000 lines{': ' + mark(growth_met(row, rows)) if row['lines'] >= 500_000 else ''})"
             if verdict is not None else ""))
    if row["call_ratio"] is not None:
        print(f"  the engine in the job: {row['job_engine_s']:.2f} s in its calls "
              f"({1000 * row['job_engine_s'] / row['batches']:.1f} ms a call), "
              f"{row['call_ratio']:.3f}x the loop's calls on the same batches ("
              f"{' / '.join(f'{r:.3f}' for r in row['call_ratio_thirds'])} in the plan's "
              f"thirds); it waited "
              f"{row['waited_ms']:.2f} ms a batch for the pipeline (the stage outside any call: "
              f"{row['outside_ms']:.2f} ms a batch, loading the model included)")
    cg = growth(row, rows, "cpu_overhead_ms")
    print(f"  CPU overhead per batch {row['cpu_overhead_ms']:.2f} ms"
          + (f", {cg:.2f}x the smallest size's" if cg is not None else ""))
    print(f"  peak RSS {row['peak_rss_mib']:.0f} MiB, database {row['db_mib']:.1f} MiB")
    reads_ok = max(row["status_s"], row["show_s"]) < TARGET_READ_S
    print(f"  status {row['status_s']:.3f} s, show {row['show_s']:.3f} s (target < "
          f"{TARGET_READ_S} s on 1,000,000 lines" + (f": {mark(reads_ok)}" if row["lines"] >= FULL
                                                      else "") + ")")


def markdown(rows: list[dict]) -> str:
    head = ("| lines | beams | load | batches | inference s | job s | raw s | pipeline/raw (>= 0.9) "
            "| by CPU time | CPU overhead ms/batch "
            "| overhead ms/batch | vs smallest (<= 1.2 at 500k) | peak RSS MiB | DB MiB "
            "| status s | show s (< 0.5 at 1M) | job's calls / loop's | engine waited ms/batch |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        verdict = growth_verdict(r, rows) or "-"
        lines.append(
            f"| {r['lines']:,} | {r['beams']} | {r['load']:.1f} | {r['batches']} | "
            f"{r['inference_s']:.2f} | {r['job_s']:.2f} | {r['raw_s']:.2f} | {r['ratio']:.2f} | "
            f"{r['cpu_ratio']:.2f} | {r['cpu_overhead_ms']:.2f} | {r['overhead_ms']:.2f} | "
            f"{verdict} | {r['peak_rss_mib']:.0f} | "
            f"{r['db_mib']:.1f} | {r['status_s']:.3f} | {r['show_s']:.3f} | "
            f"{_or_dash(r['call_ratio'], '.3f')} | {r['waited_ms']:.2f} |")
    return "\n".join(lines)


def _or_dash(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main(argv=None) -> int:
    args = parse_args(argv)
    import ctranslate2

    from models.ct2 import Ct2Translator
    from pipeline.config import RunSettings

    for var in ("NLLB_PIPELINE_INJECT_FAULTS", "NLLB_PIPELINE_RETRY"):  # a clean run
        os.environ.pop(var, None)
    with tempfile.TemporaryDirectory(prefix="nllb-scale-") as tmp:
        work = Path(tmp)
        # Ours alone, for this process and the CLI's: the conversion cache and
        # no user config file.
        os.environ["XDG_CACHE_HOME"] = str(work / "cache")
        os.environ["NLLB_PIPELINE_CONFIG"] = str(work / "absent.toml")
        os.environ["PYTHONPATH"] = str(ROOT)
        if args.model == "trained":
            from models.trained import trained_model_dir

            model = str(trained_model_dir(log=lambda *a: None))
        elif args.model == "random":
            from models.tiny import build_tiny_model

            model = str(build_tiny_model(work / "tiny"))
        else:
            model = args.model
        ct2 = Ct2Translator(model, RunSettings(device="cpu", threads=args.threads))
        path = ct2.prepare()  # converted once, outside every timing; the CLI finds it
        started = time.perf_counter()
        engine = ctranslate2.Translator(path, device="cpu", compute_type=ct2.compute_type,
                                        inter_threads=1, intra_threads=args.threads)
        load_s = time.perf_counter() - started  # the pipeline's inference stage pays it once
        cap = ct2.describe().max_output_tokens
        print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"ctranslate2 {ctranslate2.__version__} {ct2.compute_type}, {args.threads} "
              f"thread(s); model {model}; --quality {args.quality}; sizes "
              f"{', '.join(f'{s:,}' for s in args.sizes)}; beams {args.beams}; loading the "
              f"model (inside the pipeline's inference stage) takes {load_s:.2f} s", flush=True)
        rows = []
        for size in args.sizes:
            corpus = write_corpus(work / f"lines-{size}.txt", size, args.seed)
            for beams in args.beams:
                rows.append(measure(size, beams, corpus, work, model, engine,
                                    ct2.checkpoint.tokenizer, cap, args))
                print_run(rows[-1], rows)
                sys.stdout.flush()
            corpus.unlink()
    print("\n" + markdown(rows))
    if args.json:
        print(json.dumps(rows))
    differing = sum(r["differing"] for r in rows)
    if differing:
        print(f"\n{differing} raw translations differ from the pipeline's: the loops did not "
              "do the same work", file=sys.stderr)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
