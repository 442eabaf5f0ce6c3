"""Batches to Arrow: the path point-in-time SQL reads the log through.

Per batch we only check the frame and CRC and decompress (a handful of C calls); the records of
all batches are then validated and decoded by two compiled passes over one buffer, straight
into Arrow-shaped offset/data/validity buffers, which ``pa.Array.from_buffers`` wraps without
copying. Control batches (transaction markers) are not data and are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from .batch import open_batch, scan_sections
from .compression import Buffer
from .errors import BatchTooLargeError, RecordBatchError
from .header import BatchHeader, TimestampType

HEADER_TYPE = pa.struct(
    [pa.field("key", pa.string(), nullable=False), pa.field("value", pa.binary())]
)

ARROW_SCHEMA = pa.schema(
    [
        pa.field("partition", pa.int32(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("timestamp", pa.timestamp("ms"), nullable=False),
        pa.field("key", pa.binary()),
        pa.field("value", pa.binary()),
        pa.field("headers", pa.list_(HEADER_TYPE), nullable=False),
    ]
)

_INT32_MAX = 2**31 - 1


def _binary(type_: pa.DataType, n: int, offsets: np.ndarray, data: np.ndarray, valid=None):
    validity = None
    null_count = 0
    if valid is not None:
        null_count = n - int(np.count_nonzero(valid))
        if null_count:
            validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        type_, n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=null_count
    )


def batches_to_arrow(batches: Iterable[Buffer], partition: int) -> pa.RecordBatch:
    """Decodes batches of one partition into one Arrow record batch with ``ARROW_SCHEMA``.

    Every batch is checked (frame, CRC32C, codec, records) before anything is returned.

    Args:
        batches: whole RecordBatch v2 byte strings, in offset order.
        partition: written to the ``partition`` column.

    Raises:
        RecordBatchError: a batch is invalid; the message names its index in ``batches``.
        BatchTooLargeError: the decoded columns would exceed Arrow's 2 GiB per binary column.
    """
    from . import _kernels as k

    # Data batches are decoded; control and empty batches are only checked.
    headers: list[BatchHeader] = []
    sections: list[Buffer] = []
    labels: list[str] = []
    skipped: tuple[list[BatchHeader], list[Buffer], list[str]] = ([], [], [])
    for index, batch in enumerate(batches):
        try:
            header, section = open_batch(batch)
        except RecordBatchError as exc:
            raise type(exc)(f"batch {index}: {exc}") from exc
        into = (
            skipped
            if header.is_control or header.record_count == 0
            else (headers, sections, labels)
        )
        into[0].append(header)
        into[1].append(section)
        into[2].append(f"batch {index} (base offset {header.base_offset})")
    if skipped[0]:
        scan_sections(*skipped)
    if not headers:
        return pa.RecordBatch.from_pylist([], schema=ARROW_SCHEMA)
    chunks, totals = scan_sections(headers, sections, labels)
    n = int(totals[k.T_RECORDS])
    n_headers = int(totals[k.T_HEADERS])
    for slot, what in (
        (k.T_KEY_BYTES, "keys"),
        (k.T_VALUE_BYTES, "values"),
        (k.T_HKEY_BYTES, "header keys"),
        (k.T_HVALUE_BYTES, "header values"),
    ):
        if totals[slot] > _INT32_MAX:
            raise BatchTooLargeError(
                f"{totals[slot]} bytes of {what} exceed Arrow's 2 GiB binary column; "
                "decode fewer batches at a time"
            )

    def offsets_for(size: int) -> np.ndarray:
        out = np.empty(size + 1, np.int32)
        out[0] = 0
        return out

    offsets, timestamps = np.empty(n, np.int64), np.empty(n, np.int64)
    key_offsets, key_valid = offsets_for(n), np.empty(n, np.uint8)
    key_data = np.empty(int(totals[k.T_KEY_BYTES]), np.uint8)
    value_offsets, value_valid = offsets_for(n), np.empty(n, np.uint8)
    value_data = np.empty(int(totals[k.T_VALUE_BYTES]), np.uint8)
    header_offsets = offsets_for(n)
    hkey_offsets = offsets_for(n_headers)
    hkey_data = np.empty(int(totals[k.T_HKEY_BYTES]), np.uint8)
    hvalue_offsets, hvalue_valid = offsets_for(n_headers), np.empty(n_headers, np.uint8)
    hvalue_data = np.empty(int(totals[k.T_HVALUE_BYTES]), np.uint8)

    m = len(headers)
    base_offsets = np.fromiter((h.base_offset for h in headers), np.int64, m)
    base_timestamps = np.fromiter((h.base_timestamp for h in headers), np.int64, m)
    max_timestamps = np.fromiter((h.max_timestamp for h in headers), np.int64, m)
    log_append = np.fromiter(
        (h.timestamp_type == TimestampType.LOG_APPEND_TIME for h in headers), np.uint8, m
    )
    counts = np.fromiter((h.record_count for h in headers), np.int64, m)
    cursor = np.zeros(6, np.int64)
    for chunk in chunks:
        part = slice(chunk.first, chunk.first + chunk.count)
        decoded = k.fill(
            chunk.buf,
            chunk.starts,
            chunk.ends,
            counts[part],
            base_offsets[part],
            base_timestamps[part],
            max_timestamps[part],
            log_append[part],
            cursor,
            offsets,
            timestamps,
            key_offsets,
            key_valid,
            key_data,
            value_offsets,
            value_valid,
            value_data,
            header_offsets,
            hkey_offsets,
            hkey_data,
            hvalue_offsets,
            hvalue_valid,
            hvalue_data,
        )
        assert decoded == counts[part].sum(), (decoded, counts[part].sum())
    assert cursor[0] == n, (cursor[0], n)

    header_structs = pa.StructArray.from_arrays(
        [
            _binary(pa.string(), n_headers, hkey_offsets, hkey_data),
            _binary(pa.binary(), n_headers, hvalue_offsets, hvalue_data, hvalue_valid),
        ],
        fields=list(HEADER_TYPE),
    )
    columns = [
        pa.array(np.full(n, partition, np.int32)),
        pa.array(offsets),
        pa.Array.from_buffers(pa.timestamp("ms"), n, [None, pa.py_buffer(timestamps)]),
        _binary(pa.binary(), n, key_offsets, key_data, key_valid),
        _binary(pa.binary(), n, value_offsets, value_data, value_valid),
        pa.Array.from_buffers(
            ARROW_SCHEMA.field("headers").type,
            n,
            [None, pa.py_buffer(header_offsets)],
            children=[header_structs],
        ),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=ARROW_SCHEMA)
