"""Fetch, ListOffsets, OffsetForLeaderEpoch and DeleteRecords against a real server.

Consumers are confluent-kafka, kafka-python and aiokafka with ``assign()`` (no group). Data is
put in over gRPC or with raw Produce requests carrying batches we built, so each test knows
exactly which records and batch boundaries the broker holds. Raw requests (``KafkaSocket``)
check every advertised version and the byte limits, which clients only exercise indirectly.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from streamhouse.broker.client import AdminClient, Producer
from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.errors import ErrorCode
from streamhouse.broker.records import build_batch, iter_records, parse_header, set_base_offset

from tests.broker.kafka.conftest import KafkaSocket, create_topic, unique_topic
from tests.conftest import ServerProcess

FETCH_SESSION_ID_NOT_FOUND = 70


# ----------------------------------------------------------------------------- helpers
def produce_raw(port: int, topic: str, partition: int, batches: list[bytes]) -> list[int]:
    """Appends each batch with its own Produce request (acks=all); returns their base offsets."""
    bases = []
    with KafkaSocket(port) as conn:
        for data in batches:
            body = {
                "transactional_id": None,
                "acks": -1,
                "timeout_ms": 10_000,
                "topic_data": [
                    {"name": topic, "partition_data": [{"index": partition, "records": data}]}
                ],
            }
            response = conn.request(apis.PRODUCE, 8, body)
            result = response["responses"][0]["partition_responses"][0]
            assert result["error_code"] == 0, result
            bases.append(result["base_offset"])
    return bases


def wait_committed(server: ServerProcess, topic: str, partition: int, offset: int) -> None:
    """Until ``offset`` is in a committed segment (sealed and in the object store)."""
    with AdminClient(server.grpc_address) as admin:
        for _ in range(200):
            described = admin.describe_topic(topic)
            if described.partitions[partition].committed_offset >= offset:
                return
            time.sleep(0.05)
    raise AssertionError(f"{topic}[{partition}] was not committed up to {offset}")


def segment_count(server: ServerProcess, topic: str, partition: int = 0) -> int:
    with AdminClient(server.grpc_address) as admin:
        return admin.describe_topic(topic).partitions[partition].segment_count


def fetch_body(
    topics: dict[str, dict[int, int]],
    *,
    max_wait_ms: int = 0,
    min_bytes: int = 1,
    max_bytes: int = 1 << 20,
    partition_max_bytes: int = 1 << 20,
    session_id: int = 0,
    session_epoch: int = -1,
) -> dict:
    return {
        "replica_id": -1,
        "max_wait_ms": max_wait_ms,
        "min_bytes": min_bytes,
        "max_bytes": max_bytes,
        "isolation_level": 0,
        "session_id": session_id,
        "session_epoch": session_epoch,
        "topics": [
            {
                "topic": topic,
                "partitions": [
                    {
                        "partition": p,
                        "fetch_offset": offset,
                        "log_start_offset": -1,
                        "partition_max_bytes": partition_max_bytes,
                    }
                    for p, offset in partitions.items()
                ],
            }
            for topic, partitions in topics.items()
        ],
        "forgotten_topics_data": [],
        "rack_id": "",
    }


def fetched(response: dict) -> dict[tuple[str, int], dict]:
    return {
        (topic["topic"], p["partition_index"]): p
        for topic in response["responses"]
        for p in topic["partitions"]
    }


def list_offsets(port: int, topic: str, timestamps: dict[int, int], version: int = 7) -> dict:
    """ListOffsets for ``{partition: timestamp}``; returns ``{partition: entry}``."""
    body = {
        "replica_id": -1,
        "isolation_level": 0,
        "topics": [
            {
                "name": topic,
                "partitions": [
                    {"partition_index": p, "timestamp": ts, "max_num_offsets": 1}
                    for p, ts in timestamps.items()
                ],
            }
        ],
    }
    with KafkaSocket(port) as conn:
        response = conn.request(apis.LIST_OFFSETS, version, body)
    return {p["partition_index"]: p for p in response["topics"][0]["partitions"]}


def confluent_consumer(bootstrap: str, **extra):
    from confluent_kafka import Consumer

    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "unused-no-subscribe",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
            **extra,
        }
    )


def consume_n(consumer, n: int, timeout_s: float = 20.0) -> list:
    out: list = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=n - len(out), timeout=0.5):
            assert message.error() is None, message.error()
            out.append(message)
    return out


def sample_records(n: int) -> list[tuple[bytes | None, bytes | None, tuple, int]]:
    """(key, value, headers, timestamp) with null keys, null values and empty headers mixed in."""
    records = []
    for i in range(n):
        key = None if i % 7 == 0 else f"key-{i % 5}".encode()
        value = None if i % 11 == 3 else f"value-{i}".encode() * (1 + i % 4)
        headers = (("trace", f"t{i}".encode()), ("nothing", None)) if i % 3 else ()
        records.append((key, value, headers, 1_600_000_000_000 + i * 1000))
    return records


@pytest.fixture(scope="module")
def loaded(kafka_server: ServerProcess) -> tuple[str, dict[int, list]]:
    """A 3-partition topic filled over gRPC: partition -> records in offset order."""
    topic = unique_topic("loaded")
    create_topic(kafka_server, topic, partitions=3)
    records = sample_records(90)
    by_partition: dict[int, list] = {0: [], 1: [], 2: []}
    with Producer(kafka_server.grpc_address, acks="all") as producer:
        futures = []
        for i, (key, value, headers, ts) in enumerate(records):
            futures.append(
                producer.send(
                    topic, value, key, partition=i % 3, headers=list(headers), timestamp_ms=ts
                )
            )
            by_partition[i % 3].append((key, value, headers, ts))
        for future in futures:
            future.result(timeout=20)
    return topic, by_partition


# ------------------------------------------------------------------ confluent-kafka
def test_confluent_consumer_reads_back_exactly_what_was_produced(bootstrap, loaded) -> None:
    from confluent_kafka import TIMESTAMP_CREATE_TIME, TopicPartition

    topic, expected = loaded
    consumer = confluent_consumer(bootstrap)
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        messages = consume_n(consumer, 90)
    finally:
        consumer.close()
    got: dict[int, list] = {0: [], 1: [], 2: []}
    for m in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        assert m.timestamp()[0] == TIMESTAMP_CREATE_TIME
        assert m.offset() == len(got[m.partition()])
        got[m.partition()].append((m.key(), m.value(), tuple(m.headers() or ()), m.timestamp()[1]))
    assert got == expected


def test_confluent_seek_reads_from_the_offset(bootstrap, loaded) -> None:
    from confluent_kafka import TopicPartition

    topic, expected = loaded
    consumer = confluent_consumer(bootstrap)
    try:
        consumer.assign([TopicPartition(topic, 1, 0)])
        assert len(consume_n(consumer, 5)) == 5
        consumer.seek(TopicPartition(topic, 1, 20))
        (message,) = consume_n(consumer, 1)
        assert (message.offset(), message.value()) == (20, expected[1][20][1])
        consumer.seek(TopicPartition(topic, 1, 3))
        messages = consume_n(consumer, 27)
        assert [m.offset() for m in messages] == list(range(3, 30))
    finally:
        consumer.close()


def test_confluent_watermarks(kafka_server, bootstrap, loaded) -> None:
    from confluent_kafka import TopicPartition

    topic, _ = loaded
    consumer = confluent_consumer(bootstrap)
    try:
        for p in range(3):
            assert consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) == (0, 30)
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def timed(kafka_server: ServerProcess) -> str:
    """One partition whose timestamps go back and forth, spread over a committed segment, a
    later committed segment and memory, one Produce request (one batch) per line:

    offsets 0-2: 1000, 1000, 2000      (segment 1)
    offsets 3-4: 1500, 3000            (segment 1: 1500 is late, after 2000)
    offsets 5-6: 5000, 4000            (segment 2)
    offsets 7-9: 4500, 5000, 6000      (memory or a later segment)
    """
    topic = unique_topic("times")
    create_topic(kafka_server, topic, partitions=1)
    port = kafka_server.kafka_port

    def batch(ts: list[int]) -> bytes:
        return build_batch([b"r%d" % t for t in ts], timestamps=ts)

    produce_raw(port, topic, 0, [batch([1000, 1000, 2000]), batch([1500, 3000])])
    wait_committed(kafka_server, topic, 0, 5)
    produce_raw(port, topic, 0, [batch([5000, 4000])])
    wait_committed(kafka_server, topic, 0, 7)
    produce_raw(port, topic, 0, [batch([4500, 5000, 6000])])
    return topic


# timestamp asked -> (offset, timestamp) Kafka answers: the first offset whose timestamp is
# at or after it, with that record's own timestamp.
TIME_CASES = {
    0: (0, 1000),
    999: (0, 1000),
    1000: (0, 1000),
    1001: (2, 2000),  # not offset 3 (1500 comes later in the log)
    1500: (2, 2000),
    2000: (2, 2000),
    2001: (4, 3000),
    3001: (5, 5000),  # the first record reaching 3001 is 5000, not the smaller 4000 after it
    4001: (5, 5000),
    5000: (5, 5000),
    5001: (9, 6000),
    6000: (9, 6000),
    6001: (-1, -1),
}


def test_confluent_offsets_for_times(bootstrap, timed) -> None:
    from confluent_kafka import TopicPartition

    consumer = confluent_consumer(bootstrap)
    try:
        for ts, (offset, _) in TIME_CASES.items():
            (answer,) = consumer.offsets_for_times([TopicPartition(timed, 0, ts)], timeout=10)
            assert (ts, answer.error, answer.offset) == (ts, None, offset)
    finally:
        consumer.close()


@pytest.mark.parametrize("version", [1, 4, 7])
def test_list_offsets_by_timestamp_answers_the_records_timestamp(kafka_server, timed, version):
    port = kafka_server.kafka_port
    for ts, (offset, found_ts) in TIME_CASES.items():
        entry = list_offsets(port, timed, {0: ts}, version)[0]
        assert (ts, entry["error_code"], entry["offset"], entry["timestamp"]) == (
            ts,
            0,
            offset,
            found_ts,
        )
    latest = list_offsets(port, timed, {0: -1}, version)[0]
    earliest = list_offsets(port, timed, {0: -2}, version)[0]
    assert (latest["offset"], earliest["offset"]) == (10, 0)


def test_list_offsets_max_timestamp_is_the_first_record_holding_it(kafka_server, timed):
    entry = list_offsets(kafka_server.kafka_port, timed, {0: -3}, 7)[0]
    assert (entry["error_code"], entry["offset"], entry["timestamp"]) == (0, 9, 6000)
    empty = unique_topic("empty")
    create_topic(kafka_server, empty, partitions=1)
    entry = list_offsets(kafka_server.kafka_port, empty, {0: -3}, 7)[0]
    assert (entry["error_code"], entry["offset"], entry["timestamp"]) == (0, -1, -1)


def test_kafka_python_offsets_for_times_answers_timestamps(bootstrap, timed) -> None:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tp = TopicPartition(timed, 0)
        for ts, (offset, found_ts) in TIME_CASES.items():
            answer = consumer.offsets_for_times({tp: ts})[tp]
            got = None if answer is None else (answer.offset, answer.timestamp)
            assert (ts, got) == (ts, None if offset < 0 else (offset, found_ts))
    finally:
        consumer.close()


def test_long_poll_wakes_when_a_record_arrives(kafka_server, bootstrap) -> None:
    """The consumer's fetch waits up to 30 s; a record produced meanwhile is delivered well
    within the 10 s the test gives it, so the server answered as soon as data arrived."""
    from confluent_kafka import TopicPartition

    topic = unique_topic("poll")
    create_topic(kafka_server, topic, partitions=2)
    consumer = confluent_consumer(bootstrap, **{"fetch.wait.max.ms": 30_000})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(2)])
        assert consumer.consume(num_messages=1, timeout=1.0) == []  # fetches are waiting now
        timer = threading.Timer(
            0.5, produce_raw, (kafka_server.kafka_port, topic, 1, [build_batch([b"late"])])
        )
        timer.start()
        messages = consumer.consume(num_messages=1, timeout=10)
        timer.join()
        assert [(m.partition(), m.value()) for m in messages] == [(1, b"late")]
    finally:
        consumer.close()


def test_raw_long_poll_wakes_for_any_topic_of_the_request(kafka_server) -> None:
    first, second = unique_topic("wa"), unique_topic("wb")
    create_topic(kafka_server, first, partitions=1)
    create_topic(kafka_server, second, partitions=2)
    port = kafka_server.kafka_port
    timer = threading.Timer(0.5, produce_raw, (port, second, 1, [build_batch([b"x", b"y"])]))
    with KafkaSocket(port, timeout=10) as conn:
        timer.start()
        body = fetch_body({first: {0: 0}, second: {0: 0, 1: 0}}, max_wait_ms=30_000)
        response = conn.request(apis.FETCH, 12, body)  # the socket gives up after 10 s
    timer.join()
    parts = fetched(response)
    assert [r.value for r in iter_records(parts[(second, 1)]["records"])] == [b"x", b"y"]
    assert parts[(first, 0)]["records"] == b""
    assert parts[(second, 0)]["high_watermark"] == 0


def test_out_of_range_offset_is_an_error_or_resets(kafka_server, bootstrap) -> None:
    from confluent_kafka import KafkaError, TopicPartition

    topic = unique_topic("range")
    create_topic(kafka_server, topic, partitions=1)
    produce_raw(kafka_server.kafka_port, topic, 0, [build_batch([b"a", b"b", b"c"])])

    strict = confluent_consumer(bootstrap, **{"auto.offset.reset": "error"})
    try:
        strict.assign([TopicPartition(topic, 0, 50)])
        errors = []
        deadline = time.monotonic() + 10
        while not errors and time.monotonic() < deadline:
            errors = [m.error() for m in strict.consume(1, timeout=0.5) if m.error()]
        assert errors and errors[0].code() == KafkaError._AUTO_OFFSET_RESET
    finally:
        strict.close()

    resetting = confluent_consumer(bootstrap, **{"auto.offset.reset": "earliest"})
    try:
        resetting.assign([TopicPartition(topic, 0, 50)])
        assert [m.value() for m in consume_n(resetting, 3)] == [b"a", b"b", b"c"]
    finally:
        resetting.close()


def test_confluent_delete_records_moves_the_log_start(kafka_server, bootstrap) -> None:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient as KafkaAdmin

    topic = unique_topic("delete")
    create_topic(kafka_server, topic, partitions=2)
    port = kafka_server.kafka_port
    produce_raw(port, topic, 0, [build_batch([b"%d" % i for i in range(4)]) for _ in range(5)])
    produce_raw(port, topic, 1, [build_batch([b"only"])])

    admin = KafkaAdmin({"bootstrap.servers": bootstrap})
    futures = admin.delete_records([TopicPartition(topic, 0, 6), TopicPartition(topic, 1, -1)])
    low = {tp.partition: f.result(timeout=20).low_watermark for tp, f in futures.items()}
    assert low == {0: 6, 1: 1}

    # Below the log start is out of range, the start itself reads (its batch begins at 4).
    with KafkaSocket(port) as conn:
        parts = fetched(conn.request(apis.FETCH, 12, fetch_body({topic: {0: 5}})))
        assert parts[(topic, 0)]["error_code"] == ErrorCode.OFFSET_OUT_OF_RANGE
        parts = fetched(conn.request(apis.FETCH, 12, fetch_body({topic: {0: 6}})))
        entry = parts[(topic, 0)]
        assert (entry["error_code"], entry["log_start_offset"]) == (0, 6)
        assert parse_header(entry["records"]).base_offset == 4
    assert list_offsets(port, topic, {0: -2, 1: -2})[0]["offset"] == 6
    assert list_offsets(port, topic, {1: -2})[1]["offset"] == 1
    # A timestamp before every record finds the first record that is still readable.
    assert list_offsets(port, topic, {0: 0})[0]["offset"] == 6

    consumer = confluent_consumer(bootstrap, **{"auto.offset.reset": "earliest"})
    try:
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (6, 20)
        consumer.assign([TopicPartition(topic, 0, 0)])  # below the start: reset to earliest
        assert [m.offset() for m in consume_n(consumer, 14)] == list(range(6, 20))
    finally:
        consumer.close()


def test_timestamp_lookups_ignore_records_hidden_by_delete_records(kafka_server) -> None:
    """Offsets 0-3 carry timestamps 9000, 100 | 200, 300 (two batches); after deleting below
    offset 1, the 9000 record still sits in the first batch but must never be an answer."""
    topic = unique_topic("hidden")
    create_topic(kafka_server, topic, partitions=1)
    port = kafka_server.kafka_port
    batches = [build_batch([b"a", b"b"], timestamps=[9000, 100])]
    batches.append(build_batch([b"c", b"d"], timestamps=[200, 300]))
    produce_raw(port, topic, 0, batches)
    with KafkaSocket(port) as conn:
        body = {
            "topics": [{"name": topic, "partitions": [{"partition_index": 0, "offset": 1}]}],
            "timeout_ms": 10_000,
        }
        (entry,) = conn.request(apis.DELETE_RECORDS, 1, body)["topics"][0]["partitions"]
    assert entry["low_watermark"] == 1
    answers = {ts: list_offsets(port, topic, {0: ts})[0] for ts in (0, 150, 300, 5000, -3)}
    assert {ts: (a["offset"], a["timestamp"]) for ts, a in answers.items()} == {
        0: (1, 100),
        150: (2, 200),
        300: (3, 300),
        5000: (-1, -1),
        -3: (3, 300),
    }


def test_delete_records_drops_segments_and_survives_a_restart(start_server) -> None:
    server = start_server()
    topic = unique_topic("durable")
    create_topic(server, topic, partitions=1)
    produce_raw(server.kafka_port, topic, 0, [build_batch([b"a"] * 10)])
    wait_committed(server, topic, 0, 10)
    produce_raw(server.kafka_port, topic, 0, [build_batch([b"b"] * 10)])  # maybe in memory

    with KafkaSocket(server.kafka_port) as conn:
        body = {
            "topics": [{"name": topic, "partitions": [{"partition_index": 0, "offset": 15}]}],
            "timeout_ms": 10_000,
        }
        (entry,) = conn.request(apis.DELETE_RECORDS, 2, body)["topics"][0]["partitions"]
    assert (entry["error_code"], entry["low_watermark"]) == (0, 15)
    # The first segment (0-9) is gone; the one holding 15 was committed to record the start.
    assert segment_count(server, topic) == 1

    server.stop()
    again = start_server(data_dir=server.data_dir)
    assert list_offsets(again.kafka_port, topic, {0: -2})[0]["offset"] == 15
    assert list_offsets(again.kafka_port, topic, {0: -1})[0]["offset"] == 20


# ----------------------------------------------------------------- other clients
def test_kafka_python_consumer_reads_back(bootstrap, loaded) -> None:
    from kafka import KafkaConsumer, TopicPartition

    topic, expected = loaded
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(3)])
        consumer.seek_to_beginning()
        got: dict[int, list] = {0: [], 1: [], 2: []}
        deadline = time.monotonic() + 20
        while sum(map(len, got.values())) < 90 and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    assert r.offset == len(got[tp.partition])
                    got[tp.partition].append((r.key, r.value, tuple(r.headers), r.timestamp))
    finally:
        consumer.close()
    assert got == expected


def test_aiokafka_consumer_reads_back(bootstrap, loaded) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic, expected = loaded

    async def consume() -> dict[int, list]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        got: dict[int, list] = {0: [], 1: [], 2: []}
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(3)])
            await consumer.seek_to_beginning()
            deadline = time.monotonic() + 20
            while sum(map(len, got.values())) < 90 and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for tp, records in batches.items():
                    for r in records:
                        assert r.offset == len(got[tp.partition])
                        item = (r.key, r.value, tuple(r.headers), r.timestamp)
                        got[tp.partition].append(item)
        finally:
            await consumer.stop()
        return got

    assert asyncio.run(consume()) == expected


# ------------------------------------------------------------------- raw requests
@pytest.fixture(scope="module")
def batches(kafka_server: ServerProcess) -> tuple[str, list[bytes]]:
    """Partition 0 holds three 40-record batches of about 2 KB; partition 1 one of them."""
    topic = unique_topic("raw")
    create_topic(kafka_server, topic, partitions=2)
    sent = [build_batch([bytes([65 + b]) * 50] * 40, timestamps=1000 + b) for b in range(3)]
    bases = produce_raw(kafka_server.kafka_port, topic, 0, sent)
    produce_raw(kafka_server.kafka_port, topic, 1, sent[:1])
    return topic, [set_base_offset(b, base) for b, base in zip(sent, bases, strict=True)]


@pytest.mark.parametrize("version", range(4, 13))
def test_every_fetch_version_returns_stored_batches_as_they_are(kafka_server, batches, version):
    topic, stored = batches
    with KafkaSocket(kafka_server.kafka_port) as conn:
        response = conn.request(apis.FETCH, version, fetch_body({topic: {0: 0, 1: 0}}))
    assert response["error_code"] == 0
    assert response["session_id"] == 0
    parts = fetched(response)
    zero, one = parts[(topic, 0)], parts[(topic, 1)]
    assert zero["records"] == b"".join(stored)
    assert (zero["error_code"], zero["high_watermark"], zero["last_stable_offset"]) == (0, 120, 120)
    assert one["records"] == stored[0]
    if version >= 5:
        assert zero["log_start_offset"] == 0
    if version >= 11:
        assert zero["preferred_read_replica"] == -1
    assert zero["aborted_transactions"] in ([], ())


def test_fetch_from_mid_batch_returns_the_batch_containing_the_offset(kafka_server, batches):
    topic, stored = batches
    with KafkaSocket(kafka_server.kafka_port) as conn:
        parts = fetched(conn.request(apis.FETCH, 12, fetch_body({topic: {0: 50}})))
    assert parts[(topic, 0)]["records"] == stored[1] + stored[2]


def test_fetch_byte_limits(kafka_server, batches) -> None:
    topic, stored = batches
    size = len(stored[0])
    with KafkaSocket(kafka_server.kafka_port) as conn:
        # The first partition with data gets its first batch even over both limits; the next
        # partition's first batch does not fit its limit, so it gets nothing (but its marks).
        tiny = fetch_body({topic: {0: 0, 1: 0}}, max_bytes=10, partition_max_bytes=10)
        parts = fetched(conn.request(apis.FETCH, 12, tiny))
        assert parts[(topic, 0)]["records"] == stored[0]
        assert (parts[(topic, 1)]["records"], parts[(topic, 1)]["high_watermark"]) == (b"", 40)
        # A partition whose data is already read does not count as the first with data.
        tiny = fetch_body({topic: {0: 120, 1: 0}}, max_bytes=10, partition_max_bytes=10)
        parts = fetched(conn.request(apis.FETCH, 12, tiny))
        assert parts[(topic, 1)]["records"] == stored[0]
        # Per partition: two batches fit, the third does not.
        two = fetch_body({topic: {0: 0}}, partition_max_bytes=2 * size + 10)
        assert fetched(conn.request(apis.FETCH, 12, two))[(topic, 0)]["records"] == b"".join(
            stored[:2]
        )
        # Overall: what the first partition takes leaves too little for the second.
        overall = fetch_body({topic: {0: 0, 1: 0}}, max_bytes=3 * size + size // 2)
        parts = fetched(conn.request(apis.FETCH, 12, overall))
        assert parts[(topic, 0)]["records"] == b"".join(stored)
        assert parts[(topic, 1)]["records"] == b""


def test_fetch_errors_are_per_partition(kafka_server, batches) -> None:
    topic, stored = batches
    with KafkaSocket(kafka_server.kafka_port) as conn:
        body = fetch_body({topic: {0: 0, 1: 41, 7: 0}, "no-such-topic": {0: 0}})
        parts = fetched(conn.request(apis.FETCH, 12, body))
        assert parts[(topic, 0)]["records"] == b"".join(stored)
        out_of_range = parts[(topic, 1)]
        assert out_of_range["error_code"] == ErrorCode.OFFSET_OUT_OF_RANGE
        assert out_of_range["records"] == b""
        assert parts[(topic, 7)]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert parts[("no-such-topic", 0)]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        negative = fetched(conn.request(apis.FETCH, 12, fetch_body({topic: {0: -5}})))
        assert negative[(topic, 0)]["error_code"] == ErrorCode.OFFSET_OUT_OF_RANGE
        internal = fetch_body({"__consumer_offsets": {0: 0}})
        parts = fetched(conn.request(apis.FETCH, 12, internal))
        assert parts[("__consumer_offsets", 0)]["error_code"] == (
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
        # The connection still serves.
        assert (
            fetched(conn.request(apis.FETCH, 4, fetch_body({topic: {1: 0}})))[(topic, 1)]["records"]
            == stored[0]
        )


def test_fetch_sessions_are_not_kept(kafka_server, batches) -> None:
    topic, stored = batches
    with KafkaSocket(kafka_server.kafka_port) as conn:
        # Asking for a new session (epoch 0) gets a full answer and no session.
        created = conn.request(apis.FETCH, 7, fetch_body({topic: {1: 0}}, session_epoch=0))
        assert (created["error_code"], created["session_id"]) == (0, 0)
        assert fetched(created)[(topic, 1)]["records"] == stored[0]
        # An incremental fetch in a session we never created is refused as a whole.
        incremental = fetch_body({topic: {1: 0}}, session_id=1234, session_epoch=3)
        refused = conn.request(apis.FETCH, 12, incremental)
        assert (refused["error_code"], refused["responses"]) == (FETCH_SESSION_ID_NOT_FOUND, [])


def test_fetch_waits_for_min_bytes_then_answers_with_what_there_is(kafka_server, batches):
    topic, stored = batches
    with KafkaSocket(kafka_server.kafka_port) as conn:
        body = fetch_body({topic: {1: 0}}, min_bytes=1 << 20, max_wait_ms=300)
        parts = fetched(conn.request(apis.FETCH, 12, body))
    assert parts[(topic, 1)]["records"] == stored[0]


@pytest.mark.parametrize("version", range(0, 8))
def test_every_list_offsets_version(kafka_server, batches, version) -> None:
    topic, _ = batches
    port = kafka_server.kafka_port
    answers = {
        -1: list_offsets(port, topic, {0: -1, 1: -1, 9: -1}, version),
        -2: list_offsets(port, topic, {0: -2}, version),
        1001: list_offsets(port, topic, {0: 1001}, version),
        5000: list_offsets(port, topic, {0: 5000}, version),
    }
    assert answers[-1][9]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    if version == 0:
        assert answers[-1][0]["old_style_offsets"] == [120]
        assert answers[-1][1]["old_style_offsets"] == [40]
        assert answers[-2][0]["old_style_offsets"] == [0]
        assert answers[1001][0]["old_style_offsets"] == [40]
        assert answers[5000][0]["old_style_offsets"] == [120]  # none that late: the log end
    else:
        assert [answers[-1][0]["offset"], answers[-1][1]["offset"]] == [120, 40]
        assert answers[-2][0]["offset"] == 0
        assert (answers[1001][0]["offset"], answers[1001][0]["timestamp"]) == (40, 1001)
        assert (answers[5000][0]["offset"], answers[5000][0]["timestamp"]) == (-1, -1)
        assert all(a[0]["error_code"] == 0 for a in answers.values())


@pytest.mark.parametrize("version", range(0, 5))
def test_every_offset_for_leader_epoch_version(kafka_server, batches, version) -> None:
    topic, _ = batches
    body = {
        "replica_id": -1,
        "topics": [
            {
                "topic": topic,
                "partitions": [
                    {"partition": 0, "current_leader_epoch": -1, "leader_epoch": 0},
                    {"partition": 1, "current_leader_epoch": -1, "leader_epoch": -1},
                    {"partition": 5, "current_leader_epoch": -1, "leader_epoch": 0},
                ],
            },
            {"topic": "missing", "partitions": [{"partition": 0, "leader_epoch": 0}]},
        ],
    }
    with KafkaSocket(kafka_server.kafka_port) as conn:
        response = conn.request(apis.OFFSET_FOR_LEADER_EPOCH, version, body)
    parts = {(t["topic"], p["partition"]): p for t in response["topics"] for p in t["partitions"]}
    assert (parts[(topic, 0)]["error_code"], parts[(topic, 0)]["end_offset"]) == (0, 120)
    assert (parts[(topic, 1)]["error_code"], parts[(topic, 1)]["end_offset"]) == (0, 40)
    if version >= 1:
        assert parts[(topic, 0)]["leader_epoch"] == 0
        assert parts[(topic, 1)]["leader_epoch"] == -1
    assert parts[(topic, 5)]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert parts[("missing", 0)]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


@pytest.mark.parametrize("version", range(0, 3))
def test_every_delete_records_version(kafka_server, version) -> None:
    topic = unique_topic("del")
    create_topic(kafka_server, topic, partitions=2)
    port = kafka_server.kafka_port
    produce_raw(port, topic, 0, [build_batch([b"x"] * 5)])
    produce_raw(port, topic, 1, [build_batch([b"x"] * 5)])
    body = {
        "topics": [
            {
                "name": topic,
                "partitions": [
                    {"partition_index": 0, "offset": 3},
                    {"partition_index": 1, "offset": 6},  # past the high watermark
                    {"partition_index": 4, "offset": 0},
                ],
            },
            {"name": "__consumer_offsets", "partitions": [{"partition_index": 0, "offset": -1}]},
        ],
        "timeout_ms": 10_000,
    }
    with KafkaSocket(port) as conn:
        response = conn.request(apis.DELETE_RECORDS, version, body)
        parts = {
            (t["name"], p["partition_index"]): p
            for t in response["topics"]
            for p in t["partitions"]
        }
        assert (parts[(topic, 0)]["error_code"], parts[(topic, 0)]["low_watermark"]) == (0, 3)
        assert parts[(topic, 1)]["error_code"] == ErrorCode.OFFSET_OUT_OF_RANGE
        assert parts[(topic, 4)]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert parts[("__consumer_offsets", 0)]["error_code"] == (
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
        # Deleting below the current start changes nothing.
        body["topics"] = [{"name": topic, "partitions": [{"partition_index": 0, "offset": 1}]}]
        again = conn.request(apis.DELETE_RECORDS, version, body)
        assert again["topics"][0]["partitions"][0]["low_watermark"] == 3
    earliest = list_offsets(port, topic, {0: -2, 1: -2})
    assert (earliest[0]["offset"], earliest[1]["offset"]) == (3, 0)
