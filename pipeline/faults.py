"""The fault-injection spec: what ``--inject-faults`` asks for, checked
without torch.

``models.faults`` does the injecting (it raises real torch exceptions); the
spec is parsed here so that a bad one is refused before anything else, even
when the job is already done and no model would be loaded.

- ``oom``: probability that a call with more than one sentence runs out of
  memory (memory pressure grows with the batch; one sentence always fits).
- ``transient``: probability, per sentence in a call, of a transient device
  error that fails the whole call.
- ``seed``: the random source's seed, so a run can be repeated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.errors import InvalidInput

ENV_VAR = "NLLB_PIPELINE_INJECT_FAULTS"
_EXAMPLE = "expected e.g. 'oom=0.2,transient=0.05,seed=7'"


@dataclass(frozen=True)
class FaultSpec:
    oom: float = 0.0  # probability per call of more than one sentence
    transient: float = 0.0  # probability per sentence in a call
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("oom", "transient"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise InvalidInput(f"fault rate {name} must be between 0 and 1, not {value}")

    @classmethod
    def parse(cls, spec: str, *, source: str = "--inject-faults") -> FaultSpec:
        """``"oom=0.2,transient=0.05,seed=7"``; errors name ``source`` (the
        flag or the environment variable the spec came from)."""
        values: dict[str, float | int] = {}
        for item in spec.split(","):
            key, sep, value = item.strip().partition("=")
            try:
                if not sep or key not in ("oom", "transient", "seed"):
                    raise ValueError
                values[key] = int(value) if key == "seed" else float(value)
                if key != "seed" and not (math.isfinite(values[key]) and 0 <= values[key] <= 1):
                    raise ValueError
            except ValueError:
                raise InvalidInput(
                    f"{source}: bad fault spec {item.strip()!r} ({_EXAMPLE}; rates between "
                    "0 and 1)") from None
        return cls(**values)

    def __str__(self) -> str:
        return f"oom={self.oom},transient={self.transient},seed={self.seed}"
