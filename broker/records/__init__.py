"""Kafka RecordBatch v2: validate, split, build and decode batches without a per-record loop.

The record batch is StreamHouse's unit of data (DESIGN.md): produce, WAL, segments and fetch all
carry these bytes unchanged, and SQL reads them through :func:`batches_to_arrow`. Importing
this package is cheap: numba kernels and pyarrow load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .batch import decompress_records, set_base_offset, split_batches, validate_batch
from .errors import (
    BatchLengthError,
    BatchTooLargeError,
    CorruptBatchError,
    InvalidRecordError,
    RecordBatchError,
    RecordCountError,
    TruncatedBatchError,
    UnsupportedCompressionError,
    UnsupportedMagicError,
)
from .header import HEADER_SIZE, BatchHeader, Compression, TimestampType, parse_header
from .reader import Record, iter_records

if TYPE_CHECKING:
    from .arrow import ARROW_SCHEMA, batches_to_arrow
    from .builder import RecordBatchBuilder, build_batch

_LAZY = {
    "ARROW_SCHEMA": "arrow",
    "batches_to_arrow": "arrow",
    "RecordBatchBuilder": "builder",
    "build_batch": "builder",
}

__all__ = [
    "ARROW_SCHEMA",
    "HEADER_SIZE",
    "BatchHeader",
    "BatchLengthError",
    "BatchTooLargeError",
    "Compression",
    "CorruptBatchError",
    "InvalidRecordError",
    "Record",
    "RecordBatchBuilder",
    "RecordBatchError",
    "RecordCountError",
    "TimestampType",
    "TruncatedBatchError",
    "UnsupportedCompressionError",
    "UnsupportedMagicError",
    "batches_to_arrow",
    "build_batch",
    "decompress_records",
    "iter_records",
    "parse_header",
    "set_base_offset",
    "split_batches",
    "validate_batch",
]


def __getattr__(name: str) -> Any:
    """Loads the pyarrow-backed names on first access (PEP 562) to keep imports cheap."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
