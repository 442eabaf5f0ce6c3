"""Which segments a scan reads: chosen from metadata alone, before any record is fetched.

A partition is planned from one snapshot of its log: the committed segments (the partition
index: offset range, timestamps), the committed offset and the high watermark. Committed
segments become one piece each; what memory holds past the committed offset becomes one tail
piece. A piece is skipped when its offsets miss the wanted range, or when its largest timestamp
is before ``time_min_ms``.

The segment index cannot prune by the upper time bound: its ``min_timestamp`` is the smallest
*first* timestamp of the segment's batches, and a record later in a batch may be older than that
(Kafka allows negative timestamp deltas). Nor does it know the keys. Both come from the segment's
companion summary (:func:`summary_admits`): the true min/max timestamp and a key filter per row
group. A segment without a summary is always read. Rows are filtered exactly after decoding
either way, so pruning only ever saves work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from streamhouse.broker.log import PartitionLog
from streamhouse.broker.log.companion import CompanionFooter
from streamhouse.broker.metadata import SegmentRecord

from .spec import ScanSpec


@dataclass(frozen=True)
class PartitionSnapshot:
    """What one partition held when the scan started; rows past ``high_watermark`` are unseen."""

    partition: int
    log_start_offset: int
    committed_offset: int
    high_watermark: int
    segments: tuple[SegmentRecord, ...]


def snapshot_of(plog: PartitionLog) -> PartitionSnapshot:
    """What a partition led here holds now (read without an await: one instant)."""
    return PartitionSnapshot(
        partition=plog.partition,
        log_start_offset=plog.log_start_offset,
        committed_offset=plog.committed_offset,
        high_watermark=plog.high_watermark,
        segments=tuple(plog.segments),
    )


@dataclass(frozen=True)
class Piece:
    """Offsets ``[start, end)`` of one partition, read from ``segment`` or (None) from memory."""

    partition: int
    start: int
    end: int
    segment: SegmentRecord | None


def plan_partition(spec: ScanSpec, snap: PartitionSnapshot) -> tuple[list[Piece], int]:
    """The pieces to read from one partition and how many segments were skipped."""
    lo = max(snap.log_start_offset, spec.offset_min or 0)
    hi = snap.high_watermark
    if spec.offset_max is not None:
        hi = min(hi, spec.offset_max)
    pieces: list[Piece] = []
    skipped = 0
    for seg in _committed(snap.segments, snap.committed_offset):
        start, end = max(lo, seg.base_offset), min(hi, seg.last_offset + 1)
        late_enough = spec.time_min_ms is None or seg.max_timestamp >= spec.time_min_ms
        if start < end and late_enough:
            pieces.append(Piece(snap.partition, start, end, seg))
        else:
            skipped += 1
    if snap.committed_offset < snap.high_watermark:
        start = max(lo, snap.committed_offset)
        if start < hi:
            pieces.append(Piece(snap.partition, start, hi, None))
        else:
            skipped += 1
    return pieces, skipped


def _committed(segments: Sequence[SegmentRecord], committed: int) -> list[SegmentRecord]:
    return [s for s in segments if s.base_offset < committed]


def summary_admits(
    footer: CompanionFooter, piece: Piece, spec: ScanSpec, key_hashes: np.ndarray | None
) -> list[int]:
    """The companion row groups of ``piece`` that may hold matching rows (empty: skip it).

    Uses the true timestamps of each row group for both time bounds and its key filter for
    ``spec.keys`` (``key_hashes`` are those keys hashed with ``keyfilter.hash_keys``).
    """
    return footer.wanted(piece.start, piece.end, spec.time_min_ms, spec.time_max_ms, key_hashes)
