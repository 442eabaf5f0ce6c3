"""TokenBucket and CircuitBreaker on a fake clock: exact timing without sleeping."""

from __future__ import annotations

import asyncio

import pytest
from streamhouse.broker.storage import (
    CircuitBreaker,
    CircuitState,
    ObjectStoreUnavailableError,
    TokenBucket,
)


class FakeTime:
    """A clock plus a sleep that advances it, so waits take no real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def bucket(rate: float, burst: int, t: FakeTime) -> TokenBucket:
    return TokenBucket(rate, burst, clock=t.clock, sleep=t.sleep)


# ---------------------------------------------------------------------------- TokenBucket
async def test_burst_is_free_then_requests_are_spaced_by_the_rate() -> None:
    t = FakeTime()
    b = bucket(rate=10.0, burst=3, t=t)
    for _ in range(3):
        await b.acquire()
    assert t.sleeps == []
    await b.acquire()
    assert t.now == pytest.approx(0.1)
    for _ in range(10):
        await b.acquire()
    assert t.now == pytest.approx(1.1)  # 11 tokens beyond the burst at 10/s


async def test_idle_time_refills_only_up_to_the_burst() -> None:
    t = FakeTime()
    b = bucket(rate=100.0, burst=5, t=t)
    for _ in range(5):
        await b.acquire()
    t.now += 3600.0  # an hour idle is worth 5 tokens, not 360,000
    assert b.tokens == pytest.approx(5.0)
    for _ in range(5):
        await b.acquire()
    assert t.sleeps == []
    await b.acquire()
    assert t.sleeps == [pytest.approx(0.01)]


async def test_acquiring_several_tokens_waits_for_all_of_them() -> None:
    t = FakeTime()
    b = bucket(rate=2.0, burst=4, t=t)
    await b.acquire(4)
    await b.acquire(3)
    assert t.now == pytest.approx(1.5)


async def test_try_acquire_never_waits() -> None:
    t = FakeTime()
    b = bucket(rate=1.0, burst=1, t=t)
    assert b.try_acquire()
    assert not b.try_acquire()
    t.now += 1.0
    assert b.try_acquire()


async def test_waiters_are_served_in_arrival_order() -> None:
    t = FakeTime()
    b = bucket(rate=5.0, burst=1, t=t)
    order: list[int] = []

    async def take(i: int, n: int) -> None:
        await b.acquire(n)
        order.append(i)

    await asyncio.gather(take(0, 1), take(1, 1), take(2, 1), take(3, 1))
    assert order == [0, 1, 2, 3]
    assert t.now == pytest.approx(0.6)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1.0, 1), (1.0, 0)])
def test_invalid_settings_are_rejected(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="token bucket"):
        TokenBucket(rate, burst)


async def test_asking_for_more_than_the_burst_is_an_error_not_a_hang() -> None:
    b = TokenBucket(10.0, 2)
    with pytest.raises(ValueError, match="burst=2"):
        await b.acquire(3)
    with pytest.raises(ValueError, match="burst=2"):
        await b.acquire(0)


# ---------------------------------------------------------------------------- CircuitBreaker
def breaker(t: FakeTime, threshold: int = 3, reset: float = 10.0) -> CircuitBreaker:
    return CircuitBreaker(threshold, reset, clock=t.clock, name="S3 bucket 'b'")


def test_opens_after_threshold_consecutive_failures() -> None:
    t = FakeTime()
    cb = breaker(t)
    for _ in range(2):
        cb.before_call()
        cb.record_failure()
    cb.before_call()
    cb.record_success()  # a success in between resets the count
    for _ in range(2):
        cb.before_call()
        cb.record_failure()
    assert cb.state is CircuitState.CLOSED
    cb.before_call()
    cb.record_failure()
    assert cb.state is CircuitState.OPEN
    t.now += 4.0
    with pytest.raises(ObjectStoreUnavailableError, match=r"S3 bucket 'b'.*6\.0s more") as info:
        cb.before_call()
    assert info.value.retry_after_s == pytest.approx(6.0)
    assert cb.rejected == 1


def test_half_open_admits_exactly_one_probe() -> None:
    t = FakeTime()
    cb = breaker(t, threshold=1)
    cb.before_call()
    cb.record_failure()
    t.now += 10.0
    assert cb.state is CircuitState.HALF_OPEN
    cb.before_call()  # the probe
    with pytest.raises(ObjectStoreUnavailableError, match="probe"):
        cb.before_call()
    cb.record_success()
    assert cb.state is CircuitState.CLOSED
    cb.before_call()
    cb.before_call()


def test_failed_probe_opens_for_a_full_period_again() -> None:
    t = FakeTime()
    cb = breaker(t, threshold=2)
    for _ in range(2):
        cb.before_call()
        cb.record_failure()
    t.now += 10.0
    cb.before_call()
    cb.record_failure()
    assert cb.state is CircuitState.OPEN
    t.now += 9.9
    with pytest.raises(ObjectStoreUnavailableError):
        cb.before_call()
    t.now += 0.1
    cb.before_call()


def test_lost_probe_does_not_wedge_the_breaker() -> None:
    """A probe whose caller was cancelled never reports; another is allowed a period later."""
    t = FakeTime()
    cb = breaker(t, threshold=1, reset=5.0)
    cb.before_call()
    cb.record_failure()
    t.now += 5.0
    cb.before_call()  # probe, never reported
    with pytest.raises(ObjectStoreUnavailableError):
        cb.before_call()
    t.now += 5.0
    cb.before_call()


def test_late_failures_do_not_extend_an_open_period() -> None:
    t = FakeTime()
    cb = breaker(t, threshold=1, reset=10.0)
    cb.before_call()
    cb.before_call()  # two calls in flight
    cb.record_failure()
    t.now += 8.0
    cb.record_failure()  # the second one fails late
    t.now += 2.0
    cb.before_call()  # still probes at the original time


@pytest.mark.parametrize(("threshold", "reset"), [(0, 1.0), (1, 0.0)])
def test_breaker_rejects_invalid_settings(threshold: int, reset: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(threshold, reset)
