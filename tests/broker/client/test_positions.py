"""Manual assignment: positions, seeks, lookups by time, and outsider commits."""

from __future__ import annotations

import pytest
from streamhouse.broker.client import (
    AsyncAdminClient,
    AsyncConsumer,
    AsyncProducer,
    NoOffsetError,
    TopicPartition,
)

TP0 = TopicPartition("timed", 0)
TP1 = TopicPartition("timed", 1)


async def fill(address: str) -> None:
    async with AsyncAdminClient(address) as admin:
        await admin.create_topic("timed", partitions=2)
    async with AsyncProducer(address) as producer:
        for i in range(10):  # partition 0: timestamps 1000, 2000, ... 10000
            await producer.send("timed", b"p0-%d" % i, partition=0, timestamp_ms=1000 * (i + 1))
        await producer.send_many("timed", [b"p1-%d" % i for i in range(5)], partition=1)


async def test_assign_seek_and_offsets_for_times(server) -> None:
    address = server.grpc_address
    await fill(address)
    async with AsyncConsumer(address, auto_offset_reset="latest") as consumer:
        consumer.assign([TP0, TP1])
        assert await consumer.poll(timeout_ms=100) == []  # latest: only new records
        assert (consumer.position(TP0), consumer.position(TP1)) == (10, 5)

        found = await consumer.offsets_for_times({TP0: 2500, TP1: 0})
        assert found == {TP0: 2, TP1: 0}
        assert await consumer.offsets_for_times({TP0: 10_001}) == {TP0: None}

        consumer.seek(TP0, found[TP0])
        records = await consumer.poll(timeout_ms=2000, max_records=3)
        assert [(r.offset, r.value, r.timestamp_ms) for r in records] == [
            (2, b"p0-2", 3000),
            (3, b"p0-3", 4000),
            (4, b"p0-4", 5000),
        ]
        assert consumer.position(TP0) == 5
        rest = await consumer.poll(timeout_ms=2000)
        assert [r.offset for r in rest] == [5, 6, 7, 8, 9]

        await consumer.seek_to_beginning(TP1)
        assert consumer.position(TP1) == 0
        assert [r.value for r in await consumer.poll(timeout_ms=2000)] == [
            b"p1-%d" % i for i in range(5)
        ]
        await consumer.seek_to_end()
        assert (consumer.position(TP0), consumer.position(TP1)) == (10, 5)

        # A seek past the end: the server says out of range; "latest" resets to the end.
        consumer.seek(TP0, 1000)
        assert await consumer.poll(timeout_ms=300) == []
        assert consumer.position(TP0) == 10


async def test_assigned_consumer_with_group_commits_as_outsider(server) -> None:
    address = server.grpc_address
    await fill(address)
    async with AsyncConsumer(address, group_id="manual", auto_offset_reset="earliest") as first:
        first.assign([TP0])
        assert len(await first.poll(timeout_ms=2000, max_records=4)) == 4
        await first.commit()
        assert await first.committed(TP0) == 4
    async with AsyncConsumer(address, group_id="manual") as second:
        second.assign([TP0])
        records = await second.poll(timeout_ms=2000)
        assert records[0].offset == 4  # the committed offset wins over "latest"


async def test_reset_error_raises_without_a_committed_offset(server) -> None:
    address = server.grpc_address
    await fill(address)
    async with AsyncConsumer(address, group_id="strict", auto_offset_reset="error") as consumer:
        consumer.assign([TP1])
        with pytest.raises(NoOffsetError, match="timed"):
            await consumer.poll(timeout_ms=100)
