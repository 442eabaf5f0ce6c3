"""Exact row filters of a scan, vectorised with pyarrow.compute.

Segment and batch pruning only narrows what is read; these masks decide what is returned, so a
scan's rows are exactly those the ScanSpec (and the high-watermark snapshot) admit.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from .spec import ScanSpec

_TS = pa.timestamp("ms")


def filter_rows(batch: pa.RecordBatch, start: int, end: int, spec: ScanSpec) -> pa.RecordBatch:
    """The rows of ``batch`` with offset in ``[start, end)`` that match the spec's bounds."""
    if batch.num_rows == 0:
        return batch
    offsets = batch.column("offset")
    mask = pc.and_(
        pc.greater_equal(offsets, pa.scalar(start, pa.int64())),
        pc.less(offsets, pa.scalar(end, pa.int64())),
    )
    timestamps = batch.column("timestamp")
    if spec.time_min_ms is not None:
        mask = pc.and_(mask, pc.greater_equal(timestamps, pa.scalar(spec.time_min_ms, _TS)))
    if spec.time_max_ms is not None:
        mask = pc.and_(mask, pc.less(timestamps, pa.scalar(spec.time_max_ms, _TS)))
    if spec.keys is not None:
        wanted = pa.array(sorted(spec.keys), pa.binary())
        mask = pc.and_(mask, pc.is_in(batch.column("key"), value_set=wanted))
    if pc.all(mask).as_py():
        return batch
    return batch.filter(mask)
