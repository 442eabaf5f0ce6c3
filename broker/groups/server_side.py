"""The leader's job done by the coordinator, for members that cannot assign (gRPC clients).

Subscriptions are read in Kafka's consumer-protocol format, so a group may mix gRPC members
with Kafka clients. A member whose metadata does not parse is given nothing rather than
failing the whole group's rebalance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from streamhouse.broker.groups.assignors import ASSIGNORS, assign
from streamhouse.broker.groups.errors import (
    GroupError,
    GroupProtocolError,
    RebalanceInProgressError,
)
from streamhouse.broker.groups.models import AssignedMember, JoinResult
from streamhouse.broker.groups.protocol import (
    Assignment,
    Subscription,
    decode_assignment,
    decode_sticky_user_data,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)

log = logging.getLogger("streamhouse.groups")

CONSUMER_PROTOCOL_TYPE = "consumer"


def check_assignor(name: str) -> None:
    """Raises ValueError naming the valid assignors for anything else."""
    if name not in ASSIGNORS:
        raise ValueError(f"unknown assignor {name!r}; use one of {', '.join(ASSIGNORS)}")


async def leader_assignments(
    protocol: str,
    members: Sequence[tuple[str, str | None, bytes]],
    partitions_for: Callable[[str], Awaitable[int]],
) -> dict[str, bytes]:
    """Encoded assignments for every member of the generation, computed with ``protocol``.

    ``partitions_for`` gives a topic's partition count; 0 or a LookupError (unknown topic)
    leaves the topic out.
    """
    check_assignor(protocol)
    sticky = protocol == "sticky"
    subscriptions = {
        member_id: _subscription(member_id, data, sticky) for member_id, _, data in members
    }
    counts: dict[str, int] = {}
    for topic in sorted({t for sub in subscriptions.values() for t in sub.topics}):
        try:
            count = await partitions_for(topic)
        except LookupError:
            count = 0
        if count > 0:
            counts[topic] = count
    plan = assign(protocol, subscriptions, counts)
    return {member: encode_assignment(Assignment(parts)) for member, parts in plan.items()}


def _subscription(member_id: str, data: bytes, sticky: bool) -> Subscription:
    try:
        sub = decode_subscription(data)
    except GroupProtocolError as exc:
        log.warning("member %s sent an unreadable subscription, assigning it nothing: %s",
                    member_id, exc)  # fmt: skip
        return Subscription([])
    if not sticky or sub.owned or not sub.user_data:
        return sub
    # The eager "sticky" assignor of Java and kafka-python reports what it owned in user data.
    try:
        owned, generation = decode_sticky_user_data(sub.user_data)
    except GroupProtocolError:
        return sub
    return Subscription(sub.topics, sub.user_data, owned, generation, sub.rack)


class _Coordinator(Protocol):
    async def join(self, group: str, member_id: str, **kwargs: Any) -> JoinResult: ...
    async def sync(
        self, group: str, member_id: str, generation_id: int, assignments: dict | None
    ) -> bytes: ...
    async def leave(self, group: str, member_id: str) -> None: ...
    def member_ids(self, group: str) -> list[str]: ...


async def join_and_assign(
    coordinator: _Coordinator,
    group: str,
    member_id: str,
    *,
    client_id: str,
    client_host: str,
    topics: Sequence[str],
    assignor: str,
    owned: Sequence[tuple[str, int]],
    session_timeout_ms: int,
    rebalance_timeout_ms: int,
    partitions_for: Callable[[str], Awaitable[int]],
) -> AssignedMember:
    """Joins as a Kafka consumer would and, when leading, assigns for the whole group.

    The member offers one protocol, ``assignor``, with a consumer-protocol subscription, so
    Kafka clients using the same strategy can share the group. If a rebalance starts before
    the assignment arrives, the member rejoins by itself until the rebalance timeout.

    Raises:
        ValueError: Unknown assignor; plus everything the coordinator's join and sync raise.
    """
    check_assignor(assignor)
    subscription = encode_subscription(
        Subscription([str(t) for t in topics], owned=[(str(t), int(p)) for t, p in owned])
    )
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + max(rebalance_timeout_ms, session_timeout_ms) / 1000
    while True:
        joined = await coordinator.join(
            group,
            member_id,
            client_id=client_id,
            client_host=client_host,
            protocol_type=CONSUMER_PROTOCOL_TYPE,
            protocols=[(assignor, subscription)],
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
        )
        member_id = joined.member_id
        plan = None
        if joined.is_leader:
            try:
                plan = await leader_assignments(
                    joined.protocol_name, joined.members, partitions_for
                )
            except BaseException:
                # Leave, so the others rebalance now instead of after this session times out.
                with contextlib.suppress(GroupError):
                    await coordinator.leave(group, member_id)
                raise
        try:
            data = await coordinator.sync(group, member_id, joined.generation_id, plan)
        except RebalanceInProgressError:
            if loop.time() >= give_up_at:
                raise
            continue  # someone joined or left before the assignment arrived: rejoin
        partitions = decode_assignment(data).partitions
        return AssignedMember(
            member_id=member_id,
            generation_id=joined.generation_id,
            leader_id=joined.leader_id,
            assignor=joined.protocol_name,
            assignment={topic: sorted(parts) for topic, parts in partitions.items()},
            members=coordinator.member_ids(group),
        )
