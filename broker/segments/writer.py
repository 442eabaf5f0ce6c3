"""Building a segment object from a partition's sealed run of batches.

The writer checks each batch's header as it is added (magic 2, one whole batch, offsets that
continue the previous batch) so a segment can never hold a gap or an overlap; a bad batch is
refused before anything is buffered. Blocks are compressed as soon as they fill, which spreads
the CPU cost over ``add`` calls and keeps only the compressed form buffered.
"""

from __future__ import annotations

from collections.abc import Iterable

from streamhouse.broker.segments.blocks import batch_fields, checksum, encode_block
from streamhouse.broker.segments.errors import InvalidBatchError, SegmentError
from streamhouse.broker.segments.format import (
    COMPRESSION_CODES,
    DEFAULT_BLOCK_BYTES,
    FOOTER,
    FOOTER_CRC_SPAN,
    FOOTER_MAGIC,
    FORMAT_VERSION,
    HEADER,
    HEADER_MAGIC,
    INDEX_ENTRY,
    MAX_U32,
    SegmentInfo,
)


class SegmentWriter:
    """Accumulates contiguous RecordBatch v2 batches and produces one immutable segment object.

    Args:
        compression: ``"lz4"`` (default; an LZ4 frame per block, fast mode) or ``"none"``.
        block_bytes: target raw size of a block, the unit a ranged read fetches. Smaller blocks
            make point reads cheaper; larger ones compress better and make the index smaller.
    """

    def __init__(self, *, compression: str = "lz4", block_bytes: int = DEFAULT_BLOCK_BYTES) -> None:
        if compression not in COMPRESSION_CODES:
            raise ValueError(
                f"unknown segment compression {compression!r}; "
                f"use one of {sorted(COMPRESSION_CODES)}"
            )
        if block_bytes <= 0:
            raise ValueError(f"block_bytes must be positive, got {block_bytes}")
        self._compression = compression
        self._code = COMPRESSION_CODES[compression]
        self._block_bytes = block_bytes
        self._finished = False
        # whole segment
        self._stored_blocks: list[bytes] = []
        self._index: list[bytes] = []
        self._position = HEADER.size
        self._size_bytes = 0
        self._record_count = 0
        self._batch_count = 0
        self._base_offset: int | None = None
        self._last_offset: int | None = None
        self._min_timestamp: int | None = None
        self._max_timestamp: int | None = None
        # the block being filled
        self._parts: list[bytes] = []
        self._block_raw = 0
        self._block_first = 0
        self._block_min_ts = 0
        self._block_max_ts = 0

    # ------------------------------------------------------------------ state
    @property
    def size_bytes(self) -> int:
        """Raw batch bytes added so far (what the open segment's size limit is checked against)."""
        return self._size_bytes

    @property
    def record_count(self) -> int:
        return self._record_count

    @property
    def batch_count(self) -> int:
        return self._batch_count

    @property
    def base_offset(self) -> int | None:
        return self._base_offset

    @property
    def last_offset(self) -> int | None:
        return self._last_offset

    @property
    def min_timestamp(self) -> int | None:
        return self._min_timestamp

    @property
    def max_timestamp(self) -> int | None:
        return self._max_timestamp

    # ------------------------------------------------------------------ build
    def add(self, batch: bytes | memoryview) -> None:
        """Appends one whole batch, which must start right after the previous batch's last offset.

        Raises:
            InvalidBatchError: not a single RecordBatch v2, or its offsets leave a gap/overlap.
            SegmentError: the writer was already finished.
        """
        if self._finished:
            raise SegmentError("segment writer already finished; start a new SegmentWriter")
        fields = batch_fields(batch)
        if self._last_offset is not None and fields.base_offset != self._last_offset + 1:
            raise InvalidBatchError(
                f"batch base offset {fields.base_offset} does not follow the segment's last "
                f"offset {self._last_offset} (expected {self._last_offset + 1})"
            )
        if self._parts and self._block_raw + fields.size > self._block_bytes:
            self._close_block()
        if not self._parts:
            self._block_first = fields.base_offset
            self._block_min_ts = fields.base_timestamp
            self._block_max_ts = fields.max_timestamp
        else:
            self._block_min_ts = min(self._block_min_ts, fields.base_timestamp)
            self._block_max_ts = max(self._block_max_ts, fields.max_timestamp)
        self._parts.append(bytes(batch))
        self._block_raw += fields.size
        if self._base_offset is None:
            self._base_offset = fields.base_offset
            self._min_timestamp = fields.base_timestamp
            self._max_timestamp = fields.max_timestamp
        else:
            self._min_timestamp = min(self._min_timestamp, fields.base_timestamp)
            self._max_timestamp = max(self._max_timestamp, fields.max_timestamp)
        self._last_offset = fields.last_offset
        self._size_bytes += fields.size
        self._record_count += fields.record_count
        self._batch_count += 1

    def _close_block(self) -> None:
        raw = b"".join(self._parts)
        stored = encode_block(raw, self._code)
        if len(stored) > MAX_U32 or len(raw) > MAX_U32:
            raise SegmentError(f"block of {len(raw)} raw bytes exceeds the 4 GiB block limit")
        self._index.append(
            INDEX_ENTRY.pack(
                self._block_first,
                self._last_offset,
                self._block_min_ts,
                self._block_max_ts,
                self._position,
                len(stored),
                len(raw),
                checksum(stored),
            )
        )
        self._stored_blocks.append(stored)
        self._position += len(stored)
        self._parts = []
        self._block_raw = 0

    def finish(self) -> tuple[bytes, SegmentInfo]:
        """Closes the last block and returns the whole object and its summary.

        Raises:
            SegmentError: no batch was added (an empty segment has no offsets to describe), or
                the writer was already finished.
        """
        if self._finished:
            raise SegmentError("segment writer already finished; start a new SegmentWriter")
        if self._base_offset is None:
            raise SegmentError("cannot finish an empty segment: add at least one batch")
        self._finished = True
        self._close_block()
        header = HEADER.pack(HEADER_MAGIC, FORMAT_VERSION, self._code, 0, self._base_offset)
        index = b"".join(self._index)
        total = self._position + len(index) + FOOTER.size
        footer_fields = (
            self._base_offset,
            self._last_offset,
            self._record_count,
            self._batch_count,
            len(self._index),
            self._min_timestamp,
            self._max_timestamp,
            self._position,
            len(index),
            total,
            checksum(index),
            checksum(header),
        )
        body = FOOTER.pack(*footer_fields, 0, FOOTER_MAGIC)[:FOOTER_CRC_SPAN]
        footer = FOOTER.pack(*footer_fields, checksum(body), FOOTER_MAGIC)
        data = b"".join([header, *self._stored_blocks, index, footer])
        self._stored_blocks = []
        self._index = []
        assert len(data) == total
        info = SegmentInfo(
            base_offset=self._base_offset,
            last_offset=self._last_offset,
            record_count=self._record_count,
            batch_count=self._batch_count,
            min_timestamp=self._min_timestamp,
            max_timestamp=self._max_timestamp,
            size_bytes=total,
            compression=self._compression,
        )
        return data, info


def encode_segment(
    batches: Iterable[bytes | memoryview],
    *,
    compression: str = "lz4",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> tuple[bytes, SegmentInfo]:
    """Builds a whole segment object from contiguous batches in one call.

    Raises:
        InvalidBatchError: a malformed or non-contiguous batch (nothing is returned).
        SegmentError: ``batches`` is empty.
    """
    writer = SegmentWriter(compression=compression, block_bytes=block_bytes)
    for batch in batches:
        writer.add(batch)
    return writer.finish()
