"""What the server keeps rendered of the job list, so that fifty pages
polling one busy queue cost one rendering per change, not fifty.

- ``RenderedLists``: each list body by its ETag, rendered once however many
  requests ask for it meanwhile (single flight), reused for ``max_age_s``.
- ``JobFragments``: each job's view as JSON, reused by the next rendering
  of any list while the job has not changed.

Stale while revalidating, where that stays true: a body always goes out
with the ETag it was rendered for, and a request that finds no rendering
under way renders the list as the store is now, so a client that changed a
job and then asks for the list sees its change. Only a request that arrives
while another is rendering may be answered with the rendering in hand
instead of waiting for it:

- the same ETag whose body has aged (only a running job's ETA ages: the
  page counts it down itself) but is less than ``STALE_S`` old: any
  request, and the first one that finds it aged has it rendered again
  behind its answer;
- the previous ETag (the store has changed meanwhile) rendered less than
  ``STALE_S`` ago: a poll (``If-None-Match``; a 304 when that rendering is
  its copy) that does not say ``Cache-Control: no-cache``. A page without
  a copy (its first load, or after its own write: it drops its ETag) waits.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pipeline import views
from pipeline.store import Store

MAX_AGE_S = 1.0  # a body is rendered again after this long (a running job's ETA)
STALE_S = 2.0  # the oldest rendering served while the next is made
MAX_ENTRIES = 32  # bodies kept (by ETag), and questions remembered
MAX_FRAGMENTS = 5_000  # job views kept: 25 lists of 200; about 2 KB each with its key


def to_json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Rendered:
    etag: str
    body: bytes
    at: float  # by the clock of RenderedLists


class RenderedLists:
    """JSON bodies of the list by ETag, each rendered once (single flight)
    and reused for ``max_age_s``; the rendering in hand while another is
    made, where the module's rules allow."""

    def __init__(self, *, max_age_s: float = MAX_AGE_S, stale_s: float = STALE_S,
                 clock: Callable[[], float] = time.monotonic):
        self.max_age_s, self.stale_s, self.clock = max_age_s, stale_s, clock
        self._done: OrderedDict[str, Rendered] = OrderedDict()
        self._latest: OrderedDict[str, Rendered] = OrderedDict()  # by question
        self._rendering: dict[str, asyncio.Task] = {}
        self.renders = 0

    async def get(self, etag: str, render: Callable[[], Awaitable[bytes]], *,
                  question: str = "", poll: bool = False) -> Rendered:
        """The body for ``etag``, or one the rules allow instead of waiting.
        ``question``: what the list asks (the query without the store's
        revision); ``poll``: the request holds a copy and allows a stale one."""
        now = self.clock()
        kept = self._done.get(etag)
        if kept is not None and now - kept.at < self.max_age_s:
            return kept
        pending = self._rendering.get(etag)
        if kept is not None and now - kept.at < self.stale_s:
            # the same revision, aged (an ETA): rendered again behind this answer
            if pending is None:
                self._start(etag, render, question)
            return kept
        if pending is None:
            pending = self._start(etag, render, question)
        else:
            latest = self._latest.get(question)
            if poll and latest is not None and now - latest.at < self.stale_s:
                return latest
        return await asyncio.shield(pending)

    def _start(self, etag: str, render: Callable[[], Awaitable[bytes]],
               question: str) -> asyncio.Task:
        task = asyncio.ensure_future(self._render(etag, render, question))
        self._rendering[etag] = task

        def finished(task: asyncio.Task) -> None:
            if self._rendering.get(etag) is task:
                del self._rendering[etag]
            if not task.cancelled():
                task.exception()  # retrieved: no warning when nobody was waiting

        task.add_done_callback(finished)
        return task

    async def _render(self, etag: str, render: Callable[[], Awaitable[bytes]],
                      question: str) -> Rendered:
        done = Rendered(etag, await render(), self.clock())
        self.renders += 1
        for kept_by, key in ((self._done, etag), (self._latest, question)):
            kept_by[key] = done
            kept_by.move_to_end(key)
            while len(kept_by) > MAX_ENTRIES:
                kept_by.popitem(last=False)
        return done


class JobFragments:
    """Each job's view (``views.job_view``) as JSON, kept for the next
    rendering of any list: after a bulk retry of 20 jobs, a list of 200
    renders 20 views, not 200.

    A view is kept only where nothing but the job's row, its token counters
    and its place in the queue decide it, and under exactly those as its
    key, so a kept view is the one ``job_view`` would render now. A running
    job's view is never kept: whether its worker is alive and how far its
    ETA has counted down depend on the moment."""

    def __init__(self, max_entries: int = MAX_FRAGMENTS):
        self.max_entries = max_entries
        self._kept: dict[tuple, tuple[str, bytes]] = {}
        self._lock = threading.Lock()  # renderings run in several threads
        self.rendered = 0

    def view(self, store: Store, job, now: float, tokens: tuple[int, int] | None,
             positions: dict, histories: dict) -> tuple[str, bytes]:
        """(the job's shown state, its view as JSON); ``tokens``: its
        (done, total) where its view reads them, ``positions``:
        ``Store.queue_positions``."""
        if job.state == "RUNNING":
            view = views.job_view(store, job, now, histories, tokens, positions)
            return view["state"], to_json(view)
        key = (job, tokens, positions.get(job.id) if job.state == "QUEUED" else None)
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None:
            return kept
        view = views.job_view(store, job, now, histories, tokens, positions)
        kept = view["state"], to_json(view)
        with self._lock:
            self.rendered += 1
            if len(self._kept) >= self.max_entries:  # the older half goes
                for old in list(itertools.islice(self._kept, len(self._kept) // 2)):
                    del self._kept[old]
            self._kept[key] = kept
        return kept
