"""Records one at a time, as Python objects: for lookups, tools and tests, never a hot path.

The decoding here is deliberately plain Python, separate from the compiled kernels, so tests
can check the two decoders against each other. The batch is validated (by the kernels) before
the first record is produced, so iteration itself cannot fail half-way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from .batch import open_batch, scan_sections
from .compression import Buffer
from .header import BatchHeader, TimestampType


class Record(NamedTuple):
    """One decoded record; ``offset`` and ``timestamp`` are absolute."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    shift = 0
    result = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def _nullable(buf: memoryview, pos: int) -> tuple[bytes | None, int]:
    size, pos = _varint(buf, pos)
    if size < 0:
        return None, pos
    return bytes(buf[pos : pos + size]), pos + size


def iter_records(batch: Buffer) -> Iterator[Record]:
    """Validates ``batch`` now, then yields its records (control records included).

    Raises:
        RecordBatchError: the batch is invalid (raised by this call, before iteration).
    """
    header, section = open_batch(batch)
    scan_sections([header], [section], [f"batch at base offset {header.base_offset}"])
    return _records(header, memoryview(section).cast("B"))


def _records(header: BatchHeader, buf: memoryview) -> Iterator[Record]:
    log_append = header.timestamp_type == TimestampType.LOG_APPEND_TIME
    pos = 0
    for _ in range(header.record_count):
        _length, pos = _varint(buf, pos)
        pos += 1  # attributes
        ts_delta, pos = _varint(buf, pos)
        offset_delta, pos = _varint(buf, pos)
        key, pos = _nullable(buf, pos)
        value, pos = _nullable(buf, pos)
        count, pos = _varint(buf, pos)
        headers = []
        for _h in range(count):
            name, pos = _nullable(buf, pos)
            assert name is not None  # validated: header keys are never null
            header_value, pos = _nullable(buf, pos)
            headers.append((name.decode("utf-8"), header_value))
        yield Record(
            offset=header.base_offset + offset_delta,
            timestamp=header.max_timestamp if log_append else header.base_timestamp + ts_delta,
            key=key,
            value=value,
            headers=tuple(headers),
        )
