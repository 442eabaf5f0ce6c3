"""In-memory index of one partition's committed segments: offset or time -> segment.

A fetch must find the segment holding an offset without asking the metadata store, so each
partition leader keeps this index. Segments are contiguous (the store enforces it on commit),
which makes every lookup a binary search over parallel lists.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator

from streamhouse.broker.metadata.models import SegmentRecord


class PartitionIndex:
    """Committed segments of one partition in offset order, without gaps.

    Attributes:
        total_bytes: Sum of ``size_bytes`` of the indexed segments.
    """

    def __init__(self, segments: Iterable[SegmentRecord] = ()) -> None:
        self._segments: list[SegmentRecord] = []
        self._bases: list[int] = []
        self._lasts: list[int] = []
        # Running maximum of max_timestamp: monotonic even when producers send timestamps out of
        # order, so the first segment reaching a timestamp is a bisect away.
        self._max_ts_prefix: list[int] = []
        self.total_bytes = 0
        for segment in sorted(segments, key=lambda s: s.base_offset):
            self.add(segment)

    @property
    def start_offset(self) -> int | None:
        """Base offset of the oldest segment; None when empty."""
        return self._bases[0] if self._bases else None

    @property
    def end_offset(self) -> int | None:
        """One past the last offset of the newest segment; None when empty."""
        return self._lasts[-1] + 1 if self._lasts else None

    def __len__(self) -> int:
        return len(self._segments)

    def __iter__(self) -> Iterator[SegmentRecord]:
        return iter(list(self._segments))

    def add(self, segment: SegmentRecord) -> None:
        """Appends a newly committed segment.

        Raises:
            ValueError: The segment does not start exactly at :attr:`end_offset` or its offset
                range is empty; the index is unchanged.
        """
        if segment.last_offset < segment.base_offset:
            raise ValueError(
                f"segment {segment.object_key!r} has last_offset {segment.last_offset} "
                f"< base_offset {segment.base_offset}"
            )
        end = self.end_offset
        if end is not None and segment.base_offset != end:
            kind = "gap" if segment.base_offset > end else "overlap"
            raise ValueError(
                f"segment {segment.object_key!r} starts at {segment.base_offset} but the index "
                f"of {segment.topic}[{segment.partition}] ends at {end} ({kind})"
            )
        previous = self._max_ts_prefix[-1] if self._max_ts_prefix else segment.max_timestamp
        self._segments.append(segment)
        self._bases.append(segment.base_offset)
        self._lasts.append(segment.last_offset)
        self._max_ts_prefix.append(max(previous, segment.max_timestamp))
        self.total_bytes += segment.size_bytes

    def find(self, offset: int) -> SegmentRecord | None:
        """The segment whose offset range contains ``offset``; None outside the index."""
        i = bisect.bisect_right(self._bases, offset) - 1
        if i >= 0 and offset <= self._lasts[i]:
            return self._segments[i]
        return None

    def find_by_timestamp(self, ts: int) -> SegmentRecord | None:
        """The first segment whose ``max_timestamp`` is >= ``ts``.

        Every record in earlier segments is older than ``ts``, so the earliest record at or
        after ``ts`` (Kafka's ListOffsets by time) is in this segment, if it is in the index.
        """
        i = bisect.bisect_left(self._max_ts_prefix, ts)
        return self._segments[i] if i < len(self._segments) else None

    def truncate_before(self, offset: int) -> list[SegmentRecord]:
        """Drops the segments that lie wholly below ``offset`` and returns them, oldest first.

        A segment that straddles ``offset`` stays: Kafka deletes whole segments only, and the
        log start offset hides its older records.
        """
        k = bisect.bisect_left(self._lasts, offset)
        if k == 0:
            return []
        dropped = self._segments[:k]
        del self._segments[:k], self._bases[:k], self._lasts[:k]
        self._max_ts_prefix = list(
            itertools.accumulate((s.max_timestamp for s in self._segments), max)
        )
        self.total_bytes -= sum(s.size_bytes for s in dropped)
        return dropped

    def expired(self, now_ms: int, retention_ms: int, retention_bytes: int) -> list[SegmentRecord]:
        """The oldest segments retention would delete now, oldest first (nothing is removed).

        Always a prefix, so the log never gets a hole. Two rules, either one suffices:

        * time (``retention_ms >= 0``): a segment whose newest record is older than
          ``now_ms - retention_ms``, counting from the oldest and stopping at the first one
          that is not;
        * size (``retention_bytes >= 0``): the oldest segments while the partition's committed
          bytes exceed ``retention_bytes``.

        The newest segment is not protected: the index holds sealed, committed segments only
        (the open segment lives in the leader's memory), so when all of them are past
        retention all of them go and the log start moves to the committed end.
        """
        count = 0
        if retention_ms >= 0:
            count = bisect.bisect_left(self._max_ts_prefix, now_ms - retention_ms)
        if retention_bytes >= 0:
            remaining = self.total_bytes
            by_size = 0
            while by_size < len(self._segments) and remaining > retention_bytes:
                remaining -= self._segments[by_size].size_bytes
                by_size += 1
            count = max(count, by_size)
        return self._segments[:count]
