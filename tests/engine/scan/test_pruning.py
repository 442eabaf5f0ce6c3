"""Segments are pruned by their companion summaries (true timestamps, key filters), never wrongly.

Each test builds its own topic on the real log manager (local files, SQLite), one segment per
append, with companions written by the agent; scans are compared with the rows expected, and
their stats with the exact number of segments that hold matching rows.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from streamhouse.broker.log import LogManager
from streamhouse.broker.log.backfill import CompanionBackfill
from streamhouse.broker.log.companion import SUMMARY_KEY, companion_key
from streamhouse.broker.metadata import TopicConfig
from streamhouse.broker.records import build_batch
from streamhouse.engine.scan import ScanSpec, open_scan
from streamhouse.engine.scan.companions import footers_of

from ..conftest import T0

SEGMENTS = 6
PER_SEGMENT = 30


async def collect(scan) -> pa.Table:
    batches = [b async for b in scan.batches()]
    return pa.Table.from_batches(batches, schema=scan.schema).sort_by("offset")


async def keyed_topic(manager: LogManager, name: str = "orders") -> None:
    """One partition, SEGMENTS committed segments; segment s holds keys order-s-0..29.

    The background backfill is off, so a companion a test removes stays removed.
    """
    manager.backfill.enabled = False
    await manager.create_topic(name, 1, TopicConfig(segment_bytes=1))
    plog = await manager.partition(name, 0)
    for s in range(SEGMENTS):
        keys = [f"order-{s}-{i}".encode() for i in range(PER_SEGMENT)]
        values = [f'{{"s": {s}, "i": {i}}}'.encode() for i in range(PER_SEGMENT)]
        stamps = [T0 + 1000 * s + i for i in range(PER_SEGMENT)]
        await plog.append([build_batch(values, keys=keys, timestamps=stamps)])
        await plog.wait_committed(plog.high_watermark)
    await plog.companions.drain()
    await manager.backfill.run_once(pause=False)  # the writer may have dropped some
    assert len(plog.segments) == SEGMENTS


async def test_key_lookup_reads_only_the_segment_holding_the_key(manager):
    await keyed_topic(manager)
    scan = await open_scan(manager, ScanSpec("orders", keys=frozenset({b"order-2-7"})))
    got = await collect(scan)
    assert got["key"].to_pylist() == [b"order-2-7"]
    assert got["offset"].to_pylist() == [2 * PER_SEGMENT + 7]
    assert (scan.stats.segments_read, scan.stats.segments_skipped) == (1, SEGMENTS - 1)


async def test_key_in_list_reads_one_segment_per_distinct_home(manager):
    await keyed_topic(manager)
    keys = frozenset({b"order-0-1", b"order-4-2", b"order-4-3", b"no-such-order"})
    scan = await open_scan(manager, ScanSpec("orders", keys=keys))
    got = await collect(scan)
    assert got["key"].to_pylist() == [b"order-0-1", b"order-4-2", b"order-4-3"]
    assert (scan.stats.segments_read, scan.stats.segments_skipped) == (2, SEGMENTS - 2)


async def test_absent_key_reads_no_segment_and_a_warm_scan_fetches_no_footer(manager):
    await keyed_topic(manager)
    spec = ScanSpec("orders", keys=frozenset({b"nobody"}))
    first = await open_scan(manager, spec)
    assert (await collect(first)).num_rows == 0
    assert (first.stats.segments_read, first.stats.segments_skipped) == (0, SEGMENTS)
    footers = footers_of(manager.cache)
    fetched = footers.fetches
    again = await open_scan(manager, spec)
    assert again.pieces == ()  # pruned while planning, from the footers held in memory
    assert (await collect(again)).num_rows == 0
    assert footers.fetches == fetched
    assert again.stats.segments_skipped == SEGMENTS


async def test_upper_time_bound_finds_a_record_older_than_its_batch_start(manager):
    """Kafka allows negative timestamp deltas: a batch starting late may hold an old record."""
    await manager.create_topic("late", 1, TopicConfig(segment_bytes=1))
    plog = await manager.partition("late", 0)
    batches = [
        ([T0 + 5000, T0 + 100, T0 + 5001], [b"a", b"old", b"b"]),  # starts after the bound
        ([T0 + 6000, T0 + 6001, T0 + 6002], [b"c", b"d", b"e"]),  # wholly after it
        ([T0 + 50, T0 + 60, T0 + 70], [b"f", b"g", b"h"]),  # wholly before it
    ]
    for stamps, values in batches:
        await plog.append([build_batch(values, timestamps=stamps)])
        await plog.wait_committed(plog.high_watermark)
    await plog.companions.drain()
    await manager.backfill.run_once(pause=False)
    assert plog.segments[0].min_timestamp == T0 + 5000  # the index sees the first timestamp
    spec = ScanSpec("late", time_min_ms=T0 + 80, time_max_ms=T0 + 200)
    scan = await open_scan(manager, spec)
    got = await collect(scan)
    assert got["value"].to_pylist() == [b"old"]
    # Segment 2 ends before the lower bound (index); segment 1 starts after the upper (summary).
    assert (scan.stats.segments_read, scan.stats.segments_skipped) == (1, 2)


async def test_time_range_reads_only_the_segments_overlapping_it(manager):
    await keyed_topic(manager)
    spec = ScanSpec("orders", time_min_ms=T0 + 3000, time_max_ms=T0 + 3010)
    scan = await open_scan(manager, spec)
    got = await collect(scan)
    assert got["offset"].to_pylist() == list(range(3 * PER_SEGMENT, 3 * PER_SEGMENT + 10))
    assert (scan.stats.segments_read, scan.stats.segments_skipped) == (1, SEGMENTS - 1)


async def replace_companion(manager: LogManager, topic: str, index: int, data: bytes) -> str:
    plog = await manager.partition(topic, 0)
    key = companion_key(plog.segments[index].object_key)
    await manager.store.put(key, data)
    manager.cache.invalidate(key)
    return key


async def test_missing_and_corrupt_companions_fall_back_to_the_segment(manager):
    await keyed_topic(manager)
    everything = await collect(await open_scan(manager, ScanSpec("orders")))
    plog = await manager.partition("orders", 0)
    await manager.store.delete(companion_key(plog.segments[0].object_key))
    await replace_companion(manager, "orders", 1, b"PAR1 this is not parquet PAR1")
    await replace_companion(manager, "orders", 2, b"")
    await replace_companion(
        manager, "orders", 3, b"\x00" * 100 + (2**31 - 1).to_bytes(4, "little") + b"PAR1"
    )
    footers_of(manager.cache).clear()  # as after a restart: nothing in memory
    scan = await open_scan(manager, ScanSpec("orders"))
    got = await collect(scan)
    assert got.equals(everything)
    assert scan.stats.segments_read == SEGMENTS
    assert scan.stats.companions_read == SEGMENTS - 4
    keyed = await open_scan(manager, ScanSpec("orders", keys=frozenset({b"order-1-3"})))
    assert (await collect(keyed))["offset"].to_pylist() == [PER_SEGMENT + 3]
    # Without usable summaries segments 0-3 must be read; 4 and 5 are pruned by key.
    assert (keyed.stats.segments_read, keyed.stats.segments_skipped) == (4, 2)


async def test_a_foreign_or_corrupt_key_filter_means_no_key_pruning(manager):
    await keyed_topic(manager)
    plog = await manager.partition("orders", 0)
    for index, summary in [(0, b"{not json"), (1, b'{"version": 1, "key_hash": "other-v9"}')]:
        key = companion_key(plog.segments[index].object_key)
        table = pq.read_table(pa.BufferReader(await manager.store.get(key)))
        table = table.replace_schema_metadata({SUMMARY_KEY: summary})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        await replace_companion(manager, "orders", index, sink.getvalue().to_pybytes())
    footers_of(manager.cache).clear()
    scan = await open_scan(manager, ScanSpec("orders", keys=frozenset({b"order-5-0"})))
    got = await collect(scan)
    assert got["key"].to_pylist() == [b"order-5-0"]
    assert scan.stats.companions_read == 3  # segments 0, 1 (no filter) and 5 (the key)
    assert (scan.stats.segments_read, scan.stats.segments_skipped) == (3, 3)


async def test_backfill_writes_missing_companions_and_scans_then_use_them(manager):
    await keyed_topic(manager)
    plog = await manager.partition("orders", 0)
    for record in plog.segments:
        await manager.store.delete(companion_key(record.object_key))
    # A fresh agent's backfill (it finds the gaps by listing, not by remembering).
    backfill = CompanionBackfill(manager.led_partitions, manager.store, manager.cache)
    assert await backfill.run_once(pause=False) == SEGMENTS
    assert await backfill.run_once(pause=False) == 0  # nothing left to do
    keys = {i.key for i in await manager.store.list("segments/")}
    assert all(companion_key(r.object_key) in keys for r in plog.segments)
    footers_of(manager.cache).clear()
    scan = await open_scan(manager, ScanSpec("orders", keys=frozenset({b"order-3-3"})))
    assert (await collect(scan))["offset"].to_pylist() == [3 * PER_SEGMENT + 3]
    assert (scan.stats.companions_read, scan.stats.segments_skipped) == (1, SEGMENTS - 1)


async def test_absent_companions_are_not_asked_for_again_within_the_ttl(manager):
    await keyed_topic(manager)
    plog = await manager.partition("orders", 0)
    for record in plog.segments:
        await manager.store.delete(companion_key(record.object_key))
    footers = footers_of(manager.cache)
    footers.clear()
    first = await collect(await open_scan(manager, ScanSpec("orders")))
    assert footers.fetches == SEGMENTS
    again = await collect(await open_scan(manager, ScanSpec("orders")))
    assert footers.fetches == SEGMENTS
    assert again.equals(first)
    mask = pc.equal(first["key"], b"order-0-0")
    assert first.filter(mask).num_rows == 1
