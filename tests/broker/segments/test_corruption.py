"""Damaged, truncated or crafted objects raise SegmentCorruptError, never return wrong data."""

from __future__ import annotations

import struct

import crc32c
import pytest
from streamhouse.broker.segments import (
    SegmentCorruptError,
    SegmentError,
    SegmentReader,
    encode_segment,
)
from streamhouse.broker.segments.format import (
    FOOTER,
    FOOTER_CRC_SPAN,
    HEADER,
    INDEX_ENTRY,
)

NAME = "segments/t/0/00000000000000000010"


def layout(data: bytes) -> tuple[list[int], list[tuple[int, ...]]]:
    """Footer fields and index entries, decoded as the format module documents them."""
    footer = list(FOOTER.unpack(data[-FOOTER.size :]))
    index_pos, index_len = footer[7], footer[8]
    entries = list(INDEX_ENTRY.iter_unpack(data[index_pos : index_pos + index_len]))
    return footer, entries


def reseal(data: bytes, *, index: list[tuple[int, ...]] | None = None, **footer_changes) -> bytes:
    """Rewrites index entries and footer fields with valid crcs: a crafted, not a damaged object."""
    footer, entries = layout(data)
    out = bytearray(data)
    if index is not None:
        entries = index
        blob = b"".join(INDEX_ENTRY.pack(*e) for e in entries)
        out[footer[7] : footer[7] + len(blob)] = blob
        footer[10] = crc32c.crc32c(blob)
    names = ["base", "last", "records", "batches", "blocks", "min_ts", "max_ts"]
    for key, value in footer_changes.items():
        footer[names.index(key)] = value
    footer[11] = crc32c.crc32c(bytes(out[: HEADER.size]))
    packed = bytearray(FOOTER.pack(*footer))
    struct.pack_into(">I", packed, FOOTER_CRC_SPAN, crc32c.crc32c(packed[:FOOTER_CRC_SPAN]))
    out[-FOOTER.size :] = packed
    return bytes(out)


@pytest.fixture(params=["lz4", "none"])
def segment(request, kit):
    batches = kit.build_run([(3, 40), (2, 150), (1, 10), (4, 60)] * 4, start=10)
    data, info = encode_segment(batches, compression=request.param, block_bytes=400)
    return batches, data, info


async def test_every_flipped_byte_is_caught(kit, segment) -> None:
    batches, data, _ = segment
    footer, entries = layout(data)
    assert len(entries) >= 4
    index_start = footer[7]
    by_offset = {kit.header_fields(b)[0]: i for i, b in enumerate(batches)}
    for pos in range(len(data)):
        bad = bytearray(data)
        bad[pos] ^= 1 + pos % 255
        bad = bytes(bad)
        if pos < HEADER.size or pos >= index_start:
            with pytest.raises(SegmentCorruptError):
                await SegmentReader.open(kit.CountingFetcher(bad), len(bad), name=NAME)
            with pytest.raises(SegmentCorruptError):
                SegmentReader.from_bytes(bad, name=NAME)
            continue
        number = next(n for n, e in enumerate(entries) if e[4] <= pos < e[4] + e[5])
        first, last = entries[number][0], entries[number][1]
        reader = await SegmentReader.open(kit.CountingFetcher(bad), len(bad), name=NAME)
        with pytest.raises(SegmentCorruptError, match=f"block {number} in segment '{NAME}'"):
            await reader.read(last, 1)
        with pytest.raises(SegmentCorruptError):
            await reader.verify()
        with pytest.raises(SegmentCorruptError):
            [b async for b in reader.batches()]
        # Other blocks are intact and still readable, with exactly their own data.
        other = entries[(number + 1) % len(entries)]
        if other[0] != first:
            assert await reader.read(other[0], 1) == [batches[by_offset[other[0]]]]


@pytest.mark.parametrize("cut", [0, 1, HEADER.size, 0.5, -FOOTER.size - 1, -FOOTER.size, -1])
async def test_truncated_object_is_corrupt(kit, segment, cut) -> None:
    _, data, _ = segment
    keep = int(len(data) * cut) if isinstance(cut, float) else cut % len(data) if cut else 0
    short = data[:keep]
    with pytest.raises(SegmentCorruptError, match="truncated"):
        await SegmentReader.open(kit.CountingFetcher(short), len(short))
    with pytest.raises(SegmentCorruptError, match="truncated"):
        SegmentReader.from_bytes(short)


async def test_size_mismatch_and_short_reads_are_corrupt(kit, segment) -> None:
    _, data, info = segment
    with pytest.raises(SegmentCorruptError, match="footer"):
        SegmentReader.from_bytes(data + b"\x00")
    # The caller believes the object is larger than the store returns: a short read.
    with pytest.raises(SegmentCorruptError, match="returned"):
        await SegmentReader.open(kit.CountingFetcher(data), len(data) + 10)

    served: list[int] = []

    async def lossy(start: int, end: int) -> bytes:
        served.append(start)  # header, footer and index arrive whole; blocks lose a byte
        return data[start:end] if len(served) <= 3 else data[start : end - 1]

    reader = await SegmentReader.open(lossy, len(data))
    with pytest.raises(SegmentCorruptError, match="block"):
        await reader.read(info.base_offset, 1 << 20)


async def test_crafted_index_that_does_not_tile_the_body(segment) -> None:
    _, data, _ = segment
    _, entries = layout(data)
    shifted = [list(e) for e in entries]
    shifted[1][0] += 1  # block 1 claims to start one offset later
    with pytest.raises(SegmentCorruptError, match="index"):
        SegmentReader.from_bytes(reseal(data, index=[tuple(e) for e in shifted]))
    moved = [list(e) for e in entries]
    moved[2][4] += 1  # block 2 claims a different file position
    with pytest.raises(SegmentCorruptError, match="index"):
        SegmentReader.from_bytes(reseal(data, index=[tuple(e) for e in moved]))


async def test_crafted_block_whose_batches_disagree_with_the_index(kit) -> None:
    batches = kit.build_run([(2, 30)] * 6)
    data, _ = encode_segment(batches, compression="none", block_bytes=2 * len(batches[0]))
    _, entries = layout(data)
    out = bytearray(data)
    position, length = entries[1][4], entries[1][5]
    struct.pack_into(">q", out, position, 999)  # first batch of block 1 now claims offset 999
    patched = list(entries)
    patched[1] = (*entries[1][:7], crc32c.crc32c(bytes(out[position : position + length])))
    reader = SegmentReader.from_bytes(reseal(bytes(out), index=patched), name=NAME)
    with pytest.raises(SegmentCorruptError, match=r"block 1 .*offset 999"):
        await reader.read(entries[1][0], 1)
    assert await reader.read(0, 1) == batches[:1]


async def test_footer_counts_that_disagree_with_the_blocks_fail_verify(segment) -> None:
    _, data, info = segment
    reader = SegmentReader.from_bytes(reseal(data, records=info.record_count + 1))
    assert reader.info.record_count == info.record_count + 1
    with pytest.raises(SegmentCorruptError, match="footer"):
        await reader.verify()


async def test_unknown_format_version_is_refused_by_name(segment) -> None:
    _, data, _ = segment
    out = bytearray(data)
    struct.pack_into(">H", out, 8, 2)
    with pytest.raises(SegmentError, match="format version 2"):
        SegmentReader.from_bytes(reseal(bytes(out)), name=NAME)


async def test_crafted_raw_length_is_refused_before_decompressing(segment) -> None:
    _, data, info = segment
    _, entries = layout(data)
    patched = list(entries)
    patched[0] = (*entries[0][:6], entries[0][6] * 1000, entries[0][7])  # raw length 1000x
    reader = SegmentReader.from_bytes(reseal(data, index=patched), name=NAME)
    detail = "declares" if info.compression == "lz4" else "decodes to"
    with pytest.raises(SegmentCorruptError, match=f"block 0 .*{detail}"):
        await reader.read(info.base_offset, 1)
