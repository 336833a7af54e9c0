"""What ``/metrics`` says about the store: a Prometheus collector that reads
it at each scrape.

The store is the truth about jobs, whichever process ran them, so one scrape
of ``serve`` (or of any worker's ``--metrics-port``) shows every worker's
work. Each scrape costs a fixed handful of statements, however many jobs the
store holds: the running totals the triggers keep (``pipeline.store.totals``),
the jobs by state from an index, the live workers and running jobs' rates,
and the profiles' ETA drift. Labels are bounded: stage, state, outcome, error
class, decision, reason, model, backend, device, compute type, progress mark;
never a job id or a file name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily)
from prometheus_client.registry import Collector

from pipeline.store.totals import ETA_ERROR_BUCKETS, STAGE_SECONDS_BUCKETS

PREFIX = "nllb"
JOB_STATES = ("QUEUED", "RUNNING", "INTERRUPTED", "SUCCEEDED", "FAILED", "CANCELED")
OUTCOMES = ("SUCCEEDED", "FAILED", "CANCELED")
LIVE_WORKER_S = 60.0  # a worker that said nothing for this long is not counted
PROFILE = ("model", "backend", "device", "compute_type")
REPAIR_STEPS = ("guarded", "clauses")


class StoreCollector(Collector):
    """Metrics read from the store that ``store()`` returns (a connection of
    the calling thread's)."""

    def __init__(self, store: Callable[[], object], *, live_worker_s: float = LIVE_WORKER_S):
        self.store, self.live_worker_s = store, live_worker_s

    def describe(self):
        return []  # read at every scrape; nothing to check at registration

    def collect(self):
        store = self.store()
        now = store.clock()
        gauges = store.job_gauges()
        totals = store.metric_totals()
        yield from self._jobs(gauges, totals, now)
        yield from self._workers(store, gauges)
        yield from self._attempts(totals)
        yield from self._tokens(totals, store)
        yield from self._histograms(totals)
        yield from self._drift(store)
        yield self._reviews(totals)

    def _jobs(self, gauges: dict, totals, now: float):
        states = dict.fromkeys(JOB_STATES, 0)
        states.update(gauges["states"])
        states["INTERRUPTED"] = gauges["expired_leases"]
        states["RUNNING"] = max(0, states["RUNNING"] - gauges["expired_leases"])
        jobs = GaugeMetricFamily(f"{PREFIX}_jobs", "Jobs in the store by state (INTERRUPTED: "
                                 "RUNNING whose lease expired).", labels=["state"])
        for state, n in sorted(states.items()):
            jobs.add_metric([state], n)
        yield jobs
        yield _one_label_counter(
            "jobs_finished", "Jobs that ended, by outcome (a job retried by hand counts again "
            "when it ends again).", "outcome", OUTCOMES, totals)
        yield GaugeMetricFamily(f"{PREFIX}_queue_depth", "Jobs waiting in the queue.",
                                value=states["QUEUED"])
        oldest = gauges["oldest_queued_at"]
        yield GaugeMetricFamily(f"{PREFIX}_queue_oldest_age_seconds", "Age of the oldest queued "
                                "job (0 when none waits).",
                                value=max(0.0, now - oldest) if oldest is not None else 0.0)

    def _workers(self, store, gauges: dict):
        yield GaugeMetricFamily(f"{PREFIX}_workers_live", "Queue workers seen in the last "
                                f"{self.live_worker_s:.0f} s or holding a live lease.",
                                value=store.live_workers(self.live_worker_s))
        yield GaugeMetricFamily(f"{PREFIX}_leases", "Jobs held under a live lease.",
                                value=gauges["leases"])

    def _attempts(self, totals):
        attempts = CounterMetricFamily(
            f"{PREFIX}_attempts", "Failed attempts, by stage, error class and what was decided.",
            labels=["stage", "error_class", "decision"])
        flags = CounterMetricFamily(f"{PREFIX}_quality_flags", "Chunks accepted with a quality "
                                    "flag, by reason.", labels=["reason"])
        repairs = CounterMetricFamily(f"{PREFIX}_quality_repairs", "Repairs of the quality "
                                      "ladder, by step and reason.", labels=["step", "reason"])
        splits = 0.0
        for metric, labels, value in totals:
            if metric == "attempts_total":
                attempts.add_metric([labels["stage"], labels["error_class"], labels["decision"]],
                                    value)
                if labels["decision"] in ("split", "split_chunk"):
                    splits += value
            elif metric == "quality_total" and labels["decision"] == "flag":
                flags.add_metric([labels["reason"]], value)
            elif metric == "quality_total" and labels["decision"] in REPAIR_STEPS:
                repairs.add_metric([labels["decision"], labels["reason"]], value)
        yield attempts
        yield CounterMetricFamily(f"{PREFIX}_oom_splits", "Batches split in two, and sentences "
                                  "split, after running out of memory.", value=splits)
        yield flags
        yield repairs

    def _tokens(self, totals, store):
        tokens = {kind: CounterMetricFamily(
            f"{PREFIX}_{kind}_tokens", f"{kind.capitalize()} tokens of committed batches.",
            labels=["backend", "device", "compute_type"]) for kind in ("source", "generated")}
        reused = CounterMetricFamily(f"{PREFIX}_memory_reused_chunks", "Chunks translated "
                                     "without inference: from the translation memory, or as a "
                                     "repeat in their document.", labels=["how"])
        seen_reuse = set()
        for metric, labels, value in totals:
            if metric == "tokens_total":
                tokens[labels["kind"]].add_metric(
                    [labels["backend"], labels["device"], labels["compute_type"]], value)
            elif metric == "reused_total":
                reused.add_metric([labels["how"]], value)
                seen_reuse.add(labels["how"])
        for how in {"memory", "document"} - seen_reuse:
            reused.add_metric([how], 0.0)
        yield from tokens.values()
        yield reused
        yield GaugeMetricFamily(f"{PREFIX}_tokens_per_second", "Source tokens per second of "
                                "the jobs in inference now, summed.",
                                value=store.running_tokens_per_s())

    def _histograms(self, totals):
        yield _histogram(totals, "stage_seconds", f"{PREFIX}_stage_duration_seconds",
                         "Wall time of each stage of the jobs that ended, per profile.",
                         ["stage", *PROFILE], STAGE_SECONDS_BUCKETS)
        yield _histogram(totals, "eta_error", f"{PREFIX}_eta_error_ratio",
                         "|predicted - actual| / actual total time of succeeded jobs, "
                         "at each progress mark (percent).", ["mark"], ETA_ERROR_BUCKETS)

    def _reviews(self, totals) -> CounterMetricFamily:
        return _one_label_counter(
            "review_marks", "Delivered chunks readers marked wrong: with a correction "
            "(corrected) or without (marked).", "kind", ("marked", "corrected"), totals)

    def _drift(self, store):
        drifts = getattr(store, "eta_drifts", None)
        if drifts is None:
            return
        error = GaugeMetricFamily(f"{PREFIX}_eta_drift_ratio", "Median ETA error of the "
                                  "profile's recent jobs at the drift mark.", labels=[*PROFILE])
        drifting = GaugeMetricFamily(f"{PREFIX}_eta_drifting", "1 while the profile's ETA "
                                     "error is past the threshold (recalibrated).",
                                     labels=[*PROFILE])
        recalibrations = CounterMetricFamily(f"{PREFIX}_eta_recalibrations", "Times the "
                                             "profile was recalibrated after ETA drift.",
                                             labels=[*PROFILE])
        for d in drifts():
            key = [d.model, d.backend, d.device, d.dtype]
            error.add_metric(key, d.error)
            drifting.add_metric(key, 1.0 if d.drifting else 0.0)
            recalibrations.add_metric(key, d.recalibrations)
        yield error
        yield drifting
        yield recalibrations


def _histogram(totals, name: str, full_name: str, documentation: str, labels: list[str],
               bounds: tuple[float, ...]) -> HistogramMetricFamily:
    buckets: dict[tuple, list[float]] = defaultdict(lambda: [0.0] * (len(bounds) + 1))
    sums: dict[tuple, float] = defaultdict(float)
    for metric, row, value in totals:
        if metric == f"{name}_bucket":
            buckets[tuple(str(row[k]) for k in labels)][int(row["bucket"])] += value
        elif metric == f"{name}_sum":
            sums[tuple(str(row[k]) for k in labels)] += value
    family = HistogramMetricFamily(full_name, documentation, labels=labels)
    for key, counts in sorted(buckets.items()):
        cumulative, running = [], 0.0
        for bound, n in zip([*map(str, bounds), "+Inf"], counts):
            running += n
            cumulative.append((bound, running))
        family.add_metric(list(key), cumulative, sums[key])
    return family


def _one_label_counter(name: str, help_text: str, label: str, values, totals
                       ) -> CounterMetricFamily:
    """The stored total ``<name>_total`` by its one ``label``, each of
    ``values`` present (0 until it first counts)."""
    family = CounterMetricFamily(f"{PREFIX}_{name}", help_text, labels=[label])
    counts = dict.fromkeys(values, 0.0)
    for metric, labels, value in totals:
        if metric == f"{name}_total":
            counts[labels[label]] = value
    for key, n in counts.items():
        family.add_metric([key], n)
    return family
