"""The fixed 61-byte RecordBatch v2 header: one struct, its attribute bits and a parsed view.

Byte layout (big-endian), as documented in Kafka's ``implementation.html`` section 5.3.1::

    offset size field
         0    8 baseOffset            int64   assigned by the broker; outside the CRC
         8    4 batchLength           int32   bytes after this field (total size - 12)
        12    4 partitionLeaderEpoch  int32   stamped by the broker; outside the CRC
        16    1 magic                 int8    always 2 here
        17    4 crc                   uint32  CRC32C of bytes 21..end (attributes onwards)
        21    2 attributes            int16   see the masks below
        23    4 lastOffsetDelta       int32   offset delta of the last record
        27    8 baseTimestamp         int64   timestamp of the first record (ms)
        35    8 maxTimestamp          int64   largest record timestamp (ms)
        43    8 producerId            int64   -1 unless idempotent/transactional
        51    2 producerEpoch         int16
        53    4 baseSequence          int32
        57    4 recordsCount          int32
        61      records               compressed as a whole when attributes say so

Because the CRC starts at ``attributes``, the broker can rewrite ``baseOffset`` and
``partitionLeaderEpoch`` without recomputing it; that is why those two come first.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from .errors import TruncatedBatchError, UnsupportedMagicError

HEADER = struct.Struct(
    ">q"  # baseOffset
    "i"  # batchLength
    "i"  # partitionLeaderEpoch
    "b"  # magic
    "I"  # crc (uint32)
    "h"  # attributes
    "i"  # lastOffsetDelta
    "q"  # baseTimestamp
    "q"  # maxTimestamp
    "q"  # producerId
    "h"  # producerEpoch
    "i"  # baseSequence
    "i"  # recordsCount
)
HEADER_SIZE = HEADER.size  # 61
assert HEADER_SIZE == 61

BASE_OFFSET_POS = 0
LENGTH_POS = 8
LEADER_EPOCH_POS = 12
MAGIC_POS = 16
CRC_POS = 17
ATTRIBUTES_POS = 21  # the CRC covers from here to the end
LOG_OVERHEAD = 12  # baseOffset + batchLength: the bytes not counted by batchLength
MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD  # 49: a batch with no records
MAGIC = 2

# Attribute bits.
COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20
DELETE_HORIZON_MASK = 0x40


class Compression(enum.IntEnum):
    """Codec ids stored in attribute bits 0-2."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


class TimestampType(enum.IntEnum):
    """Attribute bit 3: whether record timestamps come from the producer or the broker."""

    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """The decoded 61-byte header; records are not touched."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def size(self) -> int:
        """Total bytes of the batch, including baseOffset and batchLength."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def compression(self) -> Compression:
        """The codec; raises UnsupportedCompressionError for ids 5-7."""
        from .compression import codec_of

        return codec_of(self.attributes)

    @property
    def timestamp_type(self) -> TimestampType:
        return TimestampType(1 if self.attributes & TIMESTAMP_TYPE_MASK else 0)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)


def parse_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Decodes the header of the batch starting at ``pos`` without checking the CRC.

    Used where batches were validated earlier (recovery, indexes) and only offsets, counts and
    timestamps are needed.

    Raises:
        TruncatedBatchError: fewer than 61 bytes are available at ``pos``.
        UnsupportedMagicError: the magic byte is not 2.
    """
    available = len(buf) - pos
    if available <= MAGIC_POS:
        raise TruncatedBatchError(
            f"batch at byte {pos}: {available} bytes, too short to hold a magic byte "
            f"(a batch header is {HEADER_SIZE} bytes)"
        )
    magic = buf[pos + MAGIC_POS]
    if magic != MAGIC:
        magic = magic - 256 if magic > 127 else magic
        raise UnsupportedMagicError(
            f"batch at byte {pos}: magic {magic} is not supported (only RecordBatch v2, magic 2)"
        )
    if available < HEADER_SIZE:
        raise TruncatedBatchError(
            f"batch at byte {pos}: {available} bytes, shorter than the {HEADER_SIZE}-byte header"
        )
    return BatchHeader(*HEADER.unpack_from(buf, pos))
