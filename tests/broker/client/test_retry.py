"""Retries back off exponentially with jitter, and only for errors that may go away."""

from __future__ import annotations

import random

import grpc
import pytest
from streamhouse.broker.client.errors import (
    InvalidRequestError,
    StreamHouseError,
    UnavailableError,
)
from streamhouse.broker.client.retry import JITTER, RetryPolicy


def unavailable() -> UnavailableError:
    return UnavailableError("down", code=grpc.StatusCode.UNAVAILABLE)


def test_delays_grow_exponentially_within_jitter_and_cap() -> None:
    policy = RetryPolicy(retries=10, backoff_ms=100, max_backoff_ms=2000, rng=random.Random(7))
    for attempt in range(12):
        base = min(2000, 100 * 2**attempt)
        for _ in range(50):
            delay = policy.delay(attempt)
            assert base * (1 - JITTER) / 1000 <= delay <= min(base * (1 + JITTER), 2000) / 1000
    delays = {policy.delay(0) for _ in range(20)}
    assert len(delays) > 1  # jittered: clients do not retry in lockstep
    assert policy.delay(10_000) <= 2.0


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="retries"):
        RetryPolicy(retries=-1)
    with pytest.raises(ValueError, match="retry_backoff_ms"):
        RetryPolicy(backoff_ms=500, max_backoff_ms=100)


async def test_call_retries_retryable_errors_then_succeeds() -> None:
    policy = RetryPolicy(retries=3, backoff_ms=1, max_backoff_ms=2)
    attempts = []
    seen = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise unavailable()
        return "ok"

    async def on_retry(error: StreamHouseError) -> None:
        seen.append(error)

    assert await policy.call(flaky, on_retry) == "ok"
    assert len(attempts) == 3 and len(seen) == 2


async def test_call_gives_up_after_retries_with_the_last_error() -> None:
    policy = RetryPolicy(retries=2, backoff_ms=1, max_backoff_ms=1)
    attempts = []

    async def down() -> None:
        attempts.append(1)
        raise unavailable()

    with pytest.raises(UnavailableError):
        await policy.call(down)
    assert len(attempts) == 3  # the first try and two retries


async def test_call_does_not_retry_a_bad_request_or_foreign_exception() -> None:
    policy = RetryPolicy(retries=5, backoff_ms=1, max_backoff_ms=1)
    attempts = []

    async def bad() -> None:
        attempts.append(1)
        raise InvalidRequestError("no", code=grpc.StatusCode.INVALID_ARGUMENT)

    with pytest.raises(InvalidRequestError):
        await policy.call(bad)

    async def bug() -> None:
        attempts.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await policy.call(bug)
    assert len(attempts) == 2
