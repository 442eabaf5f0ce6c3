"""Kafka's default partitioner for the producer: murmur2 for keys, sticky batches for the rest.

Keyed records must land where every Kafka client puts them, so a topic written by this client
and by a Java or librdkafka producer keeps one key in one partition. ``partitions_for_keys``
is the bulk path: one compiled pass over the keys' Arrow buffers instead of a Python call per
key. Unkeyed records follow the Java client's sticky partitioner (KIP-480): they fill one
partition's batch, and the partition changes when that batch is sent.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from numba import njit
from streamhouse.broker.records.partitioner import partition_for_key

__all__ = ["StickyPartitioner", "binary_array", "partition_for_key", "partitions_for_keys"]

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


@njit(cache=True, nogil=True)
def _murmur2_partitions(data, offsets, valid, partitions, out):  # pragma: no cover - compiled
    """Writes each key's partition to ``out`` (-1 for a null key). All arithmetic in int64,
    masked to 32 bits: a 32-bit value times M (< 2**31) never overflows int64."""
    for i in range(len(out)):
        if not valid[i]:
            out[i] = -1
            continue
        start = offsets[i]
        length = offsets[i + 1] - start
        h = (_SEED ^ length) & _MASK
        tail = length & ~3
        for j in range(0, tail, 4):
            p = start + j
            k = (
                np.int64(data[p])
                | (np.int64(data[p + 1]) << 8)
                | (np.int64(data[p + 2]) << 16)
                | (np.int64(data[p + 3]) << 24)
            )
            k = (k * _M) & _MASK
            k ^= k >> 24
            k = (k * _M) & _MASK
            h = (h * _M) & _MASK
            h ^= k
        rest = length & 3
        p = start + tail
        if rest == 3:
            h ^= np.int64(data[p + 2]) << 16
        if rest >= 2:
            h ^= np.int64(data[p + 1]) << 8
        if rest >= 1:
            h ^= np.int64(data[p])
            h = (h * _M) & _MASK
        h ^= h >> 13
        h = (h * _M) & _MASK
        h ^= h >> 15
        out[i] = (h & 0x7FFFFFFF) % partitions


def binary_array(items: Sequence[bytes | None] | pa.Array | pa.ChunkedArray, name: str) -> pa.Array:
    """``items`` as one ``large_binary`` Arrow array (bytes/None lists or binary/string arrays)."""
    if isinstance(items, pa.ChunkedArray):
        items = items.combine_chunks()
    if isinstance(items, pa.Array):
        kind = items.type
        if not (
            pa.types.is_binary(kind)
            or pa.types.is_large_binary(kind)
            or pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
        ):
            raise TypeError(f"{name} must be a binary or string array, not {kind}")
        return items.cast(pa.large_binary())
    if isinstance(items, bytes | str):
        raise TypeError(f"{name} must be a sequence of bytes, not a single {type(items).__name__}")
    try:
        return pa.array(items, type=pa.large_binary())
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise TypeError(f"{name} must hold bytes or None: {exc}") from exc


def partitions_for_keys(keys: pa.Array, partitions: int) -> np.ndarray:
    """Kafka's partition for every key (int32), -1 where the key is null."""
    if partitions <= 0:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    keys = binary_array(keys, "keys")
    n = len(keys)
    _, offsets_buf, data_buf = keys.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64)[keys.offset : keys.offset + n + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(1, np.uint8)
    if keys.null_count:
        valid = keys.is_valid().to_numpy(zero_copy_only=False).view(np.uint8)
    else:
        valid = np.ones(n, np.uint8)
    out = np.empty(n, np.int32)
    _murmur2_partitions(data, offsets, valid, partitions, out)
    return out


class StickyPartitioner:
    """The partition for unkeyed records of each topic, changed when its batch is sent."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._sticky: dict[str, int] = {}

    def partition(self, topic: str, partitions: int) -> int:
        current = self._sticky.get(topic)
        if current is None or current >= partitions:
            current = self._sticky[topic] = self._rng.randrange(partitions)
        return current

    def batch_sent(self, topic: str, partition: int, partitions: int) -> None:
        """A batch of ``topic[partition]`` left: move unkeyed records elsewhere if it was ours."""
        if self._sticky.get(topic) != partition:
            return
        if partitions <= 1:
            self._sticky[topic] = 0
            return
        # Any other partition, uniformly (the Java client's choice among available ones).
        choice = self._rng.randrange(partitions - 1)
        self._sticky[topic] = choice + 1 if choice >= partition else choice

    def spread(self, topic: str, partitions: int, chunk_ids: np.ndarray) -> np.ndarray:
        """Partitions for consecutive chunks of unkeyed records in one bulk send: each chunk (a
        batch's worth) gets the next partition, starting at the sticky one."""
        start = self.partition(topic, partitions)
        out = ((chunk_ids + start) % partitions).astype(np.int32)
        if len(chunk_ids):
            last = int(out[-1])
            self._sticky[topic] = last
            self.batch_sent(topic, last, partitions)
        return out
