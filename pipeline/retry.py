"""Retry policy as data: what to do about a failed attempt, and how long to wait.

The policy decides; it never sleeps. The runner passes in the random source
(and owns the clock and the sleep), so a test can pass a seeded
``random.Random`` and assert the exact delays.

Jitter is "equal jitter" (AWS Architecture Blog, "Exponential Backoff and
Jitter", 2015): half of the exponential delay is kept, the other half is
random. Keeping a floor means a retry never fires at once after a failure,
and the random half spreads out many workers that failed together.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from pipeline.errors import ErrorClass, InvalidInput


@dataclass(frozen=True)
class Backoff:
    base_s: float = 1.0  # delay before the first retry, before jitter
    factor: float = 1.6  # growth per attempt
    cap_s: float = 20.0  # no single wait is longer than this

    def __post_init__(self) -> None:
        # NaN passes no comparison and infinity every upper one: both refused.
        if not all(math.isfinite(v) for v in (self.base_s, self.factor, self.cap_s)):
            raise InvalidInput("backoff base, factor and cap must be finite numbers")
        if self.base_s < 0 or self.factor < 1 or self.cap_s < 0:
            raise InvalidInput("backoff needs base >= 0, factor >= 1 and cap >= 0")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Wait after failed attempt number ``attempt`` (1-based)."""
        full = min(self.cap_s, self.base_s * self.factor ** (attempt - 1))
        return full / 2 + rng.uniform(0, full / 2)


_DEFAULT_LIMITS = MappingProxyType({
    ErrorClass.DEVICE_TRANSIENT: 3,
    ErrorClass.TIMEOUT: 5,
    ErrorClass.NETWORK: 5,
    ErrorClass.RATE_LIMITED: 5,
    ErrorClass.SERVER: 3,
    # A full disk rarely empties itself within seconds: a few long waits give
    # a person (or a cleanup job) time to free space, then the job fails.
    ErrorClass.DISK_FULL: 3,
    # A batch whose actor died is sent again this many times in all; a batch
    # that keeps killing its actors then goes chunk by chunk, like any other.
    ErrorClass.WORKER_LOST: 3,
})


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay_s: float = 0.0

    @property
    def name(self) -> str:
        return "retry" if self.retry else "give_up"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently each level and class is retried.

    Levels (DESIGN.md, "Errors and retries"): an OOM splits its batch; a
    failing chunk is tried ``chunk_attempts`` times on its own; a batch that
    still has failed chunks is retried as a whole ``batch_retries`` times,
    waiting ``batch_backoff``; then it is skipped and the job goes on.
    """

    chunk_attempts: int = 3
    batch_retries: int = 2
    class_limits: Mapping[ErrorClass, int] = field(default_factory=lambda: _DEFAULT_LIMITS)
    backoff: Backoff = Backoff()
    rate_limited_backoff: Backoff = Backoff(base_s=5.0, factor=2.0, cap_s=120.0)
    batch_backoff: Backoff = Backoff(base_s=2.0, factor=2.0, cap_s=30.0)
    disk_full_backoff: Backoff = Backoff(base_s=30.0, factor=2.0, cap_s=300.0)
    max_retry_after_s: float = 600.0  # a server's Retry-After is honoured up to this

    def __post_init__(self) -> None:
        if self.chunk_attempts < 1:
            raise InvalidInput(f"chunk_attempts must be >= 1, not {self.chunk_attempts}")
        if self.batch_retries < 0:
            raise InvalidInput(f"batch_retries must be >= 0, not {self.batch_retries}")
        if not (math.isfinite(self.max_retry_after_s) and self.max_retry_after_s >= 0):
            raise InvalidInput("max_retry_after_s must be a finite number >= 0")
        if any(limit < 1 for limit in self.class_limits.values()):
            raise InvalidInput("every per-class attempt limit must be >= 1")

    def limit(self, error_class: ErrorClass, default: int) -> int:
        """Attempts allowed for this class at a level whose default is ``default``."""
        return self.class_limits.get(error_class, default)

    def decide(self, error_class: ErrorClass, attempt: int, rng: random.Random, *,
               default_limit: int | None = None, level_limit: int | None = None,
               retry_after_s: float | None = None) -> Decision:
        """After failed attempt number ``attempt`` (1-based): retry after a delay, or give up.

        The class's limit applies (``default_limit`` for classes without one);
        ``level_limit`` caps it further, as ``chunk_attempts`` does for a chunk.
        """
        if not error_class.retryable:
            return Decision(False)
        limit = self.limit(error_class, default_limit or self.chunk_attempts)
        if level_limit is not None:
            limit = min(limit, level_limit)
        if attempt >= limit:
            return Decision(False)
        return Decision(True, self.wait(error_class, attempt, rng, retry_after_s=retry_after_s))

    def wait(self, error_class: ErrorClass, attempt: int, rng: random.Random, *,
             retry_after_s: float | None = None) -> float:
        if error_class is ErrorClass.OOM:
            return 0.0  # the batch is split and memory freed; waiting adds nothing
        backoff = {ErrorClass.RATE_LIMITED: self.rate_limited_backoff,
                   ErrorClass.DISK_FULL: self.disk_full_backoff}.get(error_class, self.backoff)
        delay = backoff.delay(attempt, rng)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_retry_after_s))
        return delay

    def batch_wait(self, retry: int, rng: random.Random) -> float:
        return self.batch_backoff.delay(retry, rng)

    def with_limits(self, **limits: int) -> RetryPolicy:
        """A copy with some per-class limits changed: ``with_limits(server=5)``."""
        merged = dict(self.class_limits)
        for name, value in limits.items():
            merged[ErrorClass(name)] = value
        return replace(self, class_limits=MappingProxyType(merged))


_INT_KEYS = ("chunk_attempts", "batch_retries")
_BACKOFF_KEYS = {"base": "base_s", "factor": "factor", "cap": "cap_s"}
_MINIMUM = {"chunk_attempts": 1, "batch_retries": 0, "base": 0, "factor": 1, "cap": 0}


def parse_policy(spec: str | None, base: RetryPolicy = RetryPolicy(), *,
                 source: str = "--retry") -> RetryPolicy:
    """``"chunk_attempts=5,batch_retries=1,base=0.5,factor=2,cap=30,server=5"``.

    Keys: chunk_attempts, batch_retries, base, factor, cap (seconds), and any
    error class name (oom and quality excepted) for its attempt limit. Errors name
    ``source``: the flag, environment variable or config file section the
    spec came from.
    """
    if not spec:
        return base
    items = []
    for item in spec.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise InvalidInput(_said(source, f"bad retry setting {item.strip()!r} (expected "
                                             "KEY=VALUE, e.g. 'chunk_attempts=3,cap=20')"))
        items.append((key.strip(), value.strip()))
    return policy_from_items(items, base, source=source)


def policy_from_items(items: Iterable[tuple[str, object]], base: RetryPolicy = RetryPolicy(), *,
                      source: str) -> RetryPolicy:
    """``base`` with the (key, value) settings applied, each checked: an
    integer where a count is meant, a finite number for the backoff."""
    classes = {c.value for c in ErrorClass} - {"oom", "quality"}
    policy, backoff, limits = base, {}, {}
    for key, raw in items:
        if key in _BACKOFF_KEYS:
            value = _number(raw, float, key, source)
            if not math.isfinite(value):
                raise InvalidInput(_said(source, f"{key} must be a finite number, not {raw!r}"))
        elif key in _INT_KEYS or key in classes:
            value = _number(raw, int, key, source)
        else:
            raise InvalidInput(_said(
                source, f"unknown retry setting {key!r} (chunk_attempts, batch_retries, base, "
                        "factor, cap, or an error class such as server=5)"))
        minimum = _MINIMUM.get(key, 1)
        if value < minimum:
            raise InvalidInput(_said(source, f"{key} must be >= {minimum}, not {raw}"))
        if key in _BACKOFF_KEYS:
            backoff[_BACKOFF_KEYS[key]] = value
        elif key in _INT_KEYS:
            policy = replace(policy, **{key: value})
        else:
            limits[key] = value
    if backoff:
        policy = replace(policy, backoff=replace(policy.backoff, **backoff))
    return policy.with_limits(**limits) if limits else policy


def _said(source: str, text: str) -> str:
    """``--retry: cap must be ...``, ``config file X: [retry] cap must be ...``."""
    return f"{source} {text}" if source.endswith("]") else f"{source}: {text}"


def _number(raw: object, kind: type, key: str, source: str):
    what = "an integer" if kind is int else "a number"
    if isinstance(raw, bool) or (kind is int and isinstance(raw, float)):
        raise InvalidInput(_said(source, f"{key} must be {what}, not {raw!r}"))
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise InvalidInput(_said(source, f"{key} must be {what}, not {raw!r}")) from None
