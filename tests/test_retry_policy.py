"""The retry policy is pure: exact delays from a seeded random source."""

from __future__ import annotations

import random

import pytest

from pipeline.errors import ErrorClass, InvalidInput
from pipeline.retry import Backoff, RetryPolicy, parse_policy


def delays(policy, error_class, seed=42, **kw):
    rng = random.Random(seed)
    out, attempt = [], 1
    while True:
        decision = policy.decide(error_class, attempt, rng, **kw)
        if not decision.retry:
            return out
        out.append(round(decision.delay_s, 4))
        attempt += 1


def test_device_transient_waits_follow_equal_jitter_and_stop_after_three_attempts():
    # full delay 1.0, 1.6; half fixed, half uniform from random.Random(42); the
    # literals were computed by hand from that formula, not by this module
    assert delays(RetryPolicy(), ErrorClass.DEVICE_TRANSIENT) == [0.8197, 0.8200]


def test_server_and_network_limits_differ():
    assert len(delays(RetryPolicy(), ErrorClass.SERVER)) == 2  # 3 attempts
    assert delays(RetryPolicy(), ErrorClass.NETWORK) == [0.8197, 0.8200, 1.6320, 2.5051]


def test_rate_limited_waits_longer():
    assert delays(RetryPolicy(), ErrorClass.RATE_LIMITED) == [4.0986, 5.1251, 12.7503, 24.4642]


def test_every_delay_is_between_half_and_all_of_the_capped_exponential():
    backoff = Backoff(base_s=1.0, factor=1.6, cap_s=20.0)
    rng = random.Random(0)
    for attempt in range(1, 15):
        full = min(20.0, 1.6 ** (attempt - 1))
        for _ in range(50):
            assert full / 2 <= backoff.delay(attempt, rng) <= full


def test_retry_after_is_honoured_up_to_the_maximum():
    policy = RetryPolicy(max_retry_after_s=60)
    rng = random.Random(1)
    assert policy.decide(ErrorClass.RATE_LIMITED, 1, rng, retry_after_s=30).delay_s == 30
    assert policy.decide(ErrorClass.RATE_LIMITED, 1, rng, retry_after_s=3600).delay_s == 60
    # a hint shorter than the backoff does not shorten it
    assert policy.decide(ErrorClass.RATE_LIMITED, 4, rng, retry_after_s=0.5).delay_s > 10


@pytest.mark.parametrize("error_class", [
    ErrorClass.INVALID_INPUT, ErrorClass.UNSUPPORTED, ErrorClass.AUTH, ErrorClass.INTERNAL,
    ErrorClass.DEVICE_FATAL,
])
def test_non_retryable_classes_are_never_retried(error_class):
    assert not RetryPolicy().decide(error_class, 1, random.Random(0)).retry


def test_oom_retries_at_once_and_chunk_default_applies_to_unlisted_classes():
    policy = RetryPolicy(chunk_attempts=4)
    assert delays(policy, ErrorClass.OOM) == [0.0, 0.0, 0.0]


def test_the_policy_never_sleeps(monkeypatch):
    import time

    monkeypatch.setattr(time, "sleep", lambda s: pytest.fail("slept"))
    delays(RetryPolicy(), ErrorClass.RATE_LIMITED)


def test_parse_policy_from_a_cli_spec():
    policy = parse_policy("chunk_attempts=5,batch_retries=1,base=0.5,factor=2,cap=3,server=7")
    assert (policy.chunk_attempts, policy.batch_retries) == (5, 1)
    assert policy.backoff == Backoff(0.5, 2.0, 3.0)
    assert policy.limit(ErrorClass.SERVER, 3) == 7
    assert policy.limit(ErrorClass.DEVICE_TRANSIENT, 3) == 3
    assert parse_policy(None) == RetryPolicy()


@pytest.mark.parametrize("spec", ["chunk_attempts=0", "oom=3", "bogus=1", "base", "factor=0.5",
                                  "server=x"])
def test_bad_policy_specs_are_refused(spec):
    with pytest.raises(InvalidInput):
        parse_policy(spec)
