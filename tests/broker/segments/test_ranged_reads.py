"""Readers fetch only what they need: footer, header and index once, then the blocks asked for."""

from __future__ import annotations

from streamhouse.broker.segments import SegmentReader, encode_segment
from streamhouse.broker.segments.format import FOOTER, HEADER, INDEX_ENTRY


async def fifty_blocks(kit):
    batches = kit.build_run([(4, 200)] * 150, start=1_000)
    data, info = encode_segment(batches, block_bytes=3 * len(batches[0]))
    fetcher = kit.CountingFetcher(data)
    reader = await SegmentReader.open(fetcher, len(data), name="topic/0/1000")
    assert reader.block_count == 50
    return batches, data, info, fetcher, reader


async def test_open_reads_header_footer_and_index_only(kit) -> None:
    _, data, _, fetcher, _ = await fifty_blocks(kit)
    index_len = 50 * INDEX_ENTRY.size
    assert sorted(fetcher.calls) == [
        (0, HEADER.size),
        (len(data) - FOOTER.size - index_len, len(data) - FOOTER.size),
        (len(data) - FOOTER.size, len(data)),
    ]


async def test_reading_the_last_offset_fetches_one_block(kit) -> None:
    batches, data, info, fetcher, reader = await fifty_blocks(kit)
    opened = fetcher.fetched
    assert await reader.read(info.last_offset, 1) == [batches[-1]]
    assert len(fetcher.calls) == 4
    block = fetcher.fetched - opened
    assert 0 < block < len(data) / 40  # about one fiftieth of the body, not more
    assert opened == HEADER.size + FOOTER.size + 50 * INDEX_ENTRY.size
    assert fetcher.calls[-1][1] == len(data) - FOOTER.size - 50 * INDEX_ENTRY.size  # last block
    # Reading again from the same block is served by the reader's small block cache.
    assert await reader.read(info.last_offset - 5, 1) == [batches[-2]]
    assert len(fetcher.calls) == 4


async def test_adjacent_blocks_come_from_one_request(kit) -> None:
    batches, _, _, fetcher, reader = await fifty_blocks(kit)
    before = len(fetcher.calls)
    size = len(batches[0])
    got = await reader.read(1_000 + 4 * 30, 12 * size)  # batch 30 = block 10, through block 13
    assert got == batches[30:42]
    assert len(fetcher.calls) == before + 2  # the first block, then the rest in one range
    start, end = fetcher.calls[-1]
    assert end - start < 4 * 3 * size  # three more blocks at most, compressed


async def test_full_scan_fetches_the_body_in_few_requests(kit) -> None:
    batches, data, _, fetcher, reader = await fifty_blocks(kit)
    before = len(fetcher.calls)
    assert [b async for b in reader.batches()] == batches
    assert len(fetcher.calls) == before + 1
    await reader.verify()
    assert fetcher.fetched <= 3 * len(data)
