"""The writer refuses bad batches with a clear error and keeps nothing of them."""

from __future__ import annotations

import struct

import pytest
from streamhouse.broker.segments import (
    InvalidBatchError,
    SegmentError,
    SegmentReader,
    SegmentWriter,
    encode_segment,
)


def with_magic(batch: bytes, magic: int) -> bytes:
    out = bytearray(batch)
    out[16] = magic
    return bytes(out)


@pytest.fixture
def run(kit) -> list[bytes]:
    return kit.build_run([(3, 20), (2, 20), (4, 20)], start=10)


@pytest.mark.parametrize(
    ("make_bad", "message"),
    [
        (lambda run, kit: kit.build_run([(1, 5)], start=16)[0], "does not follow.*expected 15"),
        (lambda run, kit: kit.build_run([(1, 5)], start=14)[0], "does not follow.*expected 15"),
        (lambda run, kit: run[0], "does not follow"),  # a duplicate
        (lambda run, kit: with_magic(kit.build_run([(1, 5)], start=15)[0], 1), "magic is 1"),
        (lambda run, kit: kit.build_run([(1, 5)], start=15)[0][:-1], "length field says"),
        (lambda run, kit: b"".join(kit.build_run([(1, 5)] * 2, start=15)), "exactly one"),
        (lambda run, kit: b"\x00" * 20, "shorter than a RecordBatch v2 header"),
    ],
)
async def test_bad_batch_is_refused_and_nothing_is_kept(kit, run, make_bad, message) -> None:
    writer = SegmentWriter(block_bytes=64)
    writer.add(run[0])
    writer.add(run[1])
    before = (writer.size_bytes, writer.record_count, writer.batch_count, writer.last_offset)
    with pytest.raises(InvalidBatchError, match=message) as caught:
        writer.add(make_bad(run, kit))
    assert isinstance(caught.value, ValueError)
    assert (writer.size_bytes, writer.record_count, writer.batch_count, writer.last_offset) == (
        before
    )
    writer.add(run[2])
    data, info = writer.finish()
    assert [b async for b in SegmentReader.from_bytes(data).batches()] == run
    assert info.batch_count == 3


def test_first_batch_may_start_anywhere_but_not_below_zero(kit) -> None:
    assert encode_segment(kit.build_run([(1, 1)], start=2**50))[1].base_offset == 2**50
    with pytest.raises(InvalidBatchError, match="negative base offset"):
        encode_segment([kit.build_batch(-1, [b"x"], [0])])


def test_empty_segment_and_reuse_are_refused(kit) -> None:
    with pytest.raises(SegmentError, match="empty segment"):
        SegmentWriter().finish()
    with pytest.raises(SegmentError, match="empty segment"):
        encode_segment([])
    writer = SegmentWriter()
    writer.add(kit.build_run([(1, 1)])[0])
    writer.finish()
    with pytest.raises(SegmentError, match="already finished"):
        writer.add(kit.build_run([(1, 1)], start=1)[0])
    with pytest.raises(SegmentError, match="already finished"):
        writer.finish()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown segment compression 'zstd'"):
        SegmentWriter(compression="zstd")
    with pytest.raises(ValueError, match="block_bytes"):
        SegmentWriter(block_bytes=0)


def test_batch_offsets_come_from_the_header(kit) -> None:
    batch = kit.build_run([(5, 1)], start=7)[0]
    assert struct.unpack_from(">q", batch, 0)[0] == 7
    writer = SegmentWriter()
    writer.add(batch)
    assert (writer.base_offset, writer.last_offset) == (7, 11)
