"""The terminal progress bar: one listener of the pipeline's events."""

from __future__ import annotations

import sys
import time

from pipeline.config import JobParams
from pipeline.progress import ProgressTracker
from pipeline.store import Job, Store


class TqdmProgress(ProgressTracker):
    """The bar: overall weighted progress (weights measured on this profile's
    past jobs), the stage, tokens per second and an ETA that is frozen while
    a retry waits."""

    def __init__(self, history, elapsed_before: float):
        from tqdm import tqdm

        from pipeline.eta import JobEta

        self.eta = JobEta(history, time.time, elapsed_before=elapsed_before)
        self.bar = tqdm(total=1000, desc="preprocess", unit="‰", dynamic_ncols=True,
                        bar_format="{desc:<12} {percentage:3.0f}%|{bar}| {elapsed}{postfix}",
                        file=sys.stderr)
        super().__init__(self._render, weights=history.weights)

    def stage_started(self, stage: str, total: float, done: float = 0.0) -> None:
        self.eta.stage_started(stage, total, done)
        super().stage_started(stage, total, done)

    def stage_progress(self, stage: str, done: float) -> None:
        self.eta.stage_progress(stage, done)
        super().stage_progress(stage, done)

    def stage_finished(self, stage: str) -> None:
        self.eta.stage_finished(stage)
        super().stage_finished(stage)

    def retrying(self, what, delay_s, error_class, attempt, limit) -> None:
        self.eta.retrying(what, delay_s, error_class, attempt, limit)
        super().retrying(what, delay_s, error_class, attempt, limit)

    def _render(self, fraction: float, stage: str, detail: str) -> None:
        self.bar.set_description_str(stage, refresh=False)
        self.bar.set_postfix_str(detail or self.eta.text(), refresh=False)
        self.bar.update(round(fraction * 1000) - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def progress_bar(store: Store, job: Job, translator) -> TqdmProgress:
    from pipeline.profiles import history_for

    params = JobParams.from_json(job.params)
    return TqdmProgress(history_for(store, translator, params.model), store.wall_time(job.id))
