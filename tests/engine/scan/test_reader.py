"""Point-in-time scans return exactly the rows a spec admits, and prune what they read."""

from __future__ import annotations

import asyncio

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from streamhouse.broker.metadata import TopicConfig
from streamhouse.broker.records.partitioner import partition_for_key
from streamhouse.engine.scan import ScanSpec, open_scan

from ..conftest import PARTITIONS, PER_BATCH, SEGMENTS, T0, batch_of, rows_of

TOTAL_PIECES = PARTITIONS * (SEGMENTS + 1)  # committed segments plus one tail per partition


async def collect(scan) -> pa.Table:
    batches = [b async for b in scan.batches()]
    table = pa.Table.from_batches(batches, schema=scan.schema)
    return table.sort_by([("partition", "ascending"), ("offset", "ascending")])


def where(table: pa.Table, mask) -> pa.Table:
    return table.filter(mask)


async def test_full_scan_returns_every_row_from_segments_and_memory(produced):
    scan = await open_scan(produced.manager, ScanSpec("events"))
    got = await collect(scan)
    assert got.equals(produced.expected)
    assert got.num_rows == PARTITIONS * (SEGMENTS + 1) * PER_BATCH
    stats = scan.stats
    assert (stats.partitions_read, stats.segments_read, stats.segments_skipped) == (
        PARTITIONS,
        TOTAL_PIECES,
        0,
    )
    assert stats.rows == got.num_rows
    assert stats.bytes_read > 0
    assert stats.companions_read == (PARTITIONS * SEGMENTS if produced.companions else 0)


async def test_partition_pruning_reads_only_that_partition(produced):
    scan = await open_scan(produced.manager, ScanSpec("events", partitions=frozenset({1, 7})))
    got = await collect(scan)
    exp = produced.expected
    assert got.equals(where(exp, pc.equal(exp["partition"], 1)))
    assert scan.stats.partitions_read == 1
    assert scan.stats.segments_read == SEGMENTS + 1


async def test_offset_range_reads_only_overlapping_segments(produced):
    spec = ScanSpec("events", offset_min=25, offset_max=65)
    scan = await open_scan(produced.manager, spec)
    got = await collect(scan)
    exp = produced.expected
    mask = pc.and_(pc.greater_equal(exp["offset"], 25), pc.less(exp["offset"], 65))
    assert got.equals(where(exp, mask))
    # Segments [20,40), [40,60), [60,80) of each partition; [0,20), [80,100) and the tail skipped.
    assert scan.stats.segments_read == 3 * PARTITIONS
    assert scan.stats.segments_skipped == 3 * PARTITIONS


async def test_time_range_skips_older_segments_and_filters_exactly(produced):
    lo, hi = T0 + 3000 + 5, T0 + 4000 + 10
    scan = await open_scan(produced.manager, ScanSpec("events", time_min_ms=lo, time_max_ms=hi))
    got = await collect(scan)
    exp = produced.expected
    ts = pc.cast(exp["timestamp"], pa.int64())
    assert got.equals(where(exp, pc.and_(pc.greater_equal(ts, lo), pc.less(ts, hi))))
    assert got.num_rows == PARTITIONS * (15 + 10)
    # Segments 0..2 end before lo; 3 and 4 start before hi, and the tail is always read.
    assert scan.stats.segments_skipped == 3 * PARTITIONS
    assert scan.stats.segments_read == 3 * PARTITIONS


async def test_key_filter_returns_exactly_the_keyed_rows(produced):
    keys = frozenset({b"k1", b"k3"})
    scan = await open_scan(produced.manager, ScanSpec("events", keys=keys))
    got = await collect(scan)
    exp = produced.expected
    assert got.equals(where(exp, pc.is_in(exp["key"], value_set=pa.array(sorted(keys)))))
    assert got.num_rows > 0
    assert scan.stats.segments_read == TOTAL_PIECES  # without a partitioner promise, all read


async def test_keys_pick_partitions_by_the_default_partitioner(manager):
    await manager.create_topic("keyed", PARTITIONS, TopicConfig(segment_bytes=1))
    keys = [f"user-{i}".encode() for i in range(12)]
    for round_ in range(2):
        for key in keys:
            plog = await manager.partition("keyed", partition_for_key(key, PARTITIONS))
            await plog.append([batch_of({**rows_of(0, round_), "key": [key] * PER_BATCH})])
            await plog.wait_committed(plog.high_watermark)
    for p in range(PARTITIONS):
        await (await manager.partition("keyed", p)).companions.drain()
    wanted = keys[0]
    home = partition_for_key(wanted, PARTITIONS)
    spec = ScanSpec("keyed", keys=frozenset({wanted}))
    pruned = await open_scan(manager, spec, keys_pick_partitions=True)
    full = await open_scan(manager, spec)
    got, everything = await collect(pruned), await collect(full)
    assert got.equals(everything)
    assert got.num_rows == 2 * PER_BATCH
    assert set(got["key"].to_pylist()) == {wanted}
    assert set(got["partition"].to_pylist()) == {home}
    assert pruned.stats.partitions_read == 1
    # Either way the key filters of the companions leave only the 2 segments holding the key.
    assert pruned.stats.segments_read == full.stats.segments_read == 2
    assert full.stats.segments_skipped == 2 * len(keys) - 2


async def test_records_appended_after_the_scan_started_are_not_seen(produced):
    scan = await open_scan(produced.manager, ScanSpec("events"))
    for p in range(PARTITIONS):
        plog = await produced.manager.partition("events", p)
        await plog.append([batch_of(rows_of(p, 99))])
    got = await collect(scan)
    assert got.equals(produced.expected)
    again = await collect(await open_scan(produced.manager, ScanSpec("events")))
    assert again.num_rows == produced.expected.num_rows + PARTITIONS * PER_BATCH


async def test_snapshot_holds_when_the_tail_is_committed_during_the_scan(produced):
    scan = await open_scan(produced.manager, ScanSpec("events"))
    for p in range(PARTITIONS):
        plog = await produced.manager.partition("events", p)
        await plog.append([batch_of(rows_of(p, 99))])
        await plog.flush()  # the snapshot's tail now lives in a committed segment
    got = await collect(scan)
    assert got.equals(produced.expected)


async def test_record_batch_reader_streams_off_the_loop_thread(produced):
    scan = await open_scan(produced.manager, ScanSpec("events"), max_in_flight=2)
    reader = scan.reader()
    assert reader.schema == scan.schema

    def drain() -> tuple[int, int]:
        sizes = [batch.num_rows for batch in reader]
        return len(sizes), sum(sizes)

    count, rows = await asyncio.to_thread(drain)
    assert count == TOTAL_PIECES  # one batch per piece: never the whole topic in one
    assert rows == produced.expected.num_rows


async def test_reader_refuses_to_block_the_loop(produced):
    scan = await open_scan(produced.manager, ScanSpec("events"))
    with pytest.raises(RuntimeError, match="off the event loop"):
        scan.reader().read_next_batch()


async def test_a_scan_is_single_use(produced):
    scan = await open_scan(produced.manager, ScanSpec("events", partitions=frozenset({0})))
    await collect(scan)
    with pytest.raises(RuntimeError, match="once"):
        await collect(scan)


async def test_segments_are_fetched_in_parallel_within_the_bound(produced_segments, monkeypatch):
    produced = produced_segments
    cache = produced.manager.cache
    cache_get = cache.get_range
    active = peak = 0

    async def slow_get_range(*args, **kwargs):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        try:
            await asyncio.sleep(0.01)
            return await cache_get(*args, **kwargs)
        finally:
            active -= 1

    monkeypatch.setattr(cache, "get_range", slow_get_range)
    # Each segment open fetches header and footer together, so one piece is two fetches at once.
    scan = await open_scan(produced.manager, ScanSpec("events"), max_in_flight=3)
    got = await collect(scan)
    assert got.equals(produced.expected)
    assert 2 < peak <= 3 * 2


async def test_stopping_early_cancels_the_pieces_in_flight(produced):
    scan = await open_scan(produced.manager, ScanSpec("events"), max_in_flight=4)
    stream = scan.batches()
    first = await anext(stream)
    await stream.aclose()
    assert first.num_rows == PER_BATCH
    assert scan.stats.segments_read <= 4
    assert not [t for t in asyncio.all_tasks() if "_load" in repr(t.get_coro())]
