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
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from prometheus_client import Counter
from streamhouse.broker.metadata import SegmentRecord
from streamhouse.broker.records import ARROW_SCHEMA, batches_to_arrow
from streamhouse.broker.storage import ObjectStore

from .keyfilter import HASH_NAME, KeyFilter

log = logging.getLogger("streamhouse.log")

SUFFIX = ".parquet"
ROW_GROUP_ROWS = 16 * 1024  # ~1.6 MB of 100-byte values: narrow reads fetch little
COMPRESSION = "zstd"
#: Values are what scans decode most (JSON fields): LZ4 decodes ~35% faster than zstd, for
#: ~50% more companion bytes (a GROUP BY over a JSON field: 2.4 s -> 1.8 s on 10M events).
VALUE_COMPRESSION = "lz4"
#: Companions queued per partition; past this the oldest is dropped (its scans decode the segment).
MAX_PENDING = 4
_STAT_COLUMNS = ["offset", "timestamp"]
#: Footer key of the summary (key filters per row group) the scan planner prunes by.
SUMMARY_KEY = b"streamhouse.summary"
SUMMARY_VERSION = 2
#: Column chunks closer than this are fetched as one range.
_MERGE_GAP = 64 * 1024

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
    """The Parquet bytes of a segment's batches (``ARROW_SCHEMA``, schema kept in the footer),
    with the key filter of each row group.

    The filters' bits sit between the last column chunk and the footer, which Parquet readers
    never look at; the footer's ``streamhouse.summary`` says how long they are (they end where
    the footer starts) and how each is built. Inside the footer they would make every open of
    the file slower: readers copy the footer's key-value metadata each time.
    """
    table = pa.Table.from_batches([batches_to_arrow(batches, partition)], schema=ARROW_SCHEMA)
    filters = [
        (len(part), KeyFilter.build(part.column("key")))
        for part in (
            table.slice(at, ROW_GROUP_ROWS) for at in range(0, table.num_rows, ROW_GROUP_ROWS)
        )
    ]
    bits = b"".join(f.bits.tobytes() for _, f in filters)
    summary = {
        "version": SUMMARY_VERSION,
        "key_hash": HASH_NAME,
        "filters_bytes": len(bits),
        "row_groups": [{"rows": rows, **f.header()} for rows, f in filters],
    }
    table = table.replace_schema_metadata({SUMMARY_KEY: json.dumps(summary).encode()})
    out = io.BytesIO()
    pq.write_table(
        table,
        out,
        row_group_size=ROW_GROUP_ROWS,
        compression={**{c: COMPRESSION for c in ARROW_SCHEMA.names}, "value": VALUE_COMPRESSION},
        write_statistics=_STAT_COLUMNS,
        # Offsets and timestamps ascend (mostly): delta-packed they are a fraction of their
        # dictionary encoding and decode about twice as fast. Keys and values are mostly
        # distinct, where a dictionary only costs; the partition is one value.
        use_dictionary=["partition"],
        column_encoding={"offset": "DELTA_BINARY_PACKED", "timestamp": "DELTA_BINARY_PACKED"},
    )
    data = out.getvalue()
    footer_start = len(data) - footer_length(data) - 8
    return data[:footer_start] + bits + data[footer_start:]


@dataclass(frozen=True)
class RowGroupSummary:
    """What one row group holds; a bound is None when its statistics are missing."""

    offset_min: int | None
    offset_max: int | None
    time_min: int | None  # the true smallest record timestamp, not a batch's first one
    time_max: int | None
    keys: KeyFilter | None  # None: no usable filter, every key may be present

    def may_match(
        self,
        start: int,
        end: int,
        time_min_ms: int | None,
        time_max_ms: int | None,
        key_hashes: np.ndarray | None,
    ) -> bool:
        if self.offset_max is not None and self.offset_max < start:
            return False
        if self.offset_min is not None and self.offset_min >= end:
            return False
        if time_min_ms is not None and self.time_max is not None and self.time_max < time_min_ms:
            return False
        if time_max_ms is not None and self.time_min is not None and self.time_min >= time_max_ms:
            return False
        if key_hashes is not None and self.keys is not None:
            return self.keys.may_contain_any(key_hashes)
        return True


@dataclass(frozen=True)
class CompanionFooter:
    """A companion's Parquet footer and the summaries the scan planner prunes by.

    Attributes:
        metadata: the Parquet footer, so the file can be read again without fetching it.
        row_groups: one summary per row group, in file order.
        nbytes: an estimate of the memory this footer holds (for caches).
    """

    metadata: pq.FileMetaData
    row_groups: tuple[RowGroupSummary, ...]
    nbytes: int

    def wanted(
        self,
        start: int,
        end: int,
        time_min_ms: int | None = None,
        time_max_ms: int | None = None,
        key_hashes: np.ndarray | None = None,
    ) -> list[int]:
        """The row groups that may hold offsets ``[start, end)`` within the bounds.

        ``key_hashes`` (from :func:`hash_keys`) keeps only groups whose filter may hold one of
        those keys; an empty array matches nothing (a key set of only nulls).
        """
        return [
            i
            for i, group in enumerate(self.row_groups)
            if group.may_match(start, end, time_min_ms, time_max_ms, key_hashes)
        ]

    def byte_ranges(self, groups: Sequence[int], columns: Sequence[str]) -> list[tuple[int, int]]:
        """The file ranges ``[start, end)`` of those groups' column chunks, merged when adjacent."""
        wanted = set(columns)
        spans = []
        for g in groups:
            group = self.metadata.row_group(g)
            for c in range(group.num_columns):  # leaf columns: a nested field has several
                chunk = group.column(c)
                if chunk.path_in_schema.split(".", 1)[0] not in wanted:
                    continue
                first = chunk.data_page_offset
                if chunk.has_dictionary_page and chunk.dictionary_page_offset:
                    first = min(first, chunk.dictionary_page_offset)
                spans.append((first, first + chunk.total_compressed_size))
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(spans):
            if merged and lo <= merged[-1][1] + _MERGE_GAP:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        return merged


def footer_length(tail: bytes) -> int:
    """The length of the Parquet footer that ``tail`` (the file's last bytes) ends with.

    Raises:
        ValueError: ``tail`` does not end like a Parquet file.
    """
    if len(tail) < 12 or tail[-4:] != b"PAR1":
        raise ValueError("not a Parquet file (no trailing magic)")
    length = int.from_bytes(tail[-8:-4], "little", signed=True)
    if length <= 0:
        raise ValueError(f"Parquet footer length {length} is invalid")
    return length


class IncompleteTail(Exception):
    """The bytes given end the file but do not reach back to the start of its key filters."""

    def __init__(self, needed: int) -> None:
        super().__init__(f"the last {needed} bytes are needed")
        self.needed = needed


def parse_footer(tail: bytes) -> CompanionFooter:
    """The footer and summaries of a companion from its last bytes (or the whole file).

    Raises:
        IncompleteTail: the key filters start before ``tail`` (ask for ``needed`` bytes).
        ValueError: the bytes are not a whole companion footer.
    """
    length = footer_length(tail)
    if length + 8 > len(tail):
        raise ValueError(f"footer of {length} bytes, only {len(tail) - 8} given")
    footer = tail[len(tail) - length - 8 :]
    try:
        metadata = pq.read_metadata(pa.BufferReader(b"PAR1" + footer))
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"unreadable Parquet footer: {exc}") from exc
    names = metadata.schema.to_arrow_schema().names
    if "offset" not in names or "timestamp" not in names:
        raise ValueError("not a companion (no offset/timestamp column)")
    filters = _key_filters(metadata, tail, len(tail) - length - 8)
    off_col, ts_col = names.index("offset"), names.index("timestamp")
    groups = []
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        off_min, off_max = _min_max(group.column(off_col).statistics)
        ts_min, ts_max = _min_max(group.column(ts_col).statistics)
        keys = filters[i] if filters is not None else None
        groups.append(RowGroupSummary(off_min, off_max, ts_min, ts_max, keys))
    nbytes = length + sum(g.keys.nbytes for g in groups if g.keys is not None)
    return CompanionFooter(metadata, tuple(groups), nbytes)


def _min_max(stats: pq.Statistics | None) -> tuple[int | None, int | None]:
    if stats is None or not stats.has_min_max:
        return None, None
    return int(stats.min_raw), int(stats.max_raw)


def _key_filters(
    metadata: pq.FileMetaData, tail: bytes, footer_start: int
) -> list[KeyFilter] | None:
    """The row groups' key filters; None (no key pruning) when absent, foreign or inconsistent.

    ``footer_start`` is where the footer begins in ``tail``; the filters' bits end there.
    """
    raw = (metadata.metadata or {}).get(SUMMARY_KEY)
    if raw is None:
        return None
    try:
        summary = json.loads(raw)
        if summary.get("version") != SUMMARY_VERSION or summary.get("key_hash") != HASH_NAME:
            return None
        stored = summary["row_groups"]
        total = int(summary["filters_bytes"])
        if len(stored) != metadata.num_row_groups or total < 0:
            return None
        if total > footer_start:
            raise IncompleteTail(len(tail) - footer_start + total)
        at = footer_start - total
        filters = []
        for i, entry in enumerate(stored):
            if int(entry["rows"]) != metadata.row_group(i).num_rows:
                return None
            size = int(entry["nbits"]) // 8
            filters.append(KeyFilter.from_parts(entry, tail[at : at + size]))
            at += size
        return filters if at == footer_start else None
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("companion key filters unreadable; keys are not pruned", exc_info=True)
        return None


def read_row_groups(
    source: object,
    footer: CompanionFooter,
    groups: Sequence[int],
    columns: Sequence[str] | None = None,
    partition: int | None = None,
) -> pa.RecordBatch:
    """Those row groups' rows from a file-like ``source`` (only their column chunks are read).

    Columns left out of ``columns`` come back as nulls (zeros or empty lists where the schema
    allows no null), so the batch keeps ``ARROW_SCHEMA``; ``partition``, when given, fills the
    partition column without reading it.
    """
    if not groups:
        return _empty()
    wanted = list(ARROW_SCHEMA.names if columns is None else columns)
    if partition is not None and "partition" in wanted:
        wanted.remove("partition")
    pf = pq.ParquetFile(source, metadata=footer.metadata)
    table = pf.read_row_groups(list(groups), columns=wanted)
    return _to_scan_schema(table, partition)


def _to_scan_schema(table: pa.Table, partition: int | None = None) -> pa.RecordBatch:
    n = table.num_rows
    columns = []
    for field in ARROW_SCHEMA:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type).combine_chunks())
        elif field.name == "partition" and partition is not None:
            columns.append(pa.array(np.full(n, partition, dtype=np.int32)))
        else:
            columns.append(_nulls(n, field))
    return pa.RecordBatch.from_arrays(columns, schema=ARROW_SCHEMA)


def _nulls(n: int, field: pa.Field) -> pa.Array:
    """A column that was not read; a non-nullable one gets empty values instead of nulls."""
    if field.nullable:
        return pa.nulls(n, field.type)
    if pa.types.is_list(field.type):
        offsets = pa.array(np.zeros(n + 1, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, pa.array([], field.type.value_type))
    return pa.array(np.zeros(n, dtype=np.int64)).cast(field.type)


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
    footer = parse_footer(data)
    groups = footer.wanted(start, end, time_min_ms, time_max_ms)
    return read_row_groups(pa.BufferReader(data), footer, groups)


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

    @property
    def busy(self) -> bool:
        """Whether companions are queued or being written."""
        return bool(self._queue) or (self._task is not None and not self._task.done())

    async def _write(self, record: SegmentRecord, batches: Sequence[bytes]) -> None:
        await write_companion(self._store, record, batches, self._is_live)


async def write_companion(
    store: ObjectStore,
    record: SegmentRecord,
    batches: Sequence[bytes],
    is_live: Callable[[SegmentRecord], bool],
) -> bool:
    """Encodes and stores one segment's companion; False when it was not (logged and counted).

    A companion whose segment was deleted meanwhile is removed again, so it cannot outlive it.
    """
    key = companion_key(record.object_key)
    try:
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(_POOL, encode_companion, batches, record.partition)
        await store.put(key, data)
        if not is_live(record):  # deleted while we wrote: do not leave it behind
            await store.delete(key)
            return False
    except asyncio.CancelledError:
        raise
    except Exception:
        COMPANION_WRITES.labels(outcome="error").inc()
        log.warning("companion %s not written; scans decode the segment", key, exc_info=True)
        return False
    COMPANION_WRITES.labels(outcome="written").inc()
    return True
