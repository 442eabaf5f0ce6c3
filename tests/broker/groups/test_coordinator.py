"""The coordinator with concurrent asyncio members: rebalances, expiry, fencing, admin."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import REGISTRY
from streamhouse.broker.groups import (
    CoordinatorNotAvailableError,
    GroupCoordinator,
    GroupIdNotFoundError,
    IllegalGenerationError,
    InconsistentGroupProtocolError,
    InvalidGroupIdError,
    InvalidSessionTimeoutError,
    JoinResult,
    MemberIdRequiredError,
    NonEmptyGroupError,
    RebalanceInProgressError,
    UnknownMemberIdError,
    decode_assignment,
)
from streamhouse.broker.groups.protocol import Assignment, encode_assignment
from streamhouse.broker.metadata import UnknownTopicError

Join = Callable[..., Awaitable[JoinResult]]
ALL_SIX = {("orders", p) for p in range(4)} | {("payments", p) for p in range(2)}


def assignment_of(**parts: list[int]) -> bytes:
    return encode_assignment(Assignment(dict(parts)))


async def stable_pair(
    coordinator: GroupCoordinator, join: Join, **options: object
) -> tuple[JoinResult, JoinResult]:
    """Two members in one Stable generation: the first leads, the second follows."""
    first = await join(coordinator, **options)
    await coordinator.sync("g", first.member_id, first.generation_id, {})
    second_joining = asyncio.create_task(join(coordinator, **options))
    with pytest.raises(RebalanceInProgressError):
        await _until_rebalancing(coordinator, first)
    first = await join(coordinator, first.member_id, **options)
    second = await second_joining
    assert first.generation_id == second.generation_id == 2
    plan = {
        first.member_id: assignment_of(orders=[0, 1], payments=[0]),
        second.member_id: assignment_of(orders=[2, 3], payments=[1]),
    }
    follower = asyncio.create_task(coordinator.sync("g", second.member_id, 2, None))
    await coordinator.sync("g", first.member_id, 2, plan)
    assert decode_assignment(await follower).partitions == {"orders": [2, 3], "payments": [1]}
    return first, second


async def _until_rebalancing(coordinator: GroupCoordinator, member: JoinResult) -> None:
    """Heartbeats until the coordinator says to rejoin (raises RebalanceInProgressError)."""
    async with asyncio.timeout(10):
        while True:
            await coordinator.heartbeat("g", member.member_id, member.generation_id)
            await asyncio.sleep(0.05)


def _metric(name: str, group: str) -> float:
    return REGISTRY.get_sample_value(name, {"group": group}) or 0.0


# ------------------------------------------------------------------- rebalancing
async def test_three_members_split_six_partitions_then_two_cover_them_after_one_leaves(
    make_coordinator: Callable[..., Awaitable[GroupCoordinator]],
) -> None:
    coordinator = await make_coordinator(initial_rebalance_delay_ms=300)

    async def member(member_id: str = "", owned: list[tuple[str, int]] | None = None):
        return await coordinator.join_with_assignment(
            "g",
            member_id,
            client_id="grpc",
            client_host="127.0.0.1",
            topics=["orders", "payments"],
            assignor="sticky",
            owned=owned or [],
            session_timeout_ms=10_000,
            rebalance_timeout_ms=5_000,
            partitions_for=lambda topic: _partitions(topic),
        )

    async def _partitions(topic: str) -> int:
        return {"orders": 4, "payments": 2}[topic]

    members = await asyncio.gather(member(), member(), member())
    assert {m.generation_id for m in members} == {1}
    assert len({m.leader_id for m in members}) == 1
    held = [{(t, p) for t, ps in m.assignment.items() for p in ps} for m in members]
    assert [len(h) for h in held] == [2, 2, 2]
    assert set().union(*held) == ALL_SIX
    assert sorted(members[0].members) == sorted(m.member_id for m in members)

    leaving, *staying = members
    await coordinator.leave("g", leaving.member_id)
    for m in staying:
        with pytest.raises(RebalanceInProgressError):
            await coordinator.heartbeat("g", m.member_id, m.generation_id)
    rejoined = await asyncio.gather(
        *(member(m.member_id, sorted(h)) for m, h in zip(staying, held[1:], strict=True))
    )
    assert {m.generation_id for m in rejoined} == {2}
    held_after = [{(t, p) for t, ps in m.assignment.items() for p in ps} for m in rejoined]
    assert [len(h) for h in held_after] == [3, 3]
    assert held_after[0] | held_after[1] == ALL_SIX
    for before, after in zip(held[1:], held_after, strict=True):
        assert before <= after  # sticky: each kept what it had
    with pytest.raises(UnknownMemberIdError):
        await coordinator.heartbeat("g", leaving.member_id, 1)


async def test_a_member_that_stops_heartbeating_is_expelled_after_its_session_timeout(
    coordinator: GroupCoordinator, join: Join
) -> None:
    quiet = await join(coordinator, session_timeout_ms=1000)
    await coordinator.sync("g", quiet.member_id, quiet.generation_id, {})
    lively_joining = asyncio.create_task(join(coordinator, session_timeout_ms=1000))
    with pytest.raises(RebalanceInProgressError):
        await _until_rebalancing(coordinator, quiet)
    quiet = await join(coordinator, quiet.member_id, session_timeout_ms=1000)
    lively = await lively_joining
    await coordinator.sync("g", quiet.member_id, 2, {})
    await coordinator.sync("g", lively.member_id, 2, None)

    # Only `lively` heartbeats from here on: the coordinator drops `quiet` and asks it to rejoin.
    with pytest.raises(RebalanceInProgressError):
        await _until_rebalancing(coordinator, lively)
    with pytest.raises(UnknownMemberIdError):
        await coordinator.heartbeat("g", quiet.member_id, quiet.generation_id)
    alone = await join(coordinator, lively.member_id, session_timeout_ms=1000)
    assert alone.generation_id == 3 and alone.is_leader
    assert [m[0] for m in alone.members] == [lively.member_id]


async def test_members_that_do_not_rejoin_within_the_rebalance_timeout_are_dropped(
    coordinator: GroupCoordinator, join: Join
) -> None:
    first, second = await stable_pair(coordinator, join, rebalance_timeout_ms=1000)
    # A newcomer starts a rebalance; `first` rejoins, `second` (long session) never does.
    newcomer = asyncio.create_task(join(coordinator, rebalance_timeout_ms=1000))
    with pytest.raises(RebalanceInProgressError):
        await _until_rebalancing(coordinator, first)
    first_again = await join(coordinator, first.member_id, rebalance_timeout_ms=1000)
    joined = await newcomer
    assert first_again.generation_id == joined.generation_id == 3
    assert {m[0] for m in first_again.members} == {first.member_id, joined.member_id}
    with pytest.raises(UnknownMemberIdError):
        await coordinator.heartbeat("g", second.member_id, second.generation_id)


async def test_a_follower_rejoining_unchanged_keeps_the_generation_but_the_leader_rebalances(
    coordinator: GroupCoordinator, join: Join
) -> None:
    leader, follower = await stable_pair(coordinator, join)
    again = await join(coordinator, follower.member_id)
    assert (again.generation_id, again.members) == (2, [])
    assert decode_assignment(await coordinator.sync("g", follower.member_id, 2, None)).partitions
    await coordinator.heartbeat("g", leader.member_id, 2)  # no rebalance was started

    leader_joining = asyncio.create_task(join(coordinator, leader.member_id))
    with pytest.raises(RebalanceInProgressError):
        await _until_rebalancing(coordinator, follower)
    await join(coordinator, follower.member_id)
    assert (await leader_joining).generation_id == 3


async def test_changed_metadata_of_a_follower_triggers_a_rebalance(
    coordinator: GroupCoordinator, join: Join
) -> None:
    leader, follower = await stable_pair(coordinator, join)
    changing = asyncio.create_task(
        join(coordinator, follower.member_id, protocols=[("range", b"\x00\x00changed")])
    )
    with pytest.raises(RebalanceInProgressError):
        await _until_rebalancing(coordinator, leader)
    again = await join(coordinator, leader.member_id)
    assert (await changing).generation_id == again.generation_id == 3
    assert (follower.member_id, None, b"\x00\x00changed") in again.members


async def test_a_second_consumer_joining_while_the_leader_syncs_gets_into_the_next_generation(
    coordinator: GroupCoordinator, join: Join
) -> None:
    """Kafka-compatible brokers have answered UNKNOWN_MEMBER_ID here; the right answer is a
    rebalance that takes both."""
    first = await join(coordinator)
    second_joining = asyncio.create_task(join(coordinator))
    await asyncio.sleep(0.05)
    with pytest.raises(RebalanceInProgressError):
        await coordinator.sync("g", first.member_id, first.generation_id, {})
    first = await join(coordinator, first.member_id)
    second = await second_joining
    assert first.generation_id == second.generation_id == 2
    assert first.is_leader and not second.is_leader and second.members == []


async def test_close_fails_a_waiting_join_cleanly(
    coordinator: GroupCoordinator, join: Join
) -> None:
    leader, follower = await stable_pair(coordinator, join)
    waiting = asyncio.create_task(join(coordinator, leader.member_id))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the join phase waits for the follower
    await coordinator.close()
    with pytest.raises(CoordinatorNotAvailableError):
        await waiting
    with pytest.raises(CoordinatorNotAvailableError):
        await coordinator.heartbeat("g", follower.member_id, 2)
    with pytest.raises(CoordinatorNotAvailableError):
        await join(coordinator)


async def test_a_follower_waiting_for_the_leaders_assignment_learns_of_a_new_rebalance(
    coordinator: GroupCoordinator, join: Join
) -> None:
    first, second = await stable_pair(coordinator, join)
    newcomer = asyncio.create_task(join(coordinator))
    await asyncio.sleep(0.05)
    rejoins = [asyncio.create_task(join(coordinator, m.member_id)) for m in (first, second)]
    third_generation = await asyncio.gather(newcomer, *rejoins)
    assert {r.generation_id for r in third_generation} == {3}
    follower = next(r for r in third_generation if not r.is_leader)
    waiting = asyncio.create_task(coordinator.sync("g", follower.member_id, 3, None))
    await asyncio.sleep(0.05)
    late = asyncio.create_task(join(coordinator))  # joins before the leader synced
    with pytest.raises(RebalanceInProgressError):
        await waiting
    late.cancel()


# ------------------------------------------------------------------- fencing
async def test_stale_generations_are_rejected_on_heartbeat_sync_and_commit(
    coordinator: GroupCoordinator, join: Join
) -> None:
    _, follower = await stable_pair(coordinator, join)
    with pytest.raises(IllegalGenerationError):
        await coordinator.heartbeat("g", follower.member_id, 1)
    with pytest.raises(IllegalGenerationError):
        await coordinator.sync("g", follower.member_id, 1, None)
    with pytest.raises(IllegalGenerationError):
        await coordinator.commit_offsets("g", follower.member_id, 1, [("orders", 2, 10, "")])
    with pytest.raises(UnknownMemberIdError):
        await coordinator.commit_offsets("g", "intruder", 2, [("orders", 2, 10, "")])
    assert await coordinator.fetch_offsets("g") == []

    await coordinator.commit_offsets("g", follower.member_id, 2, [("orders", 2, 10, "m")])
    [committed] = await coordinator.fetch_offsets("g", "orders")
    assert (committed.partition, committed.offset, committed.metadata) == (2, 10, "m")


async def test_outside_commits_are_refused_while_the_group_has_members(
    coordinator: GroupCoordinator, join: Join
) -> None:
    leader, follower = await stable_pair(coordinator, join)
    assert coordinator.is_active("g")
    with pytest.raises(UnknownMemberIdError, match="active members"):
        await coordinator.commit_offsets("g", "", -1, [("orders", 0, 5, "")])
    await coordinator.leave("g", leader.member_id)
    await coordinator.leave("g", follower.member_id)
    assert not coordinator.is_active("g")
    await coordinator.commit_offsets("g", "", -1, [("orders", 0, 5, "")])
    assert [o.offset for o in await coordinator.fetch_offsets("g")] == [5]


async def test_simple_consumer_commits_need_no_group_but_bad_offsets_store_nothing(
    coordinator: GroupCoordinator,
) -> None:
    await coordinator.commit_offsets("solo", "", -1, [("payments", 1, 3, "")])
    with pytest.raises(UnknownTopicError):
        await coordinator.commit_offsets(
            "solo", "", -1, [("payments", 0, 9, ""), ("nope", 0, 1, "")]
        )
    with pytest.raises(UnknownMemberIdError):
        await coordinator.commit_offsets("nobody", "ghost", 4, [("payments", 0, 1, "")])
    assert [(o.partition, o.offset) for o in await coordinator.fetch_offsets("solo")] == [(1, 3)]
    assert await coordinator.fetch_offsets("nobody") == []


# ------------------------------------------------------------------- joining rules
async def test_a_new_member_must_come_back_with_the_id_it_was_given(
    coordinator: GroupCoordinator, join: Join
) -> None:
    with pytest.raises(MemberIdRequiredError) as info:
        await join(coordinator, require_known_member_id=True)
    member_id = info.value.member_id
    assert member_id.startswith("client-")
    joined = await join(coordinator, member_id, require_known_member_id=True)
    assert joined.member_id == member_id and joined.generation_id == 1
    with pytest.raises(UnknownMemberIdError):
        await join(coordinator, "made-up-id")


async def test_protocol_mismatches_are_refused(coordinator: GroupCoordinator, join: Join) -> None:
    first = await join(coordinator, protocols=[("range", b""), ("roundrobin", b"")])
    with pytest.raises(InconsistentGroupProtocolError, match="protocol type"):
        await join(coordinator, protocol_type="connect")
    with pytest.raises(InconsistentGroupProtocolError):
        await join(coordinator, protocols=[("sticky", b"")])
    with pytest.raises(InconsistentGroupProtocolError):
        await join(coordinator, protocols=[])
    with pytest.raises(InconsistentGroupProtocolError):
        await join(coordinator, protocols=[("range", "not bytes")])
    assert [m.member_id for m in (await coordinator.describe_group("g")).members] == [
        first.member_id
    ]


async def test_the_protocol_most_members_prefer_is_chosen(
    coordinator: GroupCoordinator, join: Join
) -> None:
    first = await join(coordinator, protocols=[("range", b"a"), ("roundrobin", b"b")])
    await coordinator.sync("g", first.member_id, 1, {})
    second = asyncio.create_task(join(coordinator, protocols=[("roundrobin", b"c")]))
    with pytest.raises(RebalanceInProgressError):
        await _until_rebalancing(coordinator, first)
    first = await join(
        coordinator, first.member_id, protocols=[("range", b"a"), ("roundrobin", b"b")]
    )
    assert first.protocol_name == (await second).protocol_name == "roundrobin"
    assert sorted(m[2] for m in first.members) == [b"b", b"c"]


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"group": ""}, InvalidGroupIdError),
        ({"session_timeout_ms": 999}, InvalidSessionTimeoutError),
        ({"session_timeout_ms": 300_001}, InvalidSessionTimeoutError),
        ({"session_timeout_ms": "10000"}, InvalidSessionTimeoutError),
        ({"protocol_type": ""}, InconsistentGroupProtocolError),
    ],
)
async def test_bad_join_arguments_are_refused_without_creating_a_group(
    coordinator: GroupCoordinator, join: Join, options: dict, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await join(coordinator, **options)
    assert await coordinator.list_groups() == []


async def test_a_leader_that_gives_a_member_nothing_sends_it_a_valid_empty_assignment(
    coordinator: GroupCoordinator, join: Join
) -> None:
    leader, follower = await stable_pair(coordinator, join)
    described = await coordinator.describe_group("g")
    assert {m.member_id: decode_assignment(m.assignment).partitions for m in described.members} == {
        leader.member_id: {"orders": [0, 1], "payments": [0]},
        follower.member_id: {"orders": [2, 3], "payments": [1]},
    }
    solo = await join(coordinator, group="other")
    assert await coordinator.sync("other", solo.member_id, 1, {}) == encode_assignment(
        Assignment({})
    )
    with pytest.raises(ValueError, match="must be bytes"):
        await coordinator.sync("other", solo.member_id, 1, {solo.member_id: "text"})


# ------------------------------------------------------------------- admin
async def test_describe_list_and_delete(coordinator: GroupCoordinator, join: Join) -> None:
    leader, follower = await stable_pair(coordinator, join)
    await coordinator.commit_offsets("offsets-only", "", -1, [("orders", 1, 7, "")])

    described = await coordinator.describe_group("g")
    assert (described.state, described.protocol_type, described.protocol) == (
        "Stable",
        "consumer",
        "range",
    )
    assert described.generation_id == 2
    assert [m.member_id for m in described.members] == [leader.member_id, follower.member_id]
    assert all(m.client_host == "127.0.0.1" and m.metadata for m in described.members)
    assert [
        (s.group, s.state, s.protocol_type, s.members) for s in await coordinator.list_groups()
    ] == [
        ("g", "Stable", "consumer", 2),
        ("offsets-only", "Empty", "", 0),
    ]
    assert (await coordinator.describe_group("offsets-only")).state == "Empty"
    unknown = await coordinator.describe_group("never-seen")
    assert (unknown.state, unknown.members) == ("Dead", [])

    with pytest.raises(NonEmptyGroupError):
        await coordinator.delete_group("g")
    with pytest.raises(GroupIdNotFoundError):
        await coordinator.delete_group("never-seen")
    await coordinator.delete_group("offsets-only")
    assert await coordinator.fetch_offsets("offsets-only") == []
    assert (await coordinator.describe_group("offsets-only")).state == "Dead"

    await coordinator.leave("g", follower.member_id)
    await coordinator.leave("g", leader.member_id)
    described = await coordinator.describe_group("g")
    assert (described.state, described.members, described.generation_id) == ("Empty", [], 3)
    await coordinator.delete_group("g")
    assert await coordinator.list_groups() == []
    with pytest.raises(GroupIdNotFoundError):
        await coordinator.delete_group("g")


async def test_describe_hides_assignments_while_rebalancing(
    coordinator: GroupCoordinator, join: Join
) -> None:
    leader, _ = await stable_pair(coordinator, join)
    await coordinator.leave("g", leader.member_id)
    described = await coordinator.describe_group("g")
    assert described.state == "PreparingRebalance"
    assert [(m.metadata, m.assignment) for m in described.members] == [(b"", b"")]
    assert described.protocol == ""


async def test_rebalance_and_member_metrics(coordinator: GroupCoordinator, join: Join) -> None:
    group = "metered"
    before = _metric("streamhouse_group_rebalances_total", group)
    member = await join(coordinator, group=group)
    assert _metric("streamhouse_group_rebalances_total", group) == before + 1
    assert _metric("streamhouse_group_members", group) == 1
    await coordinator.leave(group, member.member_id)
    assert _metric("streamhouse_group_rebalances_total", group) == before + 2
    assert _metric("streamhouse_group_members", group) == 0
