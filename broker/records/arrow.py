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
from .errors import BatchTooLargeError
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

    headers: list[BatchHeader] = []
    sections: list[Buffer] = []
    labels: list[str] = []
    for index, batch in enumerate(batches):
        header, section = open_batch(batch)
        if header.is_control or header.record_count == 0:
            continue
        headers.append(header)
        sections.append(section)
        labels.append(f"batch {index} (base offset {header.base_offset})")
    if not headers:
        return pa.RecordBatch.from_pylist([], schema=ARROW_SCHEMA)
    scanned = scan_sections(headers, sections, labels)
    totals = scanned.totals
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

    def col(size: int, dtype: type = np.uint8) -> np.ndarray:
        return np.empty(size, dtype)

    offsets, timestamps = col(n, np.int64), col(n, np.int64)
    key_offsets, key_valid = col(n + 1, np.int32), col(n, np.uint8)
    key_data = col(int(totals[k.T_KEY_BYTES]))
    value_offsets, value_valid = col(n + 1, np.int32), col(n, np.uint8)
    value_data = col(int(totals[k.T_VALUE_BYTES]))
    header_offsets = col(n + 1, np.int32)
    hkey_offsets, hkey_data = col(n_headers + 1, np.int32), col(int(totals[k.T_HKEY_BYTES]))
    hvalue_offsets, hvalue_valid = col(n_headers + 1, np.int32), col(n_headers, np.uint8)
    hvalue_data = col(int(totals[k.T_HVALUE_BYTES]))

    decoded = k.fill(
        scanned.buf,
        scanned.starts,
        scanned.ends,
        scanned.counts,
        np.fromiter((h.base_offset for h in headers), np.int64, len(headers)),
        np.fromiter((h.base_timestamp for h in headers), np.int64, len(headers)),
        np.fromiter((h.max_timestamp for h in headers), np.int64, len(headers)),
        np.fromiter(
            (h.timestamp_type == TimestampType.LOG_APPEND_TIME for h in headers),
            np.uint8,
            len(headers),
        ),
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
    assert decoded == n, (decoded, n)

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
