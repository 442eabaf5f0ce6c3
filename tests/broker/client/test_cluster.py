"""Two agents: the client finds each partition's leader and the group coordinator, and follows
them when an agent dies, while bootstrapped from one address only."""

from __future__ import annotations

import asyncio
from collections import Counter

from streamhouse.broker.client import (
    AsyncAdminClient,
    AsyncConsumer,
    AsyncProducer,
    TopicPartition,
)

PARTITIONS = 6


async def wait_for_spread(admin: AsyncAdminClient, addresses: set[str]) -> dict[int, str]:
    for _ in range(150):
        described = await admin.describe_topic("spread")
        leaders = {p.partition: p.leader_address for p in described.partitions}
        if set(leaders.values()) == addresses:
            return leaders
        await asyncio.sleep(0.2)
    raise AssertionError(f"partitions did not spread over both agents: {leaders}")


async def test_routing_to_leaders_and_failover(start_server, cluster_flags) -> None:
    first = start_server(*cluster_flags)
    second = start_server(*cluster_flags)
    addresses = {first.grpc_address, second.grpc_address}
    async with AsyncAdminClient(first.grpc_address) as admin:
        await admin.create_topic("spread", partitions=PARTITIONS)
        leaders = await wait_for_spread(admin, addresses)

    # Bootstrapped from the first agent only, the producer still reaches the second one's
    # partitions, and the consumer (bootstrapped from the second) reads all of them.
    producer = AsyncProducer(
        first.grpc_address, acks="all", retries=40, retry_backoff_ms=50, retry_backoff_max_ms=500
    )
    before = await producer.send_many(
        "spread", [b"before-%d" % i for i in range(600)], [b"k%d" % i for i in range(600)]
    )
    assert set(before.partitions.tolist()) == set(range(PARTITIONS))

    consumer = AsyncConsumer(
        second.grpc_address,
        group_id="spread-readers",
        auto_offset_reset="earliest",
        heartbeat_interval_ms=200,
        retries=40,
        retry_backoff_max_ms=500,
    )
    consumer.subscribe(["spread"])
    seen: Counter[bytes] = Counter()
    while sum(seen.values()) < 600:
        for record in await consumer.poll(timeout_ms=1000):
            seen[record.value] += 1
    assert consumer.assignment() == {TopicPartition("spread", p) for p in range(PARTITIONS)}
    await consumer.commit()
    await consumer.close()

    # Kill the agent leading some partitions: sends to them wait, then reach the survivor.
    victim = second if leaders[0] == second.grpc_address else first
    survivor = first if victim is second else second
    victim.kill()
    moved = [p for p, address in leaders.items() if address == victim.grpc_address]
    survivor_producer = AsyncProducer(
        survivor.grpc_address, acks="all", retries=40, retry_backoff_ms=50, retry_backoff_max_ms=500
    )
    futures = [await survivor_producer.send("spread", b"after-%d" % p, partition=p) for p in moved]
    metas = await asyncio.wait_for(asyncio.gather(*futures), 60)
    counts = Counter(before.partitions.tolist())
    assert [m.offset for m in metas] == [counts[p] for p in moved]  # dense across failover
    await survivor_producer.close()
    await producer.close(timeout_s=5)

    async with AsyncConsumer(survivor.grpc_address, group_id="spread-readers") as resumed:
        resumed.subscribe(["spread"])
        after = []
        while len(after) < len(moved):
            after += await resumed.poll(timeout_ms=1000)
    assert sorted(r.value for r in after) == sorted(b"after-%d" % p for p in moved)
