"""Keys land where every Kafka client puts them; unkeyed records stick to a partition per batch."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest
from kafka.partitioner.default import murmur2 as kafka_murmur2
from streamhouse.broker.client.partitioner import (
    StickyPartitioner,
    binary_array,
    partition_for_key,
    partitions_for_keys,
)


def kafka_partition(key: bytes, partitions: int) -> int:
    return (kafka_murmur2(key) & 0x7FFFFFFF) % partitions


def random_keys(rng: random.Random, n: int) -> list[bytes]:
    keys = [b"", b"\x00", b"\xff" * 3, b"k" * 4096]  # empty, tails of each length, long
    keys += [rng.randbytes(rng.choice([1, 2, 3, 4, 5, 7, 8, 31, 64, 1000])) for _ in range(n)]
    return keys


@pytest.mark.parametrize("partitions", [1, 3, 7, 64, 1000])
def test_bulk_partitions_equal_kafka_python(partitions: int) -> None:
    keys = random_keys(random.Random(partitions), 3000)
    expected = [kafka_partition(k, partitions) for k in keys]
    assert partitions_for_keys(pa.array(keys, pa.binary()), partitions).tolist() == expected
    assert [partition_for_key(k, partitions) for k in keys] == expected


def test_bulk_partitions_of_a_sliced_string_array_with_nulls() -> None:
    keys = pa.array(["skip", "user-1", None, "ü-ñ", ""], pa.string()).slice(1)
    out = partitions_for_keys(keys, 12)
    assert out.dtype == np.int32
    assert out.tolist() == [
        kafka_partition(b"user-1", 12),
        -1,  # a null key has no hash: the caller places it
        kafka_partition("ü-ñ".encode(), 12),
        kafka_partition(b"", 12),
    ]


def test_bulk_partitions_reject_bad_input() -> None:
    with pytest.raises(TypeError, match="keys must be a binary or string array"):
        partitions_for_keys(pa.array([1, 2]), 3)
    with pytest.raises(TypeError, match="bytes or None"):
        partitions_for_keys([b"a", 5], 3)
    with pytest.raises(ValueError, match="at least one partition"):
        partitions_for_keys([b"a"], 0)
    with pytest.raises(TypeError, match="not a single bytes"):
        binary_array(b"abc", "values")


def test_sticky_partition_holds_until_its_batch_is_sent() -> None:
    sticky = StickyPartitioner(random.Random(1))
    first = sticky.partition("t", 6)
    assert all(sticky.partition("t", 6) == first for _ in range(20))
    sticky.batch_sent("t", (first + 1) % 6, 6)  # another partition's batch: no change
    assert sticky.partition("t", 6) == first
    seen = {first}
    for _ in range(50):
        previous = sticky.partition("t", 6)
        sticky.batch_sent("t", previous, 6)
        now = sticky.partition("t", 6)
        assert now != previous and 0 <= now < 6
        seen.add(now)
    assert seen == set(range(6))  # every partition gets batches over time


def test_sticky_with_one_partition_and_after_the_topic_shrinks_in_cache() -> None:
    sticky = StickyPartitioner(random.Random(2))
    assert sticky.partition("one", 1) == 0
    sticky.batch_sent("one", 0, 1)
    assert sticky.partition("one", 1) == 0
    sticky._sticky["t"] = 9
    assert 0 <= sticky.partition("t", 4) < 4


def test_spread_gives_consecutive_chunks_consecutive_partitions() -> None:
    sticky = StickyPartitioner(random.Random(3))
    start = sticky.partition("t", 4)
    out = sticky.spread("t", 4, np.array([0, 0, 1, 1, 2, 5]))
    assert out.tolist() == [(start + c) % 4 for c in (0, 0, 1, 1, 2, 5)]
    assert sticky.partition("t", 4) != out[-1]  # the last chunk's batch counts as sent
