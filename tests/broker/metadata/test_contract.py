"""The metadata contract, run unchanged against SQLite and PostgreSQL (see conftest.py).

Whatever a caller relies on is asserted here: offsets stay contiguous, a stale lease epoch
can never make a segment visible, every failure is a specific error that leaves nothing
behind, and two stores on one database (two agents) see one consistent state.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import pytest
from streamhouse.broker.metadata import (
    CommittedOffset,
    FencedError,
    InvalidConfigError,
    InvalidPartitionsError,
    InvalidRequestError,
    InvalidTopicError,
    LeaseHeldError,
    MetadataError,
    MetadataStore,
    PartitionState,
    ProducerFencedError,
    ProducerPartitionState,
    SegmentConflictError,
    SegmentRecord,
    TopicConfig,
    TopicExistsError,
    UnknownAgentError,
    UnknownPartitionError,
    UnknownProducerError,
    UnknownTopicError,
)
from streamhouse.broker.metadata.migrations import load_migrations

LONG_TTL = 60_000


def seg(
    base: int,
    count: int,
    epoch: int,
    *,
    topic: str = "t",
    partition: int = 0,
    size: int = 100,
    max_ts: int = 2_000,
) -> SegmentRecord:
    """A segment covering ``count`` offsets from ``base``, written at lease ``epoch``."""
    return SegmentRecord(
        topic=topic,
        partition=partition,
        base_offset=base,
        last_offset=base + count - 1,
        record_count=count,
        min_timestamp=1_000,
        max_timestamp=max_ts,
        size_bytes=size,
        object_key=f"{topic}/{partition}/{base:020d}-{epoch}.seg",
        writer_epoch=epoch,
    )


async def lease(store, holder: str = "a", topic: str = "t", partition: int = 0, ttl=LONG_TTL):
    return await store.acquire_lease(topic, partition, holder, ttl)


# ------------------------------------------------------------------ migrations
async def test_store_satisfies_the_protocol(store) -> None:
    assert isinstance(store, MetadataStore)


async def test_migrate_is_idempotent_and_recorded(store, raw) -> None:
    await store.create_topic("keep", 1)
    await store.migrate()
    await store.migrate()
    shipped = load_migrations(store.dialect)
    assert [m.name for m in shipped][:3] == [
        "0001_initial.sql",
        "0002_agent_kafka_address.sql",
        "0003_declared_sources.sql",
    ]
    assert await store.schema_versions() == [m.version for m in shipped]
    rows = await raw("SELECT version, name, applied_at FROM schema_version ORDER BY version")
    assert [(r[0], r[1]) for r in rows] == [(m.version, m.name) for m in shipped]
    assert rows[0][2] > 0
    assert [t.name for t in await store.list_topics()] == ["keep"]


async def test_two_processes_migrating_at_once_both_succeed(make_store) -> None:
    stores = [await make_store() for _ in range(3)]
    await asyncio.gather(*(s.migrate() for s in stores))
    shipped = [m.version for m in load_migrations(stores[0].dialect)]
    for s in stores:
        assert await s.schema_versions() == shipped
    await stores[0].create_topic("shared", 2)
    assert (await stores[2].get_topic("shared")).partitions == 2


async def test_a_schema_newer_than_the_code_is_refused(store, raw) -> None:
    await raw("INSERT INTO schema_version (version, name, applied_at) VALUES (999, 'x', 0)")
    with pytest.raises(MetadataError, match="999"):
        await store.migrate()


async def test_closed_store_raises_and_close_is_idempotent(make_store) -> None:
    s = await make_store()
    await s.migrate()
    await s.close()
    await s.close()
    with pytest.raises(MetadataError, match="closed"):
        await s.list_topics()


async def test_store_clock_is_epoch_milliseconds(store) -> None:
    import time

    now = await store.now_ms()
    assert abs(now - time.time() * 1000) < 5_000
    await asyncio.sleep(0.02)
    assert await store.now_ms() >= now + 15


# ---------------------------------------------------------------------- topics
async def test_create_get_and_list_topics(store) -> None:
    before = await store.now_ms()
    config = TopicConfig(retention_ms=5_000, segment_bytes=1 << 20, wal_sync="always")
    b = await store.create_topic("b", 3, config)
    a = await store.create_topic("a", 1)
    assert b.name == "b" and b.partitions == 3 and b.config == config
    assert before <= b.created_at <= await store.now_ms()
    assert a.topic_id != b.topic_id
    assert a.config == TopicConfig()
    assert await store.get_topic("b") == b
    assert await store.list_topics() == [a, b]
    assert await store.list_partitions("b") == [PartitionState("b", p, 0, 0) for p in range(3)]
    assert await store.get_partition("b", 2) == PartitionState("b", 2, 0, 0)


async def test_create_existing_topic_fails_and_keeps_the_first(store) -> None:
    first = await store.create_topic("t", 2)
    with pytest.raises(TopicExistsError, match="'t'"):
        await store.create_topic("t", 5)
    assert await store.list_topics() == [first]


async def test_concurrent_creates_of_one_name_from_two_agents(make_store) -> None:
    a, b = await make_store(), await make_store()
    await a.migrate()
    results = await asyncio.gather(
        *(s.create_topic("race", 4) for s in (a, b, a, b)), return_exceptions=True
    )
    created = [r for r in results if not isinstance(r, BaseException)]
    assert len(created) == 1
    assert all(isinstance(r, TopicExistsError) for r in results if r not in created)
    assert len(await a.list_partitions("race")) == 4


@pytest.mark.parametrize("name", ["", "a/b", "x" * 250, ".", "..", "tópico", "a b", None, 7])
async def test_invalid_topic_names_are_rejected(store, name) -> None:
    with pytest.raises(InvalidTopicError):
        await store.create_topic(name, 1)
    assert await store.list_topics() == []


async def test_longest_legal_topic_name(store) -> None:
    name = "a._-" * 62 + "b"  # 249 characters
    assert (await store.create_topic(name, 1)).name == name


@pytest.mark.parametrize("count", [0, -1, 100_001, "3", 2.0, True])
async def test_invalid_partition_counts_are_rejected(store, count) -> None:
    with pytest.raises(InvalidPartitionsError):
        await store.create_topic("t", count)
    assert await store.list_topics() == []


async def test_create_topic_rejects_a_non_config(store) -> None:
    with pytest.raises(InvalidRequestError):
        await store.create_topic("t", 1, {"retention.ms": 5})
    assert await store.list_topics() == []


async def test_update_topic_config_persists_and_validates(store, make_store) -> None:
    await store.create_topic("t", 1)
    topic = await store.update_topic_config(
        "t", {"retention.ms": "60000", "segment_bytes": 4096, "cleanup.policy": "compact"}
    )
    assert topic.config.retention_ms == 60_000
    assert topic.config.segment_bytes == 4096
    assert topic.config.cleanup_policy == "compact"
    other = await make_store()  # another agent sees it
    assert (await other.get_topic("t")).config == topic.config

    with pytest.raises(InvalidConfigError, match=r"bogus\.key"):
        await store.update_topic_config("t", {"segment.ms": 5, "bogus.key": "1"})
    with pytest.raises(InvalidConfigError, match=r"segment\.bytes"):
        await store.update_topic_config("t", {"segment.bytes": "-5"})
    assert (await store.get_topic("t")).config == topic.config  # nothing partial

    reset = await store.update_topic_config("t", {"retention.ms": None})
    assert reset.config.retention_ms == TopicConfig().retention_ms
    with pytest.raises(UnknownTopicError):
        await store.update_topic_config("nope", {"retention.ms": 1})


async def test_add_partitions(store) -> None:
    await store.create_topic("t", 2)
    la = await lease(store)
    await store.commit_segment(seg(0, 5, la.epoch), holder="a", epoch=la.epoch)
    topic = await store.add_partitions("t", 5)
    assert topic.partitions == 5
    assert (await store.get_topic("t")).partitions == 5
    assert [(p.partition, p.next_offset) for p in await store.list_partitions("t")] == [
        (0, 5),
        (1, 0),
        (2, 0),
        (3, 0),
        (4, 0),
    ]
    for bad in (5, 3, 0, 100_001, "9"):
        with pytest.raises(InvalidPartitionsError):
            await store.add_partitions("t", bad)
    assert (await store.get_topic("t")).partitions == 5
    with pytest.raises(UnknownTopicError):
        await store.add_partitions("nope", 3)


async def test_delete_topic_returns_segments_and_removes_everything(store) -> None:
    await store.create_topic("t", 2)
    await store.create_topic("other", 1)
    segments = []
    for p in (0, 1):
        la = await lease(store, partition=p)
        for base in (0, 10):
            s = seg(base, 10, la.epoch, partition=p)
            await store.commit_segment(s, holder="a", epoch=la.epoch)
            segments.append(s)
    await store.commit_offsets("g", [("t", 0, 3, ""), ("other", 0, 1, "")])
    pid, epoch = await store.init_producer()
    await store.put_producer_state(ProducerPartitionState(pid, epoch, "t", 0, 4, 9))

    deleted = await store.delete_topic("t")
    assert [(s.partition, s.base_offset, s.object_key) for s in deleted] == [
        (s.partition, s.base_offset, s.object_key) for s in segments
    ]
    assert all(s.created_at > 0 for s in deleted)
    with pytest.raises(UnknownTopicError):
        await store.get_topic("t")
    with pytest.raises(UnknownTopicError):
        await store.list_segments("t", 0)
    assert [t.name for t in await store.list_topics()] == ["other"]
    assert [o.topic for o in await store.fetch_offsets("g")] == ["other"]
    assert await store.get_producer_state(pid, "t", 0) is None
    assert await store.list_leases() == []
    with pytest.raises(UnknownTopicError):
        await store.delete_topic("t")

    again = await store.create_topic("t", 1)  # a new topic under the old name starts clean
    assert again.topic_id not in {t.topic_id for t in await store.list_topics() if t.name != "t"}
    assert await store.get_partition("t", 0) == PartitionState("t", 0, 0, 0)
    assert await store.get_lease("t", 0) is None
    assert await store.list_segments("t", 0) == []


async def test_topic_ids_are_never_reused(store) -> None:
    first = await store.create_topic("t", 1)
    await store.delete_topic("t")
    second = await store.create_topic("t", 1)
    assert second.topic_id > first.topic_id


async def test_unknown_topic_and_partition_lookups(store) -> None:
    await store.create_topic("t", 2)
    with pytest.raises(UnknownTopicError, match="'nope'"):
        await store.get_topic("nope")
    with pytest.raises(UnknownTopicError):
        await store.get_partition("nope", 0)
    with pytest.raises(UnknownTopicError):
        await store.list_partitions("nope")
    for bad in (2, -1, 2**40, "0"):
        with pytest.raises(UnknownPartitionError):
            await store.get_partition("t", bad)
        with pytest.raises(UnknownPartitionError):
            await store.list_segments("t", bad)
        with pytest.raises(UnknownPartitionError):
            await store.get_lease("t", bad)
        with pytest.raises(UnknownPartitionError):
            await store.acquire_lease("t", bad, "a", LONG_TTL)


# -------------------------------------------------------------------- segments
async def test_commits_extend_the_partition_contiguously(store) -> None:
    await store.create_topic("t", 2)
    la = await lease(store)
    before = await store.now_ms()
    state = await store.commit_segment(seg(0, 10, la.epoch), holder="a", epoch=la.epoch)
    assert state == PartitionState("t", 0, 0, 10)
    state = await store.commit_segment(seg(10, 1, la.epoch), holder="a", epoch=la.epoch)
    assert state == PartitionState("t", 0, 0, 11)
    explicit = dataclasses.replace(seg(11, 4, la.epoch), created_at=123)
    await store.commit_segment(explicit, holder="a", epoch=la.epoch)
    assert await store.get_partition("t", 0) == PartitionState("t", 0, 0, 15)
    assert await store.get_partition("t", 1) == PartitionState("t", 1, 0, 0)

    listed = await store.list_segments("t", 0)
    assert [(s.base_offset, s.last_offset) for s in listed] == [(0, 9), (10, 10), (11, 14)]
    assert listed[0] == dataclasses.replace(seg(0, 10, la.epoch), created_at=listed[0].created_at)
    assert before <= listed[0].created_at <= await store.now_ms()  # stamped by the store
    assert listed[2] == explicit
    assert await store.list_segments("t", 1) == []


async def test_large_offsets_and_times_round_trip(store) -> None:
    await store.create_topic("t", 1)
    la = await lease(store)
    base = 2**40
    await store.commit_segment(seg(0, 1, la.epoch), holder="a", epoch=la.epoch)
    with pytest.raises(SegmentConflictError):
        await store.commit_segment(seg(base, 1, la.epoch), holder="a", epoch=la.epoch)
    big = dataclasses.replace(
        seg(1, 1, la.epoch), last_offset=base, max_timestamp=2**50, size_bytes=2**33
    )
    await store.commit_segment(big, holder="a", epoch=la.epoch)
    assert (await store.get_partition("t", 0)).next_offset == base + 1
    assert (await store.list_segments("t", 0))[-1].size_bytes == 2**33


@pytest.mark.parametrize(("base", "kind"), [(11, "gap"), (5, "overlap"), (0, "overlap")])
async def test_gap_or_overlap_is_a_conflict_and_stores_nothing(store, base, kind) -> None:
    await store.create_topic("t", 1)
    la = await lease(store)
    await store.commit_segment(seg(0, 10, la.epoch), holder="a", epoch=la.epoch)
    with pytest.raises(SegmentConflictError, match=f"next offset is 10 \\(an? {kind}\\)"):
        await store.commit_segment(seg(base, 5, la.epoch), holder="a", epoch=la.epoch)
    assert [s.base_offset for s in await store.list_segments("t", 0)] == [0]
    assert (await store.get_partition("t", 0)).next_offset == 10


async def test_stale_writer_is_fenced_and_its_segment_never_visible(store, make_store) -> None:
    """Two writers on one partition: A's lease expires, B takes over, A can no longer commit."""
    other = await make_store()
    await store.create_topic("t", 1)
    a = await store.acquire_lease("t", 0, "agent-a", 200)
    assert a.epoch == 1
    await store.commit_segment(seg(0, 10, 1), holder="agent-a", epoch=1)
    with pytest.raises(LeaseHeldError, match="agent-a"):
        await other.acquire_lease("t", 0, "agent-b", LONG_TTL)
    await asyncio.sleep(0.3)  # A stalls past its TTL
    b = await other.acquire_lease("t", 0, "agent-b", LONG_TTL)
    assert b.epoch == 2 and b.holder == "agent-b"

    with pytest.raises(FencedError, match="'agent-b' at epoch 2"):
        await store.commit_segment(seg(10, 5, 1), holder="agent-a", epoch=1)
    assert [s.writer_epoch for s in await other.list_segments("t", 0)] == [1]
    assert (await other.get_partition("t", 0)).next_offset == 10
    with pytest.raises(FencedError):
        await store.renew_lease("t", 0, "agent-a", 1, LONG_TTL)

    state = await other.commit_segment(seg(10, 5, 2), holder="agent-b", epoch=2)
    assert state.next_offset == 15
    listed = await store.list_segments("t", 0)
    assert [(s.base_offset, s.writer_epoch) for s in listed] == [(0, 1), (10, 2)]


async def test_commit_needs_the_exact_holder_and_epoch(store) -> None:
    await store.create_topic("t", 2)
    with pytest.raises(FencedError, match="nobody holds"):
        await store.commit_segment(seg(0, 1, 1), holder="a", epoch=1)
    la = await lease(store)
    await lease(store)  # re-acquiring raises the epoch: the old one is stale now
    with pytest.raises(FencedError):
        await store.commit_segment(seg(0, 1, la.epoch), holder="a", epoch=la.epoch)
    with pytest.raises(FencedError):
        await store.commit_segment(seg(0, 1, 2), holder="b", epoch=2)
    with pytest.raises(FencedError):  # the lease of partition 0 does not cover partition 1
        await store.commit_segment(seg(0, 1, 2, partition=1), holder="a", epoch=2)
    assert await store.list_segments("t", 0) == []
    await store.commit_segment(seg(0, 1, 2), holder="a", epoch=2)


async def test_expired_but_untaken_lease_still_commits(store) -> None:
    """The epoch, not the clock, fences: nobody took over, so nothing can be overwritten."""
    await store.create_topic("t", 1)
    la = await store.acquire_lease("t", 0, "a", 50)
    await asyncio.sleep(0.1)
    await store.commit_segment(seg(0, 3, la.epoch), holder="a", epoch=la.epoch)
    renewed = await store.renew_lease("t", 0, "a", la.epoch, LONG_TTL)
    assert renewed.expires_at > await store.now_ms() + LONG_TTL // 2


async def test_concurrent_commits_of_one_base_offset_exactly_one_wins(make_store) -> None:
    stores = [await make_store() for _ in range(2)]
    await stores[0].migrate()
    await stores[0].create_topic("t", 1)
    la = await lease(stores[0])
    candidates = [
        dataclasses.replace(seg(0, 10, la.epoch), object_key=f"candidate-{i}") for i in range(6)
    ]
    results = await asyncio.gather(
        *(
            stores[i % 2].commit_segment(c, holder="a", epoch=la.epoch)
            for i, c in enumerate(candidates)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, PartitionState)]
    assert len(winners) == 1 and winners[0].next_offset == 10
    assert all(isinstance(r, SegmentConflictError) for r in results if r not in winners)
    listed = await stores[1].list_segments("t", 0)
    assert len(listed) == 1 and listed[0].object_key.startswith("candidate-")


async def test_no_commit_of_the_old_epoch_lands_after_a_takeover(make_store) -> None:
    """One agent commits as fast as it can while another takes the partition over: once the
    acquire returns, the committed end no longer moves for the old epoch. (This catches a
    lease read in the same statement that waits for the partition lock, see ``sqlbase``.)"""
    stores = {"a": await make_store(), "b": await make_store()}
    await stores["a"].migrate()
    await stores["a"].create_topic("t", 1)
    current = await stores["a"].acquire_lease("t", 0, "a", 1)

    async def write_until_fenced(lease_) -> int:
        base = (await stores[lease_.holder].get_partition("t", 0)).next_offset
        while True:
            try:
                await stores[lease_.holder].commit_segment(
                    seg(base, 2, lease_.epoch), holder=lease_.holder, epoch=lease_.epoch
                )
            except FencedError:
                return base
            base += 2

    for successor in ("b", "a", "b", "a", "b"):
        writer = asyncio.create_task(write_until_fenced(current))
        await asyncio.sleep(0.03)
        current = await stores[successor].acquire_lease("t", 0, successor, 1)
        at_takeover = await stores[successor].get_partition("t", 0)
        fenced_at = await asyncio.wait_for(writer, 30)
        assert fenced_at == at_takeover.next_offset
        assert await stores[successor].get_partition("t", 0) == at_takeover
    listed = await stores["a"].list_segments("t", 0)
    assert [s.base_offset for s in listed] == list(range(0, 2 * len(listed), 2))
    assert [s.writer_epoch for s in listed] == sorted(s.writer_epoch for s in listed)


def _bad_segments(epoch: int) -> list[SegmentRecord]:
    good = seg(0, 10, epoch)
    return [
        dataclasses.replace(good, last_offset=-1),
        dataclasses.replace(good, base_offset=-5, last_offset=4),
        dataclasses.replace(good, record_count=0),
        dataclasses.replace(good, record_count=11),
        dataclasses.replace(good, size_bytes=0),
        dataclasses.replace(good, object_key=""),
        dataclasses.replace(good, writer_epoch=epoch + 1),
        dataclasses.replace(good, min_timestamp=5, max_timestamp=4),
        dataclasses.replace(good, last_offset=2**63),
        dataclasses.replace(good, base_offset="0"),
    ]


async def test_malformed_segments_are_rejected_and_nothing_is_stored(store) -> None:
    await store.create_topic("t", 1)
    la = await lease(store)
    for bad in _bad_segments(la.epoch):
        with pytest.raises(InvalidRequestError):
            await store.commit_segment(bad, holder="a", epoch=la.epoch)
    with pytest.raises(InvalidRequestError):
        await store.commit_segment("not a segment", holder="a", epoch=la.epoch)
    with pytest.raises(InvalidRequestError):
        await store.commit_segment(seg(0, 1, la.epoch), holder="", epoch=la.epoch)
    assert await store.list_segments("t", 0) == []
    assert (await store.get_partition("t", 0)).next_offset == 0


async def test_commit_to_a_missing_topic_or_partition(store) -> None:
    with pytest.raises(UnknownTopicError):
        await store.commit_segment(seg(0, 1, 1, topic="nope"), holder="a", epoch=1)
    await store.create_topic("t", 1)
    with pytest.raises(UnknownPartitionError):
        await store.commit_segment(seg(0, 1, 1, partition=1), holder="a", epoch=1)


async def test_delete_segments_moves_the_log_start(store) -> None:
    await store.create_topic("t", 1)
    la = await lease(store)
    for base in (0, 10, 20):
        await store.commit_segment(seg(base, 10, la.epoch), holder="a", epoch=la.epoch)
    state = await store.delete_segments("t", 0, [0, 10], new_log_start=20)
    assert state == PartitionState("t", 0, 20, 30)
    assert [s.base_offset for s in await store.list_segments("t", 0)] == [20]
    # A retry is harmless; the log start never moves back.
    assert await store.delete_segments("t", 0, [0, 10], new_log_start=20) == state
    assert await store.delete_segments("t", 0, [], new_log_start=5) == state
    # Moving the start inside a segment keeps the segment (the start offset hides the rest).
    state = await store.delete_segments("t", 0, [], new_log_start=25)
    assert state.log_start_offset == 25
    assert await store.get_partition("t", 0) == PartitionState("t", 0, 25, 30)
    assert [s.base_offset for s in await store.list_segments("t", 0)] == [20]


async def test_delete_segments_refuses_holes_and_positions_past_the_end(store) -> None:
    await store.create_topic("t", 1)
    la = await lease(store)
    for base in (0, 10, 20):
        await store.commit_segment(seg(base, 10, la.epoch), holder="a", epoch=la.epoch)
    with pytest.raises(InvalidRequestError, match="hole"):
        await store.delete_segments("t", 0, [0, 10], new_log_start=15)
    with pytest.raises(InvalidRequestError, match="hole"):
        await store.delete_segments("t", 0, [10], new_log_start=0)
    with pytest.raises(InvalidRequestError, match="past the committed end 30"):
        await store.delete_segments("t", 0, [0], new_log_start=31)
    with pytest.raises(InvalidRequestError):
        await store.delete_segments("t", 0, [-1], new_log_start=10)
    assert [s.base_offset for s in await store.list_segments("t", 0)] == [0, 10, 20]
    assert await store.get_partition("t", 0) == PartitionState("t", 0, 0, 30)
    with pytest.raises(UnknownTopicError):
        await store.delete_segments("nope", 0, [0], new_log_start=1)


# ---------------------------------------------------------------------- agents
async def test_agents_register_heartbeat_and_expire(store) -> None:
    a = await store.register_agent("agent-a", "10.0.0.1:9092")
    assert a.heartbeat_at == a.started_at and a.address == "10.0.0.1:9092"
    await asyncio.sleep(0.2)
    b = await store.register_agent("agent-b", "10.0.0.2:9092")
    alive = await store.list_agents(alive_within_ms=150)
    assert [x.agent_id for x in alive] == ["agent-b"]
    assert [x.agent_id for x in await store.list_agents()] == ["agent-a", "agent-b"]

    await store.heartbeat_agent("agent-a")
    assert {x.agent_id for x in await store.list_agents(alive_within_ms=150)} == {
        "agent-a",
        "agent-b",
    }
    refreshed = (await store.list_agents())[0]
    assert refreshed.started_at == a.started_at and refreshed.heartbeat_at > a.heartbeat_at

    restarted = await store.register_agent("agent-b", "10.0.0.9:9092", "10.0.0.9:19092")
    assert restarted.address == "10.0.0.9:9092" and restarted.started_at >= b.started_at
    assert restarted.kafka_address == "10.0.0.9:19092" and a.kafka_address == ""
    assert (await store.list_agents())[1].kafka_address == "10.0.0.9:19092"

    await store.remove_agent("agent-a")
    await store.remove_agent("agent-a")  # no-op
    assert [x.agent_id for x in await store.list_agents()] == ["agent-b"]
    with pytest.raises(UnknownAgentError, match="agent-a"):
        await store.heartbeat_agent("agent-a")


async def test_bad_agent_arguments(store) -> None:
    with pytest.raises(InvalidRequestError):
        await store.register_agent("", "x:1")
    with pytest.raises(InvalidRequestError):
        await store.register_agent("a", None)
    with pytest.raises(InvalidRequestError):
        await store.list_agents(alive_within_ms=-1)
    assert await store.list_agents() == []


# ---------------------------------------------------------------------- leases
async def test_every_acquire_raises_the_epoch(store) -> None:
    await store.create_topic("t", 2)
    assert await store.get_lease("t", 0) is None
    first = await store.acquire_lease("t", 0, "a", LONG_TTL)
    again = await store.acquire_lease("t", 0, "a", LONG_TTL)
    other = await store.acquire_lease("t", 1, "b", LONG_TTL)
    assert (first.epoch, again.epoch, other.epoch) == (1, 2, 1)
    assert await store.get_lease("t", 0) == again
    assert await store.list_leases() == [again, other]
    assert await store.list_leases(holder="b") == [other]
    assert await store.list_leases(holder="nobody") == []


async def test_lease_expiry_follows_the_store_clock(store) -> None:
    await store.create_topic("t", 1)
    before = await store.now_ms()
    la = await store.acquire_lease("t", 0, "a", 300)
    after = await store.now_ms()
    assert before + 300 <= la.expires_at <= after + 300
    with pytest.raises(LeaseHeldError, match="'a' at epoch 1"):
        await store.acquire_lease("t", 0, "b", LONG_TTL)
    while await store.now_ms() <= la.expires_at:
        await asyncio.sleep(0.05)
    lb = await store.acquire_lease("t", 0, "b", LONG_TTL)
    assert (lb.holder, lb.epoch) == ("b", 2)


async def test_renew_extends_only_the_current_holders_lease(store) -> None:
    await store.create_topic("t", 1)
    la = await store.acquire_lease("t", 0, "a", 1_000)
    renewed = await store.renew_lease("t", 0, "a", la.epoch, LONG_TTL)
    assert renewed.epoch == la.epoch and renewed.expires_at > la.expires_at
    assert await store.get_lease("t", 0) == renewed
    with pytest.raises(FencedError, match="'a' at epoch 1"):
        await store.renew_lease("t", 0, "b", la.epoch, LONG_TTL)
    with pytest.raises(FencedError):
        await store.renew_lease("t", 0, "a", la.epoch + 1, LONG_TTL)
    with pytest.raises(InvalidRequestError):
        await store.renew_lease("t", 0, "a", la.epoch, 0)
    assert await store.get_lease("t", 0) == renewed


async def test_release_lets_a_successor_in_at_once(store) -> None:
    await store.create_topic("t", 1)
    la = await store.acquire_lease("t", 0, "a", LONG_TTL)
    await store.release_lease("t", 0, "b", la.epoch)  # not the holder: no-op
    await store.release_lease("t", 0, "a", la.epoch + 7)  # wrong epoch: no-op
    with pytest.raises(LeaseHeldError):
        await store.acquire_lease("t", 0, "b", LONG_TTL)
    await store.release_lease("t", 0, "a", la.epoch)
    released = await store.get_lease("t", 0)
    assert released.epoch == la.epoch and released.expires_at <= await store.now_ms()
    lb = await store.acquire_lease("t", 0, "b", LONG_TTL)
    assert lb.epoch == la.epoch + 1
    await store.release_lease("gone", 0, "a", 1)  # topic gone: nothing to release


async def test_bad_lease_arguments(store) -> None:
    await store.create_topic("t", 1)
    for holder, ttl in (("", 10), ("a", 0), ("a", -5), ("a", 1.5), (None, 10)):
        with pytest.raises(InvalidRequestError):
            await store.acquire_lease("t", 0, holder, ttl)
    with pytest.raises(UnknownTopicError):
        await store.acquire_lease("nope", 0, "a", 10)
    with pytest.raises(UnknownTopicError):
        await store.renew_lease("nope", 0, "a", 1, 10)
    assert await store.get_lease("t", 0) is None


async def test_concurrent_acquires_from_two_agents_one_wins(make_store) -> None:
    a, b = await make_store(), await make_store()
    await a.migrate()
    await a.create_topic("t", 1)
    results = await asyncio.gather(
        *(s.acquire_lease("t", 0, name, LONG_TTL) for s, name in ((a, "a"), (b, "b")) * 3),
        return_exceptions=True,
    )
    leases = [r for r in results if not isinstance(r, BaseException)]
    assert {x.holder for x in leases} in ({"a"}, {"b"})
    assert all(isinstance(r, LeaseHeldError) for r in results if r not in leases)
    assert sorted(x.epoch for x in leases) == list(range(1, len(leases) + 1))


# --------------------------------------------------------- consumer-group offsets
async def test_group_offsets_upsert_fetch_list_delete(store) -> None:
    await store.create_topic("t", 2)
    await store.create_topic("u", 1)
    await store.commit_offsets("g1", [("t", 0, 5, "m0"), ("t", 1, 7, ""), ("u", 0, 1, "x")])
    await store.commit_offsets("g2", [("t", 0, 9, "")])
    before = await store.now_ms()
    await store.commit_offsets("g1", [("t", 0, 6, "m1")])
    got = await store.fetch_offsets("g1")
    assert [(o.topic, o.partition, o.offset, o.metadata) for o in got] == [
        ("t", 0, 6, "m1"),
        ("t", 1, 7, ""),
        ("u", 0, 1, "x"),
    ]
    assert got[0].committed_at >= before and isinstance(got[0], CommittedOffset)
    assert [o.offset for o in await store.fetch_offsets("g1", "u")] == [1]
    assert await store.fetch_offsets("g1", "missing") == []
    assert await store.fetch_offsets("nobody") == []
    assert await store.list_groups() == ["g1", "g2"]
    await store.delete_group("g1")
    await store.delete_group("g1")
    assert await store.list_groups() == ["g2"]
    assert await store.fetch_offsets("g1") == []
    await store.commit_offsets("g2", [])
    assert [o.offset for o in await store.fetch_offsets("g2")] == [9]


async def test_group_offsets_commit_is_all_or_nothing(store) -> None:
    await store.create_topic("t", 2)
    await store.commit_offsets("g", [("t", 0, 1, "")])
    bad_batches = [
        ([("t", 0, 50, ""), ("nope", 0, 1, "")], UnknownTopicError),
        ([("t", 0, 50, ""), ("t", 2, 1, "")], UnknownPartitionError),
        ([("t", 0, 50, ""), ("t", 1, -2, "")], InvalidRequestError),
        ([("t", 0, 50, ""), ("t", 1, 3, "x" * 4097)], InvalidRequestError),
        ([("t", 0, 50, ""), ("t", 1, 3)], InvalidRequestError),
        ([("t", 0, 50, ""), ("t", 1, "3", "")], InvalidRequestError),
    ]
    for batch, error in bad_batches:
        with pytest.raises(error):
            await store.commit_offsets("g", batch)
    with pytest.raises(InvalidRequestError):
        await store.commit_offsets("", [("t", 0, 1, "")])
    assert [(o.partition, o.offset) for o in await store.fetch_offsets("g")] == [(0, 1)]


async def test_repeated_partition_in_one_commit_keeps_the_last(store) -> None:
    await store.create_topic("t", 1)
    await store.commit_offsets("g", [("t", 0, 1, "a"), ("t", 0, 2, "b")])
    assert [(o.offset, o.metadata) for o in await store.fetch_offsets("g")] == [(2, "b")]


# ---------------------------------------------------------- idempotent producers
async def test_producer_ids_are_unique_across_agents(make_store) -> None:
    a, b = await make_store(), await make_store()
    await a.migrate()
    results = await asyncio.gather(*(s.init_producer() for s in (a, b) * 10))
    ids = [pid for pid, _ in results]
    assert len(set(ids)) == 20 and all(epoch == 0 for _, epoch in results)
    assert all(pid >= 0 for pid in ids)


async def test_init_with_an_id_bumps_its_epoch_and_fences_the_old(store) -> None:
    await store.create_topic("t", 2)
    pid, epoch = await store.init_producer()
    await store.put_producer_state(ProducerPartitionState(pid, epoch, "t", 0, 4, 99))
    assert await store.get_producer_state(pid, "t", 0) == ProducerPartitionState(
        pid, 0, "t", 0, 4, 99
    )
    assert await store.init_producer(pid) == (pid, 1)
    with pytest.raises(ProducerFencedError, match=f"producer {pid} at epoch 0"):
        await store.put_producer_state(ProducerPartitionState(pid, 0, "t", 0, 5, 100))
    assert (await store.get_producer_state(pid, "t", 0)).last_sequence == 4
    await store.put_producer_state(ProducerPartitionState(pid, 1, "t", 0, 0, 100))
    await store.put_producer_state(ProducerPartitionState(pid, 1, "t", 1, 9, 3))
    assert await store.get_producer_state(pid, "t", 0) == ProducerPartitionState(
        pid, 1, "t", 0, 0, 100
    )
    assert (await store.get_producer_state(pid, "t", 1)).last_sequence == 9
    assert await store.get_producer_state(pid, "u", 0) is None
    assert await store.get_producer_state(pid + 1000, "t", 0) is None


async def test_bad_producer_requests(store) -> None:
    await store.create_topic("t", 1)
    pid, _ = await store.init_producer()
    with pytest.raises(UnknownProducerError):
        await store.init_producer(pid + 1000)
    with pytest.raises(InvalidRequestError):
        await store.init_producer(-1)
    cases = [
        (ProducerPartitionState(pid + 1000, 0, "t", 0, 0, 0), UnknownProducerError),
        (ProducerPartitionState(pid, 3, "t", 0, 0, 0), InvalidRequestError),
        (ProducerPartitionState(pid, 0, "nope", 0, 0, 0), UnknownTopicError),
        (ProducerPartitionState(pid, 0, "t", 1, 0, 0), UnknownPartitionError),
        (ProducerPartitionState(pid, 0, "t", 0, 2**31, 0), InvalidRequestError),
        (ProducerPartitionState(pid, 0, "t", 0, 0, -2), InvalidRequestError),
    ]
    for state, error in cases:
        with pytest.raises(error):
            await store.put_producer_state(state)
    assert await store.get_producer_state(pid, "t", 0) is None


async def test_exhausted_producer_epoch_moves_to_a_new_id(store, raw) -> None:
    await store.create_topic("t", 1)
    pid, _ = await store.init_producer()
    await raw("UPDATE producers SET epoch = 32765 WHERE producer_id = ?", pid)
    assert await store.init_producer(pid) == (pid, 32766)
    new_pid, new_epoch = await store.init_producer(pid)
    assert new_pid != pid and new_epoch == 0
    with pytest.raises(ProducerFencedError):  # every session on the old id is fenced
        await store.put_producer_state(ProducerPartitionState(pid, 32766, "t", 0, 0, 0))
    await store.put_producer_state(ProducerPartitionState(new_pid, 0, "t", 0, 0, 0))


# ------------------------------------------------------------------ reopening
async def test_state_survives_reopening_the_store(store, make_store) -> None:
    await store.create_topic("t", 1, TopicConfig(segment_ms=7))
    la = await lease(store)
    await store.commit_segment(seg(0, 4, la.epoch), holder="a", epoch=la.epoch)
    await store.close()
    reopened = await make_store()
    await reopened.migrate()
    assert (await reopened.get_topic("t")).config.segment_ms == 7
    assert (await reopened.get_partition("t", 0)).next_offset == 4
    assert (await reopened.get_lease("t", 0)).epoch == la.epoch


async def test_a_failed_transaction_leaves_the_store_usable(store) -> None:
    await store.create_topic("t", 1)
    for _ in range(3):
        with contextlib.suppress(TopicExistsError):
            await store.create_topic("t", 1)
    assert (await store.create_topic("u", 1)).name == "u"


async def test_cancelled_calls_leave_the_store_usable(store) -> None:
    await store.create_topic("t", 1)
    la = await lease(store)
    for i in range(5):
        task = asyncio.create_task(
            store.commit_segment(seg(i * 10, 10, la.epoch), holder="a", epoch=la.epoch)
        )
        await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SegmentConflictError):
            await task
    state = await store.get_partition("t", 0)
    listed = await store.list_segments("t", 0)
    assert state.next_offset == (listed[-1].last_offset + 1 if listed else 0)
    done = await store.commit_segment(
        seg(state.next_offset, 1, la.epoch), holder="a", epoch=la.epoch
    )
    assert done.next_offset == state.next_offset + 1
