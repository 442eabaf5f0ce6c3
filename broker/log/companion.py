"""Columnar companions of committed segments: the same rows as Parquet, for scans of history.

A segment stores Kafka record batches, which a SQL scan must decode record by record. Once a
segment is committed, its batches (still in memory) are decoded once more with
``batches_to_arrow`` and written as Parquet next to it (``<segment key>.parquet``), in row groups
carrying min/max statistics of ``offset`` and ``timestamp`` so a scan of a range reads only the
row groups it needs. The companion is an optimisation, never a source of truth:

- it is written after the commit, in a background task per partition, so it never delays an
  acknowledgement or the next commit;
- a failure to write one is logged and counted, and scans fall back to decoding the segment;
- it is deleted with its segment (retention, DeleteRecords, topic delete by prefix).

Encoding runs on a small dedicated thread pool, which bounds the CPU companions take across
every partition of the agent whatever the number of partitions.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq
from prometheus_client import Counter
from streamhouse.broker.metadata import SegmentRecord
from streamhouse.broker.records import ARROW_SCHEMA, batches_to_arrow
from streamhouse.broker.storage import ObjectStore

log = logging.getLogger("streamhouse.log")

SUFFIX = ".parquet"
ROW_GROUP_ROWS = 64 * 1024
COMPRESSION = "zstd"
#: Companions queued per partition; past this the oldest is dropped (its scans decode the segment).
MAX_PENDING = 4
_STAT_COLUMNS = ["offset", "timestamp"]

COMPANION_WRITES = Counter(
    "streamhouse_segment_companion_writes_total",
    "Columnar companions of committed segments: written, error, skipped (queue full)",
    ["outcome"],
)
for _outcome in ("written", "error", "skipped"):
    COMPANION_WRITES.labels(outcome=_outcome)


def _lower_priority() -> None:
    """Companions are an optimisation for later scans: their encoding runs at the lowest CPU
    priority so it only uses time that produce and fetch leave idle (Linux schedules threads
    one by one, so this does not slow the rest of the process)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


# Shared by every partition and event loop of the process: one companion encodes at a time.
_POOL = ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="companion", initializer=_lower_priority
)


def companion_key(segment_key: str) -> str:
    """The object key of a segment's companion."""
    return segment_key + SUFFIX


def encode_companion(batches: Sequence[bytes], partition: int) -> bytes:
    """The Parquet bytes of a segment's batches (``ARROW_SCHEMA``, schema kept in the footer)."""
    table = pa.Table.from_batches([batches_to_arrow(batches, partition)], schema=ARROW_SCHEMA)
    out = io.BytesIO()
    pq.write_table(
        table,
        out,
        row_group_size=ROW_GROUP_ROWS,
        compression=COMPRESSION,
        write_statistics=_STAT_COLUMNS,
    )
    return out.getvalue()


def read_companion(
    data: bytes,
    start: int,
    end: int,
    time_min_ms: int | None = None,
    time_max_ms: int | None = None,
) -> pa.RecordBatch:
    """Rows of the row groups that may hold offsets ``[start, end)`` and times in the bounds.

    Pruning is by row group statistics only; the caller filters the rows exactly. A row group
    without statistics is always read.
    """
    pf = pq.ParquetFile(pa.BufferReader(data))
    meta = pf.metadata
    names = pf.schema_arrow.names
    off_col, ts_col = names.index("offset"), names.index("timestamp")
    wanted = []
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        off, ts = group.column(off_col).statistics, group.column(ts_col).statistics
        if off is not None and off.has_min_max and (off.max_raw < start or off.min_raw >= end):
            continue
        if ts is not None and ts.has_min_max:
            if time_min_ms is not None and ts.max_raw < time_min_ms:
                continue
            if time_max_ms is not None and ts.min_raw >= time_max_ms:
                continue
        wanted.append(i)
    if not wanted:
        return _empty()
    batches = pf.read_row_groups(wanted).cast(ARROW_SCHEMA).to_batches()
    return pa.concat_batches(batches) if batches else _empty()


def _empty() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=ARROW_SCHEMA)


class CompanionWriter:
    """Writes the companions of one partition's committed segments, one at a time, in order.

    Args:
        store: where segments live.
        partition: the partition number written to the ``partition`` column.
        is_live: whether a committed segment is still in the log; a companion finished after
            its segment was deleted is removed again, so it cannot outlive it.
    """

    def __init__(
        self, store: ObjectStore, partition: int, is_live: Callable[[SegmentRecord], bool]
    ) -> None:
        self._store = store
        self._partition = partition
        self._is_live = is_live
        self._queue: collections.deque[tuple[SegmentRecord, Sequence[bytes]]] = collections.deque()
        self._task: asyncio.Task[None] | None = None

    def submit(self, record: SegmentRecord, batches: Sequence[bytes]) -> None:
        """Queues a just-committed segment; returns at once."""
        self._queue.append((record, batches))
        while len(self._queue) > MAX_PENDING:
            dropped, _ = self._queue.popleft()
            COMPANION_WRITES.labels(outcome="skipped").inc()
            log.warning("companion of %s skipped: writer behind", dropped.object_key)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"companions [{self._partition}]")

    async def drain(self) -> None:
        """Waits until every queued companion is written (or failed)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Stops writing; what is queued is dropped (scans decode those segments)."""
        self._queue.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._queue:
            record, batches = self._queue.popleft()
            await self._write(record, batches)

    async def _write(self, record: SegmentRecord, batches: Sequence[bytes]) -> None:
        key = companion_key(record.object_key)
        try:
            loop = asyncio.get_running_loop()
            data = await loop.run_in_executor(_POOL, encode_companion, batches, self._partition)
            await self._store.put(key, data)
            if not self._is_live(record):  # deleted while we wrote: do not leave it behind
                await self._store.delete(key)
                return
        except asyncio.CancelledError:
            raise
        except Exception:
            COMPANION_WRITES.labels(outcome="error").inc()
            log.warning("companion %s not written; scans decode the segment", key, exc_info=True)
            return
        COMPANION_WRITES.labels(outcome="written").inc()
