"""The fault-injection spec: what ``--inject-faults`` asks for, checked
without torch.

``models.faults`` does the injecting (it raises real torch exceptions); the
spec is parsed here so that a bad one is refused before anything else, even
when the job is already done and no model would be loaded.

- ``oom``: probability that a call with more than one sentence runs out of
  memory (memory pressure grows with the batch; one sentence always fits).
- ``transient``: probability, per sentence in a call, of a transient device
  error that fails the whole call.
- ``device_fatal``: probability, per call, that the device breaks for good
  (an illegal memory access poisons a CUDA context): that call and every
  later one on it fail, until the run moves to ``--fallback-device``.
- ``slow``: seconds added to every call, as a slower device would take (to
  watch batches in flight on Ray actors, and kill one while it holds some).
- ``seed``: the random source's seed, so a run can be repeated.
"""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.errors import InvalidInput

ENV_VAR = "NLLB_PIPELINE_INJECT_FAULTS"
KINDS = ("oom", "transient", "device_fatal")
_EXAMPLE = "expected e.g. 'oom=0.2,transient=0.05,device_fatal=0.01,seed=7'"


@dataclass(frozen=True)
class FaultSpec:
    oom: float = 0.0  # probability per call of more than one sentence
    transient: float = 0.0  # probability per sentence in a call
    device_fatal: float = 0.0  # probability per call that the device breaks for good
    seed: int = 0
    slow: float = 0.0  # seconds added to every call

    def __post_init__(self) -> None:
        for name in KINDS:
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise InvalidInput(f"fault rate {name} must be between 0 and 1, not {value}")
        if not (math.isfinite(self.slow) and 0 <= self.slow <= 60):
            raise InvalidInput(f"slow must be between 0 and 60 seconds, not {self.slow}")

    @classmethod
    def parse(cls, spec: str, *, source: str = "--inject-faults") -> FaultSpec:
        """``"oom=0.2,transient=0.05,seed=7"``; errors name ``source`` (the
        flag or the environment variable the spec came from)."""
        values: dict[str, float | int] = {}
        for item in spec.split(","):
            key, sep, value = item.strip().partition("=")
            try:
                if not sep or key not in (*KINDS, "seed", "slow"):
                    raise ValueError
                values[key] = int(value) if key == "seed" else float(value)
                top = 60 if key == "slow" else 1
                if key != "seed" and not (math.isfinite(values[key]) and 0 <= values[key] <= top):
                    raise ValueError
            except ValueError:
                raise InvalidInput(
                    f"{source}: bad fault spec {item.strip()!r} ({_EXAMPLE}; rates between "
                    "0 and 1; slow in seconds up to 60)") from None
        return cls(**values)

    def __str__(self) -> str:
        fatal = f",device_fatal={self.device_fatal}" if self.device_fatal else ""
        slow = f",slow={self.slow}" if self.slow else ""
        return f"oom={self.oom},transient={self.transient}{fatal}{slow},seed={self.seed}"


KILL_AFTER_COMMITS_VAR = "NLLB_PIPELINE_KILL_AFTER_COMMITS"


def kill_after_commits() -> Callable[[], None]:
    """A crash-test hook, called after every committed batch: with
    ``$NLLB_PIPELINE_KILL_AFTER_COMMITS=K`` the process SIGKILLs itself right
    after its K-th commit, whatever is in flight (the engine's next call, a
    prepared batch). A chain of such runs kills a job at every batch
    boundary in turn (``tests/test_kill_every_batch.py``). Unset: nothing."""
    value = os.environ.get(KILL_AFTER_COMMITS_VAR, "")
    if not value:
        return lambda: None
    if not value.isdigit() or int(value) < 1:
        raise InvalidInput(f"${KILL_AFTER_COMMITS_VAR} must be a whole number of commits >= 1, "
                           f"not {value!r}")
    left = [int(value)]

    def after_commit() -> None:
        left[0] -= 1
        if left[0] == 0:
            os.kill(os.getpid(), signal.SIGKILL)

    return after_commit
