"""Package-level promises: the public names, a cheap import, and kernels compiled once."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import streamhouse.broker.records as records
from streamhouse.broker.records import Compression, batches_to_arrow, build_batch, validate_batch


def test_public_api_names() -> None:
    for name in records.__all__:
        assert getattr(records, name) is not None
    errors = [
        "CorruptBatchError",
        "UnsupportedMagicError",
        "TruncatedBatchError",
        "BatchLengthError",
        "RecordCountError",
        "BatchTooLargeError",
        "UnsupportedCompressionError",
        "InvalidRecordError",
    ]
    for name in errors:
        error = getattr(records, name)
        assert issubclass(error, records.RecordBatchError)
        assert issubclass(error, ValueError)


def test_import_does_not_load_numba_or_pyarrow() -> None:
    code = (
        "import sys, streamhouse.broker.records as r\n"
        "assert 'numba' not in sys.modules and 'pyarrow' not in sys.modules, 'eager import'\n"
        "r.ARROW_SCHEMA\n"
        "assert 'pyarrow' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_kernels_compile_once_for_every_kind_of_input() -> None:
    from streamhouse.broker.records import _kernels as k

    immutable = pa.py_buffer(b"abcdef")
    offsets = pa.py_buffer(np.array([0, 3, 6], np.int32).tobytes())
    from_immutable = pa.Array.from_buffers(pa.binary(), 2, [None, offsets, immutable])
    batches = [
        build_batch([b"a", None]),
        build_batch([b"a", b"b"], keys=[b"k", None], headers=[[("x", b"1")], []]),
        build_batch(from_immutable, keys=from_immutable, compression=Compression.ZSTD),
        build_batch(pa.array(["s"]), keys=pa.array(["k"], pa.large_string())),
        build_batch([b"x" * 40_000], compression=Compression.LZ4),
    ]
    for batch in batches:
        for form in (batch, bytearray(batch), memoryview(batch)):
            validate_batch(form)
            batches_to_arrow([form, batches[1]], 0)
    for kernel in (k.scan, k.fill, k.encoded_sizes, k.encode):
        assert len(kernel.signatures) == 1, (kernel, kernel.signatures)
