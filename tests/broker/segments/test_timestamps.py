"""The timestamp index answers with the FIRST batch (in offset order) whose max timestamp >= t."""

from __future__ import annotations

import pytest
from streamhouse.broker.segments import SegmentReader, encode_segment


def first_reaching(timestamps: list[int], ts: int) -> int | None:
    return next((i for i, t in enumerate(timestamps) if t >= ts), None)


@pytest.mark.parametrize("block_bytes", [1, 300, 1 << 20])  # a block per batch .. one block
async def test_non_monotonic_timestamps(kit, block_bytes: int) -> None:
    timestamps = [100, 90, 300, 120, 110, 500, 80, 300, 700, 650]
    batches = kit.build_run([(2, 30)] * len(timestamps), start=40, timestamps=timestamps)
    reader = SegmentReader.from_bytes(encode_segment(batches, block_bytes=block_bytes)[0])
    for ts in range(0, 800, 5):
        index = first_reaching(timestamps, ts)
        expected = None if index is None else batches[index]
        assert await reader.find_batch_for_timestamp(ts) == expected, ts
        assert await reader.offset_for_timestamp(ts) == (None if index is None else 40 + 2 * index)


async def test_answer_is_batch_granular_by_max_timestamp(kit) -> None:
    # One batch with records at 10, 50, 30 (max 50): any t in 11..50 answers with that batch,
    # whose base offset is 5 even though the first record with timestamp >= 40 is offset 6.
    batches = [
        kit.build_batch(0, [b"a"] * 5, [1, 2, 3, 4, 5]),
        kit.build_batch(5, [b"b", b"c", b"d"], [10, 50, 30]),
        kit.build_batch(8, [b"e"], [60]),
    ]
    reader = SegmentReader.from_bytes(encode_segment(batches)[0])
    assert await reader.offset_for_timestamp(40) == 5
    assert await reader.find_batch_for_timestamp(40) == batches[1]
    assert await reader.offset_for_timestamp(51) == 8
    assert await reader.offset_for_timestamp(61) is None
    assert (reader.info.min_timestamp, reader.info.max_timestamp) == (1, 60)


async def test_timestamp_lookup_fetches_one_block(kit) -> None:
    timestamps = list(range(0, 4000, 10))
    batches = kit.build_run([(1, 50)] * len(timestamps), timestamps=timestamps)
    data, _ = encode_segment(batches, block_bytes=1024)
    fetcher = kit.CountingFetcher(data)
    reader = await SegmentReader.open(fetcher, len(data))
    opened = len(fetcher.calls)
    assert await reader.offset_for_timestamp(2345) == 235
    assert len(fetcher.calls) == opened + 1
