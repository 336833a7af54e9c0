"""The list of jobs: its query, its ETag, and one rendering shared by every
poller that asks the same question at the same time.

The ETag is what the list depends on: the store's revision (it moves with
every visible change of any job), which running jobs have lost their
worker (they turn INTERRUPTED without any write), the query (states,
search, cursor, limit) and the hour (what counts as a recent failure). A poll
whose ``If-None-Match`` still matches is answered 304 from those two small
reads alone.

A full answer is rendered once per ETag, from the job views kept since the
last one (``pipeline.api.rendered``: what is kept, and when a poll may get
the rendering in hand while the next is made).
"""

from __future__ import annotations

import hashlib
import json
import os

from pipeline import views
from pipeline.api.rendered import JobFragments, to_json
from pipeline.errors import InvalidInput
from pipeline.store import Store

SHOWN_STATES = ("QUEUED", "RUNNING", views.INTERRUPTED, "SUCCEEDED", "FAILED", "CANCELED")
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
RECENT_FAILURE_S = 24 * 3600  # a failure this recent is listed with the running jobs
RECENTLY_FINISHED_S = 3600  # what the page may still have to announce
MAX_QUERY = 200


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


def parse_query(text: str | None) -> str:
    text = (text or "").strip()
    if len(text) > MAX_QUERY or not text.isprintable():
        raise InvalidInput(f"q must be at most {MAX_QUERY} printable characters")
    return text


def make_cursor(job) -> str:
    """Where the page after ``job`` starts: its (created_at, id) key."""
    return f"{job.created_at!r}~{job.id}"


def parse_cursor(text: str | None) -> tuple[float, str] | None:
    if not text:
        return None
    at, sep, job_id = text.partition("~")
    try:
        value = float(at)
    except ValueError:
        value = float("nan")
    if not sep or value != value or not job_id.isalnum() or len(job_id) > 64:
        raise InvalidInput(f"cursor {text[:80]!r} is not one this server gave "
                           "(use next_cursor of the previous page)")
    return value, job_id


def interrupted_ids(store: Store, now: float) -> list[str]:
    """Running jobs whose worker is gone."""
    return sorted(j.id for j in store.jobs_in_states(("RUNNING",), 10_000)
                  if views.shown_state(j, now) == views.INTERRUPTED)


def question(states: tuple[str, ...], limit: int, query: str = "",
             cursor: str | None = None) -> str:
    """What a request for the list asks, whatever the store holds."""
    return json.dumps([states, limit, query, cursor])


def list_etag(store: Store, now: float, states: tuple[str, ...], limit: int, query: str = "",
              cursor: str | None = None) -> str:
    key = json.dumps([store.revision(), interrupted_ids(store, now),
                      question(states, limit, query, cursor), int(now // 3600)])
    return 'W/"' + hashlib.blake2s(key.encode(), digest_size=10).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison against an If-None-Match header."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def list_body(store: Store, states: tuple[str, ...], limit: int, now: float, query: str = "",
              after: tuple[float, str] | None = None) -> dict:
    """``list_json`` as a dict, rendered from scratch."""
    return json.loads(list_json(store, states, limit, now, query, after, JobFragments()))


def list_json(store: Store, states: tuple[str, ...], limit: int, now: float, query: str = "",
              after: tuple[float, str] | None = None,
              fragments: JobFragments | None = None) -> bytes:
    """The list as JSON: ``{"jobs", "attention", "next_cursor", "counts",
    "recently_finished", "now"}``: a page of jobs newest first (filtered by
    their shown state and the search ``query``, after the keyset ``after``);
    on the first page of the unfiltered list, ``attention``: the running
    jobs and the failures of the last day, which the page shows first; every
    job counted by state; the jobs that finished in the last hour (id, name,
    state, finished_at), whatever the filter, for the page's notifications.
    Each job's view comes from ``fragments`` where it was rendered before."""
    fragments = JobFragments() if fragments is None else fragments
    stored = tuple(dict.fromkeys("RUNNING" if s == views.INTERRUPTED else s for s in states))
    jobs = store.list_jobs(states=stored, query=query, after=after, limit=limit + 1)
    more, jobs = len(jobs) > limit, jobs[:limit]
    first = after is None and not states and not query
    attention = store.attention_jobs(now - RECENT_FAILURE_S) if first else []
    everything = list({j.id: j for j in [*attention, *jobs]}.values())
    # Token counters only where a view reads them (``views.job_progress``,
    # ``views.job_eta``): a job in inference that has not succeeded, a running job.
    counters = store.job_counters([j.id for j in everything if j.state == "RUNNING" or (
        j.stage == "inference" and j.state != "SUCCEEDED")])
    positions = store.queue_positions() if any(j.state == "QUEUED" for j in everything) else {}
    histories: dict = {}
    rendered = {j.id: fragments.view(store, j, now, counters[j.id].tokens if j.id in counters
                                     else None, positions, histories) for j in everything}
    shown = [rendered[j.id][1] for j in jobs if not states or rendered[j.id][0] in states]
    counts = {s: 0 for s in SHOWN_STATES}
    counts.update(store.state_counts())
    counts[views.INTERRUPTED] = len(interrupted_ids(store, now))
    counts["RUNNING"] -= counts[views.INTERRUPTED]
    finished = [{"id": job_id, "name": os.path.basename(path), "state": state,
                 "finished_at": finished_at}
                for job_id, path, state, finished_at in store.finished_since(
                    now - RECENTLY_FINISHED_S)]
    rest = to_json({"next_cursor": make_cursor(jobs[-1]) if more else None, "counts": counts,
                  "recently_finished": finished, "now": now})
    return b"".join((b'{"jobs":[', b",".join(shown), b'],"attention":[',
                     b",".join(rendered[j.id][1] for j in attention), b"],", rest[1:]))
