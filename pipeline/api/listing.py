"""The list of jobs: its query, its ETag, and one rendering shared by every
poller that asks the same question at the same time.

The ETag is what the list depends on: the store's revision (it moves with
every visible change of any job), which running jobs have lost their
worker (they turn INTERRUPTED without any write), and the query. A poll
whose ``If-None-Match`` still matches is answered 304 from those two small
reads alone.

A full answer is rendered once per ETag and kept for ``MAX_AGE_S``: fifty
pages polling one busy queue then cost one rendering per change, not fifty
(requests that arrive while it is being rendered wait for that one). The
only thing that ages within those seconds is a running job's ETA, which the
page counts down by itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from pipeline import views
from pipeline.errors import InvalidInput
from pipeline.store import Store

SHOWN_STATES = ("QUEUED", "RUNNING", views.INTERRUPTED, "SUCCEEDED", "FAILED", "CANCELED")
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
MAX_AGE_S = 1.0
MAX_ENTRIES = 32


def parse_states(text: str | None) -> tuple[str, ...]:
    """``state=FAILED,CANCELED`` as a tuple; () for every state."""
    if not text:
        return ()
    states = tuple(s.strip().upper() for s in text.split(",") if s.strip())
    unknown = [s for s in states if s not in SHOWN_STATES]
    if unknown:
        raise InvalidInput(f"unknown state {unknown[0]!r} (one of {', '.join(SHOWN_STATES)})")
    return states


def parse_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {text!r}")
    return int(text)


def interrupted_ids(store: Store, now: float) -> list[str]:
    """Running jobs whose worker is gone."""
    return sorted(j.id for j in store.jobs_in_states(("RUNNING",), 10_000)
                  if views.shown_state(j, now) == views.INTERRUPTED)


def list_etag(store: Store, now: float, states: tuple[str, ...], limit: int) -> str:
    key = json.dumps([store.revision(), interrupted_ids(store, now), states, limit])
    return 'W/"' + hashlib.blake2s(key.encode(), digest_size=10).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison against an If-None-Match header."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def list_body(store: Store, states: tuple[str, ...], limit: int, now: float) -> dict:
    """``{"jobs": [...], "counts": {state: n}, "now": unix time}``: the jobs
    newest first (filtered by their shown state), every job counted."""
    stored = tuple(dict.fromkeys("RUNNING" if s == views.INTERRUPTED else s for s in states))
    jobs = store.jobs_in_states(stored, limit) if states else store.jobs(limit)
    histories: dict = {}
    counters = store.job_counters([j.id for j in jobs])
    shown = [views.job_view(store, j, now, histories, counters[j.id].tokens) for j in jobs]
    if states:
        shown = [v for v in shown if v["state"] in states]
    counts = {s: 0 for s in SHOWN_STATES}
    counts.update(store.jobs_by_state(float("-inf")))
    counts[views.INTERRUPTED] = len(interrupted_ids(store, now))
    counts["RUNNING"] -= counts[views.INTERRUPTED]
    return {"jobs": shown, "counts": counts, "now": now}


class RenderedLists:
    """JSON bodies of the list by ETag, each rendered once (single flight)
    and reused for ``max_age_s``."""

    def __init__(self, *, max_age_s: float = MAX_AGE_S, clock: Callable[[], float] =
                 time.monotonic):
        self.max_age_s, self.clock = max_age_s, clock
        self._done: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._rendering: dict[str, asyncio.Future] = {}
        self.renders = 0

    async def get(self, etag: str, render: Callable[[], Awaitable[bytes]]) -> bytes:
        kept = self._done.get(etag)
        if kept is not None and self.clock() - kept[0] < self.max_age_s:
            return kept[1]
        pending = self._rendering.get(etag)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._rendering[etag] = future
        try:
            body = await render()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # retrieved: no warning when nobody was waiting
            raise
        finally:
            del self._rendering[etag]
        self.renders += 1
        future.set_result(body)
        self._done[etag] = (self.clock(), body)
        self._done.move_to_end(etag)
        while len(self._done) > MAX_ENTRIES:
            self._done.popitem(last=False)
        return body
