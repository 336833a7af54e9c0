"""A stage's step tried again through transient failures, by the run's policy.

Upload (a delivery) and preprocess (reading an input at a storage URL)
meet the same failures outside the process: throttling, 5xx, timeouts,
connection resets. Their step makes one attempt and raises an
``AttemptFailed`` of its class; ``attempted`` decides about the next with
the run's ``RetryPolicy``:

- every failed attempt is a row in the store before its wait starts, and a
  restarted process continues the round where it stopped: the same counts,
  the rest of a stored wait;
- each error class has its own budget (``RetryPolicy.class_limits``): a
  429 followed by a reset does not use up the SERVER attempts;
- a server's Retry-After is honoured (up to ``max_retry_after_s``);
- a class that is not retryable (AUTH, INVALID_INPUT) or an exhausted
  budget ends the job FAILED at this stage, and ``retry`` resumes there.

The wait is ``ctx.sleep``: it answers a cancel, SIGTERM or a lost lease.
"""

from __future__ import annotations

import logging
import traceback
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from pipeline.errors import AttemptFailed, ErrorClass

log = logging.getLogger("nllb_pipeline")
ATTEMPTS = 3  # for a retryable class the policy sets no limit for
T = TypeVar("T")


def attempted(ctx, stage: str, step: Callable[[], T], *,
              failure: type[AttemptFailed] = AttemptFailed) -> T:
    """``step()``'s result, calling it again after each ``failure`` the
    policy says to retry; the last failure (its ``attempt`` set) when the
    policy gives up."""
    store, job, policy = ctx.store, ctx.job, ctx.policy
    history = store.open_attempts(job.id, stage)
    used: Counter[ErrorClass] = Counter()
    for a in history:
        used[ErrorClass(a.error_class)] = max(used[ErrorClass(a.error_class)], a.attempt)
    _finish_stored_wait(ctx, stage, history)
    while True:
        ctx.check_running()
        try:
            return step()
        except failure as err:
            error_class = err.error_class
            used[error_class] += 1
            attempt = used[error_class]
            limit = policy.limit(error_class, ATTEMPTS)
            decision = policy.decide(error_class, attempt, ctx.rng, default_limit=ATTEMPTS,
                                     retry_after_s=err.retry_after_s)
            if not decision.retry:
                if error_class.retryable:
                    raise type(err)(f"{err} (gave up after {attempt} {error_class.value} "
                                    f"attempt{'s' if attempt > 1 else ''})",
                                    error_class=error_class, attempt=attempt) from err
                err.attempt = attempt
                raise
            store.record_attempt(job.id, stage, error_class=error_class, message=str(err),
                                 tb="".join(traceback.format_exception(err)), attempt=attempt,
                                 decision="retry", delay_s=decision.delay_s)
            log.warning("%s failed: %s [%s, attempt %d/%d]; retrying in %.1f s", stage, err,
                        error_class.value, attempt, limit, decision.delay_s)
            ctx.events.retrying(stage, decision.delay_s, error_class.value.upper(),
                                attempt + 1, limit)
            ctx.sleep(decision.delay_s)


def _finish_stored_wait(ctx, stage: str, history) -> None:
    """A process killed mid-wait left the wait on record: sleep what is left."""
    if not history or history[-1].decision != "retry" or not history[-1].delay_s:
        return
    last = history[-1]
    rest = last.at + last.delay_s - ctx.clock()
    if rest > 0:
        error_class = ErrorClass(last.error_class)
        ctx.events.retrying(stage, rest, error_class.value.upper(), last.attempt + 1,
                            ctx.policy.limit(error_class, ATTEMPTS))
        ctx.sleep(rest)
