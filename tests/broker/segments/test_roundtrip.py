"""A segment gives back exactly the batches written, by offset, by max_bytes and in full."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamhouse.broker.segments import (
    SegmentInfo,
    SegmentReader,
    SegmentWriter,
    encode_segment,
)

# Record counts and value sizes: small batches, mid-size ones and some larger than block_bytes.
SHAPES = [(1, 10), (5, 40), (3, 900), (1, 3000), (7, 20), (2, 5000), (4, 100), (1, 1), (6, 300)]
BLOCK = 2048


async def collect(reader: SegmentReader) -> list[bytes]:
    return [batch async for batch in reader.batches()]


@pytest.mark.parametrize("compression", ["lz4", "none"])
async def test_round_trip_through_ranged_reader(kit, compression: str) -> None:
    batches = kit.build_run(SHAPES * 4, start=500)
    data, info = encode_segment(batches, compression=compression, block_bytes=BLOCK)

    fetcher = kit.CountingFetcher(data)
    reader = await SegmentReader.open(fetcher, len(data), name="t/0/500")

    assert await collect(reader) == batches
    _, last, _ = kit.header_fields(batches[-1])
    expected = SegmentInfo(
        base_offset=500,
        last_offset=last,
        record_count=sum(count for count, _ in SHAPES) * 4,
        batch_count=len(batches),
        min_timestamp=1_000,
        max_timestamp=1_000 + len(batches) - 1,
        size_bytes=len(data),
        compression=compression,
    )
    assert info == expected
    assert reader.info == expected
    await reader.verify()
    # Batches bigger than a block get a block of their own; the rest share blocks.
    assert len(batches) > reader.block_count > sum(len(b) for b in batches) // (BLOCK * 4)


async def test_lz4_compresses_and_none_stores_raw(kit) -> None:
    batches = kit.build_run([(20, 100)] * 20)
    raw = sum(map(len, batches))
    lz4_data, _ = encode_segment(batches)
    none_data, _ = encode_segment(batches, compression="none")
    assert len(lz4_data) < raw / 5  # repetitive values compress well
    assert raw < len(none_data) < raw + 512
    assert batches[3] in none_data


async def test_writer_tracks_state_while_adding(kit) -> None:
    batches = kit.build_run([(3, 10), (2, 10)], start=7, timestamps=[50, 40])
    writer = SegmentWriter(compression="none", block_bytes=64)
    assert writer.base_offset is None and writer.max_timestamp is None and writer.size_bytes == 0
    writer.add(memoryview(batches[0]))
    writer.add(batches[1])
    assert (writer.base_offset, writer.last_offset) == (7, 11)
    assert (writer.record_count, writer.batch_count) == (5, 2)
    assert (writer.min_timestamp, writer.max_timestamp) == (40, 50)
    assert writer.size_bytes == sum(map(len, batches))
    data, info = writer.finish()
    assert info.size_bytes == len(data)
    assert await collect(SegmentReader.from_bytes(data)) == batches


async def test_read_at_every_offset_starts_with_the_containing_batch(kit) -> None:
    batches = kit.build_run([(3, 50), (1, 50), (4, 400), (2, 10), (5, 60)] * 3, start=100)
    data, info = encode_segment(batches, block_bytes=700)
    reader = SegmentReader.from_bytes(data)
    spans = [kit.header_fields(b)[:2] for b in batches]
    for offset in range(info.base_offset, info.last_offset + 1):
        index = next(i for i, (base, last) in enumerate(spans) if base <= offset <= last)
        assert await reader.read(offset, 1) == [batches[index]], offset
        assert await reader.read(offset, 1 << 20) == batches[index:], offset
    assert await reader.read(info.last_offset + 1, 1 << 20) == []
    assert await reader.read(0, 1) == [batches[0]]  # before the segment: its first batch


async def test_max_bytes_limits_the_read_but_never_below_one_batch(kit) -> None:
    batches = kit.build_run([(2, 100)] * 30)
    size = len(batches[0])
    data, _ = encode_segment(batches, block_bytes=4 * size)
    reader = SegmentReader.from_bytes(data)
    assert await reader.read(0, 0) == batches[:1]
    assert await reader.read(0, size - 1) == batches[:1]
    assert await reader.read(0, size) == batches[:1]
    assert await reader.read(0, 2 * size) == batches[:2]
    assert await reader.read(0, 10 * size + size // 2) == batches[:10]  # crosses two blocks
    assert await reader.read(5, 7 * size) == batches[2:9]  # starts mid-block
    assert await reader.read(0, 1 << 30) == batches


async def test_oversized_batch_is_returned_alone_when_it_comes_first(kit) -> None:
    batches = kit.build_run([(1, 10), (1, 10_000), (1, 10)])
    data, _ = encode_segment(batches, block_bytes=1024)
    reader = SegmentReader.from_bytes(data)
    assert reader.block_count == 3
    assert await reader.read(1, 100) == [batches[1]]
    assert await reader.read(0, 200) == [batches[0]]


@st.composite
def segments(draw):
    shapes = draw(
        st.lists(st.tuples(st.integers(1, 4), st.integers(0, 600)), min_size=1, max_size=25)
    )
    timestamps = draw(st.lists(st.integers(-1, 10_000), min_size=len(shapes), max_size=len(shapes)))
    start = draw(st.integers(0, 2**40))
    block_bytes = draw(st.integers(64, 3000))
    compression = draw(st.sampled_from(["lz4", "none"]))
    return shapes, timestamps, start, block_bytes, compression


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=segments(), probe=st.integers(0, 200), ts=st.integers(-2, 10_001))
def test_round_trip_property(kit, case, probe: int, ts: int) -> None:
    shapes, timestamps, start, block_bytes, compression = case
    batches = kit.build_run(shapes, start=start, timestamps=timestamps)
    data, info = encode_segment(batches, compression=compression, block_bytes=block_bytes)
    fields = [kit.header_fields(b) for b in batches]
    offset = start + probe % (info.last_offset - start + 1)
    first = next(i for i, (_, last, _) in enumerate(fields) if last >= offset)
    by_ts = next((i for i, (_, _, max_ts) in enumerate(fields) if max_ts >= ts), None)

    async def check() -> None:
        reader = await SegmentReader.open(kit.CountingFetcher(data), len(data))
        assert reader.info == info
        assert await collect(reader) == batches
        assert await reader.read(offset, 1 << 30) == batches[first:]
        assert await reader.find_batch_for_timestamp(ts) == (
            None if by_ts is None else batches[by_ts]
        )
        await reader.verify()

    assert info.record_count == sum(count for count, _ in shapes)
    assert (info.min_timestamp, info.max_timestamp) == (min(timestamps), max(timestamps))
    asyncio.run(check())
