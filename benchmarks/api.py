#!/usr/bin/env python3
"""The HTTP API under the polling load of many open pages.

    python benchmarks/api.py [--jobs 10000] [--clients 50] [--seconds 10] [--interval 1]

A store with ``--jobs`` jobs (70% succeeded, 10% failed, 15% queued, 5%
canceled, a few running with live progress) is served by the real
``nllb-pipeline serve --workers 0``. ``--clients`` connections (HTTP/1.1
keep-alive, a minimal client so that the load generator costs the shared
CPU little) then:

1. **paced**, as pages poll: every ``--interval`` seconds each client asks
   for the list with its ETag (a 304 while nothing changed), the list
   without it (a full 200) and one job's detail; meanwhile one more client
   searches by name (``?q=``) and reads the list's second page
   (``?cursor=``), and another retries and cancels 20 jobs at a time
   (``POST /api/jobs/retry`` and ``/cancel``), each every interval, so the
   lists' ETags keep changing and every poll after a bulk action renders;
2. **saturated**: each client sends its next request as soon as the last
   answer is in, for each kind alone, to find requests per second.

Reports p50/p99 latency per kind and requests per second, and, measured in
process, the CPU one rendering of the list costs (the server renders a list
once per ETag and change, from the job views it kept: ``pipeline.api.listing``)
and what its ETag costs (all a 304 needs). The list is the page's query
(``?limit=200``, newest first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import JobParams
from pipeline.store import Store

LIST = "/api/jobs?limit=200"
SEARCH = "/api/jobs?limit=200&q=doc0{n}"  # ~1,000 of 10,000 names match one digit
BULK_IDS = 20


def fill_store(db: Path, n: int) -> list[str]:
    store = Store(db)
    ids = []
    rng = random.Random(7)
    for i in range(n):
        params = JobParams(model="facebook/nllb-200-distilled-600M", src_lang="eng_Latn",
                           tgt_lang=rng.choice(["fra_Latn", "deu_Latn", "spa_Latn"]),
                           fmt="text", output=f"/data/out/doc{i:05d}.txt")
        job, _ = store.get_or_create_job(
            idem_key=f"bench-{i}", params=params.canonical_json(),
            input_path=f"/data/in/doc{i:05d}.txt", input_sha256=f"{i:064x}", input_bytes=1000,
            output_path=params.output)
        roll = rng.random()
        if roll < 0.70:
            store.set_job_state(job.id, "SUCCEEDED")
        elif roll < 0.80:
            store.set_job_state(job.id, "FAILED", error_class="device_transient",
                                error_message="CUDA error: the launch timed out")
        elif roll < 0.85:
            store.set_job_state(job.id, "CANCELED")
        ids.append(job.id)
    worker = f"{socket.gethostname()}:{os.getpid()}:bench"
    for job_id in ids[-5:]:  # running, held by this (live) process, with live progress
        store.claim_job(job_id, worker, ttl=3600)
        store.set_progress(job_id, worker, json.dumps({
            "stage": "inference", "percent": 40.0, "eta_s": 120.0, "tokens_per_s": 900.0,
            "at": time.time(), "waiting": None,
            "weights": {"preprocess": 0.02, "inference": 0.95, "postprocess": 0.02,
                        "upload": 0.01}}))
    store.close()
    return ids


def in_process_costs(db: Path) -> dict[str, float]:
    """CPU ms (best of 5, ``time.process_time``: what a busy machine does not
    move) of one rendering of the list with no job view kept (a cold
    server), of one with every view kept (after a change of a few jobs:
    ``rendered.JobFragments``), of a search, and of the ETag (all a 304
    needs); and SQL statements per rendering."""
    from pipeline.api import listing, rendered

    store = Store(db)
    kept = rendered.JobFragments()
    costs: dict[str, list[float]] = {"cold": [], "warm": [], "search": [], "etag": []}
    runs = {"cold": lambda n: listing.list_json(store, (), 200, time.time()),
            "warm": lambda n: listing.list_json(store, (), 200, time.time(), fragments=kept),
            "search": lambda n: listing.list_json(store, (), 200, time.time(), f"doc0{n}",
                                                  fragments=kept),
            "etag": lambda n: listing.list_etag(store, time.time(), (), 200)}
    for n in range(5):
        for kind, run in runs.items():
            start = time.process_time()
            run(n)
            costs[kind].append(time.process_time() - start)
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    listing.list_json(store, (), 200, time.time(), fragments=kept)
    store.close()
    return {**{kind: min(found) * 1000 for kind, found in costs.items()},
            "statements": len(statements)}


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def get(self, path: str, etag: str | None = None, *, method: str = "GET",
                  body: bytes = b"") -> tuple[int, str | None, float, bytes]:
        start = time.perf_counter()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if etag:
            head += f"If-None-Match: {etag}\r\n"
        if method != "GET":
            head += ("X-Requested-With: bench\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n")
        self.writer.write((head + "\r\n").encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length, tag = 0, None
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "etag":
                tag = value.strip()
        data = await self.reader.readexactly(length) if length else b""
        return status, tag, time.perf_counter() - start, data

    def close(self) -> None:
        self.writer.close()


def bulk_body(ids: list[str]) -> bytes:
    return json.dumps({"ids": random.sample(ids, min(BULK_IDS, len(ids)))}).encode()


async def second_page(conn: Connection) -> float:
    """The list's next page: its cursor from the first page, then the page."""
    _, _, _, data = await conn.get(LIST)
    cursor = json.loads(data)["next_cursor"] or ""
    _, _, took, _ = await conn.get(f"{LIST}&cursor={cursor}")
    return took


async def paced(host, port, ids, clients, seconds, interval):
    samples = {"list 304": [], "list 200": [], "detail": [], "search": [], "page 2": [],
               "bulk": []}

    async def every_interval(step, start=None):
        """``step(conn)`` once an interval for ``seconds``, on a connection
        of its own (after ``start(conn)``, if given)."""
        conn = Connection(host, port)
        await conn.open()
        if start is not None:
            await start(conn)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            tick = time.perf_counter()
            await step(conn)
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - tick)))
        conn.close()

    def client(n):
        etag = None

        async def start(conn):
            nonlocal etag
            _, etag, _, _ = await conn.get(LIST)
            await asyncio.sleep(interval * n / clients)  # spread the clients over the interval

        async def poll(conn):
            nonlocal etag
            status, _, took, _ = await conn.get(LIST, etag)
            samples["list 304" if status == 304 else "list 200"].append(took)
            status, etag, took, _ = await conn.get(LIST)
            samples["list 200"].append(took)
            _, _, took, _ = await conn.get(f"/api/jobs/{random.choice(ids)}")
            samples["detail"].append(took)

        return every_interval(poll, start)

    async def search(conn):
        _, _, took, _ = await conn.get(SEARCH.format(n=random.randrange(10)))
        samples["search"].append(took)
        samples["page 2"].append(await second_page(conn))

    async def bulk(conn):
        for verb in ("cancel", "retry"):
            status, _, took, _ = await conn.get(f"/api/jobs/{verb}", method="POST",
                                                body=bulk_body(ids))
            assert status == 200, status
            samples["bulk"].append(took)

    await asyncio.gather(every_interval(bulk), every_interval(search),
                         *(client(n) for n in range(clients)))
    return samples


async def saturated(host, port, ids, clients, seconds, kind):
    samples = []

    async def client():
        conn = Connection(host, port)
        await conn.open()
        _, etag, _, _ = await conn.get(LIST)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            if kind == "list 304":
                _, _, took, _ = await conn.get(LIST, etag)
            elif kind == "list 200":
                _, _, took, _ = await conn.get(LIST)
            elif kind == "search":
                _, _, took, _ = await conn.get(SEARCH.format(n=random.randrange(10)))
            elif kind == "bulk":
                _, _, took, _ = await conn.get("/api/jobs/cancel", method="POST",
                                               body=bulk_body(ids))
            else:
                _, _, took, _ = await conn.get(f"/api/jobs/{random.choice(ids)}")
            samples.append(took)
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return samples, time.perf_counter() - start


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) the process has used so far; None where
    /proc does not say (not Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def row(kind: str, samples: list[float], wall: float | None = None,
        cpu: float | None = None) -> str:
    """p50/p99 latency, the rate where ``wall`` is known, and the server's
    CPU ms per request where ``cpu`` (its CPU seconds meanwhile) is: a
    figure the machine's load does not move, as latency on a shared
    machine is."""
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    rate = f"{len(ms) / wall:8.0f} req/s" if wall else ""
    per = f"  server CPU {cpu * 1000 / len(ms):6.2f} ms/req" if cpu is not None else ""
    # (each client's first list, not timed, counts in cpu: 50 of thousands)
    return (f"  {kind:<9} n={len(ms):<6} p50 {statistics.median(ms):7.2f} ms   "
            f"p99 {p99:7.2f} ms  {rate}{per}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between one paced client's polls (the page: 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "jobs.db"
        started = time.perf_counter()
        ids = fill_store(db, args.jobs)
        print(f"store: {args.jobs} jobs in {time.perf_counter() - started:.1f} s")
        cost = in_process_costs(db)
        print(f"in-process CPU, best of 5: rendering the list {cost['cold']:.1f} ms with no "
              f"job view kept, {cost['warm']:.1f} ms with all kept ({cost['statements']} SQL "
              f"statements), a search {cost['search']:.1f} ms, the ETag (all a 304 needs) "
              f"{cost['etag']:.3f} ms")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        server = subprocess.Popen([sys.executable, "-m", "pipeline", "--db", str(db), "serve",
                                   "--workers", "0", "--port", "0"], env=env, cwd=ROOT,
                                  stdout=subprocess.PIPE, text=True)
        try:
            url = server.stdout.readline().split()[2].rstrip("/")
            host, port = url.removeprefix("http://").rsplit(":", 1)
            port = int(port)
            print(f"{args.clients} clients, each polling every {args.interval:g} s for "
                  f"{args.seconds:g} s (paced), one more searching and paging, one more "
                  f"retrying and canceling {BULK_IDS} jobs at a time:")
            before = cpu_seconds(server.pid)
            samples = asyncio.run(paced(host, port, ids, args.clients, args.seconds,
                                        args.interval))
            after = cpu_seconds(server.pid)
            for kind, found in samples.items():
                if found:
                    print(row(kind, found))
            if before is not None and after is not None:
                # and the requests not timed: each client's first list, each page 2's page 1
                answered = (sum(map(len, samples.values())) + args.clients
                            + len(samples["page 2"]))
                print(f"  server CPU {(after - before) * 1000 / answered:.2f} ms per request "
                      f"({after - before:.2f} s for {answered} requests)")
            print(f"{args.clients} clients back to back (saturated), {args.seconds:g} s each:")
            for kind in ("list 304", "list 200", "detail", "search", "bulk"):
                before = cpu_seconds(server.pid)
                found, wall = asyncio.run(saturated(host, port, ids, args.clients,
                                                    args.seconds, kind))
                after = cpu_seconds(server.pid)
                print(row(kind, found, wall, None if before is None or after is None
                          else after - before))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
