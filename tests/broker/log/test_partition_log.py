"""The partition log API: dense offsets, reads across memory and segments, lookups, retention."""

from __future__ import annotations

import asyncio
import time

import pytest
from streamhouse.broker.log import Acks, LogManager, NotLeaderError, OffsetOutOfRangeError
from streamhouse.broker.log.companion import companion_key
from streamhouse.broker.records import CorruptBatchError, RecordBatchError
from streamhouse.broker.wal import WalFullError


async def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_append_assigns_dense_offsets_and_reads_back(manager, make_batch, values_of):
    await manager.create_topic("events", partitions=2)
    plog = await manager.partition("events", 1)
    first = await plog.append([make_batch(3, "a"), make_batch(2, "b")], acks=Acks.LEADER)
    second = await plog.append([make_batch(4, "c")], acks=Acks.ALL)
    assert first.base_offsets == [0, 3]
    assert second.base_offsets == [5]
    assert plog.high_watermark == 9
    got = values_of(await plog.read(0))
    assert got == [
        (0, b"a-0"), (1, b"a-1"), (2, b"a-2"), (3, b"b-0"), (4, b"b-1"),
        (5, b"c-0"), (6, b"c-1"), (7, b"c-2"), (8, b"c-3"),
    ]  # fmt: skip
    # Reading mid-batch returns the containing batch first, as Kafka fetch does.
    assert values_of(await plog.read(4), start=4)[0] == (4, b"b-1")
    assert await plog.read(9) == []
    other = await manager.partition("events", 0)
    assert other.high_watermark == 0


async def test_reads_span_committed_segments_and_memory(manager, make_batch, values_of):
    await manager.create_topic("t", partitions=1, config=None)
    await manager.update_topic_config("t", {"segment.ms": 20})
    plog = await manager.partition("t", 0)
    for i in range(5):
        await plog.append([make_batch(10, f"s{i}")])
        await wait_until(lambda i=i: plog.committed_offset >= 10 * (i + 1))
    await manager.update_topic_config("t", {"segment.ms": 3_600_000})
    await plog.append([make_batch(10, "open")])
    assert len(plog.segments) == 5
    assert plog.high_watermark == 60
    values = values_of(await plog.read(0, max_bytes=10**6))
    assert [o for o, _ in values] == list(range(60))
    assert values[50] == (50, b"open-0")
    # max_bytes limits how much comes back, but the first batch always does.
    small = await plog.read(0, max_bytes=1)
    assert len(small) == 1


async def test_restart_keeps_committed_and_wal_data_and_continues_offsets(
    manager, reopen, make_batch, values_of
):
    await manager.create_topic("r", partitions=1)
    plog = await manager.partition("r", 0)
    await plog.append([make_batch(5, "x")], acks=Acks.ALL)
    await manager.close()
    again = await reopen()
    try:
        plog = await again.partition("r", 0)
        assert plog.high_watermark == 5
        result = await plog.append([make_batch(2, "y")], acks=Acks.ALL)
        assert result.base_offsets == [5]
        assert [v for _, v in values_of(await plog.read(0))] == [
            b"x-0", b"x-1", b"x-2", b"x-3", b"x-4", b"y-0", b"y-1",
        ]  # fmt: skip
    finally:
        await again.close()


async def test_offset_lookup_by_timestamp(manager, make_batch):
    await manager.create_topic("ts", partitions=1)
    await manager.update_topic_config("ts", {"segment.ms": 10})
    plog = await manager.partition("ts", 0)
    base = 1_700_000_000_000
    for i in range(4):
        await plog.append([make_batch(5, f"b{i}", timestamp=base + i * 1000)])
    await wait_until(lambda: plog.committed_offset >= 15)
    await plog.append([make_batch(5, "tail", timestamp=base + 10_000)])
    assert plog.earliest_offset() == 0
    assert plog.latest_offset() == 25
    assert await plog.offset_for_timestamp(base - 1) == 0
    assert await plog.offset_for_timestamp(base) == 0
    assert await plog.offset_for_timestamp(base + 1) == 5
    assert await plog.offset_for_timestamp(base + 2000) == 10
    assert await plog.offset_for_timestamp(base + 9_000) == 20  # in memory, not yet sealed
    assert await plog.offset_for_timestamp(base + 10_001) is None


async def test_retention_by_time_deletes_whole_segments(manager, make_batch, values_of):
    await manager.create_topic("old", partitions=1)
    await manager.update_topic_config("old", {"segment.ms": 10})
    plog = await manager.partition("old", 0)
    now = int(time.time() * 1000)
    await plog.append([make_batch(5, "ancient", timestamp=now - 3_600_000)])
    await wait_until(lambda: plog.committed_offset >= 5)
    await plog.append([make_batch(5, "fresh", timestamp=now)])
    await wait_until(lambda: plog.committed_offset >= 10)
    keys_before = {s.object_key for s in plog.segments}
    await manager.update_topic_config("old", {"retention.ms": 60_000})
    assert await manager.apply_retention() == 1
    assert plog.log_start_offset == 5
    with pytest.raises(OffsetOutOfRangeError):
        await plog.read(0)
    assert next(v for _, v in values_of(await plog.read(5))) == b"fresh-0"
    remaining = {info.key for info in await manager.store.list("")}
    assert len(keys_before - remaining) == 1
    state = await manager.metadata.get_partition("old", 0)
    assert state.log_start_offset == 5


async def test_retention_by_size(manager, make_batch):
    await manager.create_topic("big", partitions=1)
    await manager.update_topic_config("big", {"segment.ms": 10})
    plog = await manager.partition("big", 0)
    for i in range(4):
        await plog.append([make_batch(50, f"s{i}")])
        await wait_until(lambda i=i: plog.committed_offset >= 50 * (i + 1))
    one = plog.segments[0].size_bytes
    await manager.update_topic_config("big", {"retention.bytes": one * 2 + one // 2})
    assert await manager.apply_retention() == 2
    assert plog.log_start_offset == 100
    assert len(plog.segments) == 2


async def test_bad_batch_is_rejected_and_nothing_is_stored(manager, make_batch, values_of):
    await manager.create_topic("bad", partitions=1)
    plog = await manager.partition("bad", 0)
    good = make_batch(3, "ok")
    corrupt = bytearray(make_batch(3, "no"))
    corrupt[-1] ^= 0xFF
    with pytest.raises(CorruptBatchError):
        await plog.append([good, bytes(corrupt)])
    with pytest.raises(RecordBatchError):
        await plog.append([good[:-5]])
    assert plog.high_watermark == 0
    await plog.append([good])
    assert values_of(await plog.read(0)) == [(0, b"ok-0"), (1, b"ok-1"), (2, b"ok-2")]


async def test_oversize_batch_is_rejected(manager, make_batch):
    await manager.create_topic("limit", partitions=1)
    await manager.update_topic_config("limit", {"max.message.bytes": 200})
    plog = await manager.partition("limit", 0)
    with pytest.raises(RecordBatchError, match="200"):
        await plog.append([make_batch(50, "too-big")])
    assert plog.high_watermark == 0


async def test_full_wal_is_backpressure_not_partial_storage(log_config, shared_urls, make_batch):
    from dataclasses import replace

    meta, objects = shared_urls
    config = replace(log_config, wal_max_bytes=64 * 1024, wal_file_max_bytes=16 * 1024)
    mgr = await LogManager.open(config, metadata_url=meta, object_store_url=objects)
    try:
        await mgr.create_topic("bp", partitions=1)
        await mgr.update_topic_config("bp", {"segment.ms": 3_600_000})
        plog = await mgr.partition("bp", 0)
        batch = make_batch(100, "x" * 50)
        with pytest.raises(WalFullError):
            for _ in range(100):
                await plog.append([batch])
        stored = plog.high_watermark
        assert stored % 100 == 0 and stored > 0
        # Sealing commits the data to a segment and frees the WAL for new appends.
        await mgr.update_topic_config("bp", {"segment.ms": 10})
        await wait_until(lambda: plog.committed_offset == stored)
        await plog.append([batch])
        assert plog.high_watermark == stored + 100
    finally:
        await mgr.close()


async def test_acks_all_without_wal_waits_for_segment_commit(
    log_config, shared_urls, make_batch, values_of
):
    from dataclasses import replace

    meta, objects = shared_urls
    config = replace(log_config, wal_enabled=False)
    mgr = await LogManager.open(config, metadata_url=meta, object_store_url=objects)
    try:
        await mgr.create_topic("nowal", partitions=1)
        await mgr.update_topic_config("nowal", {"segment.ms": 3_600_000})
        plog = await mgr.partition("nowal", 0)
        await plog.append([make_batch(4, "d")], acks=Acks.ALL)
        committed = await mgr.metadata.list_segments("nowal", 0)
        assert [(s.base_offset, s.last_offset) for s in committed] == [(0, 3)]
    finally:
        await mgr.close()


async def test_stale_agent_is_fenced_and_its_data_never_becomes_visible(
    log_config, shared_urls, make_batch, values_of
):
    """Two writers on one partition: the one with the older lease epoch cannot commit."""
    from dataclasses import replace

    meta, objects = shared_urls
    a = await LogManager.open(
        replace(log_config, lease_ttl_ms=300, agent_id="agent-a"),
        metadata_url=meta,
        object_store_url=objects,
    )
    await a.create_topic("shared", partitions=1)
    await a.update_topic_config("shared", {"segment.ms": 3_600_000})
    plog_a = await a.partition("shared", 0)
    await plog_a.append([make_batch(3, "a")], acks=Acks.LEADER)
    # Agent A stalls (its renewals stop) and its lease runs out; agent B takes the partition.
    for task in a._tasks:
        task.cancel()
    await asyncio.sleep(0.5)
    b = await LogManager.open(
        replace(log_config, data_dir=log_config.data_dir.parent / "b", agent_id="agent-b"),
        metadata_url=meta,
        object_store_url=objects,
    )
    try:
        plog_b = await b.partition("shared", 0)
        assert plog_b.epoch > plog_a.epoch
        await plog_b.append([make_batch(2, "b")], acks=Acks.LEADER)
        await plog_b.flush()
        # A now tries to commit what it holds: fenced, nothing of it visible.
        await plog_a.flush()
        assert plog_a.fenced
        with pytest.raises(NotLeaderError):
            await plog_a.append([make_batch(1, "late")])
        segments = await b.metadata.list_segments("shared", 0)
        assert [s.writer_epoch for s in segments] == [plog_b.epoch]
        assert values_of(await plog_b.read(0)) == [(0, b"b-0"), (1, b"b-1")]
        await plog_b.companions.drain()
        keys = [info.key for info in await b.store.list("")]
        assert keys == [segments[0].object_key, companion_key(segments[0].object_key)]
    finally:
        await b.close()
        a._tasks = []
        await a.close()


async def test_corrupted_segment_object_is_a_clear_error(
    manager, reopen, make_batch, values_of, tmp_path
):
    from streamhouse.broker.segments import SegmentCorruptError

    await manager.create_topic("rot", partitions=1)
    plog = await manager.partition("rot", 0)
    await plog.append([make_batch(20, "intact")], acks=Acks.ALL)
    await plog.flush()
    key = plog.segments[0].object_key
    await manager.close()
    path = tmp_path / "objects" / key
    data = bytearray(path.read_bytes())
    data[40] ^= 0x01  # inside the first block of batches
    path.write_bytes(bytes(data))
    # A fresh data dir: no cached copy, the object store's bytes are read and checked.
    again = await reopen(data_dir=tmp_path / "fresh")
    try:
        rotten = await again.partition("rot", 0)
        with pytest.raises(SegmentCorruptError, match="block 0"):
            await rotten.read(0)
    finally:
        await again.close()


async def test_damaged_cache_copy_is_replaced_from_the_object_store(
    manager, make_batch, values_of, log_config
):
    await manager.create_topic("cached", partitions=1)
    plog = await manager.partition("cached", 0)
    await plog.append([make_batch(20, "fine")], acks=Acks.ALL)
    await plog.flush()
    cached = [p for p in (log_config.data_dir / "cache").rglob("*.obj")]
    assert len(cached) == 1
    data = bytearray(cached[0].read_bytes())
    data[40] ^= 0x01
    cached[0].write_bytes(bytes(data))
    plog._readers.clear()  # as after a restart: nothing decoded in memory
    got = values_of(await plog.read(0))
    assert [v for _, v in got] == [f"fine-{i}".encode() for i in range(20)]
