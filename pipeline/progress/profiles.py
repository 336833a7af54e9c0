"""Stage weights and rates measured on past jobs of the same profile.

A profile is (model, backend, device, dtype): the inference stage run of
each job records it (CTranslate2 int8 and transformers float32 on one CPU
run at very different rates, so they learn separately). A stage's weight
is the median share of wall time it took over the profile's last
``last_n`` succeeded jobs (the median, so one job that waited on a slow
upload does not move the bar for every later job); its rate is the median
units per second. With no history the defaults apply.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field

from pipeline.progress import DEFAULT_WEIGHTS, STAGES
from pipeline.store import Store


@dataclass(frozen=True)
class Profile:
    model: str
    backend: str  # hf or ctranslate2
    device: str
    dtype: str  # the compute type

    def __str__(self) -> str:
        return f"{self.model} on {self.device} ({self.backend} {self.dtype})"


@dataclass(frozen=True)
class StageHistory:
    weights: dict[str, float]  # shares of wall time, summing to 1
    rates: dict[str, float] = field(default_factory=dict)  # units per second
    jobs: int = 0  # how many past jobs these come from
    # median whole-job seconds per input byte: an ETA before any token is counted
    seconds_per_byte: float | None = None


def stage_history(store: Store, profile: Profile, last_n: int = 20) -> StageHistory:
    rows = store.profile_stage_rows(profile.model, profile.backend, profile.device,
                                    profile.dtype, last_n)
    per_job: dict[str, dict[str, tuple[float, float]]] = defaultdict(dict)
    for job_id, stage, wall, units in rows:
        per_job[job_id][stage] = (wall or 0.0, units or 0.0)
    complete = [stages for stages in per_job.values() if set(stages) == set(STAGES)]
    if not complete:
        return StageHistory(dict(DEFAULT_WEIGHTS))
    shares: dict[str, list[float]] = defaultdict(list)
    rates: dict[str, list[float]] = defaultdict(list)
    per_byte: list[float] = []
    for stages in complete:
        total = sum(wall for wall, _ in stages.values())
        if stages["preprocess"][1] > 0:  # preprocess units are input bytes
            per_byte.append(total / stages["preprocess"][1])
        for stage, (wall, units) in stages.items():
            if total > 0:
                shares[stage].append(wall / total)
            if wall > 0 and units > 0:
                rates[stage].append(units / wall)
    medians = {s: statistics.median(shares[s]) if shares[s] else 0.0 for s in STAGES}
    norm = sum(medians.values())
    weights = {s: medians[s] / norm for s in STAGES} if norm > 0 else dict(DEFAULT_WEIGHTS)
    return StageHistory(weights, {s: statistics.median(v) for s, v in rates.items()},
                        len(complete), statistics.median(per_byte) if per_byte else None)


def history_for(store: Store, translator, model: str, last_n: int = 20) -> StageHistory:
    """The history of the profile this translator runs as (defaults for a
    stand-in without a model)."""
    info = translator.describe()
    if not model or info.backend == "none":
        return StageHistory(dict(DEFAULT_WEIGHTS))
    profile = Profile(model, info.backend, info.device, info.compute_type)
    # After ETA drift, over the recent jobs only (pipeline.monitoring.drift).
    last_n = store.history_window(model, info.backend, info.device, info.compute_type, last_n)
    return stage_history(store, profile, last_n)
