"""The admin client manages topics and groups and reports failures as typed errors."""

from __future__ import annotations

import socket

import pytest
from streamhouse.broker.client import (
    AlreadyExistsError,
    AsyncAdminClient,
    AsyncConsumer,
    AsyncProducer,
    GroupError,
    InvalidRequestError,
    NotFoundError,
    TopicPartition,
    UnavailableError,
)


async def test_topic_lifecycle(server) -> None:
    async with AsyncAdminClient(server.grpc_address) as admin:
        created = await admin.create_topic("orders", partitions=2, configs={"retention.ms": 60000})
        assert (created.name, created.partitions, created.internal) == ("orders", 2, False)
        assert created.configs["retention.ms"] == "60000"
        again = await admin.create_topic("orders", partitions=9, if_not_exists=True)
        assert again.topic_id == created.topic_id and again.partitions == 2
        with pytest.raises(AlreadyExistsError) as exists:
            await admin.create_topic("orders")
        assert exists.value.reason == "TOPIC_EXISTS"

        listed = await admin.list_topics()
        assert "orders" in [t.name for t in listed]
        assert not any(t.internal or t.name.startswith("__") for t in listed)
        everything = await admin.list_topics(include_internal=True)
        assert {t.name for t in everything} >= {t.name for t in listed}

        updated = await admin.update_topic_config("orders", set={"retention.ms": "120000"})
        assert updated.configs["retention.ms"] == "120000"
        reset = await admin.update_topic_config("orders", reset=["retention.ms"])
        assert reset.configs["retention.ms"] != "120000"
        with pytest.raises(InvalidRequestError) as bad:
            await admin.update_topic_config("orders", set={"retention.ms": "soon"})
        assert bad.value.reason == "INVALID_CONFIG"

        grown = await admin.add_partitions("orders", 4)
        assert grown.partitions == 4
        with pytest.raises(InvalidRequestError):
            await admin.add_partitions("orders", 3)
        described = await admin.describe_topic("orders")
        assert [p.partition for p in described.partitions] == [0, 1, 2, 3]
        assert described.topic.name == "orders"

        meta = await admin.metadata(["orders", "missing"])
        assert meta.topics["orders"].partitions == 4
        assert meta.agents and meta.agent_id in {a.agent_id for a in meta.agents}
        assert isinstance(meta.topics["missing"].error, NotFoundError)

        await admin.delete_topic("orders")
        with pytest.raises(NotFoundError) as gone:
            await admin.describe_topic("orders")
        assert gone.value.reason == "UNKNOWN_TOPIC"
        with pytest.raises(NotFoundError):
            await admin.delete_topic("orders")
        with pytest.raises(InvalidRequestError):
            await admin.create_topic("__reserved")
        with pytest.raises(ValueError, match="partitions"):
            await admin.create_topic("zero", partitions=0)


async def test_group_administration(server) -> None:
    address = server.grpc_address
    async with AsyncAdminClient(address) as admin:
        await admin.create_topic("clicks", partitions=2)
        async with AsyncProducer(address) as producer:
            for i in range(10):
                await producer.send("clicks", b"c%d" % i, partition=i % 2)
        consumer = AsyncConsumer(address, group_id="readers", auto_offset_reset="earliest")
        consumer.subscribe(["clicks"])
        seen = 0
        while seen < 10:
            seen += len(await consumer.poll(timeout_ms=1000))
        await consumer.commit()

        groups = {g.group: g for g in await admin.list_groups()}
        assert groups["readers"].members == 1
        described = await admin.describe_group("readers")
        assert described.state == "Stable" and len(described.members) == 1
        assert set(described.members[0].assignment) == {
            TopicPartition("clicks", 0),
            TopicPartition("clicks", 1),
        }
        assert described.total_lag == 0
        with pytest.raises(GroupError):  # offsets of an active group cannot be reset
            await admin.reset_offsets("readers", "clicks", "earliest")
        await consumer.close()

        offsets = await admin.fetch_offsets("readers")
        assert offsets == {TopicPartition("clicks", 0): 5, TopicPartition("clicks", 1): 5}
        preview = await admin.reset_offsets("readers", "clicks", "offset", 2, dry_run=True)
        assert set(preview.values()) == {2}
        assert await admin.fetch_offsets("readers", "clicks") == offsets
        await admin.reset_offsets("readers", "clicks", "earliest", partitions=[1])
        assert (await admin.fetch_offsets("readers"))[TopicPartition("clicks", 1)] == 0
        with pytest.raises(ValueError, match="to must be one of"):
            await admin.reset_offsets("readers", "clicks", "yesterday")
        await admin.delete_group("readers")
        assert "readers" not in {g.group for g in await admin.list_groups()}
        # Like Kafka, an unknown group is described as Dead rather than refused.
        dead = await admin.describe_group("readers")
        assert (dead.state, dead.members, dead.offsets) == ("Dead", (), ())
        with pytest.raises(NotFoundError) as unknown:
            await admin.delete_group("readers")
        assert unknown.value.reason == "UNKNOWN_GROUP"


async def test_unreachable_server_names_its_address() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    async with AsyncAdminClient(address, retries=1, retry_backoff_ms=10) as admin:
        with pytest.raises(UnavailableError, match=f"cannot reach StreamHouse at {address}"):
            await admin.list_topics()
    producer = AsyncProducer(address, retries=1, retry_backoff_ms=10)
    with pytest.raises(UnavailableError, match=address):
        await producer.send("t", b"v")
    await producer.close()
    async with AsyncConsumer(address, group_id="g", retries=1, retry_backoff_ms=10) as consumer:
        consumer.subscribe(["t"])
        with pytest.raises(UnavailableError, match=address):
            await consumer.poll(timeout_ms=100)
