"""Progress and time: what a job has done, what is left, and what past jobs
say about both.

- ``events``: the runner's events (``Events``), the weighted overall
  fraction, and the observers that fan them out and keep a running job's
  snapshot in the store;
- ``eta``: time left, in a stage and for the whole job: the one place that
  turns a rate into seconds (``seconds_left``), for the bar, the stored
  snapshot and the read commands alike;
- ``profiles``: stage weights and rates measured on past jobs of the same
  (model, backend, device, dtype);
- ``stats``: figures over many jobs (outcomes, retries, ETA accuracy);
- ``bench``: stage timings on generated documents, which become history.

Only ``events`` is imported with the package: the store and the runner use
it, and the others read the store.
"""

from pipeline.progress.events import (DEFAULT_WEIGHTS, STAGES, Events, Fanout, LiveProgress,
                                      ProgressTracker, overall_fraction)

__all__ = ["DEFAULT_WEIGHTS", "STAGES", "Events", "Fanout", "LiveProgress", "ProgressTracker",
           "overall_fraction"]
