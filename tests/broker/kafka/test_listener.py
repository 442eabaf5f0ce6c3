"""The listener's own options: advertised host, topic auto-creation, internal topics hidden."""

from __future__ import annotations

import socket
import struct

import pytest
from confluent_kafka.admin import AdminClient
from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.protocol.codec import codec

from tests.broker.kafka.conftest import KafkaSocket

UNKNOWN_TOPIC_OR_PARTITION = 3


def metadata_v8(port: int, topics: list[str] | None, allow_auto: bool = True) -> dict:
    topic_list = None if topics is None else [{"name": t} for t in topics]
    with KafkaSocket(port) as sock:
        return sock.request(
            apis.METADATA, 8, {"topics": topic_list, "allow_auto_topic_creation": allow_auto}
        )


def test_advertised_host_is_what_metadata_names(start_server):
    server = start_server("--advertised-host", "kafka.example.internal")
    answer = metadata_v8(server.kafka_port, [])
    assert [(b["host"], b["port"]) for b in answer["brokers"]] == [
        ("kafka.example.internal", server.kafka_port)
    ]
    assert answer["controller_id"] == answer["brokers"][0]["node_id"]


def test_metadata_auto_creates_topics_unless_disabled(start_server):
    server = start_server()
    answer = metadata_v8(server.kafka_port, ["fresh"])
    (topic,) = answer["topics"]
    assert topic["error_code"] == 0
    assert [p["partition_index"] for p in topic["partitions"]] == [0]
    # A client that does not allow auto-creation gets an error and nothing is created.
    refused = metadata_v8(server.kafka_port, ["other"], allow_auto=False)
    assert refused["topics"][0]["error_code"] == UNKNOWN_TOPIC_OR_PARTITION
    # Listing all topics shows the created one and hides internal ones.
    listed = AdminClient({"bootstrap.servers": f"127.0.0.1:{server.kafka_port}"}).list_topics(
        timeout=10
    )
    assert set(listed.topics) == {"fresh"}

    closed = start_server("--kafka-auto-create-topics", "false", "--kafka-default-partitions", "3")
    refused = metadata_v8(closed.kafka_port, ["fresh"])
    assert refused["topics"][0]["error_code"] == UNKNOWN_TOPIC_OR_PARTITION
    assert metadata_v8(closed.kafka_port, None)["topics"] == []


def test_transactions_fail_at_once_with_a_clear_message(server):
    from confluent_kafka import KafkaException, Producer

    producer = Producer({"bootstrap.servers": f"127.0.0.1:{server.kafka_port}",
                         "transactional.id": "tx-1"})  # fmt: skip
    with pytest.raises(KafkaException, match="transactions are not supported") as failure:
        producer.init_transactions(30)
    assert failure.value.args[0].fatal()


def test_a_request_of_millions_of_tiny_elements_is_refused_before_it_is_built():
    from streamhouse.broker.kafka.protocol.codec import MAX_ELEMENTS, DecodeError

    forgotten = [{"topic": "t", "partitions": []}] * (MAX_ELEMENTS + 1)
    frame = codec("FetchRequest", 12).encode({"topics": [], "forgotten_topics_data": forgotten})
    assert len(frame) < 2_000_000  # a few bytes each on the wire, ~100x that once decoded
    with pytest.raises(DecodeError, match="at most"):
        codec("FetchRequest", 12).decode(frame)
    fits = codec("FetchRequest", 12).encode({"forgotten_topics_data": forgotten[:1000]})
    assert len(codec("FetchRequest", 12).decode(fits)["forgotten_topics_data"]) == 1000


def test_before_sasl_authentication_big_frames_close_the_connection(start_server):
    server = start_server("--kafka-sasl-users", '{"alice": "s3cret"}')
    with socket.create_connection(("127.0.0.1", server.kafka_port), timeout=10) as sock:
        sock.sendall(struct.pack(">i", 600 * 1024) + struct.pack(">hhi", 18, 3, 1))
        assert sock.recv(16) == b""  # closed without reading the rest
    # Small frames are still served: ApiVersions answers.
    with KafkaSocket(server.kafka_port) as sock:
        assert sock.request(apis.API_VERSIONS, 0, {})["error_code"] == 0


def test_idle_and_half_sent_connections_are_closed(start_server):
    server = start_server("--kafka-connections-max-idle-ms", "1000")
    address = ("127.0.0.1", server.kafka_port)
    with (
        socket.create_connection(address, timeout=10) as half_sent,
        socket.create_connection(address, timeout=10) as idle,
    ):
        half_sent.sendall(struct.pack(">i", 50_000) + b"\x00\x12")
        assert half_sent.recv(16) == b""  # closed, not waiting forever for 49,998 more bytes
        assert idle.recv(16) == b""
    # A client that keeps talking is served as usual.
    answer = metadata_v8(server.kafka_port, [])
    assert answer["brokers"][0]["port"] == server.kafka_port
