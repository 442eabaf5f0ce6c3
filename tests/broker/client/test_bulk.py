"""The bulk path sizes and splits records the way single sends do, without a per-record loop."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from streamhouse.broker.client.accumulator import record_size
from streamhouse.broker.client.producer import _chunks, _header_array, _record_sizes, _timestamps


def test_bulk_sizes_match_single_record_sizes() -> None:
    values = [b"v" * 10, None, b"", b"x" * 300]
    keys = [b"k", None, b"key", None]
    headers = [[("a", b"1")], [], [("bb", None), ("c", b"22")], []]
    sizes = _record_sizes(
        pa.array(values, pa.large_binary()),
        pa.array(keys, pa.large_binary()),
        _header_array(headers, 4),
    )
    expected = [
        record_size(v, k, [(n, p) for n, p in h]) - sum(3 * len(n) for n, _ in h)
        for v, k, h in zip(values, keys, headers, strict=True)
    ]
    # ASCII header names: the single path's 4-bytes-a-char bound is the only difference.
    assert sizes.tolist() == expected


def test_chunks_hold_at_most_the_limit_and_keep_order() -> None:
    sizes = np.array([40, 40, 40, 500, 10, 10, 95], np.int64)
    indices = np.arange(len(sizes))
    chunks = _chunks(indices, sizes, 100)
    assert [c.tolist() for c in chunks] == [[0, 1], [2], [3], [4, 5], [6]]
    assert np.concatenate(chunks).tolist() == indices.tolist()
    assert all(sizes[c].sum() <= 100 or len(c) == 1 for c in chunks)


def test_chunks_of_a_shuffled_index_subset() -> None:
    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 50, 1000)
    subset = rng.permutation(1000)[:700]
    chunks = _chunks(subset, sizes, 256)
    assert np.concatenate(chunks).tolist() == subset.tolist()
    assert max(int(sizes[c].sum()) for c in chunks) <= 256


def test_header_and_timestamp_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="header lists"):
        _header_array([[]], 2)
    with pytest.raises(TypeError, match="headers"):
        _header_array([[("k", 5)]], 1)
    filled = _header_array(pa.array([None, [("k", b"v")]], _header_array([[]], 1).type), 2)
    assert filled.null_count == 0
    assert _timestamps(5, 3) == 5
    assert _timestamps([1, 2], 2).tolist() == [1, 2]
    with pytest.raises(ValueError, match="timestamps"):
        _timestamps([1], 2)
    with pytest.raises(ValueError, match="nulls"):
        _timestamps(pa.array([1, None]), 2)
    stamps = pa.array([0, 1500], pa.timestamp("ms"))
    assert _timestamps(stamps, 2).tolist() == [0, 1500]
