"""ETA drift, acted on: when a profile's recent ETAs are off, recalibrate.

After each job that succeeds, its profile (model, backend, device, compute
type) is checked: over the last ``jobs`` succeeded jobs of the profile that
predicted their total at the ``mark`` (percent of progress), the median of
|predicted - actual| / actual is its ETA error. Past ``threshold`` the
profile is *drifting*: the machine, the model or the documents changed, and
the median over the last 20 jobs that the stage weights and rates come from
(``pipeline.progress.profiles``) still speaks for the old regime. So from then on the
profile's history is taken over its last ``jobs`` jobs only, widening by one
per later job back to the usual 20: the weights and rates follow the jobs
that drifted. The flip to drifting is stored (once, whichever worker sees
it), logged as one warning, counted (``nllb_eta_recalibrations_total``) and
shown (``nllb_eta_drifting``, ``nllb_eta_drift_ratio``) by ``/metrics``.

The spec is ``threshold=25,mark=50,jobs=10`` (the defaults; threshold in
percent; ``off`` turns the check off), from ``--eta-drift``,
``$NLLB_PIPELINE_ETA_DRIFT`` or ``[run] eta_drift`` in the config file.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass

from pipeline.errors import InvalidInput

log = logging.getLogger("nllb_pipeline")

DEFAULT_SPEC = "threshold=25,mark=50,jobs=10"
MARKS = (10, 25, 50, 75, 90)  # where a job records its predicted total (pipeline.progress.eta)
HISTORY_JOBS = 20  # the usual window of pipeline.progress.profiles


@dataclass(frozen=True)
class EtaDrift:
    threshold: float = 0.25  # median |predicted - actual| / actual past which a profile drifts
    mark: int = 50  # the progress mark (percent) whose predictions are judged
    jobs: int = 10  # over the profile's last this many succeeded jobs
    enabled: bool = True

    @classmethod
    def parse(cls, spec: str | None) -> "EtaDrift":
        """``threshold=25,mark=50,jobs=10`` (any of them), or ``off``."""
        spec = (spec or "").strip()
        if spec == "off":
            return cls(enabled=False)
        values: dict = {}
        for item in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, raw = item.partition("=")
            if not sep or key not in ("threshold", "mark", "jobs"):
                raise InvalidInput(f"bad ETA drift setting {item!r} (expected e.g. "
                                   f"'{DEFAULT_SPEC}', or 'off')")
            try:
                number = float(raw) if key == "threshold" else int(raw)
            except ValueError:
                raise InvalidInput(f"ETA drift {key} must be a number, not {raw!r}") from None
            values[key] = number / 100 if key == "threshold" else number
        threshold = values.get("threshold", cls.threshold)
        if not 0 < threshold < 100:  # NaN fails this too
            raise InvalidInput(f"ETA drift threshold must be a percentage > 0, not "
                               f"{threshold * 100:g}")
        if values.get("mark", cls.mark) not in MARKS:
            raise InvalidInput(f"ETA drift mark must be one of {', '.join(map(str, MARKS))}, "
                               f"not {values['mark']}")
        if not 1 <= values.get("jobs", cls.jobs) <= HISTORY_JOBS:
            raise InvalidInput(f"ETA drift jobs must be 1-{HISTORY_JOBS}, not {values['jobs']}")
        return cls(**values)


def check_after_job(store, job_id: str, drift: EtaDrift) -> bool | None:
    """Judge the profile the job ran on (after it succeeded); recalibrate and
    warn when it starts drifting. Returns whether it drifts (None: not judged)."""
    profile = store.inference_profile(job_id)
    if not drift.enabled or profile is None:
        return None
    pairs = store.recent_eta_predictions(*profile, mark=drift.mark, last_n=drift.jobs)
    errors = [abs(predicted - actual) / actual for predicted, actual in pairs if actual]
    if len(errors) < drift.jobs:
        store.count_job_for_drift(*profile)
        return None
    error = statistics.median(errors)
    started = store.record_eta_drift(*profile, error=error,
                                     drifting=error > drift.threshold, window=drift.jobs)
    if started:
        model, backend, device, dtype = profile
        log.warning("ETA drift: %s on %s (%s %s): median ETA error at %d%% over the last %d "
                    "jobs is %.0f%% (threshold %g%%); stage weights and rates now come from "
                    "those jobs", model, device, backend, dtype, drift.mark, drift.jobs,
                    error * 100, drift.threshold * 100)
    return error > drift.threshold
