"""Server-Sent Events: jobs as they change.

``GET /api/events`` is a ``text/event-stream`` of ``job`` events whose data
is the job, exactly as ``GET /api/jobs`` lists it (``pipeline.views.
job_view``). An event is sent when anything about a job but the ETA's
countdown changes: state (INTERRUPTED too, when its worker is found gone),
stage, percent, a retry's wait, the error. ``?job=ID`` narrows the stream to
one job and starts it with that job's current view: what one open detail
view needs (DESIGN.md, "The task centre": a browser allows six HTTP/1.1
connections per host across all its tabs, so the page keeps one stream at
most, for the job it shows, and polls the list).

Each stream looks at the store every ``poll_s`` (0.5 s): one read of the
revision counter and of the running jobs when nothing changed, so an idle
stream costs next to nothing. A comment line every 15 s keeps proxies from
closing a quiet stream; ``retry: 3000`` tells the browser to reconnect
after 3 s when it drops.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable

import anyio
from starlette.concurrency import run_in_threadpool

from pipeline.store import Job, Store
from pipeline.views import job_view

KEEPALIVE_S = 15.0
# Changes at most this old before the previous look are looked at again: a
# writer's clock and ours are the same machine's, but its row may commit a
# moment after the time it wrote into it.
LOOKBACK_S = 2.0


def signature(view: dict) -> str:
    """What decides whether a job's view is news: all of it but the ETA,
    which counts down by itself (the page does the counting)."""
    return json.dumps({k: v for k, v in view.items() if k != "eta_seconds"}, sort_keys=True)


class JobWatcher:
    """The views of jobs that changed since the last call, for one stream.

    With ``job_id``, that job (its first call returns its current view);
    without, every job: the running ones, the ones created, updated or
    finished since the last look, and the ones that were running then (a
    job given back to the queue by a stopping worker)."""

    def __init__(self, store: Callable[[], Store], job_id: str | None = None, *,
                 clock: Callable[[], float] = time.time):
        self.store, self.job_id, self.clock = store, job_id, clock
        self.revision: int | None = None
        self._since = clock()
        self._sent: dict[str, str] = {}
        self._running: set[str] = set()

    def prime(self) -> None:
        """A whole-queue watcher starts from the queue as it is now (no
        backlog); call before the stream is answered, so that nothing that
        changes after the answer is taken for the starting point."""
        if self.job_id is None:
            self.changes()

    def changes(self) -> list[dict]:
        store, now = self.store(), self.clock()
        revision = store.revision()
        moved, self.revision = revision != self.revision, revision
        if self.job_id is not None:
            job = store.job(self.job_id)
            candidates = [job] if job is not None else []
        else:
            candidates = self._candidates(store, moved, now)
        news = []
        # one read of the queue for all the queued candidates' places
        positions = (store.queue_positions() if any(j.state == "QUEUED" for j in candidates)
                     else {})
        for job in candidates:
            view = job_view(store, job, now, positions=positions)
            sig = signature(view)
            if self._sent.get(job.id) != sig:
                self._sent[job.id] = sig
                news.append(view)
        return news

    def _candidates(self, store: Store, moved: bool, now: float) -> list[Job]:
        running = store.jobs_in_states(("RUNNING",), 10_000)
        seen = {j.id: j for j in running}
        if moved:
            for job in store.jobs_changed_since(self._since - LOOKBACK_S):
                seen.setdefault(job.id, job)
            for job_id in self._running - set(seen):
                job = store.job(job_id)
                if job is not None:
                    seen[job_id] = job
            self._since = now
        self._running = {j.id for j in running}
        return sorted(seen.values(), key=lambda j: j.created_at)


async def event_stream(watcher: JobWatcher, stopping: threading.Event, *,
                       poll_s: float = 0.5) -> AsyncIterator[str]:
    """The SSE text of a watcher's changes until the client leaves (the
    response is cancelled) or the server stops."""
    yield "retry: 3000\n\n"
    quiet_since = time.monotonic()
    while not stopping.is_set():
        views = await run_in_threadpool(watcher.changes)
        for view in views:
            data = json.dumps(view, ensure_ascii=False)
            yield f"event: job\nid: {watcher.revision}\ndata: {data}\n\n"
        if views:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= KEEPALIVE_S:
            quiet_since = time.monotonic()
            yield ": keepalive\n\n"
        await anyio.sleep(poll_s)
