"""Immutable segment objects: a partition's sealed batches, indexed for ranged reads.

The byte layout is documented in :mod:`streamhouse.broker.segments.format`. Write a segment with
:class:`SegmentWriter` or :func:`encode_segment`; read it with :class:`SegmentReader`.
"""

from __future__ import annotations

from streamhouse.broker.segments.errors import (
    InvalidBatchError,
    SegmentCorruptError,
    SegmentError,
)
from streamhouse.broker.segments.format import DEFAULT_BLOCK_BYTES, SegmentInfo
from streamhouse.broker.segments.reader import RangeFetcher, SegmentReader
from streamhouse.broker.segments.writer import SegmentWriter, encode_segment

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "InvalidBatchError",
    "RangeFetcher",
    "SegmentCorruptError",
    "SegmentError",
    "SegmentInfo",
    "SegmentReader",
    "SegmentWriter",
    "encode_segment",
]
