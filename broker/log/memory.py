"""Batches held in memory: the open segment and segments being sealed.

Readers must see every acknowledged batch, so a batch stays here from append until its
segment commit is recorded in the partition index. Lookups are by bisect over base offsets;
nothing here decodes records.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field


@dataclass
class MemorySegment:
    """A contiguous run of batches (already stamped with their final offsets)."""

    batches: list[bytes] = field(default_factory=list)
    base_offsets: list[int] = field(default_factory=list)
    max_timestamps: list[int] = field(default_factory=list)
    next_offset: int = 0
    size_bytes: int = 0
    opened_at: float = field(default_factory=time.monotonic)
    # producer id -> (epoch, last sequence, last offset) of its last batch in this segment,
    # recorded in the metadata store once the segment is committed.
    producers: dict[int, tuple[int, int, int]] = field(default_factory=dict)

    @property
    def base_offset(self) -> int:
        return self.base_offsets[0] if self.base_offsets else self.next_offset

    def __bool__(self) -> bool:
        return bool(self.batches)

    def add(self, batch: bytes, base_offset: int, next_offset: int, max_timestamp: int) -> None:
        if not self.batches:
            self.opened_at = time.monotonic()
        self.batches.append(batch)
        self.base_offsets.append(base_offset)
        self.max_timestamps.append(max_timestamp)
        self.next_offset = next_offset
        self.size_bytes += len(batch)

    def note_producer(
        self, producer_id: int, epoch: int, last_sequence: int, last_offset: int
    ) -> None:
        self.producers[producer_id] = (epoch, last_sequence, last_offset)

    def age_ms(self, now: float) -> float:
        return (now - self.opened_at) * 1000.0

    def read(self, offset: int, max_bytes: int) -> list[bytes]:
        """Batches from the one containing ``offset``; at least one when any covers it."""
        if not self.batches or offset >= self.next_offset:
            return []
        index = max(bisect.bisect_right(self.base_offsets, offset) - 1, 0)
        out: list[bytes] = []
        total = 0
        for batch in self.batches[index:]:
            if out and total + len(batch) > max_bytes:
                break
            out.append(batch)
            total += len(batch)
        return out

    def batch_for_timestamp(self, timestamp: int) -> bytes | None:
        """The first batch whose max timestamp reaches ``timestamp`` (timestamps may go back)."""
        for batch, max_ts in zip(self.batches, self.max_timestamps, strict=True):
            if max_ts >= timestamp:
                return batch
        return None
