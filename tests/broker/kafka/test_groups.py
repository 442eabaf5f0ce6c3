"""Consumer groups over the Kafka protocol: real clients join, split, rebalance and commit.

Records are written with our gRPC producer, so these tests depend only on the group APIs and
Fetch. One server serves the whole module; every test uses its own topics and groups.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment
from streamhouse.broker.client import AdminClient as GrpcAdmin
from streamhouse.broker.client import Producer as GrpcProducer
from streamhouse.broker.client import TopicPartition as GrpcTopicPartition
from streamhouse.broker.groups import (
    Assignment,
    Subscription,
    encode_assignment,
    encode_subscription,
)
from streamhouse.broker.kafka import apis
from streamhouse.broker.kafka.errors import ErrorCode

from tests.broker.kafka.conftest import KafkaSocket, create_topic, unique_topic

SESSION_MS = 6000
HEARTBEAT_MS = 300
WAIT_S = 30


def unique_group(prefix: str = "g") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def produce(server, topic: str, start: int, count: int) -> dict[int, int]:
    """Writes records ``start..start+count`` (keyed, so they spread); returns per-partition
    counts."""
    values = [b"%d" % i for i in range(start, start + count)]
    with GrpcProducer(server.grpc_address) as producer:
        result = producer.send_many(topic, values, [b"key-%d" % i for i in range(len(values))])
    return Counter(r.partition for r in result)


def wait_until(condition: Callable[[], bool], step: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        step()


# ------------------------------------------------------------------------- confluent-kafka
class Member:
    """A confluent-kafka group member that remembers its assignment and what it consumed."""

    def __init__(self, bootstrap: str, group: str, topic: str, name: str) -> None:
        self.name = name
        self.assigned: set[int] = set()
        self.records: list[tuple[int, int, bytes]] = []  # (partition, offset, value)
        self.errors: list[KafkaError] = []
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "client.id": name,
                "session.timeout.ms": SESSION_MS,
                "heartbeat.interval.ms": HEARTBEAT_MS,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "error_cb": self.errors.append,
            }
        )
        self.consumer.subscribe([topic], on_assign=self._assign, on_revoke=self._revoke)

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned = {p.partition for p in partitions}

    def _revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Commits what was consumed before giving the partitions up (the usual pattern), so
        their next owner starts exactly there."""
        self.assigned = set()
        if self.records:
            self.commit()

    def commit(self) -> None:
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:  # nothing consumed since the last
                raise

    def poll(self) -> None:
        for message in self.consumer.consume(500, 0.05):
            assert message.error() is None, message.error()
            self.records.append((message.partition(), message.offset(), message.value()))

    def values(self) -> list[bytes]:
        return [value for _, _, value in self.records]


def poll_all(members: list[Member]) -> Callable[[], None]:
    def step() -> None:
        for member in members:
            member.poll()

    return step


def test_confluent_group_splits_rebalances_and_resumes_from_commits(kafka_server, bootstrap):
    topic, group = unique_topic("split"), unique_group()
    create_topic(kafka_server, topic, partitions=6)
    produce(kafka_server, topic, 0, 600)
    members = [Member(bootstrap, group, topic, f"member-{i}") for i in range(3)]
    wait_until(
        lambda: (
            sum(len(m.records) for m in members) >= 600
            and all(len(m.assigned) == 2 for m in members)
        ),
        poll_all(members),
        "three members to consume 600 records",
    )
    # 2/2/2, disjoint, covering all six; each member read only its own partitions.
    assert sorted(p for m in members for p in m.assigned) == list(range(6))
    for member in members:
        assert {partition for partition, _, _ in member.records} <= member.assigned
    seen = Counter(v for m in members for v in m.values())
    assert len(seen) == 600 and max(seen.values()) == 1
    for member in members:
        member.commit()

    leaving = members.pop()
    leaving.consumer.close()
    produce(kafka_server, topic, 600, 300)
    wait_until(
        lambda: (
            len({v for m in (*members, leaving) for v in m.values()}) >= 900
            and all(len(m.assigned) == 3 for m in members)
        ),
        poll_all(members),
        "the two remaining members to take over and consume 300 more",
    )
    assert sorted(p for m in members for p in m.assigned) == list(range(6))
    seen = Counter(v for m in (*members, leaving) for v in m.values())
    assert len(seen) == 900 and max(seen.values()) == 1  # committed on revoke: no repeats

    for member in members:
        member.commit()
        member.consumer.close()
    produce(kafka_server, topic, 900, 60)
    newcomer = Member(bootstrap, group, topic, "newcomer")
    try:
        wait_until(lambda: len(newcomer.records) >= 60, newcomer.poll, "the newcomer")
        assert newcomer.assigned == set(range(6))
        assert sorted(newcomer.values()) == sorted(b"%d" % i for i in range(900, 960))
    finally:
        newcomer.consumer.close()
    assert not [e for m in (*members, leaving, newcomer) for e in m.errors if e.fatal()]


def test_confluent_commit_with_metadata_reads_back_everywhere(kafka_server, bootstrap):
    topic, group = unique_topic("meta"), unique_group()
    create_topic(kafka_server, topic, partitions=2)
    produce(kafka_server, topic, 0, 10)
    member = Member(bootstrap, group, topic, "meta")
    try:
        wait_until(lambda: member.assigned == {0, 1}, member.poll, "the assignment")
        member.consumer.commit(
            offsets=[
                TopicPartition(topic, 0, 3, metadata="checkpoint-a"),
                TopicPartition(topic, 1, 1, metadata=""),
            ],
            asynchronous=False,
        )
        committed = member.consumer.committed(
            [TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10
        )
        assert [(p.partition, p.offset, p.metadata or "") for p in committed] == [
            (0, 3, "checkpoint-a"),
            (1, 1, ""),
        ]
        admin = AdminClient({"bootstrap.servers": bootstrap})
        listed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
        offsets = listed[group].result().topic_partitions
        assert sorted((p.partition, p.offset, p.metadata or "") for p in offsets) == [
            (0, 3, "checkpoint-a"),
            (1, 1, ""),
        ]
        # The same positions through the gRPC Groups service: one coordinator, two wires.
        with GrpcAdmin(kafka_server.grpc_address) as grpc_admin:
            assert grpc_admin.fetch_offsets(group) == {
                GrpcTopicPartition(topic, 0): 3,
                GrpcTopicPartition(topic, 1): 1,
            }
            described = grpc_admin.describe_group(group)
            assert described.state == "Stable"
            assert [m.client_id for m in described.members] == ["meta"]
    finally:
        member.consumer.close()


def test_confluent_commit_to_unknown_partition_fails_only_that_partition(kafka_server, bootstrap):
    topic, group = unique_topic("unknown"), unique_group()
    create_topic(kafka_server, topic, partitions=1)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    altered = admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 5)])]
    )
    assert altered[group].result().topic_partitions[0].offset == 5
    with KafkaSocket(kafka_server.kafka_port) as sock:
        response = sock.request(
            apis.OFFSET_COMMIT,
            8,
            {
                "group_id": group,
                "generation_id_or_member_epoch": -1,
                "member_id": "",
                "topics": [
                    {
                        "name": topic,
                        "partitions": [
                            {"partition_index": 0, "committed_offset": 7},
                            {"partition_index": 9, "committed_offset": 7},
                        ],
                    },
                    {"name": "no-such-topic", "partitions": [{"partition_index": 0}]},
                ],
            },
        )
    codes = [
        (p["partition_index"], p["error_code"]) for t in response["topics"] for p in t["partitions"]
    ]
    assert codes == [(0, 0), (9, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), (0, 3)]
    with GrpcAdmin(kafka_server.grpc_address) as grpc_admin:
        assert grpc_admin.fetch_offsets(group) == {GrpcTopicPartition(topic, 0): 7}


def test_confluent_admin_lists_describes_and_deletes_groups(kafka_server, bootstrap):
    topic, group = unique_topic("admin"), unique_group("admin")
    create_topic(kafka_server, topic, partitions=3)
    members = [Member(bootstrap, group, topic, f"admin-{i}") for i in range(2)]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        wait_until(
            lambda: sorted(p for m in members for p in m.assigned) == [0, 1, 2],
            poll_all(members),
            "both members to be assigned",
        )
        listed = {g.group_id: g for g in admin.list_consumer_groups().result().valid}
        assert group in listed and not listed[group].is_simple_consumer_group
        assert listed[group].state.name == "STABLE"

        described = admin.describe_consumer_groups([group])[group].result()
        assert described.state.name == "STABLE"
        assert described.partition_assignor == "range"
        assert sorted(m.client_id for m in described.members) == ["admin-0", "admin-1"]
        by_client = {
            m.client_id: {tp.partition for tp in m.assignment.topic_partitions}
            for m in described.members
        }
        assert by_client == {m.name: m.assigned for m in members}
        assert all(m.host == "/127.0.0.1" for m in described.members)

        refused = admin.delete_consumer_groups([group])[group]
        with pytest.raises(KafkaException) as info:
            refused.result()
        assert info.value.args[0].code() == KafkaError.NON_EMPTY_GROUP
    finally:
        for member in members:
            member.consumer.close()

    empty = admin.describe_consumer_groups([group])[group].result()
    assert empty.state.name == "EMPTY" and not empty.members
    assert admin.delete_consumer_groups([group])[group].result() is None
    assert group not in {g.group_id for g in admin.list_consumer_groups().result().valid}
    missing = admin.delete_consumer_groups([group])[group]
    with pytest.raises(KafkaException) as info:
        missing.result()
    assert info.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND


# ------------------------------------------------------------------------- kafka-python
def test_kafka_python_consumer_group_consumes_and_commits(kafka_server, bootstrap):
    from kafka import KafkaConsumer, OffsetAndMetadata
    from kafka import TopicPartition as KTopicPartition

    topic, group = unique_topic("kp"), unique_group("kp")
    create_topic(kafka_server, topic, partitions=3)
    counts = produce(kafka_server, topic, 0, 90)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=SESSION_MS,
        heartbeat_interval_ms=HEARTBEAT_MS,
    )
    values: list[bytes] = []
    try:

        def step() -> None:
            for records in consumer.poll(timeout_ms=200).values():
                values.extend(r.value for r in records)

        wait_until(lambda: len(values) >= 90, step, "kafka-python to consume 90 records")
        assert sorted(values) == sorted(b"%d" % i for i in range(90))
        consumer.commit()
        for partition, count in counts.items():
            assert consumer.committed(KTopicPartition(topic, partition)) == count
        first = KTopicPartition(topic, 0)
        consumer.commit({first: OffsetAndMetadata(counts[0], "kp-note", -1)})
        assert consumer.committed(first, metadata=True).metadata == "kp-note"
    finally:
        consumer.close()
    with GrpcAdmin(kafka_server.grpc_address) as grpc_admin:
        assert grpc_admin.fetch_offsets(group) == {
            GrpcTopicPartition(topic, p): n for p, n in counts.items()
        }


def test_kafka_python_admin_lists_describes_offsets_and_deletes(kafka_server, bootstrap):
    """kafka-python 3 names these list_groups, describe_groups, list_group_offsets and
    delete_groups (the *_consumer_groups names are gone)."""
    from kafka import KafkaAdminClient

    topic, group = unique_topic("kpadmin"), unique_group("kpadmin")
    create_topic(kafka_server, topic, partitions=2)
    member = Member(bootstrap, group, topic, "kp-admin-member")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        wait_until(lambda: member.assigned == {0, 1}, member.poll, "the assignment")
        member.consumer.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
        listed = {g["group_id"]: g for g in admin.list_groups()}
        assert listed[group]["protocol_type"] == "consumer"
        assert listed[group]["group_state"] == "Stable"
        assert group not in {g["group_id"] for g in admin.list_groups(states_filter=["Empty"])}
        described = admin.describe_groups([group])[group]
        assert described["error"] is None and described["group_state"] == "Stable"
        assert "DESCRIBE" in described["authorized_operations"]  # kafka-python asks for them
        assert (described["protocol_type"], described["protocol_data"]) == ("consumer", "range")
        (description,) = described["members"]
        assert description["client_id"] == "kp-admin-member"
        assert description["member_metadata"]["topics"] == [topic]
        assert description["member_assignment"]["assigned_partitions"] == [
            {"topic": topic, "partitions": [0, 1]}
        ]
        offsets = admin.list_group_offsets(group)[group]
        assert {(tp.topic, tp.partition, om.offset) for tp, om in offsets.items()} == {
            (topic, 0, 4)
        }
        assert admin.delete_groups([group]) == {group: "NonEmptyGroupError"}
    finally:
        member.consumer.close()
    try:
        assert admin.delete_groups([group]) == {group: "OK"}
        assert admin.delete_groups([group]) == {group: "GroupIdNotFoundError"}
    finally:
        admin.close()


# ------------------------------------------------------------------------- aiokafka
def test_aiokafka_consumer_group_consumes_and_commits(kafka_server, bootstrap):
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition as ATopicPartition

    topic, group = unique_topic("aio"), unique_group("aio")
    create_topic(kafka_server, topic, partitions=2)
    counts = produce(kafka_server, topic, 0, 40)

    async def run() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=SESSION_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
        )
        await consumer.start()
        values: list[bytes] = []
        try:
            deadline = time.monotonic() + WAIT_S
            while len(values) < 40:
                assert time.monotonic() < deadline, "aiokafka did not consume 40 records"
                batches = await consumer.getmany(timeout_ms=200)
                values.extend(r.value for records in batches.values() for r in records)
            await consumer.commit()
            for partition, count in counts.items():
                assert await consumer.committed(ATopicPartition(topic, partition)) == count
        finally:
            await consumer.stop()
        return values

    values = asyncio.run(run())
    assert sorted(values) == sorted(b"%d" % i for i in range(40))
    with GrpcAdmin(kafka_server.grpc_address) as grpc_admin:
        assert grpc_admin.fetch_offsets(group) == {
            GrpcTopicPartition(topic, p): n for p, n in counts.items()
        }


# ------------------------------------------------------------------------- raw protocol
def _version(api_key: int, wanted: int) -> int:
    low, high = apis.SUPPORTED[api_key]
    return max(low, min(wanted, high))


def _join(
    sock: KafkaSocket,
    version: int,
    group: str,
    topic: str,
    member_id: str = "",
    instance: str | None = None,
) -> dict:
    body = {
        "group_id": group,
        "group_instance_id": instance,
        "session_timeout_ms": SESSION_MS,
        "rebalance_timeout_ms": SESSION_MS,
        "member_id": member_id,
        "protocol_type": "consumer",
        "protocols": [{"name": "range", "metadata": encode_subscription(Subscription([topic]))}],
    }
    response = sock.request(apis.JOIN_GROUP, version, body)
    if version >= 4 and not member_id:  # v4+: the id is handed out first, then used to join
        assert response["error_code"] == ErrorCode.MEMBER_ID_REQUIRED, response
        assert response["member_id"]
        response = sock.request(
            apis.JOIN_GROUP, version, {**body, "member_id": response["member_id"]}
        )
    return response


@pytest.mark.parametrize("step", range(10))
def test_raw_group_lifecycle_at_every_version(kafka_server, step):
    """Each API at version ``step`` (clamped to its range): find, join, sync, heartbeat, commit,
    fetch, list, describe, leave, delete; encoded and decoded by our codec."""
    topic, group = unique_topic("raw"), unique_group("raw")
    create_topic(kafka_server, topic, partitions=2)
    v = {key: _version(key, step) for key in apis.SUPPORTED}
    with KafkaSocket(kafka_server.kafka_port) as sock:
        find = sock.request(
            apis.FIND_COORDINATOR,
            v[apis.FIND_COORDINATOR],
            {"key": group, "key_type": 0, "coordinator_keys": [group]},
        )
        found = find["coordinators"][0] if v[apis.FIND_COORDINATOR] >= 4 else find
        assert found["error_code"] == 0 and found["port"] == kafka_server.kafka_port

        joined = _join(sock, v[apis.JOIN_GROUP], group, topic)
        assert joined["error_code"] == 0 and joined["leader"] == joined["member_id"]
        assert joined["generation_id"] == 1 and joined["protocol_name"] == "range"
        assert [m["member_id"] for m in joined["members"]] == [joined["member_id"]]
        if v[apis.JOIN_GROUP] >= 7:
            assert joined["protocol_type"] == "consumer"
        member, generation = joined["member_id"], joined["generation_id"]

        mine = encode_assignment(Assignment({topic: [0, 1]}))
        synced = sock.request(
            apis.SYNC_GROUP,
            v[apis.SYNC_GROUP],
            {
                "group_id": group,
                "generation_id": generation,
                "member_id": member,
                "protocol_type": "consumer",
                "protocol_name": "range",
                "assignments": [{"member_id": member, "assignment": mine}],
            },
        )
        assert synced["error_code"] == 0 and synced["assignment"] == mine
        if v[apis.SYNC_GROUP] >= 5:
            assert (synced["protocol_type"], synced["protocol_name"]) == ("consumer", "range")
        beat = {"group_id": group, "generation_id": generation, "member_id": member}
        assert sock.request(apis.HEARTBEAT, v[apis.HEARTBEAT], beat)["error_code"] == 0

        commit_version = v[apis.OFFSET_COMMIT]
        commit_body = {
            "group_id": group,
            "generation_id_or_member_epoch": generation,
            "member_id": member,
            "topics": [
                {
                    "name": topic,
                    "partitions": [
                        {"partition_index": 1, "committed_offset": 42, "committed_metadata": "note"}
                    ],
                }
            ],
        }
        commit = sock.request(apis.OFFSET_COMMIT, commit_version, commit_body)
        # v0 names no member, and only members may commit while the group has any.
        expected = ErrorCode.UNKNOWN_MEMBER_ID if commit_version == 0 else 0
        assert commit["topics"][0]["partitions"][0]["error_code"] == expected

        listed = sock.request(apis.LIST_GROUPS, v[apis.LIST_GROUPS], {})
        assert listed["error_code"] == 0
        (entry,) = [g for g in listed["groups"] if g["group_id"] == group]
        assert entry["protocol_type"] == "consumer"
        if v[apis.LIST_GROUPS] >= 4:
            assert entry["group_state"] == "Stable"

        described = sock.request(apis.DESCRIBE_GROUPS, v[apis.DESCRIBE_GROUPS], {"groups": [group]})
        (desc,) = described["groups"]
        assert (desc["error_code"], desc["group_state"], desc["protocol_data"]) == (
            0,
            "Stable",
            "range",
        )
        (described_member,) = desc["members"]
        assert described_member["member_id"] == member
        assert described_member["client_id"] == "raw-test"
        assert described_member["member_assignment"] == mine

        leave_version = v[apis.LEAVE_GROUP]
        left = sock.request(
            apis.LEAVE_GROUP,
            leave_version,
            {"group_id": group, "member_id": member, "members": [{"member_id": member}]},
        )
        assert left["error_code"] == 0
        if leave_version >= 3:
            assert [(m["member_id"], m["error_code"]) for m in left["members"]] == [(member, 0)]

        if commit_version == 0:  # an empty group takes an outsider's commit
            commit = sock.request(apis.OFFSET_COMMIT, commit_version, commit_body)
            assert commit["topics"][0]["partitions"][0]["error_code"] == 0
        wanted = [{"name": topic, "partition_indexes": [0, 1]}]
        fetch_version = v[apis.OFFSET_FETCH]
        fetched = sock.request(
            apis.OFFSET_FETCH,
            fetch_version,
            {
                "group_id": group,
                "topics": wanted,
                "groups": [{"group_id": group, "topics": wanted}],
            },
        )
        if fetch_version >= 8:
            (fetched,) = fetched["groups"]
            assert fetched["group_id"] == group
        assert fetched["error_code"] == 0
        positions = [
            (p["partition_index"], p["committed_offset"], p["metadata"], p["error_code"])
            for t in fetched["topics"]
            for p in t["partitions"]
        ]
        assert positions == [(0, -1, "", 0), (1, 42, "note", 0)]

        deleted = sock.request(apis.DELETE_GROUPS, v[apis.DELETE_GROUPS], {"groups_names": [group]})
        assert [(r["group_id"], r["error_code"]) for r in deleted["results"]] == [(group, 0)]
        gone = sock.request(apis.DESCRIBE_GROUPS, v[apis.DESCRIBE_GROUPS], {"groups": [group]})
        assert gone["groups"][0]["group_state"] == "Dead"


def test_raw_wrong_generation_and_unknown_member_are_refused_and_server_keeps_serving(
    kafka_server,
):
    topic, group = unique_topic("bad"), unique_group("bad")
    create_topic(kafka_server, topic, partitions=1)
    with KafkaSocket(kafka_server.kafka_port) as sock:
        joined = _join(sock, 5, group, topic)
        member, generation = joined["member_id"], joined["generation_id"]
        for mismatch in ({"protocol_name": "roundrobin"}, {"protocol_type": "connect"}):
            refused = sock.request(
                apis.SYNC_GROUP,
                5,
                {"group_id": group, "generation_id": generation, "member_id": member, **mismatch},
            )
            assert refused["error_code"] == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        # The leader sends no assignment for itself: it still gets a parseable one.
        synced = sock.request(
            apis.SYNC_GROUP,
            3,
            {"group_id": group, "generation_id": generation, "member_id": member},
        )
        assert synced["error_code"] == 0
        # Parsed the way kafka-python parses it (empty bytes would raise struct.error).
        parsed = ConsumerProtocolAssignment.decode(synced["assignment"])
        assert parsed.assigned_partitions == []

        stale = {"group_id": group, "generation_id": generation + 5, "member_id": member}
        assert sock.request(apis.HEARTBEAT, 3, stale)["error_code"] == ErrorCode.ILLEGAL_GENERATION
        stranger = sock.request(
            apis.SYNC_GROUP,
            3,
            {"group_id": group, "generation_id": generation, "member_id": "nobody"},
        )
        assert stranger["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
        outsider_commit = sock.request(
            apis.OFFSET_COMMIT,
            2,
            {
                "group_id": group,
                "generation_id_or_member_epoch": -1,
                "member_id": "",
                "topics": [
                    {"name": topic, "partitions": [{"partition_index": 0, "committed_offset": 1}]}
                ],
            },
        )
        # A live group's offsets belong to its members.
        assert outsider_commit["topics"][0]["partitions"][0]["error_code"] == (
            ErrorCode.UNKNOWN_MEMBER_ID
        )
        ok = {"group_id": group, "generation_id": generation, "member_id": member}
        assert sock.request(apis.HEARTBEAT, 3, ok)["error_code"] == 0
        assert sock.request(apis.LEAVE_GROUP, 1, ok)["error_code"] == 0
        assert sock.request(apis.LEAVE_GROUP, 1, ok)["error_code"] == ErrorCode.UNKNOWN_MEMBER_ID
        # OffsetFetch with null topics (v2+) returns every committed position; there are none.
        fetched = sock.request(apis.OFFSET_FETCH, 5, {"group_id": group, "topics": None})
        assert (fetched["error_code"], fetched["topics"]) == (0, [])


def test_raw_batched_leave_by_instance_id_reports_each_member(kafka_server):
    topic, group = unique_topic("leave"), unique_group("leave")
    create_topic(kafka_server, topic, partitions=1)
    with KafkaSocket(kafka_server.kafka_port) as sock:
        joined = _join(sock, 5, group, topic, instance="static-1")
        assert joined["error_code"] == 0
        assert joined["members"][0]["group_instance_id"] == "static-1"
        left = sock.request(
            apis.LEAVE_GROUP,
            4,
            {
                "group_id": group,
                "members": [
                    {"member_id": "", "group_instance_id": "static-1"},
                    {"member_id": "ghost", "group_instance_id": None},
                ],
            },
        )
        assert left["error_code"] == 0
        assert [
            (m["member_id"], m["group_instance_id"], m["error_code"]) for m in left["members"]
        ] == [
            ("", "static-1", 0),
            ("ghost", None, ErrorCode.UNKNOWN_MEMBER_ID),
        ]
        described = sock.request(apis.DESCRIBE_GROUPS, 4, {"groups": [group]})["groups"][0]
        assert (described["group_state"], described["members"]) == ("Empty", [])


def test_raw_find_coordinator_batches_keys_and_refuses_transactions(kafka_server):
    with KafkaSocket(kafka_server.kafka_port) as sock:
        batched = sock.request(
            apis.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["a", "b", ""]}
        )
        entries = {c["key"]: c for c in batched["coordinators"]}
        assert entries["a"]["error_code"] == entries["b"]["error_code"] == 0
        assert entries["a"]["port"] == kafka_server.kafka_port
        assert entries[""]["error_code"] == ErrorCode.INVALID_GROUP_ID
        txn = sock.request(apis.FIND_COORDINATOR, 2, {"key": "tx-1", "key_type": 1})
        assert txn["error_code"] == ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        assert "transactions" in txn["error_message"]
        assert txn["node_id"] == -1


def test_raw_member_joining_during_a_rebalance_is_admitted(kafka_server):
    """The trap: a newcomer arriving while the group rebalances must not get UNKNOWN_MEMBER_ID;
    it joins the same generation as the members that were already there."""
    topic, group = unique_topic("rejoin"), unique_group("rejoin")
    create_topic(kafka_server, topic, partitions=3)
    results: dict[str, dict] = {}

    def join(name: str) -> None:
        with KafkaSocket(kafka_server.kafka_port, client_id=name) as sock:
            results[name] = _join(sock, 5, group, topic)

    with KafkaSocket(kafka_server.kafka_port, client_id="first") as first:
        joined = _join(first, 5, group, topic)
        member, generation = joined["member_id"], joined["generation_id"]
        beat = {"group_id": group, "generation_id": generation, "member_id": member}
        assert first.request(apis.SYNC_GROUP, 3, beat)["error_code"] == 0

        second = threading.Thread(target=join, args=("second",))
        second.start()  # starts a rebalance; waits for "first" to rejoin
        wait_until(
            lambda: (
                first.request(apis.HEARTBEAT, 3, beat)["error_code"]
                == ErrorCode.REBALANCE_IN_PROGRESS
            ),
            lambda: time.sleep(0.02),
            "the rebalance",
        )
        third = threading.Thread(target=join, args=("third",))
        third.start()  # arrives during the rebalance

        def members() -> int:
            described = first.request(apis.DESCRIBE_GROUPS, 3, {"groups": [group]})
            return len(described["groups"][0]["members"])

        wait_until(lambda: members() == 3, lambda: time.sleep(0.02), "the third member")
        results["first"] = _join(first, 5, group, topic, member_id=member)
        second.join(WAIT_S)
        third.join(WAIT_S)
    assert {name: r["error_code"] for name, r in results.items()} == {
        "first": 0,
        "second": 0,
        "third": 0,
    }
    assert {r["generation_id"] for r in results.values()} == {generation + 1}
    assert len(results["first"]["members"]) == 3  # the first member still leads


# ------------------------------------------------------------------------- two agents
def test_two_agents_agree_on_coordinators_and_send_clients_to_them(start_server, cluster_flags):
    """Either agent names the same coordinator; the other one answers NOT_COORDINATOR, and a
    consumer bootstrapped on the wrong agent still consumes and commits through the right one."""
    agents = [start_server(*cluster_flags), start_server(*cluster_flags)]
    ports = [agent.kafka_port for agent in agents]
    topic, names = unique_topic("two"), [unique_group(f"two{i}") for i in range(32)]
    create_topic(agents[0], topic, partitions=4)
    counts = produce(agents[0], topic, 0, 40)

    def coordinators(port: int) -> dict[str, int]:
        """Group -> coordinator port; -1 while a group's coordination moves between agents."""
        with KafkaSocket(port) as sock:
            found = sock.request(
                apis.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": names}
            )
        return {c["key"]: c["port"] if c["error_code"] == 0 else -1 for c in found["coordinators"]}

    def on_both() -> bool:
        return set(coordinators(ports[0]).values()) == set(ports)

    wait_until(on_both, lambda: time.sleep(0.2), "group coordination to spread over both agents")
    assert coordinators(ports[0]) == coordinators(ports[1])
    group = next(g for g, port in coordinators(ports[0]).items() if port == ports[1])

    with KafkaSocket(ports[0]) as wrong:
        joined = wrong.request(
            apis.JOIN_GROUP,
            5,
            {
                "group_id": group,
                "session_timeout_ms": SESSION_MS,
                "member_id": "",
                "protocol_type": "consumer",
                "protocols": [{"name": "range", "metadata": b""}],
            },
        )
        assert joined["error_code"] == ErrorCode.NOT_COORDINATOR
        beat = {"group_id": group, "generation_id": 1, "member_id": "m"}
        assert wrong.request(apis.HEARTBEAT, 3, beat)["error_code"] == ErrorCode.NOT_COORDINATOR
        committed = wrong.request(
            apis.OFFSET_COMMIT,
            7,
            {
                "group_id": group,
                "topics": [{"name": topic, "partitions": [{"partition_index": 0}]}],
            },
        )
        assert committed["topics"][0]["partitions"][0]["error_code"] == ErrorCode.NOT_COORDINATOR
        fetched = wrong.request(apis.OFFSET_FETCH, 8, {"groups": [{"group_id": group}]})
        assert fetched["groups"][0]["error_code"] == ErrorCode.NOT_COORDINATOR
        described = wrong.request(apis.DESCRIBE_GROUPS, 3, {"groups": [group]})
        assert described["groups"][0]["error_code"] == ErrorCode.NOT_COORDINATOR

    member = Member(f"127.0.0.1:{ports[0]}", group, topic, "two-agents")
    try:
        wait_until(lambda: len(member.records) >= 40, member.poll, "40 records on two agents")
        assert sorted(member.values()) == sorted(b"%d" % i for i in range(40))
        member.commit()
    finally:
        member.consumer.close()
    with GrpcAdmin(agents[0].grpc_address) as grpc_admin:
        assert grpc_admin.fetch_offsets(group) == {
            GrpcTopicPartition(topic, p): n for p, n in counts.items()
        }
