"""Blocks: runs of whole batches stored (and checksummed) as one independently readable unit.

The writer packs batches into blocks and the reader splits a fetched block back into batches.
Splitting walks batch headers only (one step per batch, never per record) and cross-checks every
batch against the block's index entry, so a block that passes its crc but disagrees with the
index (a writer bug, a crafted object) is still refused rather than served.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import crc32c
import lz4.frame
from streamhouse.broker.segments.errors import InvalidBatchError, SegmentCorruptError
from streamhouse.broker.segments.format import (
    BATCH_HEADER,
    BATCH_LENGTH_OVERHEAD,
    BATCH_MAGIC,
    COMPRESSION_LZ4,
    IndexEntry,
)


@dataclass(frozen=True)
class BatchFields:
    """The batch header fields a segment keeps track of."""

    base_offset: int
    last_offset: int
    size: int
    base_timestamp: int
    max_timestamp: int
    record_count: int


def batch_fields(batch: bytes | memoryview) -> BatchFields:
    """Reads and checks the header of one whole RecordBatch v2 given to the writer.

    Raises:
        InvalidBatchError: too short, wrong magic, a length that does not match the buffer
            (exactly one batch per call), or negative offsets/counts.
    """
    size = len(batch)
    if size < BATCH_HEADER.size:
        raise InvalidBatchError(
            f"batch of {size} bytes is shorter than a RecordBatch v2 header ({BATCH_HEADER.size})"
        )
    (base, length, _epoch, magic, _crc, _attrs, last_delta, base_ts, max_ts, _pid, _pep, _seq,
     count) = BATCH_HEADER.unpack_from(batch, 0)  # fmt: skip
    if magic != BATCH_MAGIC:
        raise InvalidBatchError(f"batch magic is {magic}, only RecordBatch v2 (magic 2) is stored")
    if length + BATCH_LENGTH_OVERHEAD != size:
        raise InvalidBatchError(
            f"batch length field says {length + BATCH_LENGTH_OVERHEAD} bytes but {size} were "
            "given; add exactly one whole batch per call"
        )
    if base < 0 or last_delta < 0 or count < 0:
        raise InvalidBatchError(
            f"batch has negative base offset ({base}), last offset delta ({last_delta}) "
            f"or record count ({count})"
        )
    return BatchFields(base, base + last_delta, size, base_ts, max_ts, count)


def encode_block(raw: bytes, compression: int) -> bytes:
    """The stored form of a block's raw batch bytes."""
    if compression == COMPRESSION_LZ4:
        return lz4.frame.compress(raw, compression_level=0, content_checksum=False, store_size=True)
    return raw


def checksum(data: bytes | memoryview) -> int:
    return crc32c.crc32c(data)


@dataclass(frozen=True)
class DecodedBlock:
    """A verified block's raw bytes and a table of its batches (parallel lists, offset order)."""

    data: bytes
    starts: list[int]
    ends: list[int]
    base_offsets: list[int]
    last_offsets: list[int]
    max_timestamps: list[int]
    record_counts: list[int]

    def batch(self, i: int) -> bytes:
        return self.data[self.starts[i] : self.ends[i]]

    def first_batch_reaching(self, offset: int) -> int:
        """Index of the first batch whose last offset is >= ``offset`` (len when none)."""
        return bisect.bisect_left(self.last_offsets, offset)


def decode_block(
    stored: bytes | memoryview, entry: IndexEntry, compression: int, *, number: int, name: str
) -> DecodedBlock:
    """Checks a fetched block against its index entry and splits it into batches.

    Raises:
        SegmentCorruptError: crc mismatch, undecodable frame, wrong raw length, or batches that
            do not match the entry (offsets, timestamps, layout).
    """
    part = f"block {number}"

    def corrupt(detail: str) -> SegmentCorruptError:
        return SegmentCorruptError(part, detail, name=name)

    if len(stored) != entry.stored_length:
        raise corrupt(f"fetched {len(stored)} bytes, index says {entry.stored_length}")
    crc = checksum(stored)
    if crc != entry.crc:
        raise corrupt(f"crc32c is {crc:#010x}, index says {entry.crc:#010x}")
    if compression == COMPRESSION_LZ4:
        try:
            # The frame's declared size is checked first, so a crafted frame cannot make us
            # allocate more than the index entry promised.
            declared = lz4.frame.get_frame_info(stored)["content_size"]
            if declared != entry.raw_length:
                raise corrupt(f"LZ4 frame declares {declared} bytes, index says {entry.raw_length}")
            raw = lz4.frame.decompress(stored)
        except SegmentCorruptError:
            raise
        except Exception as exc:  # lz4 raises RuntimeError for bad frames
            raise corrupt(f"LZ4 frame does not decode ({exc})") from exc
    else:
        raw = bytes(stored)
    if len(raw) != entry.raw_length:
        raise corrupt(f"decodes to {len(raw)} bytes, index says {entry.raw_length}")
    return _split(raw, entry, corrupt)


def _split(raw: bytes, entry: IndexEntry, corrupt) -> DecodedBlock:
    starts: list[int] = []
    ends: list[int] = []
    bases: list[int] = []
    lasts: list[int] = []
    max_ts: list[int] = []
    counts: list[int] = []
    min_base_ts: int | None = None
    expected = entry.first_offset
    pos, end = 0, len(raw)
    while pos < end:  # one step per batch: batch headers only, records stay encoded
        if end - pos < BATCH_HEADER.size:
            raise corrupt(f"{end - pos} trailing bytes at {pos} are not a whole batch header")
        (base, length, _epoch, magic, _crc, _attrs, last_delta, base_ts, batch_max_ts, _pid, _pep,
         _seq, count) = BATCH_HEADER.unpack_from(raw, pos)  # fmt: skip
        size = length + BATCH_LENGTH_OVERHEAD
        if magic != BATCH_MAGIC or size < BATCH_HEADER.size or pos + size > end:
            raise corrupt(f"batch at {pos} has magic {magic} and size {size} (block is {end})")
        if base != expected or last_delta < 0:
            raise corrupt(f"batch at {pos} starts at offset {base}, expected {expected}")
        starts.append(pos)
        ends.append(pos + size)
        bases.append(base)
        lasts.append(base + last_delta)
        max_ts.append(batch_max_ts)
        counts.append(count)
        min_base_ts = base_ts if min_base_ts is None else min(min_base_ts, base_ts)
        expected = base + last_delta + 1
        pos += size
    if not starts or lasts[-1] != entry.last_offset:
        got = lasts[-1] if lasts else None
        raise corrupt(f"batches end at offset {got}, index says {entry.last_offset}")
    if max(max_ts) != entry.max_timestamp or min_base_ts != entry.min_timestamp:
        raise corrupt("batch timestamps do not match the index entry")
    return DecodedBlock(raw, starts, ends, bases, lasts, max_ts, counts)
