"""Byte layout of a segment object: the one place that knows where every field lives.

A segment is the immutable object a partition's sealed run of Kafka RecordBatch v2 batches is
uploaded as. It is written once and then read with *ranged* reads, so the layout puts everything
a reader needs to plan its reads in a small fixed-size footer at the very end::

    +-------------------+  position 0
    | header (20 B)     |  magic, format version, compression, flags, base offset
    +-------------------+  HEADER.size
    | block 0           |  whole batches, ~block_bytes raw, LZ4 frame or raw
    | block 1           |
    | ...               |
    +-------------------+  index position
    | index             |  one 52-byte entry per block (sparse offset + timestamp index)
    +-------------------+  size - FOOTER.size
    | footer (88 B)     |  counts, offset and time range, where the index is, checksums, magic
    +-------------------+  size

All integers are big-endian (network order, like the Kafka batches inside). Checksums are
CRC-32C, the same as Kafka's batch CRC.

Blocks hold whole batches: a batch never spans two blocks, and a batch larger than
``block_bytes`` gets a block of its own. Each block is compressed on its own (an LZ4 *frame*,
fast mode) so any block can be fetched and decoded without its neighbours. The crc32c in the
index entry covers the *stored* bytes, so corruption is caught before decompression.

The index is also the timestamp index: the first offset with timestamp >= t lies in the first
block whose running maximum of ``max_timestamp`` reaches t (binary search over the running
maximum, which is monotonic even when batch timestamps are not), then in the first batch of that
block whose own ``max_timestamp`` reaches t.

A reader reads the footer (and, in parallel, the header) first, then the index, then only the
blocks it needs. Every part is covered by a checksum held in a part read earlier: the footer by
its own crc and magic, the header and index by crcs in the footer, each block by its index entry.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER_MAGIC = b"SHSEG\x00\x01\x00"
FOOTER_MAGIC = b"SHSEGEND"
FORMAT_VERSION = 1

COMPRESSION_NONE = 0
COMPRESSION_LZ4 = 1
COMPRESSION_CODES = {"none": COMPRESSION_NONE, "lz4": COMPRESSION_LZ4}
COMPRESSION_NAMES = {code: name for name, code in COMPRESSION_CODES.items()}

DEFAULT_BLOCK_BYTES = 256 * 1024

HEADER = struct.Struct(
    ">"
    "8s"  # magic: HEADER_MAGIC
    "H"  # format version: FORMAT_VERSION
    "B"  # compression of every block: COMPRESSION_NONE | COMPRESSION_LZ4
    "B"  # flags: reserved, always 0 in version 1
    "q"  # base offset of the first batch
)

INDEX_ENTRY = struct.Struct(
    ">"
    "q"  # first offset: base offset of the block's first batch
    "q"  # last offset: last offset of the block's last batch
    "q"  # min timestamp: smallest batch base timestamp in the block
    "q"  # max timestamp: largest batch max timestamp in the block
    "Q"  # file position of the stored block
    "I"  # stored length (bytes in the object)
    "I"  # raw length (the batches' bytes after decompression)
    "I"  # crc32c of the stored block bytes
)

FOOTER = struct.Struct(
    ">"
    "q"  # base offset of the segment (equals the header's)
    "q"  # last offset of the segment
    "q"  # record count, summed over the batches' record counts
    "I"  # batch count
    "I"  # block count (= index entries)
    "q"  # min timestamp over all blocks
    "q"  # max timestamp over all blocks
    "Q"  # index position
    "I"  # index length in bytes (= block count * INDEX_ENTRY.size)
    "Q"  # total object size, so a truncated or extended object is caught
    "I"  # crc32c of the index bytes
    "I"  # crc32c of the header bytes
    "I"  # crc32c of the footer bytes before this field
    "8s"  # trailing magic: FOOTER_MAGIC
)
FOOTER_CRC_SPAN = FOOTER.size - 4 - len(FOOTER_MAGIC)

# The fields of a Kafka RecordBatch v2 header a segment needs, read without the record codec.
BATCH_HEADER = struct.Struct(
    ">"
    "q"  # @0  base offset
    "i"  # @8  batch length (bytes after this field; total size = length + 12)
    "i"  # @12 partition leader epoch
    "b"  # @16 magic (must be 2)
    "I"  # @17 crc32c of attributes..end
    "h"  # @21 attributes
    "i"  # @23 last offset delta
    "q"  # @27 base timestamp
    "q"  # @35 max timestamp
    "q"  # @43 producer id
    "h"  # @51 producer epoch
    "i"  # @53 base sequence
    "i"  # @57 record count
)
BATCH_LENGTH_OVERHEAD = 12  # base offset + batch length precede the counted bytes
BATCH_MAGIC = 2
MAX_U32 = 0xFFFFFFFF


@dataclass(frozen=True)
class SegmentInfo:
    """What the metadata store records about a segment, taken from the writer or the footer.

    ``size_bytes`` is the size of the whole stored object (what a reader's ``open`` needs).
    ``min_timestamp`` is the smallest batch *base* timestamp, i.e. of each batch's first record.
    """

    base_offset: int
    last_offset: int
    record_count: int
    batch_count: int
    min_timestamp: int
    max_timestamp: int
    size_bytes: int
    compression: str


@dataclass(frozen=True)
class IndexEntry:
    """One block's index entry (see ``INDEX_ENTRY``)."""

    first_offset: int
    last_offset: int
    min_timestamp: int
    max_timestamp: int
    position: int
    stored_length: int
    raw_length: int
    crc: int


@dataclass(frozen=True)
class Footer:
    """The decoded footer (see ``FOOTER``); ``crc`` and the magic are checked while decoding."""

    base_offset: int
    last_offset: int
    record_count: int
    batch_count: int
    block_count: int
    min_timestamp: int
    max_timestamp: int
    index_position: int
    index_length: int
    total_size: int
    index_crc: int
    header_crc: int
