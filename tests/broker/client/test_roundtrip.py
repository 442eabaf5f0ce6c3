"""Records go through a real server and come back as sent: keys, nulls, headers, every codec."""

from __future__ import annotations

import asyncio

import numpy as np
import pyarrow as pa
import pytest
from kafka.partitioner.default import murmur2 as kafka_murmur2
from streamhouse.broker.client import (
    AdminClient,
    AsyncAdminClient,
    AsyncConsumer,
    AsyncProducer,
    Consumer,
    ConsumerRecord,
    InvalidRequestError,
    NotFoundError,
    Producer,
    RecordMetadata,
    TopicPartition,
)

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


async def consume_all(consumer: AsyncConsumer, count: int, timeout_s: float = 20):
    records: list[ConsumerRecord] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(records) < count and loop.time() < deadline:
        records += await consumer.poll(timeout_ms=500)
    return records


async def test_every_codec_round_trips_keys_nulls_and_headers(server) -> None:
    address = server.grpc_address
    async with AsyncAdminClient(address) as admin:
        for codec in CODECS:
            await admin.create_topic(f"codec-{codec}", partitions=2)
    sent = [
        (b"key-%d" % i if i % 3 else None, None if i % 5 == 0 else b"value-%d" % i,
         ((("trace", b"t%d" % i), ("empty", None), ("", b""))) if i % 2 else ())
        for i in range(60)
    ]  # fmt: skip
    for codec in CODECS:
        topic = f"codec-{codec}"
        async with AsyncProducer(address, compression=codec, linger_ms=20) as producer:
            futures = [
                await producer.send(topic, value, key, headers=list(headers), timestamp_ms=1000 + i)
                for i, (key, value, headers) in enumerate(sent)
            ]
            metas = await asyncio.gather(*futures)
        async with AsyncConsumer(address, auto_offset_reset="earliest") as consumer:
            consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
            records = await consume_all(consumer, len(sent))
        assert len(records) == len(sent)
        by_position = {(r.partition, r.offset): r for r in records}
        for i, (meta, (key, value, headers)) in enumerate(zip(metas, sent, strict=True)):
            record = by_position[(meta.partition, meta.offset)]
            assert (record.key, record.value, record.headers) == (key, value, headers), codec
            assert record.timestamp_ms == meta.timestamp_ms == 1000 + i


async def test_send_futures_resolve_with_dense_offsets_and_kafkas_partitions(server) -> None:
    address = server.grpc_address
    async with AsyncAdminClient(address) as admin:
        await admin.create_topic("keyed", partitions=5)
    keys = [b"", b"user-%d" % 7, b"\xff" * 3, b"k" * 5000] + [b"user-%d" % i for i in range(200)]
    async with AsyncProducer(address, linger_ms=1, batch_bytes=2000) as producer:
        futures = [await producer.send("keyed", b"v%d" % i, key) for i, key in enumerate(keys)]
        metas: list[RecordMetadata] = list(await asyncio.gather(*futures))
    for key, meta in zip(keys, metas, strict=True):
        assert meta.partition == (kafka_murmur2(key) & 0x7FFFFFFF) % 5
        assert meta.topic == "keyed"
    for partition in range(5):
        offsets = [m.offset for m in metas if m.partition == partition]
        assert offsets == list(range(len(offsets)))  # dense, in send order
    async with AsyncConsumer(address, auto_offset_reset="earliest") as consumer:
        consumer.assign([TopicPartition("keyed", p) for p in range(5)])
        records = await consume_all(consumer, len(keys))
    # What a consumer reads back sits where Kafka's partitioner would have put it.
    assert sorted((r.partition, r.key) for r in records) == sorted(
        ((kafka_murmur2(k) & 0x7FFFFFFF) % 5, k) for k in keys
    )


async def test_flush_and_close_deliver_everything_buffered(server) -> None:
    address = server.grpc_address
    async with AsyncAdminClient(address) as admin:
        await admin.create_topic("buffered", partitions=3)
    producer = AsyncProducer(address, linger_ms=60_000, batch_bytes=10_000_000)
    first = [await producer.send("buffered", b"a%d" % i) for i in range(100)]
    await asyncio.sleep(0.2)
    assert not any(f.done() for f in first)  # lingering: nothing sent yet
    await producer.flush()
    assert all(f.done() and f.exception() is None for f in first)
    second = [await producer.send("buffered", b"b%d" % i, partition=i % 3) for i in range(100)]
    await producer.close()
    assert all(f.done() and f.exception() is None for f in second)
    async with AsyncAdminClient(address) as admin:
        described = await admin.describe_topic("buffered")
    assert sum(p.next_offset for p in described.partitions) == 200


async def test_send_waits_while_the_buffer_is_full(server) -> None:
    address = server.grpc_address
    async with AsyncAdminClient(address) as admin:
        await admin.create_topic("tight", partitions=1)
    limit, value = 10_000, b"x" * 1000
    # A long linger would hold a full buffer forever; a waiting send must flush it instead.
    async with AsyncProducer(address, max_buffer_bytes=limit, linger_ms=60_000) as producer:

        async def send_all():
            futures = []
            for _ in range(200):
                futures.append(await producer.send("tight", value))
                unacked = sum(not f.done() for f in futures)
                assert (unacked - 1) * len(value) <= limit  # never more than the budget
            await producer.flush()  # the last records are still lingering
            return await asyncio.gather(*futures)

        metas = await asyncio.wait_for(send_all(), 20)
    assert [m.offset for m in metas] == list(range(200))


async def test_an_oversized_record_fails_alone_and_the_rest_is_delivered(server) -> None:
    address = server.grpc_address
    async with AsyncAdminClient(address) as admin:
        await admin.create_topic("limited", partitions=2, configs={"max.message.bytes": "2000"})
    async with AsyncProducer(
        address, enable_idempotence=True, linger_ms=200, batch_bytes=1500
    ) as producer:
        # One linger window: small batches of both partitions and the oversized one travel
        # together, and the server refuses such a request as a whole.
        before = [await producer.send("limited", b"a%d" % i, partition=i % 2) for i in range(6)]
        too_big = await producer.send("limited", b"x" * 5000, partition=0)
        after = [await producer.send("limited", b"b%d" % i, partition=i % 2) for i in range(6)]
        with pytest.raises(InvalidRequestError) as refused:
            await too_big
        assert refused.value.reason == "MESSAGE_TOO_LARGE"
        metas = await asyncio.gather(*before, *after)
        later = await producer.send_and_wait("limited", b"later", partition=0)
    for p in (0, 1):
        assert [m.offset for m in metas if m.partition == p] == list(range(6))
    assert later.offset == 6  # the sequence gap of the refused batch was closed


async def test_send_many_round_trips_lists_and_arrow_columns(server) -> None:
    address = server.grpc_address
    async with AsyncAdminClient(address) as admin:
        await admin.create_topic("bulk", partitions=4)
    n = 20_000
    values = pa.array([b"value-%d" % i for i in range(n)], pa.binary())
    keys = pa.array([None if i % 4 == 0 else b"key-%d" % (i % 97) for i in range(n)])
    async with AsyncProducer(address, batch_bytes=64_000, compression="lz4") as producer:
        result = await producer.send_many("bulk", values, keys, timestamp_ms=123)
        small = await producer.send_many(
            "bulk", [b"x", None], partition=2, headers=[[("h", b"1")], []]
        )
    assert len(result) == n
    keyed = np.asarray(keys.is_valid())
    expected = [(kafka_murmur2(k.as_py()) & 0x7FFFFFFF) % 4 for k in keys.filter(keys.is_valid())]
    assert result.partitions[keyed].tolist() == expected
    fifth = RecordMetadata("bulk", int(result.partitions[5]), int(result.offsets[5]), -1)
    assert result[5] == fifth
    async with AsyncConsumer(address, auto_offset_reset="earliest") as consumer:
        consumer.assign([TopicPartition("bulk", p) for p in range(4)])
        tables = []
        rows = 0
        while rows < n + 2:
            table = await consumer.poll_arrow(timeout_ms=2000)
            assert table is not None
            tables.append(table)
            rows += table.num_rows
    table = pa.concat_tables(tables)
    assert table.num_rows == n + 2
    got = {
        (p, o): v
        for p, o, v in zip(
            table["partition"].to_pylist(),
            table["offset"].to_pylist(),
            table["value"].to_pylist(),
            strict=True,
        )
    }
    for i in range(0, n, 997):
        assert got[(int(result.partitions[i]), int(result.offsets[i]))] == values[i].as_py()
    assert got[(2, int(small.offsets[0]))] == b"x"
    assert got[(2, int(small.offsets[1]))] is None
    # Unkeyed records were spread over partitions a batch at a time, not all in one.
    assert len(set(result.partitions[~keyed].tolist())) > 1


def test_blocking_clients_round_trip(server) -> None:
    address = server.grpc_address
    with AdminClient(address) as admin:
        info = admin.create_topic("sync", partitions=2, configs={"retention.ms": "3600000"})
        assert info.partitions == 2 and info.configs["retention.ms"] == "3600000"
    with Producer(address) as producer:
        futures = [producer.send("sync", b"v%d" % i, key=b"k%d" % i) for i in range(20)]
        producer.flush()
        metas = [f.result(timeout=10) for f in futures]
        meta = producer.send_and_wait("sync", b"last", partition=1)
    assert meta.partition == 1
    with Consumer(address, auto_offset_reset="earliest") as consumer:
        consumer.assign([TopicPartition("sync", 0), TopicPartition("sync", 1)])
        records = []
        for _ in range(20):
            records += consumer.poll(timeout_ms=500)
            if len(records) >= 21:
                break
        assert consumer.position(TopicPartition("sync", 1)) == meta.offset + 1
    assert sorted(r.value for r in records) == sorted([b"v%d" % i for i in range(20)] + [b"last"])
    assert {(r.partition, r.offset) for r in records} >= {(m.partition, m.offset) for m in metas}


async def test_unknown_topic_and_partition_fail_at_send(server) -> None:
    async with AsyncAdminClient(server.grpc_address) as admin:
        await admin.create_topic("two", partitions=2)
    async with AsyncProducer(server.grpc_address) as producer:
        with pytest.raises(NotFoundError, match="no-such-topic"):
            await producer.send("no-such-topic", b"v")
        with pytest.raises(NotFoundError, match=r"partitions 0\.\.1"):
            await producer.send("two", b"v", partition=2)
        with pytest.raises(TypeError, match="value must be bytes"):
            await producer.send("two", "text")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="header"):
            await producer.send("two", b"v", headers=[(b"k", b"v")])
        # The producer still works after refusing bad calls.
        assert (await producer.send_and_wait("two", b"ok", partition=1)).offset == 0
    async with AsyncConsumer(server.grpc_address) as consumer:
        consumer.assign([TopicPartition("no-such-topic", 0)])
        with pytest.raises(NotFoundError):
            await consumer.poll(timeout_ms=200)
