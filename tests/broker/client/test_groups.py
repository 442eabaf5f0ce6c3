"""Consumer groups: the server splits partitions, members rebalance, commits carry progress."""

from __future__ import annotations

import asyncio
from collections import Counter

from streamhouse.broker.client import (
    AsyncAdminClient,
    AsyncConsumer,
    AsyncProducer,
    TopicPartition,
)

ALL_SIX = {TopicPartition("events", p) for p in range(6)}


def member(address: str, **options) -> AsyncConsumer:
    consumer = AsyncConsumer(
        address,
        group_id="workers",
        auto_offset_reset="earliest",
        heartbeat_interval_ms=100,
        auto_commit_interval_ms=200,
        **options,
    )
    consumer.subscribe(["events"])
    return consumer


async def produce(address: str, start: int, count: int) -> None:
    async with AsyncProducer(address) as producer:
        await producer.send_many(
            "events",
            [b"%d" % i for i in range(start, start + count)],
            [b"key-%d" % i for i in range(start, start + count)],
        )


async def consume_until(consumers, seen: Counter, total: int, timeout_s: float = 30) -> None:
    """Polls every consumer concurrently, as separate processes would, until ``total`` are in."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s

    async def run(consumer: AsyncConsumer) -> None:
        while sum(seen.values()) < total and loop.time() < deadline:
            for record in await consumer.poll(timeout_ms=200):
                seen[record.value] += 1

    await asyncio.gather(*(run(c) for c in consumers))


def assert_split(consumers) -> None:
    assignments = [c.assignment() for c in consumers]
    assert set().union(*assignments) == ALL_SIX
    assert sum(len(a) for a in assignments) == 6  # disjoint


async def test_three_members_split_six_partitions_and_rebalance_when_one_leaves(server) -> None:
    address = server.grpc_address
    async with AsyncAdminClient(address) as admin:
        await admin.create_topic("events", partitions=6)
    await produce(address, 0, 600)
    consumers = [member(address) for _ in range(3)]
    seen: Counter[bytes] = Counter()
    await consume_until(consumers, seen, 600)
    assert len(seen) == 600 and max(seen.values()) == 1
    # Let every member finish its rebalances, then check the split is a partition of all six.
    for _ in range(50):
        await asyncio.gather(*(c.poll(timeout_ms=50) for c in consumers))
        if all(len(c.assignment()) == 2 for c in consumers):
            break
    assert_split(consumers)
    assert all(len(c.assignment()) == 2 for c in consumers)  # range: 6 / 3

    leaving = consumers.pop()
    await leaving.close()  # commits its positions and leaves: the other two take over
    await produce(address, 600, 300)
    await consume_until(consumers, seen, 900)
    assert_split(consumers)
    assert len(seen) == 900
    assert max(seen.values()) == 1, [v for v, n in seen.items() if n > 1][:10]
    for consumer in consumers:
        await consumer.close()
    async with AsyncAdminClient(address) as admin:
        offsets = await admin.fetch_offsets("workers", "events")
        described = await admin.describe_group("workers")
    assert sum(offsets.values()) == 900 and described.total_lag == 0


async def test_auto_commit_lets_the_next_member_resume_where_the_first_stopped(server) -> None:
    address = server.grpc_address
    async with AsyncAdminClient(address) as admin:
        await admin.create_topic("events", partitions=6)
    await produce(address, 0, 300)
    first = member(address)
    seen: Counter[bytes] = Counter()
    while sum(seen.values()) < 120:
        for record in await first.poll(timeout_ms=500, max_records=40):
            seen[record.value] += 1
    positions = {tp: first.position(tp) for tp in ALL_SIX}
    await first.close()  # the final auto commit
    async with AsyncAdminClient(address) as admin:
        committed = await admin.fetch_offsets("workers", "events")
    assert {tp: committed.get(tp, 0) for tp in ALL_SIX} == {
        tp: positions[tp] or 0 for tp in ALL_SIX
    }

    second = member(address)
    await consume_until([second], seen, 300)
    assert await second.committed(TopicPartition("events", 0)) is not None
    await second.close()
    assert len(seen) == 300 and max(seen.values()) == 1  # resumed, nothing read twice


async def test_manual_commit_without_auto_commit(server) -> None:
    address = server.grpc_address
    async with AsyncAdminClient(address) as admin:
        await admin.create_topic("events", partitions=6)
    await produce(address, 0, 60)
    consumer = member(address, enable_auto_commit=False)
    seen: Counter[bytes] = Counter()
    await consume_until([consumer], seen, 60)
    tp = TopicPartition("events", 3)
    assert await consumer.committed(tp) is None
    await consumer.commit({tp: 1})
    assert await consumer.committed(tp) == 1
    await consumer.close()  # no auto commit: the rest stays uncommitted
    async with AsyncAdminClient(address) as admin:
        assert await admin.fetch_offsets("workers") == {tp: 1}
