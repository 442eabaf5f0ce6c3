"""The bytes of a WAL file: a file header, then framed entries.

File layout::

    header   magic b"SHWAL001" | version u16 | reserved u16 | file_seq u64     (20 bytes, BE)
    entry*   length u32 | crc32c u32 | stream_id u64 | batch bytes            (BE)

``length`` counts the bytes after the 8-byte prefix (stream id + batch); ``crc32c`` covers
exactly those bytes. A reader trusts nothing it has not checked: a length that is too small to
hold a batch header, or larger than what remains of the file, ends the valid prefix instead of
being used as an allocation size.

Each entry holds one Kafka RecordBatch v2 whose offsets are final. The WAL reads only the two
fields it needs (base offset, last offset delta) and the two that prove the bytes are one whole
batch (batch length, magic), straight from the bytes.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import crc32c
from streamhouse.broker.wal.errors import InvalidEntryError, WalError

MAGIC = b"SHWAL001"
VERSION = 1
FILE_HEADER = struct.Struct(">8sHHQ")  # magic, version, reserved (0), file sequence number
ENTRY_PREFIX = struct.Struct(">II")  # length of what follows the prefix, crc32c of it
STREAM_ID = struct.Struct(">Q")
ENTRY_OVERHEAD = ENTRY_PREFIX.size + STREAM_ID.size

# RecordBatch v2 fields the WAL relies on (see kafka-protocol implementation.html, "RecordBatch").
BATCH_BASE_OFFSET = struct.Struct(">q")  # bytes 0..8
BATCH_LENGTH = struct.Struct(">i")  # bytes 8..12: bytes after this field
BATCH_LENGTH_POS = 8
BATCH_MAGIC_POS = 16
BATCH_LAST_OFFSET_DELTA = struct.Struct(">i")  # bytes 23..27
BATCH_LAST_OFFSET_DELTA_POS = 23
BATCH_HEADER_SIZE = 61  # a v2 batch with zero records is this long
BATCH_MAGIC = 2

MIN_ENTRY_LENGTH = STREAM_ID.size + BATCH_HEADER_SIZE
MAX_BATCH_SIZE = 0xFFFFFFFF - STREAM_ID.size  # so that the u32 length field cannot overflow
MAX_STREAM_ID = 2**64 - 1

FILE_NAME = re.compile(r"^wal-(\d{16})\.log$")


def file_name(seq: int) -> str:
    """The name of WAL file ``seq``; zero-padded so that names sort in append order."""
    return f"wal-{seq:016d}.log"


def encode_file_header(seq: int) -> bytes:
    return FILE_HEADER.pack(MAGIC, VERSION, 0, seq)


def batch_offsets(batch: bytes | bytearray | memoryview) -> tuple[int, int]:
    """Check that ``batch`` is one whole RecordBatch v2 and return (base, last) offsets.

    Raises:
        InvalidEntryError: too short, a batch length that does not match the bytes (two batches
            glued together, or a cut one), a magic other than 2, or a negative offset delta.
            A WAL that accepted such bytes would later delete a file while its batches are
            still needed, because ``mark_committed`` trusts the last offset read here.
    """
    size = len(batch)
    if size < BATCH_HEADER_SIZE:
        raise InvalidEntryError(
            f"batch is {size} bytes; a RecordBatch v2 is at least {BATCH_HEADER_SIZE} bytes"
        )
    if size > MAX_BATCH_SIZE:
        raise InvalidEntryError(f"batch is {size} bytes; the WAL frames at most {MAX_BATCH_SIZE}")
    (declared,) = BATCH_LENGTH.unpack_from(batch, BATCH_LENGTH_POS)
    if declared != size - BATCH_LENGTH_POS - BATCH_LENGTH.size:
        raise InvalidEntryError(
            f"batch length field says {declared} bytes follow it but {size - 12} do: "
            "an entry must be exactly one RecordBatch"
        )
    if batch[BATCH_MAGIC_POS] != BATCH_MAGIC:
        magic = batch[BATCH_MAGIC_POS]
        raise InvalidEntryError(f"batch magic is {magic}, only v2 batches are logged")
    (base,) = BATCH_BASE_OFFSET.unpack_from(batch, 0)
    (delta,) = BATCH_LAST_OFFSET_DELTA.unpack_from(batch, BATCH_LAST_OFFSET_DELTA_POS)
    if base < 0 or delta < 0:
        raise InvalidEntryError(f"batch has base offset {base} and last offset delta {delta}")
    return base, base + delta


def encode_entry_prefix(stream_id: int, batch: bytes | bytearray | memoryview) -> bytes:
    """The 16 bytes written in front of ``batch`` (length, crc32c, stream id)."""
    sid = STREAM_ID.pack(stream_id)
    crc = crc32c.crc32c(batch, crc32c.crc32c(sid))
    return ENTRY_PREFIX.pack(STREAM_ID.size + len(batch), crc) + sid


@dataclass(frozen=True)
class ScannedEntry:
    """Where one valid entry sits in a file buffer; the batch is ``buf[start:end]``."""

    position: int
    stream_id: int
    start: int
    end: int
    last_offset: int


class FileScan:
    """Walks the entries of one file buffer and stops at the first one it cannot trust.

    Iterate it to get :class:`ScannedEntry` items; afterwards ``valid_end`` is the length of the
    valid prefix and ``problem`` says why the scan stopped early (``None`` when the whole buffer
    was valid). Scanning is per entry (one batch), never per record.

    Raises:
        WalError: (while iterating) the file is from another WAL format version.
    """

    def __init__(self, buf: bytes | memoryview, seq: int) -> None:
        self._buf = memoryview(buf)
        self._seq = seq
        self.valid_end = 0
        self.problem: str | None = None

    def __iter__(self) -> Iterator[ScannedEntry]:
        buf = self._buf
        size = len(buf)
        if size < FILE_HEADER.size:
            self.problem = f"torn file header ({size} of {FILE_HEADER.size} bytes)"
            return
        magic, version, _reserved, seq = FILE_HEADER.unpack_from(buf, 0)
        if magic != MAGIC:
            self.problem = f"bad file magic {bytes(magic)!r}"
            return
        if version != VERSION:
            # Written by another release: refuse rather than "repair" (delete) what we can't read.
            raise WalError(
                f"{file_name(self._seq)} has WAL format version {version}, this release reads "
                f"version {VERSION}; start the release that wrote it, or move the file away"
            )
        if seq != self._seq:
            self.problem = f"file header names sequence {seq}"
            return
        pos = self.valid_end = FILE_HEADER.size
        while pos < size:
            if size - pos < ENTRY_PREFIX.size:
                self.problem = f"torn entry prefix ({size - pos} bytes)"
                return
            length, crc = ENTRY_PREFIX.unpack_from(buf, pos)
            start = pos + ENTRY_PREFIX.size
            if length < MIN_ENTRY_LENGTH:
                self.problem = f"impossible entry length {length}"
                return
            if length > size - start:
                self.problem = f"torn entry (declares {length} bytes, {size - start} remain)"
                return
            end = start + length
            if crc32c.crc32c(buf[start:end]) != crc:
                self.problem = "CRC mismatch"
                return
            (stream_id,) = STREAM_ID.unpack_from(buf, start)
            batch_start = start + STREAM_ID.size
            try:
                _base, last = batch_offsets(buf[batch_start:end])
            except InvalidEntryError as exc:
                self.problem = f"entry is not a valid batch ({exc})"
                return
            yield ScannedEntry(pos, stream_id, batch_start, end, last)
            pos = self.valid_end = end
