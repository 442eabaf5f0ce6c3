"""Kafka clients against two agents on one PostgreSQL and one S3 bucket.

Metadata names both agents as brokers and each partition's leader; a produce to the wrong agent is
refused with NOT_LEADER_OR_FOLLOWER so clients refresh; librdkafka routes every partition to its
leader, and after `kill -9` of one agent it keeps producing once the leases move.
"""

from __future__ import annotations

import time

import grpc
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from streamhouse.broker.kafka import apis
from streamhouse.broker.records import build_batch
from streamhouse.broker.rpc.v1 import broker_pb2 as pb
from streamhouse.broker.rpc.v1 import broker_pb2_grpc as stubs

from tests.broker.kafka.conftest import KafkaSocket
from tests.conftest import wait_for

PARTITIONS = 6
NOT_LEADER_OR_FOLLOWER = 6


def grpc_leaders(grpc_address: str, topic: str) -> dict[int, str]:
    with grpc.insecure_channel(grpc_address) as channel:
        described = stubs.AdminStub(channel).DescribeTopic(
            pb.DescribeTopicRequest(name=topic), timeout=10
        )
    return {p.partition: p.leader_address for p in described.partitions}


def test_kafka_clients_follow_partition_leaders_across_agents(start_server, cluster_flags):
    first = start_server(*cluster_flags)
    second = start_server(*cluster_flags)
    agents = {first.grpc_address: first, second.grpc_address: second}
    with grpc.insecure_channel(first.grpc_address) as channel:
        stubs.AdminStub(channel).CreateTopic(
            pb.CreateTopicRequest(name="orders", partitions=PARTITIONS), timeout=30
        )

    def spread() -> dict[int, str] | None:
        leaders = grpc_leaders(first.grpc_address, "orders")
        return leaders if set(leaders.values()) == set(agents) else None

    leaders = wait_for(spread, 30, "partitions to spread over both agents")
    kafka_port_of = {address: agent.kafka_port for address, agent in agents.items()}

    # Metadata from either agent names both brokers and each partition's leader.
    for agent in agents.values():
        metadata = AdminClient({"bootstrap.servers": f"127.0.0.1:{agent.kafka_port}"}).list_topics(
            "orders", timeout=10
        )
        ports = {broker_id: b.port for broker_id, b in metadata.brokers.items()}
        assert sorted(ports.values()) == sorted(kafka_port_of.values())
        for partition, described in metadata.topics["orders"].partitions.items():
            assert ports[described.leader] == kafka_port_of[leaders[partition]]

    # The agent that does not lead a partition refuses a produce to it.
    partition, leader = next(iter(leaders.items()))
    wrong = next(a for a in agents if a != leader)
    with KafkaSocket(kafka_port_of[wrong]) as sock:
        refused = sock.request(
            apis.PRODUCE,
            7,
            {
                "acks": -1,
                "timeout_ms": 10_000,
                "topic_data": [
                    {
                        "name": "orders",
                        "partition_data": [{"index": partition, "records": build_batch([b"x"])}],
                    }
                ],
            },
        )
    answer = refused["responses"][0]["partition_responses"][0]
    assert answer["error_code"] == NOT_LEADER_OR_FOLLOWER

    # librdkafka bootstrapped on one agent routes every partition to its leader.
    producer = Producer(
        {
            "bootstrap.servers": f"127.0.0.1:{first.kafka_port}",
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 60_000,
        }
    )
    delivered: list[tuple[int, int]] = []
    failed: list[str] = []

    def report(err, msg) -> None:
        if err is not None:
            failed.append(str(err))
        else:
            delivered.append((msg.partition(), msg.offset()))

    for i in range(600):
        producer.produce("orders", value=f"before-{i}".encode(), partition=i % PARTITIONS,
                         on_delivery=report)  # fmt: skip
    assert producer.flush(60) == 0
    assert not failed
    assert len(delivered) == 600

    # Kill the second agent; its partitions move once its leases expire and producing goes on.
    second.kill()
    for i in range(600):
        producer.produce("orders", value=f"after-{i}".encode(), partition=i % PARTITIONS,
                         on_delivery=report)  # fmt: skip
    assert producer.flush(90) == 0
    assert not failed, failed[:3]
    assert len(delivered) == 1200

    # Every acknowledged record is there, offsets dense per partition.
    consumer = Consumer(
        {
            "bootstrap.servers": f"127.0.0.1:{first.kafka_port}",
            "group.id": "unused",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition("orders", p, 0) for p in range(PARTITIONS)])
    seen: dict[int, list[int]] = {p: [] for p in range(PARTITIONS)}
    values: set[bytes] = set()
    deadline = time.monotonic() + 60
    while sum(len(v) for v in seen.values()) < 1200 and time.monotonic() < deadline:
        for message in consumer.consume(500, timeout=1):
            assert message.error() is None, message.error()
            seen[message.partition()].append(message.offset())
            values.add(message.value())
    consumer.close()
    assert len(values) == 1200
    for partition, offsets in seen.items():
        assert offsets == list(range(len(offsets))), partition
        assert sorted(o for p, o in delivered if p == partition) == offsets
