"""Server-side assignment (the gRPC flow), alone and in groups shared with Kafka clients."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from kafka.protocol.consumer.metadata import (
    ConsumerProtocolAssignment,
    ConsumerProtocolSubscription,
)
from kafka.structs import TopicPartition
from streamhouse.broker.groups import (
    AssignedMember,
    GroupCoordinator,
    JoinResult,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from streamhouse.broker.groups.protocol import (
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_subscription,
)
from streamhouse.broker.groups.server_side import leader_assignments
from streamhouse.broker.metadata import UnknownTopicError

Join = Callable[..., Awaitable[JoinResult]]
COUNTS = {"orders": 4, "payments": 2}


async def partitions_for(topic: str) -> int:
    if topic not in COUNTS:
        raise UnknownTopicError(topic)
    return COUNTS[topic]


async def until_rebalancing(coordinator: GroupCoordinator, member: AssignedMember) -> None:
    with pytest.raises(RebalanceInProgressError):
        async with asyncio.timeout(10):
            while True:
                await coordinator.heartbeat("g", member.member_id, member.generation_id)
                await asyncio.sleep(0.05)


async def grpc_member(
    coordinator: GroupCoordinator,
    member_id: str = "",
    *,
    topics: tuple[str, ...] = ("orders", "payments"),
    assignor: str = "range",
    owned: list[tuple[str, int]] | None = None,
    partitions: Callable[[str], Awaitable[int]] = partitions_for,
) -> AssignedMember:
    return await coordinator.join_with_assignment(
        "g",
        member_id,
        client_id="grpc",
        client_host="10.0.0.1",
        topics=list(topics),
        assignor=assignor,
        owned=owned or [],
        session_timeout_ms=10_000,
        rebalance_timeout_ms=5_000,
        partitions_for=partitions,
    )


async def test_a_lone_member_gets_every_partition_and_unknown_topics_are_skipped(
    coordinator: GroupCoordinator,
) -> None:
    member = await grpc_member(coordinator, topics=("orders", "missing"))
    assert (member.generation_id, member.leader_id, member.assignor) == (
        1,
        member.member_id,
        "range",
    )
    assert member.assignment == {"orders": [0, 1, 2, 3]}
    assert member.members == [member.member_id]
    subscription = (await coordinator.describe_group("g")).members[0].metadata
    assert decode_subscription(subscription).topics == ["orders", "missing"]


async def test_a_follower_rejoining_unchanged_gets_its_assignment_back(
    make_coordinator: Callable[..., Awaitable[GroupCoordinator]],
) -> None:
    coordinator = await make_coordinator(initial_rebalance_delay_ms=200)
    first, second = await asyncio.gather(grpc_member(coordinator), grpc_member(coordinator))
    follower = second if first.leader_id == first.member_id else first
    again = await grpc_member(coordinator, follower.member_id)
    assert (again.generation_id, again.assignment) == (follower.generation_id, follower.assignment)


async def test_kafka_clients_and_grpc_members_share_a_group(
    coordinator: GroupCoordinator, join: Join
) -> None:
    """A kafka-python style member (its own subscription bytes) follows a gRPC leader, and the
    assignment it receives is one kafka-python decodes."""
    leader = await grpc_member(coordinator)
    kafka_subscription = ConsumerProtocolSubscription(
        version=1,
        topics=["payments"],
        user_data=b"",
        owned_partitions=[],
    ).encode()
    kafka_joining = asyncio.create_task(
        join(coordinator, protocols=[("range", kafka_subscription), ("roundrobin", b"")])
    )
    await until_rebalancing(coordinator, leader)
    leader_again = await grpc_member(coordinator, leader.member_id)
    kafka_member = await kafka_joining
    assert kafka_member.protocol_name == "range" and not kafka_member.is_leader
    data = await coordinator.sync("g", kafka_member.member_id, kafka_member.generation_id, {})
    theirs = ConsumerProtocolAssignment.decode(data)
    # range orders members by id: "client-..." (kafka) before "grpc-..."
    assert [(t, list(ps)) for t, ps in theirs.assigned_partitions] == [("payments", [0])]
    assert leader_again.assignment == {"orders": [0, 1, 2, 3], "payments": [1]}
    assert sorted(leader_again.members) == sorted([leader.member_id, kafka_member.member_id])


async def test_a_member_with_unreadable_metadata_gets_nothing_instead_of_breaking_the_group(
    coordinator: GroupCoordinator, join: Join
) -> None:
    leader = await grpc_member(coordinator)
    odd_joining = asyncio.create_task(join(coordinator, protocols=[("range", b"\x00\x00\xff")]))
    await until_rebalancing(coordinator, leader)
    leader_again = await grpc_member(coordinator, leader.member_id)
    odd = await odd_joining
    assert leader_again.assignment == {"orders": [0, 1, 2, 3], "payments": [0, 1]}
    data = await coordinator.sync("g", odd.member_id, odd.generation_id, {})
    assert decode_assignment(data).partitions == {}


async def test_sticky_reads_what_kafka_python_members_owned_from_their_user_data() -> None:
    owned_by_kafka = StickyPartitionAssignor._metadata(
        ["orders"], [TopicPartition("orders", 3), TopicPartition("orders", 2)], generation=4
    ).encode()
    plan = await leader_assignments(
        "sticky",
        [
            ("a-grpc", None, encode_subscription(Subscription(["orders"]))),
            ("z-kafka", None, owned_by_kafka),
        ],
        partitions_for,
    )
    assert ConsumerProtocolAssignment.decode(plan["z-kafka"]).assigned_partitions == [
        ("orders", [2, 3])
    ]


async def test_unknown_assignors_are_refused_before_joining(
    coordinator: GroupCoordinator,
) -> None:
    with pytest.raises(ValueError, match="range, roundrobin, sticky"):
        await grpc_member(coordinator, assignor="fair")
    assert await coordinator.list_groups() == []


async def test_a_leader_whose_topic_lookup_fails_leaves_so_the_others_can_go_on(
    coordinator: GroupCoordinator,
) -> None:
    async def broken(topic: str) -> int:
        raise RuntimeError("metadata store down")

    with pytest.raises(RuntimeError, match="store down"):
        await grpc_member(coordinator, partitions=broken)
    assert not coordinator.is_active("g")
    member = await grpc_member(coordinator)
    assert member.assignment == {"orders": [0, 1, 2, 3], "payments": [0, 1]}
    with pytest.raises(UnknownMemberIdError):
        await coordinator.heartbeat("g", "grpc-gone", 1)
