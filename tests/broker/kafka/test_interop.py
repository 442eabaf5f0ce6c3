"""Cross-client interoperability: what one client writes, every other reads byte for byte.

Kafka producers (confluent-kafka, kafka-python, aiokafka) write; Kafka consumers, our gRPC
client and the real ``streamctl consume`` read. The other way round, records written over gRPC
and by ``streamctl produce`` are read by confluent-kafka. Keys, values and header values include
nulls, empty bytes and bytes that are not UTF-8; timestamps are explicit.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from streamhouse.broker.client import Consumer as GrpcConsumer
from streamhouse.broker.client import Producer as GrpcProducer
from streamhouse.broker.client import TopicPartition as GrpcPartition

from tests.broker.kafka.conftest import create_topic, unique_topic
from tests.conftest import ServerProcess

PARTITIONS = 2
STREAMCTL = str(Path(sys.executable).with_name("streamctl"))

Record = tuple[bytes | None, bytes | None, tuple[tuple[str, bytes | None], ...], int]
ByPartition = dict[int, list[Record]]


def sample(n: int = 40) -> list[Record]:
    """Records with null/empty/binary keys and values and null header values (never a record
    with both key and value null: kafka-python and aiokafka refuse to send one)."""
    records = []
    for i in range(n):
        key = [None, b"", f"key-{i}".encode(), bytes([0xFF, 0x00, i])][i % 4]
        value = [b"plain-%d" % i, None, b"", bytes(range(256)) * (1 + i % 3)][i % 4]
        if key is None and value is None:
            value = b"v"
        headers: tuple = ()
        if i % 3 == 1:
            headers = (("trace", b"t-%d" % i), ("null", None))
        elif i % 3 == 2:
            headers = (("bin", bytes([0x80, 0x81, i])), ("empty", b""), ("trace", b"dup"))
        records.append((key, value, headers, 1_700_000_000_000 + i))
    return records


SENT = sample()
# kafka-python refuses to send a null header value, so its records carry empty ones instead.
SENT_NO_NULL_HEADERS = [
    (key, value, tuple((name, b"" if data is None else data) for name, data in headers), ts)
    for key, value, headers, ts in SENT
]


def expected(records: list[Record] = SENT) -> ByPartition:
    out: ByPartition = {p: [] for p in range(PARTITIONS)}
    for i, record in enumerate(records):
        out[i % PARTITIONS].append(record)
    return out


# ------------------------------------------------------------------------- producers
def produce_confluent(bootstrap: str, topic: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    errors: list = []
    for i, (key, value, headers, ts) in enumerate(SENT):
        producer.produce(
            topic,
            value=value,
            key=key,
            partition=i % PARTITIONS,
            headers=list(headers),
            timestamp=ts,
            on_delivery=lambda err, _msg: errors.append(err) if err else None,
        )
    assert producer.flush(30) == 0
    assert errors == []


def produce_kafka_python(bootstrap: str, topic: str) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = [
            producer.send(
                topic,
                value=value,
                key=key,
                partition=i % PARTITIONS,
                headers=list(headers),
                timestamp_ms=ts,
            )
            for i, (key, value, headers, ts) in enumerate(SENT_NO_NULL_HEADERS)
        ]
        for future in futures:
            future.get(timeout=20)
    finally:
        producer.close(timeout=10)


def produce_aiokafka(bootstrap: str, topic: str) -> None:
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            futures = [
                await producer.send(
                    topic,
                    value=value,
                    key=key,
                    partition=i % PARTITIONS,
                    headers=list(headers),
                    timestamp_ms=ts,
                )
                for i, (key, value, headers, ts) in enumerate(SENT)
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())


PRODUCERS: dict[str, Callable[[str, str], None]] = {
    "confluent": produce_confluent,
    "kafka-python": produce_kafka_python,
    "aiokafka": produce_aiokafka,
}
WRITTEN = {"confluent": SENT, "kafka-python": SENT_NO_NULL_HEADERS, "aiokafka": SENT}


# ------------------------------------------------------------------------- consumers
def _collect(out: ByPartition, partition: int, offset: int, record: Record) -> None:
    assert offset == len(out[partition]), (partition, offset)
    out[partition].append(record)


def consume_confluent(bootstrap: str, topic: str, count: int) -> ByPartition:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    out: ByPartition = {p: [] for p in range(PARTITIONS)}
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        deadline = time.monotonic() + 20
        while sum(map(len, out.values())) < count and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=count, timeout=0.5):
                assert m.error() is None, m.error()
                record = (m.key(), m.value(), tuple(m.headers() or ()), m.timestamp()[1])
                _collect(out, m.partition(), m.offset(), record)
    finally:
        consumer.close()
    return out


def consume_kafka_python(bootstrap: str, topic: str, count: int) -> ByPartition:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    out: ByPartition = {p: [] for p in range(PARTITIONS)}
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        consumer.seek_to_beginning()
        deadline = time.monotonic() + 20
        while sum(map(len, out.values())) < count and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    record = (r.key, r.value, tuple(r.headers), r.timestamp)
                    _collect(out, tp.partition, r.offset, record)
    finally:
        consumer.close()
    return out


def consume_aiokafka(bootstrap: str, topic: str, count: int) -> ByPartition:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run() -> ByPartition:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        out: ByPartition = {p: [] for p in range(PARTITIONS)}
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
            await consumer.seek_to_beginning()
            deadline = time.monotonic() + 20
            while sum(map(len, out.values())) < count and time.monotonic() < deadline:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    for r in records:
                        record = (r.key, r.value, tuple(r.headers), r.timestamp)
                        _collect(out, tp.partition, r.offset, record)
        finally:
            await consumer.stop()
        return out

    return asyncio.run(run())


CONSUMERS: dict[str, Callable[[str, str, int], ByPartition]] = {
    "confluent": consume_confluent,
    "kafka-python": consume_kafka_python,
    "aiokafka": consume_aiokafka,
}


@pytest.fixture(scope="module")
def produced(kafka_server: ServerProcess, bootstrap: str) -> Callable[[str], str]:
    """Producer name -> a topic that producer filled with ``SENT`` (once per module)."""
    topics: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in topics:
            topic = unique_topic(name.replace("-", ""))
            create_topic(kafka_server, topic, partitions=PARTITIONS)
            PRODUCERS[name](bootstrap, topic)
            topics[name] = topic
        return topics[name]

    return get


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("producer", PRODUCERS)
def test_every_kafka_client_reads_what_every_other_wrote(
    bootstrap: str, produced, producer: str, consumer: str
) -> None:
    topic = produced(producer)
    assert CONSUMERS[consumer](bootstrap, topic, len(SENT)) == expected(WRITTEN[producer])


# ------------------------------------------------------------------- gRPC and streamctl
def consume_grpc(server: ServerProcess, topic: str, count: int) -> ByPartition:
    out: ByPartition = {p: [] for p in range(PARTITIONS)}
    with GrpcConsumer(server.grpc_address) as consumer:
        partitions = [GrpcPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        deadline = time.monotonic() + 20
        while sum(map(len, out.values())) < count and time.monotonic() < deadline:
            for r in consumer.poll(timeout_ms=500):
                record = (r.key, r.value, tuple(r.headers), r.timestamp_ms)
                _collect(out, r.partition, r.offset, record)
    return out


def _decoded(document: dict, name: str) -> bytes | None:
    text = document[name]
    if text is None:
        return None
    if document.get(f"{name}_encoding") == "base64":
        return base64.b64decode(text)
    return text.encode("utf-8")


def streamctl(server: ServerProcess, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [STREAMCTL, "--server", server.grpc_address, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("producer", PRODUCERS)
def test_grpc_client_reads_what_kafka_clients_wrote(kafka_server, produced, producer) -> None:
    topic = produced(producer)
    assert consume_grpc(kafka_server, topic, len(SENT)) == expected(WRITTEN[producer])


def test_streamctl_consume_reads_what_a_kafka_client_wrote(kafka_server, produced) -> None:
    topic = produced("confluent")
    output = streamctl(kafka_server, "consume", topic, "--from-beginning", "--exit-at-end")
    out: ByPartition = {p: [] for p in range(PARTITIONS)}
    for line in output.splitlines():
        doc = json.loads(line)
        headers = tuple((h["key"], _decoded(h, "value")) for h in doc["headers"])
        record = (_decoded(doc, "key"), _decoded(doc, "value"), headers, doc["timestamp"])
        _collect(out, doc["partition"], doc["offset"], record)
    assert out == expected()


def test_confluent_reads_what_the_grpc_client_wrote(kafka_server, bootstrap) -> None:
    topic = unique_topic("grpc")
    create_topic(kafka_server, topic, partitions=PARTITIONS)
    with GrpcProducer(kafka_server.grpc_address, acks="all") as producer:
        futures = [
            producer.send(
                topic, value, key, partition=i % PARTITIONS, headers=list(headers), timestamp_ms=ts
            )
            for i, (key, value, headers, ts) in enumerate(SENT)
        ]
        for future in futures:
            future.result(timeout=20)
    assert consume_confluent(bootstrap, topic, len(SENT)) == expected()


def test_confluent_reads_what_streamctl_produce_wrote(kafka_server, bootstrap) -> None:
    topic = unique_topic("ctl")
    create_topic(kafka_server, topic, partitions=PARTITIONS)
    lines = ["k1:first", "no separator here", "k2:ünïcode value", ":empty key"]
    streamctl(
        kafka_server,
        "produce",
        topic,
        "--partition",
        "1",
        "--key-sep",
        ":",
        "--header",
        "source=streamctl",
        "--acks",
        "all",
        stdin="\n".join(lines) + "\n",
    )
    got = consume_confluent(bootstrap, topic, len(lines))
    assert got[0] == []
    assert [(k, v, h) for k, v, h, _ in got[1]] == [
        (b"k1", b"first", (("source", b"streamctl"),)),
        (None, b"no separator here", (("source", b"streamctl"),)),
        (b"k2", "ünïcode value".encode(), (("source", b"streamctl"),)),
        (b"", b"empty key", (("source", b"streamctl"),)),
    ]
