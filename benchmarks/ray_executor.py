#!/usr/bin/env python3
"""The Ray executor against a local worker, on this machine, in one run.

    python benchmarks/ray_executor.py [--documents 40] [--sentences 8] [--actors 2]
                                      [--d-model 512] [--layers 3] [--beams 4] [--model DIR]

1. Builds a mid-size random NLLB-architecture model (``--d-model``,
   ``--layers``: a batch takes tens of milliseconds or more; or ``--model``)
   and ``--documents`` generated documents of ``--sentences`` sentences.
2. **local**: one in-process worker (``nllb-pipeline worker``) runs them,
   with the run defaults (backend auto, the CPU's default batch budget),
   once per ``--local-threads`` value (0, the backend's default, and 1:
   the actors' setting; on small machines one thread can be the faster).
3. **ray**: the same documents in a fresh database through
   ``worker --executor ray --ray-address local --actors N --jobs 2``
   (in-process driver, N CPU actors with one CPU and one thread each).
   Start-up (Ray and the actors loading the model) is timed apart from the
   run. The driver's CPU time is its process's; the actors' is read from
   /proc for the pids they report.
4. **round trip**: the 20 largest batches the Ray run committed, replayed
   one at a time through the pool: the time from submit to result against
   the time the model took inside the actor. The difference is the Ray
   round trip (serialisation, scheduling, object transfer): the target is
   under 5% of the batch time at the default budget.
5. **store ceiling**: the driver's own work per batch (plan, judge, commit
   in SQLite, progress), measured by running a job through the inference
   stage with a translator that answers at once (eight batches in flight):
   batches per second one driver can commit, whatever the actors.

Prints the figures and the ratios; outputs of both runs are compared too.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipeline import service  # noqa: E402
from pipeline.config import RunSettings  # noqa: E402
from pipeline.samples import generate_text  # noqa: E402
from pipeline.service import JobOptions, Runtime, TranslatorCache  # noqa: E402
from pipeline.store import Store  # noqa: E402
from benchmarks._instant import InstantTranslator  # noqa: E402


def make_docs(folder: Path, n: int, sentences: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i in range(n):
        paths.append(folder / f"doc{i:03d}.txt")
        paths[-1].write_text(generate_text(sentences, seed=1000 + i), encoding="utf-8")
    return paths


def submit(db: Path, paths: list[Path], model: str, beams: int) -> None:
    store = Store(db)
    service.submit_paths(store, paths, JobOptions(src="eng_Latn", tgt="fra_Latn", model=model,
                                                  beams=beams))
    store.close()


def totals(db: Path) -> tuple[int, int]:
    """(committed batches, source tokens they translated)."""
    store = Store(db)
    row = store.db.execute("SELECT COUNT(*), COALESCE(SUM(source_tokens), 0) FROM batches "
                           "WHERE state = 'committed' AND backend IS NOT NULL").fetchone()
    store.close()
    return row[0], row[1]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def outputs(paths: list[Path]) -> dict[str, bytes]:
    return {p.name: p.with_name(f"{p.stem}.fra_Latn{p.suffix}").read_bytes() for p in paths}


# -- 5: the driver's ceiling ------------------------------------------------------------------


def store_ceiling(tmp: Path, batch_tokens: int, sentences: int) -> tuple[float, int]:
    """Batches per second the inference stage commits with no model time."""
    from pipeline.runner import run_job

    doc = tmp / f"ceiling{batch_tokens}.txt"
    doc.write_text(generate_text(sentences, seed=7), encoding="utf-8")
    db = tmp / f"ceiling{batch_tokens}.db"
    store = Store(db)
    (result,) = service.submit_paths(store, [doc], JobOptions(src="eng_Latn", tgt="fra_Latn",
                                                              model="instant", memory="off"))
    run_job(store, result.job.id, InstantTranslator(concurrency=8),
            settings=RunSettings(device="cpu", batch_tokens=batch_tokens))
    run = next(r for r in store.stage_runs(result.job.id) if r.stage == "inference")
    batches = store.db.execute("SELECT COUNT(*) FROM batches WHERE job_id = ? AND "
                               "state = 'committed'", (result.job.id,)).fetchone()[0]
    store.close()
    return batches / run.wall_s, batches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=40)
    parser.add_argument("--sentences", type=int, default=8, help="sentences per document")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--beams", type=int, default=4, help="default 4, as the CLI's")
    parser.add_argument("--ceiling-sentences", type=int, default=8000,
                        help="the store-ceiling document at 2048 tokens per batch (2.5x as many "
                             "at 8192)")
    parser.add_argument("--local-threads", type=lambda t: [int(x) for x in t.split(",")],
                        default=[0, 1], help="the local worker's --threads, one run each "
                                             "(default 0,1: the backend's default, and one)")
    parser.add_argument("--model", help="checkpoint directory (default: a random model of the "
                                        "shape above)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        from models import ray_cluster
    except ImportError:
        print("needs the ray extra: pip install 'nllb-pipeline[ray]'", file=sys.stderr)
        return 1
    from models.tiny import build_tiny_model

    settings = RunSettings(device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["XDG_CACHE_HOME"] = str(tmp / "cache")  # the conversion cache: ours alone
        model = args.model or str(build_tiny_model(tmp / "model", d_model=args.d_model,
                                                   layers=args.layers, init_std=0.02))
        shape = "" if args.model else f" (random, d_model {args.d_model}, {args.layers} layers)"
        print(f"model {model}{shape}; {args.documents} documents of {args.sentences} sentences, "
              f"beams {args.beams}; {os.cpu_count()} CPUs")

        # 2: one local worker, at each --local-threads setting
        local: dict[int, tuple[float, dict[str, bytes]]] = {}
        for threads in args.local_threads:
            folder = f"local{threads}"
            local_docs = make_docs(tmp / folder, args.documents, args.sentences)
            submit(tmp / f"{folder}.db", local_docs, model, args.beams)
            run_settings = replace(settings, threads=threads)
            cache = TranslatorCache(run_settings)
            store = Store(tmp / f"{folder}.db")
            start = time.perf_counter()
            counts = service.run_worker(store, Runtime(run_settings, translators=cache),
                                        idle_exit_s=0, poll_s=0.05)
            local_s = time.perf_counter() - start
            store.close()
            local_batches, tokens = totals(tmp / f"{folder}.db")
            info = next(iter(cache._translators.values())).describe()
            local[threads] = (local_s, outputs(local_docs))
            print(f"local, --threads {threads}{' (the default)' if not threads else ''}: "
                  f"{counts}, {local_s:.1f} s (model load included), {tokens / local_s:.0f} "
                  f"source tokens/s, {local_batches} batches; {info.backend} "
                  f"{info.compute_type}, batch budget {info.default_batch_tokens}")

        # 3: the Ray executor
        ray_docs = make_docs(tmp / "ray", args.documents, args.sentences)
        submit(tmp / "ray.db", ray_docs, model, args.beams)
        start = time.perf_counter()
        ray_cluster.connect("local")
        translators = ray_cluster.RayTranslators(
            settings, ray_cluster.PoolOptions(actors=args.actors, cpus_per_actor=1))
        store = Store(tmp / "ray.db")
        first = first_job_params(store)
        translators(first)  # start the actors and load the model
        startup_s = time.perf_counter() - start
        pool = translators.pools()[0]
        pids = [w.pid for w in pool.wheres()]
        actor_cpu0 = sum(proc_cpu_s(p) for p in pids)
        driver_cpu0, start = cpu_s(), time.perf_counter()
        counts = service.run_worker(store, Runtime(settings, translators=translators), jobs=2,
                                    idle_exit_s=0, poll_s=0.05)
        ray_s = time.perf_counter() - start
        driver_cpu = cpu_s() - driver_cpu0
        actor_cpu = sum(proc_cpu_s(p) for p in pids) - actor_cpu0
        ray_batches, ray_tokens = totals(tmp / "ray.db")
        print(f"ray:   {counts}, {ray_s:.1f} s after a start-up of {startup_s:.1f} s (Ray and "
              f"{args.actors} actors loading the model), {ray_tokens / ray_s:.0f} source tokens/s, "
              f"{ray_batches} batches")
        same = all(out == outputs(ray_docs) for _, out in local.values())
        print(f"outputs identical to the local worker's: {same}")

        # 4: the round trip, one batch at a time
        rows = store.db.execute("SELECT chunk_idxs, job_id FROM batches WHERE state = "
                                "'committed' ORDER BY padded_tokens DESC LIMIT 20").fetchall()
        import json

        from pipeline.translator import Decoding

        remote = translators(first)
        pool.timings.clear()
        for idxs, job_id in rows:
            chunks = store.chunks(job_id, json.loads(idxs))
            budget = max(c.n_tokens for c in chunks) * 2 + 16
            remote.translate_batch([c.source for c in chunks], "eng_Latn", "fra_Latn",
                                   Decoding(beams=args.beams, max_new_tokens=min(budget, 1022)))
        trips = list(pool.timings)
        round_trip = sum(t for t, _ in trips)
        model_s = sum(c for _, c in trips)
        store.close()
        translators.close()

        # 5: the driver's ceiling
        ceilings = {budget: store_ceiling(tmp, budget, sentences)
                    for budget, sentences in ((2048, args.ceiling_sentences),
                                              (8192, args.ceiling_sentences * 5 // 2))}

    overhead = (round_trip - model_s) / model_s
    print()
    for threads, (local_s, _) in local.items():
        print(f"throughput ray/local:          {local_s / ray_s:.2f}x ({args.actors} actors x 1 "
              f"thread against one worker at --threads {threads})")
    print(f"round trip overhead:           {overhead * 100:.1f}% of batch time "
          f"({(round_trip - model_s) / len(trips) * 1000:.1f} ms on a {model_s / len(trips) * 1000:.0f}"
          f" ms batch, {len(trips)} batches one at a time; target < 5%)")
    print(f"driver CPU share:              {driver_cpu / (driver_cpu + actor_cpu) * 100:.1f}% of "
          f"the CPU time spent ({driver_cpu:.1f} s driver, {actor_cpu:.1f} s actors; driver "
          f"{driver_cpu / ray_s * 100:.0f}% of one core)")
    for budget, (ceiling, n) in ceilings.items():
        print(f"store ceiling at {budget:>4} tokens:  {ceiling:.0f} batches/s committed by one "
              f"driver with no model time ({n} batches; {1000 / ceiling:.1f} ms of driver work "
              "per batch)")
    return 0 if same else 1


def first_job_params(store: Store):
    """The parameters of the first queued job (what the pool is started for)."""
    from pipeline.config import JobParams

    job = store.claimable_jobs()[0]
    return JobParams.from_json(job.params)


if __name__ == "__main__":
    sys.exit(main())
