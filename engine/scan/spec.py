"""What a point-in-time scan may read: the pushed-down part of a query's WHERE clause.

The SQL layer extracts these bounds; the scan uses them twice: to pick partitions and segments
by their metadata before any byte is read, and to filter the decoded rows exactly. Everything
else in the WHERE clause is left to DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScanSpec:
    """Bounds on the rows of one topic; ``None`` means unbounded.

    Attributes:
        topic: the topic to read.
        partitions: only these partitions (numbers beyond the topic's count match nothing).
        offset_min: first offset wanted (inclusive).
        offset_max: end of the offsets wanted (exclusive).
        time_min_ms: earliest record timestamp wanted, epoch ms (inclusive).
        time_max_ms: end of the timestamps wanted, epoch ms (exclusive).
        keys: only records whose key is one of these bytes (a null key never matches).
    """

    topic: str
    partitions: frozenset[int] | None = None
    offset_min: int | None = None
    offset_max: int | None = None
    time_min_ms: int | None = None
    time_max_ms: int | None = None
    keys: frozenset[bytes] | None = None
