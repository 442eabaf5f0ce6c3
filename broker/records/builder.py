"""Building RecordBatch v2 bytes: many records at once from columns, or one at a time.

``build_batch`` is the producer-side hot path (our gRPC client, benchmarks, continuous queries
writing results back to topics): columns go through pyarrow's C conversion into flat buffers
and one compiled kernel writes every record, so there is no Python loop per record.
``RecordBatchBuilder`` is the familiar append-one-record API on top of it.

Field choices match the Kafka clients: ``baseTimestamp`` is the first record's timestamp,
offset deltas are 0..n-1, and the CRC32C covers attributes to the end. Compression is always
applied when asked for (kafka-python falls back to none when it does not shrink the data).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

import crc32c
import numpy as np
import pyarrow as pa

from .compression import Buffer, compress
from .errors import BatchTooLargeError
from .header import (
    ATTRIBUTES_POS,
    CRC_POS,
    HEADER,
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC,
    TIMESTAMP_TYPE_MASK,
    TRANSACTIONAL_MASK,
    Compression,
    TimestampType,
)

_MAX_BATCH_SIZE = 2**31 - 1
# Per record, excluding key, value and headers: length (5) + attributes (1)
# + timestamp delta (10) + offset delta (5), as the Kafka clients estimate it.
MAX_RECORD_OVERHEAD = 21

Header = tuple[str, bytes | None]


class _Column:
    """A nullable binary column as flat data + int64 offsets (relative to data) + validity."""

    __slots__ = ("data", "offsets", "valid")

    def __init__(self, data: np.ndarray, offsets: np.ndarray, valid: np.ndarray) -> None:
        # Always read-only views: one array type per argument, so the kernels compile once
        # whether the memory came from numpy, pyarrow, or an immutable (e.g. mapped) buffer.
        self.data = _readonly(data)
        self.offsets = _readonly(offsets)
        self.valid = _readonly(valid)

    @classmethod
    def nulls(cls, n: int) -> _Column:
        return cls(np.empty(0, np.uint8), np.zeros(n + 1, np.int64), np.zeros(n, np.uint8))

    @classmethod
    def of(cls, items: Any, name: str) -> _Column:
        """From a sequence of bytes/None or any pyarrow binary/string array."""
        if isinstance(items, pa.ChunkedArray):
            items = items.combine_chunks()
        if isinstance(items, pa.Array):
            if not (
                pa.types.is_binary(items.type)
                or pa.types.is_large_binary(items.type)
                or pa.types.is_string(items.type)
                or pa.types.is_large_string(items.type)
            ):
                raise TypeError(f"{name} must be a binary or string array, not {items.type}")
            array = items.cast(pa.large_binary())
        else:
            try:
                array = pa.array(items, type=pa.large_binary())
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise TypeError(f"{name} must hold bytes or None: {exc}") from exc
        n = len(array)
        _, offsets_buf, data_buf = array.buffers()
        offsets = np.frombuffer(offsets_buf, np.int64)[array.offset : array.offset + n + 1]
        data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.empty(0, np.uint8)
        if array.null_count:
            valid = array.is_valid().to_numpy(zero_copy_only=False).view(np.uint8)
        else:
            valid = np.ones(n, np.uint8)
        return cls(data, offsets, valid)

    def __len__(self) -> int:
        return len(self.valid)


def _readonly(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


def _timestamps(timestamps: Any, n: int) -> np.ndarray:
    if timestamps is None:
        return np.full(n, time.time_ns() // 1_000_000, np.int64)
    if isinstance(timestamps, int | np.integer):
        return np.full(n, int(timestamps), np.int64)
    if isinstance(timestamps, pa.ChunkedArray):
        timestamps = timestamps.combine_chunks()
    if isinstance(timestamps, pa.Array):
        if timestamps.null_count:
            raise ValueError("timestamps must not contain nulls")
        if pa.types.is_timestamp(timestamps.type):
            timestamps = timestamps.cast(pa.timestamp("ms")).cast(pa.int64())
        out = timestamps.cast(pa.int64()).to_numpy()
    else:
        out = np.asarray(timestamps, dtype=np.int64)
    if out.shape != (n,):
        raise ValueError(f"got {out.size} timestamps for {n} records")
    return np.ascontiguousarray(out)


def _headers(headers: Any, n: int) -> tuple[np.ndarray, _Column, _Column]:
    """Per-record header ranges, then flat header keys and values."""
    if headers is None:
        return np.zeros(n + 1, np.int64), _Column.nulls(0), _Column.nulls(0)
    if isinstance(headers, pa.ChunkedArray):
        headers = headers.combine_chunks()
    if isinstance(headers, pa.Array):  # list<struct<key: string, value: binary>>
        if headers.null_count:
            headers = headers.fill_null(pa.scalar([], headers.type))
        headers = headers.cast(pa.large_list(headers.type.value_type))
        ranges = headers.offsets.to_numpy().astype(np.int64)
        flat = headers.flatten()
        first = int(ranges[0])
        ranges = ranges - first
        keys = _Column.of(flat.field("key"), "header keys")
        values = _Column.of(flat.field("value"), "header values")
        if len(keys) and not keys.valid.all():
            raise ValueError("header keys must not be null")
    else:
        if len(headers) != n:
            raise ValueError(f"got {len(headers)} header lists for {n} records")
        counts = np.fromiter(map(len, headers), np.int64, n)
        ranges = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=ranges[1:])
        flat = list(itertools.chain.from_iterable(headers))
        names, payloads = (list(part) for part in zip(*flat, strict=True)) if flat else ([], [])
        if any(name is None for name in names):
            raise ValueError("header keys must be strings, not None")
        try:
            key_array = pa.array(names, type=pa.large_string())
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise TypeError(f"header keys must be str: {exc}") from exc
        keys = _Column.of(key_array, "header keys")
        values = _Column.of(payloads, "header values")
    if len(ranges) != n + 1:
        raise ValueError(f"got {len(ranges) - 1} header lists for {n} records")
    return ranges, keys, values


def build_batch(
    values: Sequence[bytes | None] | pa.Array,
    keys: Sequence[bytes | None] | pa.Array | None = None,
    timestamps: int | Sequence[int] | pa.Array | None = None,
    headers: Sequence[Sequence[Header]] | pa.Array | None = None,
    *,
    compression: Compression = Compression.NONE,
    base_offset: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    is_transactional: bool = False,
    partition_leader_epoch: int = -1,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
) -> bytes:
    """Encodes many records into one batch without a Python loop per record.

    Args:
        values: bytes or None per record, or a pyarrow binary/string array.
        keys: like ``values``; None means every key is null.
        timestamps: epoch ms: one int for all, one per record, or None for now.
        headers: per record a sequence of ``(str, bytes | None)``, or a pyarrow
            ``list<struct<key: string, value: binary>>`` array (as in ``ARROW_SCHEMA``).
        compression: codec for the records section.
        base_offset: usually 0; the broker assigns the real one.
        producer_id, producer_epoch, base_sequence, is_transactional: idempotence fields.
        partition_leader_epoch: -1 unless a leader stamps it.
        timestamp_type: LOG_APPEND_TIME for batches a broker stamps itself.

    Raises:
        ValueError: no records, or column lengths disagree.
        TypeError: a value, key or header is not bytes/None (header key not str).
        BatchTooLargeError: the batch would exceed 2 GiB.
    """
    from . import _kernels as k

    value_col = _Column.of(values, "values")
    n = len(value_col)
    if n == 0:
        raise ValueError("a record batch needs at least one record")
    key_col = _Column.nulls(n) if keys is None else _Column.of(keys, "keys")
    if len(key_col) != n:
        raise ValueError(f"got {len(key_col)} keys for {n} values")
    ts = _timestamps(timestamps, n)
    header_ranges, hkeys, hvalues = _headers(headers, n)
    base_timestamp = int(ts[0])
    ts_deltas = ts - base_timestamp

    body_sizes = np.empty(n, np.int64)
    body_size = k.encoded_sizes(
        ts_deltas,
        key_col.offsets,
        key_col.valid,
        value_col.offsets,
        value_col.valid,
        header_ranges,
        hkeys.offsets,
        hvalues.offsets,
        hvalues.valid,
        body_sizes,
    )
    if HEADER_SIZE + body_size > _MAX_BATCH_SIZE:
        raise BatchTooLargeError(f"{n} records need {body_size} bytes, beyond a batch's 2 GiB")
    prefix = HEADER_SIZE if compression == Compression.NONE else 0
    out = np.empty(prefix + body_size, np.uint8)
    end = k.encode(
        out,
        prefix,
        body_sizes,
        ts_deltas,
        key_col.data,
        key_col.offsets,
        key_col.valid,
        value_col.data,
        value_col.offsets,
        value_col.valid,
        header_ranges,
        hkeys.data,
        hkeys.offsets,
        hvalues.data,
        hvalues.offsets,
        hvalues.valid,
    )
    assert end == len(out), (end, len(out))

    attributes = int(compression)
    if timestamp_type == TimestampType.LOG_APPEND_TIME:
        attributes |= TIMESTAMP_TYPE_MASK
    if is_transactional:
        attributes |= TRANSACTIONAL_MASK
    body: Buffer = out[prefix:] if prefix else compress(Compression(compression), out)
    header = bytearray(HEADER_SIZE)
    HEADER.pack_into(
        header,
        0,
        base_offset,
        HEADER_SIZE + len(body) - LOG_OVERHEAD,
        partition_leader_epoch,
        MAGIC,
        0,  # CRC, computed below
        attributes,
        n - 1,  # lastOffsetDelta
        base_timestamp,
        int(ts.max()),
        producer_id,
        producer_epoch,
        base_sequence,
        n,
    )
    crc = crc32c.crc32c(memoryview(header)[ATTRIBUTES_POS:])
    crc = crc32c.crc32c(body, crc)
    header[CRC_POS : CRC_POS + 4] = crc.to_bytes(4, "big")
    if prefix:
        out[:HEADER_SIZE] = np.frombuffer(header, np.uint8)
        return out.tobytes()
    return b"".join((header, body))


class RecordBatchBuilder:
    """Collects records one at a time and encodes them with :func:`build_batch`.

    Args:
        compression: codec for the records section.
        base_offset, producer_id, producer_epoch, base_sequence, is_transactional,
        partition_leader_epoch, timestamp_type: header fields, as in :func:`build_batch`.
    """

    def __init__(
        self,
        compression: Compression = Compression.NONE,
        *,
        base_offset: int = 0,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        is_transactional: bool = False,
        partition_leader_epoch: int = -1,
        timestamp_type: TimestampType = TimestampType.CREATE_TIME,
    ) -> None:
        self._options = {
            "compression": Compression(compression),
            "base_offset": base_offset,
            "producer_id": producer_id,
            "producer_epoch": producer_epoch,
            "base_sequence": base_sequence,
            "is_transactional": is_transactional,
            "partition_leader_epoch": partition_leader_epoch,
            "timestamp_type": TimestampType(timestamp_type),
        }
        self._values: list[bytes | None] = []
        self._keys: list[bytes | None] = []
        self._timestamps: list[int] = []
        self._headers: list[tuple[Header, ...]] = []
        self._size = HEADER_SIZE

    def append(
        self,
        value: bytes | None,
        key: bytes | None = None,
        timestamp: int | None = None,
        headers: Sequence[Header] = (),
    ) -> None:
        """Adds one record; ``timestamp`` is epoch ms and defaults to now."""
        _check_bytes(value, "value")
        _check_bytes(key, "key")
        if timestamp is None:
            timestamp = time.time_ns() // 1_000_000
        elif not isinstance(timestamp, int):
            raise TypeError(f"timestamp must be an int (epoch ms), not {type(timestamp).__name__}")
        headers = tuple(headers)
        size = MAX_RECORD_OVERHEAD + (len(key) if key else 0) + (len(value) if value else 0)
        for name, payload in headers:
            if not isinstance(name, str):
                raise TypeError(f"header key must be str, not {type(name).__name__}")
            _check_bytes(payload, "header value")
            size += 10 + len(name.encode()) + (len(payload) if payload else 0)
        self._values.append(value)
        self._keys.append(key)
        self._timestamps.append(timestamp)
        self._headers.append(headers)
        self._size += size

    def __len__(self) -> int:
        return len(self._values)

    def size_estimate(self) -> int:
        """An upper bound on the uncompressed batch size, to decide when a batch is full."""
        return self._size

    def build(self) -> bytes:
        """Encodes the records appended so far (at least one)."""
        headers = self._headers if any(self._headers) else None
        return build_batch(self._values, self._keys, self._timestamps, headers, **self._options)


def _check_bytes(item: object, name: str) -> None:
    if item is not None and not isinstance(item, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes or None, not {type(item).__name__}")
