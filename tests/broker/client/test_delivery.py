"""Delivery guarantees: retries across a server crash, idempotent dedup, fencing."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import grpc
import pytest
from streamhouse.broker.client import (
    AsyncAdminClient,
    AsyncConsumer,
    AsyncProducer,
    FencedError,
    TopicPartition,
)
from streamhouse.broker.records import build_batch
from streamhouse.broker.rpc.v1 import broker_pb2 as pb
from streamhouse.broker.rpc.v1 import broker_pb2_grpc


async def read_records(address: str, topic: str, partitions: int, expected: int):
    async with AsyncConsumer(address, auto_offset_reset="earliest") as consumer:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        records = []
        for _ in range(100):
            records += await consumer.poll(timeout_ms=300)
            if len(records) >= expected:
                break
        records += await consumer.poll(timeout_ms=300)  # anything beyond would be a duplicate
    for p in range(partitions):
        offsets = [r.offset for r in records if r.partition == p]
        assert offsets == list(range(len(offsets)))
    return records


async def read_values(address: str, topic: str, partitions: int, expected: int) -> list[bytes]:
    return [r.value for r in await read_records(address, topic, partitions, expected)]


async def test_pending_sends_survive_a_server_crash_and_restart(start_server) -> None:
    server = start_server()
    address = server.grpc_address
    async with AsyncAdminClient(address) as admin:
        await admin.create_topic("durable", partitions=3)
    producer = AsyncProducer(
        address,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        retries=60,
        retry_backoff_ms=50,
        retry_backoff_max_ms=300,
        request_timeout_ms=5000,
    )
    futures = []

    async def keep_sending(count: int) -> None:
        for i in range(count):
            futures.append(await producer.send("durable", b"n-%d" % i, key=b"%d" % (i % 7)))
            if i % 20 == 0:
                await asyncio.sleep(0.002)  # a steady stream, so the crash lands mid-flight

    sending = asyncio.create_task(keep_sending(1500))
    while sum(f.done() for f in futures) < 300:
        await asyncio.sleep(0.001)
    server.kill()  # SIGKILL, with requests in flight and records buffered
    await asyncio.sleep(0.3)
    assert not all(f.done() for f in futures)  # nobody acknowledges them now
    await asyncio.to_thread(server.start)  # same data dir and ports
    await sending
    metas = await asyncio.wait_for(asyncio.gather(*futures), 60)
    await producer.close()
    assert len({(m.partition, m.offset) for m in metas}) == 1500
    records = await read_records(address, "durable", 3, 1500)
    # Exactly once: retries of batches the crashed server had stored were recognised.
    assert sorted(r.value for r in records) == sorted(b"n-%d" % i for i in range(1500))
    # Retried batches kept their order: each partition holds its keys' records as sent.
    for p in range(3):
        numbers = [int(r.value[2:]) for r in records if r.partition == p]
        assert numbers == sorted(numbers)
    assert {(r.partition, r.offset) for r in records} == {(m.partition, m.offset) for m in metas}


async def test_requests_a_frozen_server_never_answers_time_out_and_are_resent(
    server, caplog
) -> None:
    caplog.set_level(logging.DEBUG, logger="streamhouse.client.producer")
    address = server.grpc_address
    async with AsyncAdminClient(address) as admin:
        await admin.create_topic("frozen", partitions=2)
    producer = AsyncProducer(
        address,
        enable_idempotence=True,
        request_timeout_ms=800,
        retries=30,
        retry_backoff_ms=50,
        retry_backoff_max_ms=200,
    )
    await producer.send_and_wait("frozen", b"warm-up", partition=0)
    os.kill(server.proc.pid, signal.SIGSTOP)  # alive but silent: no error, no answer
    try:
        futures = [await producer.send("frozen", b"v%d" % i, partition=i % 2) for i in range(50)]
        await asyncio.sleep(1.5)  # past the request timeout: the stream is given up
        assert not any(f.done() for f in futures)
        assert "did not answer a produce request within 0.8 s" in caplog.text
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    metas = await asyncio.wait_for(asyncio.gather(*futures), 30)
    await producer.close()
    for p in (0, 1):  # the server may get a request twice (before and after); it stores it once
        offsets = [m.offset for m in metas if m.partition == p]
        assert offsets == list(range(1 - p, 26 - p))
    values = await read_values(address, "frozen", 2, 51)
    assert sorted(values) == sorted([b"warm-up"] + [b"v%d" % i for i in range(50)])


async def test_the_same_idempotent_batch_sent_twice_is_stored_once(server) -> None:
    address = server.grpc_address
    async with AsyncAdminClient(address) as admin:
        await admin.create_topic("dedup", partitions=1)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = broker_pb2_grpc.ProduceStub(channel)
        ident = await stub.InitProducer(pb.InitProducerRequest())
        batch = build_batch(
            [b"once", b"only"],
            producer_id=ident.producer_id,
            producer_epoch=ident.producer_epoch,
            base_sequence=0,
        )
        request = pb.ProduceRequest(
            topic="dedup", partitions=[pb.PartitionBatches(partition=0, batches=[batch])]
        )
        first = await stub.Produce(request)
        second = await stub.Produce(request)  # a retry of a request whose answer was lost
    assert first.results[0].base_offset == second.results[0].base_offset == 0
    assert not second.results[0].HasField("error") or second.results[0].error.code == 0
    assert await read_values(address, "dedup", 1, 2) == [b"once", b"only"]


async def test_a_newer_instance_fences_the_producer(server) -> None:
    address = server.grpc_address
    async with AsyncAdminClient(address) as admin:
        await admin.create_topic("fenced", partitions=1)
    producer = AsyncProducer(address, enable_idempotence=True)
    await producer.send_and_wait("fenced", b"first")
    assert producer.producer_id >= 0
    async with grpc.aio.insecure_channel(address) as channel:
        stub = broker_pb2_grpc.ProduceStub(channel)
        newer = await stub.InitProducer(pb.InitProducerRequest(producer_id=producer.producer_id))
        assert newer.producer_epoch > producer.producer_epoch
        # As in Kafka, the partition learns of the new epoch when the new instance writes.
        batch = build_batch(
            [b"newer"],
            producer_id=newer.producer_id,
            producer_epoch=newer.producer_epoch,
            base_sequence=0,
        )
        await stub.Produce(
            pb.ProduceRequest(
                topic="fenced", partitions=[pb.PartitionBatches(partition=0, batches=[batch])]
            )
        )
    with pytest.raises(FencedError) as fenced:
        await producer.send_and_wait("fenced", b"stale")
    assert fenced.value.reason == "PRODUCER_FENCED"
    with pytest.raises(FencedError):  # fenced for good: later sends fail at once
        await producer.send("fenced", b"again")
    await producer.close()
    assert await read_values(address, "fenced", 1, 2) == [b"first", b"newer"]
