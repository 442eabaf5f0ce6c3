"""Checking whole batches as they arrive, and the few rewrites a broker makes to them.

``validate_batch`` is what the produce path runs on every batch before anything is stored: it
checks framing, magic, the CRC32C, the codec, and then walks every record with a compiled
kernel so that a batch we accept is one every consumer can decode. ``split_batches`` does the
same for a Produce request's record set. Nothing here copies the batch when it is uncompressed.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import crc32c
import numpy as np

from .compression import MAX_UNCOMPRESSED_BYTES, Buffer, codec_of, decompress
from .errors import (
    BatchLengthError,
    BatchTooLargeError,
    CorruptBatchError,
    InvalidRecordError,
    RecordBatchError,
    RecordCountError,
    TruncatedBatchError,
)
from .header import (
    ATTRIBUTES_POS,
    HEADER_SIZE,
    LENGTH_POS,
    LOG_OVERHEAD,
    MIN_BATCH_LENGTH,
    BatchHeader,
    parse_header,
)

_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")


def _bytes_view(buf: Buffer) -> memoryview:
    view = memoryview(buf)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _check_frame(view: memoryview, max_batch_bytes: int | None) -> BatchHeader:
    """Header, declared length and size limit of a buffer that must hold exactly one batch."""
    header = parse_header(view)
    size = header.size
    if max_batch_bytes is not None and size > max_batch_bytes:
        raise BatchTooLargeError(
            f"batch of {size} bytes exceeds the {max_batch_bytes}-byte limit "
            f"(base offset {header.base_offset})"
        )
    if header.batch_length < MIN_BATCH_LENGTH:
        raise BatchLengthError(
            f"declared batch length {header.batch_length} is smaller than the "
            f"{MIN_BATCH_LENGTH} bytes the header itself needs"
        )
    if size > len(view):
        raise TruncatedBatchError(
            f"declared batch length {header.batch_length} needs {size} bytes "
            f"but only {len(view)} are present"
        )
    if size < len(view):
        raise BatchLengthError(
            f"declared batch length {header.batch_length} covers {size} bytes "
            f"but {len(view)} were given ({len(view) - size} extra)"
        )
    return header


def open_batch(
    buf: Buffer,
    *,
    max_batch_bytes: int | None = None,
    max_uncompressed_bytes: int = MAX_UNCOMPRESSED_BYTES,
) -> tuple[BatchHeader, Buffer]:
    """Checks everything but the records themselves; returns the header and records section.

    The section is a zero-copy view for uncompressed batches and decompressed bytes otherwise.
    """
    view = _bytes_view(buf)
    header = _check_frame(view, max_batch_bytes)
    actual = crc32c.crc32c(view[ATTRIBUTES_POS:])
    if actual != header.crc:
        raise CorruptBatchError(
            f"CRC32C mismatch in batch at base offset {header.base_offset}: header says "
            f"{header.crc:#010x}, bytes {ATTRIBUTES_POS}..{len(view)} give {actual:#010x}"
        )
    codec = codec_of(header.attributes)
    if header.record_count < 0:
        raise RecordCountError(f"negative record count {header.record_count}")
    if header.last_offset_delta < 0:
        raise RecordCountError(f"negative last offset delta {header.last_offset_delta}")
    section = decompress(codec, view[HEADER_SIZE:], max_uncompressed_bytes)
    return header, section


# Sections smaller than this are joined into one buffer per kernel call (few calls for many
# small batches); bigger ones are walked where they lie, so big batches are never copied.
JOIN_BELOW = 32 * 1024


@dataclass(slots=True)
class Chunk:
    """Sections laid out in one buffer for one kernel call."""

    buf: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    first: int  # index of the chunk's first section in the caller's list
    count: int  # number of sections


def _chunks(sections: Sequence[Buffer]) -> list[Chunk]:
    chunks: list[Chunk] = []
    pending: list[Buffer] = []
    pending_bytes = 0

    def flush(first: int) -> None:
        nonlocal pending, pending_bytes
        if not pending:
            return
        joined = pending[0] if len(pending) == 1 else b"".join(pending)
        lengths = np.fromiter(map(len, pending), np.int64, len(pending))
        ends = np.cumsum(lengths)
        buf = np.frombuffer(joined, np.uint8)
        buf.flags.writeable = False  # one array type, so each kernel compiles once
        chunks.append(Chunk(buf, ends - lengths, ends, first, len(pending)))
        pending, pending_bytes = [], 0

    first = 0
    for index, section in enumerate(sections):
        size = len(section)
        if size >= JOIN_BELOW or pending_bytes + size > 8 * JOIN_BELOW:
            flush(first)
            first = index
        pending.append(section)
        pending_bytes += size
        if size >= JOIN_BELOW:
            flush(first)
            first = index + 1
    flush(first)
    return chunks


def scan_sections(
    headers: Sequence[BatchHeader], sections: Sequence[Buffer], labels: Sequence[str]
) -> tuple[list[Chunk], np.ndarray]:
    """Walks the records of many sections with the compiled kernel; raises on the first bad one.

    Args:
        headers: the batch header of each section.
        sections: uncompressed records sections, as returned by :func:`open_batch`.
        labels: how to name each batch in an error message.

    Returns:
        The chunks to hand to the decode kernel, and the kernel's totals (``_kernels.T_*``).
    """
    from . import _kernels as k

    counts = np.fromiter((h.record_count for h in headers), np.int64, len(headers))
    last_deltas = np.fromiter((h.last_offset_delta for h in headers), np.int64, len(headers))
    totals = np.zeros(6, np.int64)
    err = np.zeros(6, np.int64)
    chunks = _chunks(sections)
    for chunk in chunks:
        stop = chunk.first + chunk.count
        status = k.scan(
            chunk.buf,
            chunk.starts,
            chunk.ends,
            counts[chunk.first : stop],
            last_deltas[chunk.first : stop],
            totals,
            err,
        )
        if status != k.OK:
            local = int(err[k.E_SECTION])
            s = chunk.first + local
            origin = int(chunk.starts[local])
            raise _scan_error(
                status,
                labels[s],
                int(err[k.E_RECORD]),
                int(err[k.E_START]) - origin,
                int(err[k.E_POS]) - origin,
                int(err[k.E_VALUE]),
                headers[s],
            )
    return chunks, totals


def _scan_error(
    code: int, label: str, record: int, start: int, pos: int, value: int, header: BatchHeader
) -> RecordBatchError:
    from . import _kernels as k

    where = f"{label}, record {record} at byte {start} of the records section"
    if pos != start:
        where += f" (field at byte {pos})"
    n = header.record_count
    messages: dict[int, tuple[type[RecordBatchError], str]] = {
        k.OVERRUN: (RecordCountError, f"{where}: the record runs past the end of the section"),
        k.UNDERRUN: (
            RecordCountError,
            f"{label}: header declares {n} records but the section ends after {record}",
        ),
        k.LEFTOVER: (
            RecordCountError,
            f"{label}: {value} bytes remain after the {n} records the header declares",
        ),
        k.LAST_DELTA: (
            RecordCountError,
            f"{label}: lastOffsetDelta is {header.last_offset_delta} "
            f"but the last record has offset delta {value}",
        ),
        k.BAD_VARINT: (InvalidRecordError, f"{where}: malformed varint"),
        k.FIELD_OVERRUN: (InvalidRecordError, f"{where}: a field runs past the end of the record"),
        k.BAD_LENGTH: (InvalidRecordError, f"{where}: invalid length {value}"),
        k.NULL_HEADER_KEY: (InvalidRecordError, f"{where}: a header key is null"),
        k.SIZE_MISMATCH: (
            InvalidRecordError,
            f"{where}: record declares {value} bytes but its fields use a different amount",
        ),
        k.OFFSET_ORDER: (
            InvalidRecordError,
            f"{where}: offset delta {value} is negative or not increasing",
        ),
        k.BAD_UTF8: (InvalidRecordError, f"{where}: a header key is not valid UTF-8"),
    }
    cls, message = messages.get(code, (RecordBatchError, f"{where}: error code {code}"))
    return cls(message)


def validate_batch(
    buf: Buffer,
    *,
    max_batch_bytes: int | None = None,
    max_uncompressed_bytes: int = MAX_UNCOMPRESSED_BYTES,
) -> BatchHeader:
    """Checks that ``buf`` holds exactly one well-formed batch and returns its header.

    Checks, in order: magic, declared length against ``max_batch_bytes`` and against the
    bytes given, CRC32C, codec, then decompresses and walks every record (compiled, no Python
    per record): exactly ``record_count`` records must fill the section, with increasing
    offset deltas ending at ``last_offset_delta``.

    Raises:
        RecordBatchError: a subclass naming what is wrong and where.
    """
    header, section = open_batch(
        buf, max_batch_bytes=max_batch_bytes, max_uncompressed_bytes=max_uncompressed_bytes
    )
    scan_sections([header], [section], [f"batch at base offset {header.base_offset}"])
    return header


def split_batches(
    buf: Buffer, *, max_batch_bytes: int | None = None
) -> list[tuple[BatchHeader, memoryview]]:
    """Splits and validates a record set of concatenated batches (a Produce request's records).

    Every batch is validated before anything is returned, so a caller that stores the result
    never stores part of a bad request. Empty input gives ``[]``.

    Raises:
        TruncatedBatchError: the last batch is incomplete.
        RecordBatchError: any batch is invalid; the message names its index and byte position.
    """
    view = _bytes_view(buf)
    total = len(view)
    out: list[tuple[BatchHeader, memoryview]] = []
    pos = 0
    while pos < total:
        where = f"batch {len(out)} at byte {pos} of the record set"
        if total - pos < LOG_OVERHEAD:
            raise TruncatedBatchError(
                f"{where}: {total - pos} trailing bytes are too few for a batch header"
            )
        (length,) = _INT32.unpack_from(view, pos + LENGTH_POS)
        if length < MIN_BATCH_LENGTH:
            raise BatchLengthError(
                f"{where}: declared batch length {length} is smaller than the "
                f"{MIN_BATCH_LENGTH}-byte minimum"
            )
        size = length + LOG_OVERHEAD
        if max_batch_bytes is not None and size > max_batch_bytes:
            raise BatchTooLargeError(
                f"{where}: batch of {size} bytes exceeds the {max_batch_bytes}-byte limit"
            )
        if pos + size > total:
            raise TruncatedBatchError(
                f"{where}: declared length needs {size} bytes but only {total - pos} remain"
            )
        batch = view[pos : pos + size]
        try:
            header = validate_batch(batch, max_batch_bytes=max_batch_bytes)
        except RecordBatchError as exc:
            raise type(exc)(f"{where}: {exc}") from exc
        out.append((header, batch))
        pos += size
    return out


def set_base_offset(batch: Buffer, base_offset: int) -> bytes:
    """Returns a copy of ``batch`` with a new base offset; the CRC stays valid.

    The base offset lies outside the CRC, so this is how the broker stamps producer batches
    with log offsets without decoding or re-encoding anything.
    """
    view = _bytes_view(batch)
    parse_header(view)
    return _INT64.pack(base_offset) + view[8:]


def decompress_records(
    batch: Buffer, *, max_uncompressed_bytes: int = MAX_UNCOMPRESSED_BYTES
) -> bytes:
    """The records section of one batch, uncompressed (framing checked, CRC not)."""
    view = _bytes_view(batch)
    header = _check_frame(view, None)
    section = decompress(codec_of(header.attributes), view[HEADER_SIZE:], max_uncompressed_bytes)
    return bytes(section)
