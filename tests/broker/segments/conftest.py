"""Batch factories and a byte-counting range fetcher for segment tests.

Batches are built with kafka-python's own RecordBatch v2 builder (a real client's bytes, not
ours), then given their final base offset the way a broker stamps them (the base offset is not
covered by the batch CRC).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder


def build_batch(base_offset: int, values: Sequence[bytes], timestamps: Sequence[int]) -> bytes:
    """One v2 batch holding ``values`` at ``base_offset`` with per-record ``timestamps``."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 30,
    )
    for delta, (value, ts) in enumerate(zip(values, timestamps, strict=True)):
        builder.append(delta, timestamp=ts, key=None, value=value, headers=[])
    data = bytearray(builder.build())
    struct.pack_into(">q", data, 0, base_offset)
    return bytes(data)


def build_run(
    shapes: Sequence[tuple[int, int]],
    *,
    start: int = 0,
    timestamps: Sequence[int] | None = None,
) -> list[bytes]:
    """Contiguous batches; ``shapes`` is (record count, value size) per batch.

    ``timestamps`` gives each batch's timestamp (all its records share it); by default they rise.
    """
    out = []
    offset = start
    for i, (count, size) in enumerate(shapes):
        ts = timestamps[i] if timestamps is not None else 1_000 + i
        values = [bytes([65 + (offset + j) % 26]) * size for j in range(count)]
        out.append(build_batch(offset, values, [ts] * count))
        offset += count
    return out


def header_fields(batch: bytes) -> tuple[int, int, int]:
    """(base offset, last offset, max timestamp) of a batch, read as the spec lays them out."""
    base, last_delta, max_ts = (
        struct.unpack_from(">q", batch, 0)[0],
        struct.unpack_from(">i", batch, 23)[0],
        struct.unpack_from(">q", batch, 35)[0],
    )
    return base, base + last_delta, max_ts


@dataclass
class CountingFetcher:
    """A RangeFetcher over bytes that records every range it served."""

    data: bytes
    calls: list[tuple[int, int]] = field(default_factory=list)

    async def __call__(self, start: int, end: int) -> bytes:
        self.calls.append((start, end))
        return self.data[start:end]

    @property
    def fetched(self) -> int:
        return sum(end - start for start, end in self.calls)


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The helpers above, as a session fixture so hypothesis tests may use them too."""
    return SimpleNamespace(
        build_batch=build_batch,
        build_run=build_run,
        header_fields=header_fields,
        CountingFetcher=CountingFetcher,
    )
