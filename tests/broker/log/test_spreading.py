"""Several agents share the partitions: fair shares, hand-over, take-over of a dead agent's
partitions, and leader lookups that send a client to the right agent.

The agents are in-process LogManagers on one shared metadata store and object store; an agent
"dies" by losing its background tasks without releasing anything, as a SIGKILL would leave it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path

import asyncpg
import pytest
from prometheus_client import REGISTRY
from streamhouse.broker.log import Acks, LogConfig, LogManager, NotLeaderError
from streamhouse.broker.log.spreading import ClusterView, plan_spread
from streamhouse.broker.metadata import Lease, Topic, open_metadata_store
from streamhouse.broker.records import build_batch

from .conftest import record_values

TTL_MS = 1000
GROUPS = LogManager.GROUPS_TOPIC


# ------------------------------------------------------------------ the planner alone
def view(
    topics: dict[str, int],
    leases: Iterable[tuple[str, int, str, int]],
    *,
    me: str = "a",
    alive: Iterable[str] = ("a", "b"),
    now: int = 100_000,
    created_at: int = 0,
) -> ClusterView:
    """A cluster view; leases are (topic, partition, holder, expires_at)."""
    return ClusterView(
        agent_id=me,
        topics={
            n: Topic(n, i, count, created_at=created_at)
            for i, (n, count) in enumerate(topics.items())
        },
        leases={(t, p): Lease(t, p, h, 1, exp) for t, p, h, exp in leases},
        alive=frozenset(alive),
        now_ms=now,
        ttl_ms=TTL_MS,
    )


LIVE = 200_000  # an expiry in the future of the views above


def test_balanced_cluster_plans_nothing_so_nothing_ping_pongs() -> None:
    # Five partitions over two agents: a share of 3; holding 3 against 2 is balanced.
    leases = [("t", p, "a" if p < 3 else "b", LIVE) for p in range(5)]
    mine = [("t", p) for p in range(3)]
    for me, local in (("a", mine), ("b", [("t", 3), ("t", 4)])):
        plan = plan_spread(view({"t": 5}, leases, me=me), local)
        assert plan.claims == [] and plan.hand_over is None


def test_overloaded_agent_hands_over_its_highest_partition_to_a_new_agent() -> None:
    leases = [("t", p, "a", LIVE) for p in range(4)]
    plan_a = plan_spread(view({"t": 4}, leases), [("t", p) for p in range(4)])
    assert plan_a.hand_over == ("t", 3) and plan_a.claims == []
    # Once it is released, the new agent claims it (it is below its share of 2).
    released = [*leases[:3], ("t", 3, "a", 100_000)]
    plan_b = plan_spread(view({"t": 4}, released, me="b"))
    assert [(c.topic, c.partition, c.reason) for c in plan_b.claims] == [("t", 3, "acquired")]
    # ... and the giver does not take it back.
    assert plan_spread(view({"t": 4}, released), [("t", p) for p in range(3)]).claims == []


def test_no_hand_over_without_a_taker_below_its_share() -> None:
    leases = [("t", p, "a", LIVE) for p in range(4)]
    plan = plan_spread(view({"t": 4}, leases, alive=("a",)), [("t", p) for p in range(4)])
    assert plan.hand_over is None


def test_every_topic_is_spread_not_only_the_total() -> None:
    # a holds all of x, and b holds nothing: the per-topic share (1 of 2) moves one of x.
    leases = [("x", 0, "a", LIVE), ("x", 1, "a", LIVE)]
    topics = {"x": 2, "y": 2}
    plan = plan_spread(view(topics, leases, created_at=99_900), [("x", 0), ("x", 1)])
    assert plan.hand_over == ("x", 1)
    assert [(c.topic, c.partition) for c in plan.claims] == [("y", 0)]  # its share of y
    plan_b = plan_spread(view(topics, leases, me="b", created_at=99_900))
    assert [(c.topic, c.partition) for c in plan_b.claims] == [("y", 0)]  # one wins the lease


def test_dead_agents_expired_lease_is_taken_and_counted_as_such() -> None:
    leases = [("t", 0, "dead", 99_000), ("t", 1, "a", LIVE)]
    plan = plan_spread(view({"t": 2}, leases, alive=("a",)), [("t", 1)])
    assert [(c.partition, c.reason) for c in plan.claims] == [(0, "expired_taken")]


def test_partition_nobody_took_for_a_ttl_goes_to_anyone_above_its_share() -> None:
    leases = [("t", 0, "a", LIVE), ("t", 1, "b", LIVE), ("t", 2, "b", LIVE)]
    recently = [*leases, ("t", 3, "c", 100_000 - TTL_MS // 2)]
    long_ago = [*leases, ("t", 3, "c", 100_000 - 2 * TTL_MS)]
    # a holds 1 of a share of 2, b holds 2: "a" claims under its share either way.
    assert [c.partition for c in plan_spread(view({"t": 4}, recently)).claims] == [3]
    # b is at its share: it waits while the partition is freshly free, then takes it.
    assert plan_spread(view({"t": 4}, recently, me="b")).claims == []
    assert [c.partition for c in plan_spread(view({"t": 4}, long_ago, me="b")).claims] == [3]
    # A partition never leased counts from its topic's creation.
    assert plan_spread(view({"u": 1}, [], me="b", alive=("a", "b"), created_at=99_900)).claims
    fresh = view({"u": 2}, [("u", 0, "b", LIVE)], me="b", created_at=99_900)
    assert plan_spread(fresh).claims == []


# ------------------------------------------------------------------- real managers
class Cluster:
    """Agents on one metadata store and one object store; closes them all at the end."""

    def __init__(self, root: Path, metadata_url: str, objects_url: str) -> None:
        self.root = root
        self.metadata_url = metadata_url
        self.objects_url = objects_url
        self.agents: dict[str, LogManager] = {}

    async def start(self, name: str) -> LogManager:
        config = LogConfig(
            data_dir=self.root / name,
            agent_id=f"agent-{name}",
            advertised_address=f"{name}.test:9092",
            lease_ttl_ms=TTL_MS,
            seal_check_interval_ms=10,
            commit_on_all=True,
            group_partitions=2,
        )
        agent = await LogManager.open(
            config, metadata_url=self.metadata_url, object_store_url=self.objects_url
        )
        self.agents[name] = agent
        return agent

    def kill(self, name: str) -> None:
        """No more heartbeats, renewals or hand-overs; leases are left to expire."""
        agent = self.agents[name]
        for task in agent._tasks:
            task.cancel()
        agent._tasks = []

    def live(self) -> list[LogManager]:
        return [a for a in self.agents.values() if a._tasks]

    async def close(self) -> None:
        for agent in self.agents.values():
            with contextlib.suppress(Exception):
                await agent.close(timeout_s=5)


def led(agent: LogManager) -> set[tuple[str, int]]:
    return {(p.topic.name, p.partition) for p in agent.led_partitions() if p.writable}


def fair(agents: list[LogManager], topics: dict[str, int]) -> bool:
    """Every partition has exactly one leader and each agent holds floor or ceil of each topic."""
    held = [led(agent) for agent in agents]
    every = {(t, p) for t, count in topics.items() for p in range(count)}
    if sum(len(h) for h in held) != len(set().union(*held)) or not every <= set().union(*held):
        return False
    for topic, count in topics.items():
        low, high = count // len(agents), -(-count // len(agents))
        if not all(low <= sum(1 for t, _ in h if t == topic) <= high for h in held):
            return False
    return True


async def wait_until(check: Callable[[], bool | Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        if isinstance(outcome, Awaitable):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the cluster did not reach the expected state in time")
        await asyncio.sleep(0.05)


def leader_of(agents: Iterable[LogManager], key: tuple[str, int]) -> LogManager:
    (leader,) = [a for a in agents if key in led(a)]
    return leader


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path, f"sqlite:///{tmp_path / 'meta.db'}", f"file://{tmp_path / 'objects'}")
    yield c
    await c.close()


async def test_two_agents_split_every_topic_in_half(cluster: Cluster) -> None:
    a = await cluster.start("a")
    b = await cluster.start("b")
    await a.create_topic("six", partitions=6)
    await b.create_topic("eight", partitions=8)
    topics = {"six": 6, "eight": 8, GROUPS: 2}
    await wait_until(lambda: fair([a, b], topics))
    # Both agents and the leases table agree on one leader per partition.
    for name, count in topics.items():
        from_a, from_b = await a.partition_leaders(name), await b.partition_leaders(name)
        assert from_a == from_b and sorted(from_a) == list(range(count))
        for partition, (agent_id, address) in from_a.items():
            owner = leader_of([a, b], (name, partition))
            assert (agent_id, address) == (owner.agent_id, owner.address)
    # Stable: more lease rounds move nothing (no ping-pong).
    before = (led(a), led(b))
    await asyncio.sleep(4 * TTL_MS / 3000 + 0.2)
    assert (led(a), led(b)) == before


async def test_joining_agent_gets_partitions_with_their_data(cluster: Cluster) -> None:
    a = await cluster.start("a")
    b = await cluster.start("b")
    await a.create_topic("six", partitions=6)
    topics = {"six": 6, GROUPS: 2}
    await wait_until(lambda: fair([a, b], topics))
    for partition in range(6):
        plog = leader_of([a, b], ("six", partition)).local_partition("six", partition)
        assert plog is not None
        await plog.append([build_batch([f"before-{partition}-{i}".encode() for i in range(3)])])
    c = await cluster.start("c")
    await wait_until(lambda: fair([a, b, c], topics))
    moved = sorted(p for t, p in led(c) if t == "six")
    assert len(moved) == 2
    for partition in moved:
        plog = c.local_partition("six", partition)
        assert plog is not None and plog.high_watermark == 3  # committed by the giver first
        result = await plog.append([build_batch([b"after"])], acks=Acks.ALL)
        assert result.base_offsets == [3]
        values = [v for _, v in record_values(await plog.read(0))]
        assert values == [f"before-{partition}-{i}".encode() for i in range(3)] + [b"after"]
        # The agent that gave it away sends the client to the new leader.
        for giver in (a, b):
            with pytest.raises(NotLeaderError) as caught:
                await giver.partition("six", partition)
            assert caught.value.leader_address == "c.test:9092"
    handed = REGISTRY.get_sample_value("streamhouse_lease_changes_total", {"reason": "handed_over"})
    assert handed is not None and handed >= 2


async def test_dead_agents_partitions_are_taken_over_and_offsets_continue(
    cluster: Cluster,
) -> None:
    await _dead_agent_scenario(cluster)


async def _dead_agent_scenario(cluster: Cluster) -> None:
    a = await cluster.start("a")
    b = await cluster.start("b")
    await a.create_topic("orders", partitions=4)
    await wait_until(lambda: fair([a, b], {"orders": 4, GROUPS: 2}))
    acked: dict[int, list[bytes]] = collections.defaultdict(list)
    for round_no in range(2):
        for partition in range(4):
            plog = leader_of([a, b], ("orders", partition)).local_partition("orders", partition)
            assert plog is not None
            values = [f"{partition}:{round_no}:{i}".encode() for i in range(1 + partition)]
            result = await plog.append([build_batch(values)], acks=Acks.ALL)
            assert result.base_offsets == [len(acked[partition])]
            acked[partition].extend(values)
    taken_before = REGISTRY.get_sample_value(
        "streamhouse_lease_changes_total", {"reason": "expired_taken"}
    )
    dying = {p for t, p in led(a) if t == "orders"}
    assert dying
    cluster.kill("a")
    await wait_until(lambda: {("orders", p) for p in range(4)} <= led(b))
    for partition in range(4):
        plog = b.local_partition("orders", partition)
        assert plog is not None
        assert plog.high_watermark == len(acked[partition])
        result = await plog.append([build_batch([b"next"])], acks=Acks.ALL)
        assert result.base_offsets == [len(acked[partition])]
        got = record_values(await plog.read(0, max_bytes=1 << 20))
        assert [o for o, _ in got] == list(range(len(acked[partition]) + 1))
        assert [v for _, v in got] == [*acked[partition], b"next"]
    taken_after = REGISTRY.get_sample_value(
        "streamhouse_lease_changes_total", {"reason": "expired_taken"}
    )
    assert (taken_after or 0) - (taken_before or 0) >= len(dying)


async def test_not_leader_error_names_the_leader(cluster: Cluster) -> None:
    a = await cluster.start("a")
    b = await cluster.start("b")
    await a.create_topic("routed", partitions=2)
    await wait_until(lambda: fair([a, b], {"routed": 2, GROUPS: 2}))
    for partition in range(2):
        leader = leader_of([a, b], ("routed", partition))
        other = b if leader is a else a
        with pytest.raises(NotLeaderError) as caught:
            await other.partition("routed", partition)
        assert caught.value.leader_agent == leader.agent_id
        assert caught.value.leader_address == leader.address
        assert leader.address in str(caught.value)
        expected = (leader.agent_id, leader.address)
        assert await other.leader_of("routed", partition) == expected
        assert await leader.leader_of("routed", partition) == expected
        assert other.local_partition("routed", partition) is None


async def test_every_agent_names_the_same_group_coordinator(cluster: Cluster) -> None:
    agents = [await cluster.start(name) for name in ("a", "b", "c")]
    await agents[0].create_topic("work", partitions=3)
    await wait_until(lambda: fair(agents, {"work": 3, GROUPS: 2}))
    addresses = {agent.address for agent in agents}
    for group in [f"group-{i}" for i in range(12)] + ["", "ünïcode"]:
        answers = {await agent.coordinator_of(group) for agent in agents}
        assert len(answers) == 1
        (answer,) = answers
        assert answer is not None and answer[1] in addresses
        coordinators = [agent.agent_id for agent in agents if await agent.is_coordinator(group)]
        assert coordinators == [answer[0]]
        assert 0 <= agents[0].coordinator_partition(group) < 2


async def test_groups_topic_is_created_once_by_agents_starting_together(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    # The file exists first: three processes creating one SQLite file at once is not the race
    # under test (switching a new file to WAL mode can fail with "database is locked").
    store = open_metadata_store(url)
    await store.migrate()
    await store.close()
    cluster = Cluster(tmp_path, url, f"file://{tmp_path / 'o'}")
    try:
        await asyncio.gather(*(cluster.start(name) for name in ("a", "b", "c")))
        topics = await cluster.agents["a"].metadata.list_topics()
        assert [(t.name, t.partitions) for t in topics] == [(GROUPS, 2)]
    finally:
        await cluster.close()


# ---------------------------------------------------------- the cluster backends
@pytest.fixture
async def shared_cluster(
    tmp_path: Path, postgres_url: str, s3_endpoint: str, s3_bucket: str
) -> AsyncIterator[Cluster]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    c = Cluster(
        tmp_path,
        f"{postgres_url}?schema={schema}",
        f"s3://{s3_bucket}/spread?endpoint={s3_endpoint}&region=us-east-1",
    )
    yield c
    await c.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


async def test_take_over_on_postgres_and_s3(shared_cluster: Cluster) -> None:
    await _dead_agent_scenario(shared_cluster)
