"""Produce and InitProducerId against a real server, with real Kafka clients and raw requests.

Data is read back over our gRPC client, not the Kafka fetch path, so these tests check what was
stored independently of how Kafka consumers would read it. Raw requests go through our codec
(``KafkaSocket``) to send what clients would not: broken batches, bad acks, old formats.
"""

from __future__ import annotations

import asyncio

import pytest
from streamhouse.broker.client import AdminClient, Consumer, TopicPartition
from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.errors import ErrorCode
from streamhouse.broker.records import Compression, build_batch

from tests.broker.kafka.conftest import KafkaSocket, create_topic, unique_topic
from tests.conftest import ServerProcess

TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
FLEXIBLE_PRODUCE = 9  # first flexible Produce version


# ----------------------------------------------------------------------------- helpers
def next_offsets(server: ServerProcess, topic: str) -> list[int]:
    """Each partition's next offset as the broker reports it over gRPC."""
    with AdminClient(server.grpc_address) as admin:
        described = admin.describe_topic(topic)
    return [p.next_offset for p in sorted(described.partitions, key=lambda p: p.partition)]


def read_back(server: ServerProcess, topic: str, counts: dict[int, int]) -> dict:
    """Every record of the partitions in ``counts`` (from offset 0), over gRPC, by position."""
    wanted = sum(counts.values())
    out = {}
    with Consumer(server.grpc_address) as consumer:
        tps = [TopicPartition(topic, p) for p in counts]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        for _ in range(50):
            for record in consumer.poll(timeout_ms=500):
                out[(record.partition, record.offset)] = record
            if len(out) >= wanted:
                break
    assert len(out) == wanted
    return out


def produce_body(
    topic: str,
    partitions: dict[int, bytes | None],
    *,
    acks: int = -1,
    transactional_id: str | None = None,
    timeout_ms: int = 10_000,
) -> dict:
    return {
        "transactional_id": transactional_id,
        "acks": acks,
        "timeout_ms": timeout_ms,
        "topic_data": [
            {
                "name": topic,
                "partition_data": [{"index": p, "records": r} for p, r in partitions.items()],
            }
        ],
    }


def partition_results(response: dict) -> dict[tuple[str, int], dict]:
    return {
        (topic["name"], p["index"]): p
        for topic in response["responses"]
        for p in topic["partition_responses"]
    }


def batch(n: int = 3, size: int = 10, **kwargs) -> bytes:
    return build_batch([bytes([65 + i % 26]) * size for i in range(n)], **kwargs)


def corrupt(data: bytes) -> bytes:
    """Flips a bit in the last record: the CRC32C no longer matches."""
    return data[:-1] + bytes([data[-1] ^ 0x01])


def init_producer(conn: KafkaSocket, version: int = 4, **fields) -> dict:
    body = {"transactional_id": None, "transaction_timeout_ms": 60_000, **fields}
    return conn.request(apis.INIT_PRODUCER_ID, version, body)


# ----------------------------------------------------------------------- real clients
@pytest.mark.parametrize("compression", ["gzip", "snappy", "lz4", "zstd"])
def test_confluent_idempotent_producer_stores_exactly_what_was_sent(
    kafka_server: ServerProcess, bootstrap: str, compression: str
) -> None:
    import confluent_kafka

    topic = unique_topic("ck")
    create_topic(kafka_server, topic, partitions=3)
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": compression,
            "linger.ms": 5,
            "message.timeout.ms": 20_000,
        }
    )
    sent = []
    for i in range(300):
        key = None if i % 11 == 0 else f"key-{i % 7}".encode()
        value = None if i % 13 == 0 else f"value-{i}".encode() * (1 + i % 5)
        headers = [("trace", f"t{i}".encode()), ("empty", None)] if i % 2 else []
        sent.append((key, value, tuple(headers)))
    delivered: list = []
    for i, (key, value, headers) in enumerate(sent):
        producer.produce(
            topic,
            value=value,
            key=key,
            headers=list(headers),
            partition=i % 3,
            on_delivery=lambda err, msg, i=i: delivered.append(
                (i, err, msg.partition(), msg.offset())
            ),
        )
    assert producer.flush(30) == 0

    assert [err for _, err, _, _ in delivered if err is not None] == []
    by_partition: dict[int, list[int]] = {}
    for _, _, partition, offset in delivered:
        by_partition.setdefault(partition, []).append(offset)
    assert {p: sorted(o) for p, o in by_partition.items()} == {
        p: list(range(100)) for p in range(3)
    }
    assert next_offsets(kafka_server, topic) == [100, 100, 100]

    stored = read_back(kafka_server, topic, {0: 100, 1: 100, 2: 100})
    for i, _, partition, offset in delivered:
        record = stored[(partition, offset)]
        assert (record.key, record.value, tuple(record.headers)) == sent[i]


def test_confluent_plain_producer_acks_1(kafka_server: ServerProcess, bootstrap: str) -> None:
    import confluent_kafka

    topic = unique_topic("ck1")
    producer = confluent_kafka.Producer(
        {"bootstrap.servers": bootstrap, "acks": 1, "enable.idempotence": False, "linger.ms": 5}
    )
    offsets: list = []
    for i in range(50):
        producer.produce(
            topic,
            value=b"v%d" % i,
            on_delivery=lambda err, msg: offsets.append((err, msg.offset())),
        )
    assert producer.flush(30) == 0
    assert sorted(offsets, key=lambda e: e[1]) == [(None, i) for i in range(50)]
    stored = read_back(kafka_server, topic, {0: 50})
    assert [stored[(0, i)].value for i in range(50)] == [b"v%d" % i for i in range(50)]


def test_kafka_python_producer_gets_offsets(kafka_server: ServerProcess, bootstrap: str) -> None:
    from kafka import KafkaProducer

    topic = unique_topic("kp")
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, compression_type="gzip"
    )
    try:
        futures = [
            producer.send(topic, value=b"v%d" % i, key=b"k", headers=[("h", b"%d" % i)])
            for i in range(20)
        ]
        offsets = [f.get(timeout=20).offset for f in futures]
    finally:
        producer.close(timeout=10)
    assert offsets == list(range(20))
    stored = read_back(kafka_server, topic, {0: 20})
    assert [(r.key, r.value, r.headers) for r in (stored[(0, i)] for i in range(20))] == [
        (b"k", b"v%d" % i, (("h", b"%d" % i),)) for i in range(20)
    ]


def test_aiokafka_producer_gets_offsets(kafka_server: ServerProcess, bootstrap: str) -> None:
    from aiokafka import AIOKafkaProducer

    topic = unique_topic("aio")

    async def produce() -> list[int]:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, compression_type="lz4"
        )
        await producer.start()
        try:
            batch_sent = [await producer.send(topic, b"v%d" % i, key=b"k") for i in range(10)]
            first = [(await f).offset for f in batch_sent]
            last = await producer.send_and_wait(topic, b"last", key=b"k")
            return [*first, last.offset]
        finally:
            await producer.stop()

    assert asyncio.run(produce()) == list(range(11))
    stored = read_back(kafka_server, topic, {0: 11})
    assert stored[(0, 10)].value == b"last"


# ------------------------------------------------------------------------ raw requests
def test_every_produce_version_appends_and_answers(kafka_server: ServerProcess) -> None:
    topic = unique_topic("ver")
    create_topic(kafka_server, topic)
    low, high = apis.SUPPORTED[apis.PRODUCE]
    assert (low, high) == (0, 11)
    with KafkaSocket(kafka_server.kafka_port) as conn:
        for version in range(low, high + 1):
            response = conn.request(apis.PRODUCE, version, produce_body(topic, {0: batch(3)}))
            result = partition_results(response)[(topic, 0)]
            assert result["error_code"] == 0, (version, result)
            assert result["base_offset"] == 3 * version
            if version >= 2:
                assert result["log_append_time_ms"] == -1
            if version >= 5:
                assert result["log_start_offset"] == 0
            if version >= 8:
                assert result["error_message"] is None and result["record_errors"] == []
    assert next_offsets(kafka_server, topic) == [3 * (high + 1)]


def test_idempotent_retry_gets_original_offset_and_is_stored_once(
    kafka_server: ServerProcess,
) -> None:
    topic = unique_topic("idem")
    create_topic(kafka_server, topic)
    with KafkaSocket(kafka_server.kafka_port) as conn:
        pid = init_producer(conn)
        assert pid["error_code"] == 0 and pid["producer_id"] >= 0
        ids = {"producer_id": pid["producer_id"], "producer_epoch": pid["producer_epoch"]}
        conn.request(apis.PRODUCE, 9, produce_body(topic, {0: batch(2)}))  # plain, offsets 0-1
        first = batch(4, base_sequence=0, **ids)
        answers = [
            partition_results(conn.request(apis.PRODUCE, 9, produce_body(topic, {0: first})))
            for _ in range(2)
        ]
        assert [a[(topic, 0)]["error_code"] for a in answers] == [0, 0]
        assert [a[(topic, 0)]["base_offset"] for a in answers] == [2, 2]
        assert next_offsets(kafka_server, topic) == [6]

        following = batch(3, base_sequence=4, **ids)
        result = partition_results(
            conn.request(apis.PRODUCE, 9, produce_body(topic, {0: following}))
        )
        assert result[(topic, 0)]["base_offset"] == 6

        gap = batch(1, base_sequence=20, **ids)
        result = partition_results(conn.request(apis.PRODUCE, 9, produce_body(topic, {0: gap})))
        assert result[(topic, 0)]["error_code"] == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert "sequence" in result[(topic, 0)]["error_message"]
    assert next_offsets(kafka_server, topic) == [9]


def test_init_producer_id_bumps_the_epoch_and_fences_the_old_one(
    kafka_server: ServerProcess,
) -> None:
    topic = unique_topic("epoch")
    create_topic(kafka_server, topic)
    with KafkaSocket(kafka_server.kafka_port) as conn:
        old = init_producer(conn, 4)
        pid, epoch = old["producer_id"], old["producer_epoch"]
        stale = batch(1, producer_id=pid, producer_epoch=epoch, base_sequence=0)
        assert (
            partition_results(conn.request(apis.PRODUCE, 9, produce_body(topic, {0: stale})))[
                (topic, 0)
            ]["error_code"]
            == 0
        )

        bumped = init_producer(conn, 4, producer_id=pid, producer_epoch=epoch)
        assert (bumped["error_code"], bumped["producer_id"]) == (0, pid)
        assert bumped["producer_epoch"] == epoch + 1
        fresh = batch(1, producer_id=pid, producer_epoch=epoch + 1, base_sequence=0)
        assert (
            partition_results(conn.request(apis.PRODUCE, 9, produce_body(topic, {0: fresh})))[
                (topic, 0)
            ]["error_code"]
            == 0
        )

        zombie = batch(1, producer_id=pid, producer_epoch=epoch, base_sequence=1)
        result = partition_results(conn.request(apis.PRODUCE, 9, produce_body(topic, {0: zombie})))
        assert result[(topic, 0)]["error_code"] == ErrorCode.INVALID_PRODUCER_EPOCH

        half = init_producer(conn, 3, producer_id=pid, producer_epoch=-1)
        assert half["error_code"] == ErrorCode.INVALID_REQUEST
    assert next_offsets(kafka_server, topic) == [2]


def test_init_producer_id_every_version_allocates_distinct_ids(
    kafka_server: ServerProcess,
) -> None:
    low, high = apis.SUPPORTED[apis.INIT_PRODUCER_ID]
    assert (low, high) == (0, 5)
    with KafkaSocket(kafka_server.kafka_port) as conn:
        answers = [init_producer(conn, v) for v in range(low, high + 1)]
    assert [a["error_code"] for a in answers] == [0] * 6
    assert [a["producer_epoch"] for a in answers] == [0] * 6
    assert len({a["producer_id"] for a in answers}) == 6


def test_transactions_are_refused_with_a_fatal_code_and_nothing_stored(
    kafka_server: ServerProcess,
) -> None:
    topic = unique_topic("txn")
    create_topic(kafka_server, topic)
    with KafkaSocket(kafka_server.kafka_port) as conn:
        refused = init_producer(conn, 4, transactional_id="my-txn")
        assert refused["error_code"] == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        assert refused["producer_id"] == -1

        body = produce_body(topic, {0: batch(2)}, transactional_id="my-txn")
        result = partition_results(conn.request(apis.PRODUCE, 9, body))[(topic, 0)]
        assert result["error_code"] == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        assert "transactions" in result["error_message"]

        pid = init_producer(conn)
        txn_batch = batch(
            2,
            producer_id=pid["producer_id"],
            producer_epoch=pid["producer_epoch"],
            base_sequence=0,
            is_transactional=True,
        )
        result = partition_results(
            conn.request(apis.PRODUCE, 9, produce_body(topic, {0: txn_batch}))
        )[(topic, 0)]
        assert result["error_code"] == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    assert next_offsets(kafka_server, topic) == [0]


@pytest.mark.parametrize("version", [3, FLEXIBLE_PRODUCE])
@pytest.mark.parametrize(
    "damage",
    [corrupt, lambda b: b[:-5], lambda b: b + b[:20]],
    ids=["bad-crc", "truncated", "trailing-garbage"],
)
def test_broken_batch_fails_its_partition_only(
    kafka_server: ServerProcess, version: int, damage
) -> None:
    topic = unique_topic("bad")
    create_topic(kafka_server, topic, partitions=2)
    good, bad = batch(5, compression=Compression.LZ4), damage(batch(4))
    with KafkaSocket(kafka_server.kafka_port) as conn:
        response = conn.request(apis.PRODUCE, version, produce_body(topic, {0: good, 1: bad}))
        results = partition_results(response)
        assert results[(topic, 0)]["error_code"] == 0
        assert results[(topic, 0)]["base_offset"] == 0
        assert results[(topic, 1)]["error_code"] == ErrorCode.CORRUPT_MESSAGE
        assert results[(topic, 1)]["base_offset"] == -1
        if version >= 8:
            assert results[(topic, 1)]["error_message"]
        # the connection keeps serving
        again = conn.request(apis.PRODUCE, version, produce_body(topic, {1: batch(1)}))
        assert partition_results(again)[(topic, 1)]["error_code"] == 0
    assert next_offsets(kafka_server, topic) == [5, 1]
    stored = read_back(kafka_server, topic, {0: 5, 1: 1})
    assert stored[(1, 0)].value == b"A" * 10


def test_batch_over_max_message_bytes_is_message_too_large(kafka_server: ServerProcess) -> None:
    topic = unique_topic("big")
    create_topic(kafka_server, topic, configs={"max.message.bytes": "1000"})
    with KafkaSocket(kafka_server.kafka_port) as conn:
        big = build_batch([b"x" * 2000])
        result = partition_results(conn.request(apis.PRODUCE, 9, produce_body(topic, {0: big})))
        assert result[(topic, 0)]["error_code"] == ErrorCode.MESSAGE_TOO_LARGE
        small = build_batch([b"x" * 500])
        result = partition_results(conn.request(apis.PRODUCE, 9, produce_body(topic, {0: small})))
        assert result[(topic, 0)]["error_code"] == 0
    assert next_offsets(kafka_server, topic) == [1]


def test_unknown_partition_and_internal_topic(kafka_server: ServerProcess) -> None:
    topic = unique_topic("part")
    create_topic(kafka_server, topic, partitions=2)
    with KafkaSocket(kafka_server.kafka_port) as conn:
        body = produce_body(topic, {1: batch(2), 7: batch(2), -1: batch(2)})
        body["topic_data"].append(
            {"name": "__internal", "partition_data": [{"index": 0, "records": batch(1)}]}
        )
        results = partition_results(conn.request(apis.PRODUCE, 9, body))
    assert results[(topic, 1)]["error_code"] == 0
    assert results[(topic, 7)]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert results[(topic, -1)]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert results[("__internal", 0)]["error_code"] == ErrorCode.INVALID_TOPIC_EXCEPTION
    assert next_offsets(kafka_server, topic) == [0, 2]


def test_old_message_format_and_empty_record_sets_are_refused(kafka_server: ServerProcess) -> None:
    topic = unique_topic("fmt")
    create_topic(kafka_server, topic, partitions=3)
    v1 = bytearray(batch(2))
    v1[16] = 1  # magic byte of a v1 message set sits where RecordBatch keeps its magic
    with KafkaSocket(kafka_server.kafka_port) as conn:
        body = produce_body(topic, {0: bytes(v1), 1: None, 2: b""})
        results = partition_results(conn.request(apis.PRODUCE, 9, body))
    assert results[(topic, 0)]["error_code"] == ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT
    assert results[(topic, 1)]["error_code"] == ErrorCode.INVALID_REQUEST
    assert results[(topic, 2)]["error_code"] == ErrorCode.INVALID_REQUEST
    assert next_offsets(kafka_server, topic) == [0, 0, 0]


def test_acks_zero_sends_no_response_but_stores(kafka_server: ServerProcess) -> None:
    topic = unique_topic("acks0")
    create_topic(kafka_server, topic)
    with KafkaSocket(kafka_server.kafka_port) as conn:
        conn.send(apis.PRODUCE, 9, produce_body(topic, {0: batch(3)}, acks=0))
        conn.send(apis.PRODUCE, 3, produce_body(topic, {0: batch(2)}, acks=0))
        # the next frame to arrive answers the request after them: none was sent for produce
        correlation = conn.send(apis.API_VERSIONS, 0, {})
        assert conn.receive(apis.API_VERSIONS, 0, correlation)["error_code"] == 0
    assert next_offsets(kafka_server, topic) == [5]


def test_acks_zero_failure_closes_the_connection(kafka_server: ServerProcess) -> None:
    topic = unique_topic("acks0bad")
    create_topic(kafka_server, topic)
    with KafkaSocket(kafka_server.kafka_port) as conn:
        conn.send(apis.PRODUCE, 9, produce_body(topic, {0: corrupt(batch(3))}, acks=0))
        assert conn.is_closed()
    assert next_offsets(kafka_server, topic) == [0]


def test_invalid_acks_fails_every_partition(kafka_server: ServerProcess) -> None:
    topic = unique_topic("acks5")
    create_topic(kafka_server, topic, partitions=2)
    with KafkaSocket(kafka_server.kafka_port) as conn:
        body = produce_body(topic, {0: batch(1), 1: batch(1)}, acks=5)
        results = partition_results(conn.request(apis.PRODUCE, 9, body))
        assert [r["error_code"] for r in results.values()] == [ErrorCode.INVALID_REQUIRED_ACKS] * 2
        ok = conn.request(apis.PRODUCE, 9, produce_body(topic, {0: batch(1)}))
        assert partition_results(ok)[(topic, 0)]["error_code"] == 0
    assert next_offsets(kafka_server, topic) == [1, 0]


def test_producing_to_a_new_topic_creates_it(kafka_server: ServerProcess) -> None:
    topic = unique_topic("auto")
    with KafkaSocket(kafka_server.kafka_port) as conn:
        body = produce_body(topic, {0: batch(2)}, acks=1)
        result = partition_results(conn.request(apis.PRODUCE, 7, body))[(topic, 0)]
    assert (result["error_code"], result["base_offset"]) == (0, 0)
    assert next_offsets(kafka_server, topic) == [2]


def test_unknown_topic_without_auto_create(start_server) -> None:
    server = start_server("--kafka-auto-create-topics", "false")
    topic = unique_topic("noauto")
    with KafkaSocket(server.kafka_port) as conn:
        results = partition_results(
            conn.request(apis.PRODUCE, 9, produce_body(topic, {0: batch(1)}))
        )
    assert results[(topic, 0)]["error_code"] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    with AdminClient(server.grpc_address) as admin:
        assert topic not in {t.name for t in admin.list_topics()}
