"""The producer's buffer budget blocks senders in order and lets them go as bytes are freed."""

from __future__ import annotations

import asyncio

import pytest
from streamhouse.broker.client.memory import BufferPool


async def test_reserve_waits_until_released_in_fifo_order() -> None:
    pool = BufferPool(100)
    assert pool.try_reserve(80)
    order = []

    async def take(size: int, name: str) -> None:
        await pool.reserve(size)
        order.append(name)

    big = asyncio.create_task(take(60, "big"))
    small = asyncio.create_task(take(10, "small"))
    await asyncio.sleep(0)
    assert order == []  # small would fit, but big asked first
    assert not pool.try_reserve(1)
    pool.release(80)
    await asyncio.gather(big, small)
    assert order == ["big", "small"] and pool.used == 70


async def test_a_record_larger_than_the_budget_passes_when_empty() -> None:
    pool = BufferPool(10)
    assert pool.try_reserve(1000)
    assert not pool.try_reserve(1)
    pool.release(1000)
    assert pool.used == 0


async def test_cancelled_waiter_does_not_hold_bytes_or_block_others() -> None:
    pool = BufferPool(10)
    pool.try_reserve(10)
    first = asyncio.create_task(pool.reserve(8))
    second = asyncio.create_task(pool.reserve(2))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    pool.release(2)
    await asyncio.wait_for(second, 1)
    assert pool.used == 10


async def test_fail_waiters_wakes_everyone_with_the_error() -> None:
    pool = BufferPool(1)
    pool.try_reserve(1)
    waiter = asyncio.create_task(pool.reserve(1))
    await asyncio.sleep(0)
    pool.fail_waiters(RuntimeError("closed"))
    with pytest.raises(RuntimeError, match="closed"):
        await waiter
    with pytest.raises(RuntimeError, match="closed"):
        pool.try_reserve(1)


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError):
        BufferPool(0)


async def test_waiting_tells_the_owner_once_per_waiter() -> None:
    calls = []
    pool = BufferPool(10, on_exhausted=lambda: calls.append(1))
    assert pool.try_reserve(10)
    assert calls == []
    waiter = asyncio.create_task(pool.reserve(5))
    await asyncio.sleep(0)
    assert calls == [1]
    pool.release(10)
    await waiter
