"""A point-in-time scan of one topic: pruned pieces fetched in parallel, decoded to Arrow.

``open_scan`` snapshots every chosen partition at one instant (no await between the reads), so
the scan sees the log up to the high watermarks at its start and nothing appended later. The
pieces (``plan.py``) are then loaded a bounded number at a time, in order. A committed segment
is read from its columnar companion when one was written: its footer (kept in memory,
``companions.py``) says which row groups may match - offsets, true timestamps, key filter - and
only those row groups' column chunks are fetched by range; a segment none of whose row groups
match is skipped. Without a companion, the segment is read through its own ranged reader over
the agent's segment cache (object store behind it); the in-memory tail through
``PartitionLog.read``. Those batches are pruned by their headers and decoded by the compiled
codec (``batches_to_arrow``) in a worker thread. Rows are then filtered exactly
(``filters.py``). At most ``max_in_flight`` pieces are held decoded
at once; the topic is never materialised whole.

The log lives on the asyncio loop, while DuckDB pulls a ``pyarrow.RecordBatchReader`` from its
own threads: :meth:`TopicScan.reader` bridges the two by running each step on the loop, so the
reader must be consumed off the loop thread (e.g. inside ``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from streamhouse.broker.log import LogManager, PartitionLog
from streamhouse.broker.log.keyfilter import hash_keys
from streamhouse.broker.records import ARROW_SCHEMA, batches_to_arrow, parse_header
from streamhouse.broker.records.partitioner import partition_for_key
from streamhouse.broker.segments import SegmentReader

from .companions import footers_of, read_companion_rows
from .filters import filter_rows
from .plan import Piece, plan_partition, snapshot_of, summary_admits
from .remote import snapshot_remote
from .spec import ScanSpec

log = logging.getLogger("streamhouse.engine")

SCAN_SCHEMA = ARROW_SCHEMA
READ_CHUNK_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_IN_FLIGHT = 4
#: Columns every companion read includes: the exact filters need them (the partition is known).
_ALWAYS_READ = ("offset",)


@dataclass
class ScanStats:
    """What a scan touched; filled in as pieces are read (final once the scan is consumed)."""

    partitions_read: int = 0
    segments_read: int = 0  # committed segments read, plus 1 per in-memory tail read
    segments_skipped: int = 0  # pruned by metadata without reading
    bytes_read: int = 0  # record-batch or companion bytes fetched (before decoding)
    companions_read: int = 0  # committed segments read from their columnar companion
    rows: int = 0  # rows returned after the exact filters
    # Partitions no live agent leads: read up to their committed offset only (remote.py).
    partitions_committed_only: int = 0
    _partitions: set[int] = field(default_factory=set, repr=False)

    def _note(self, partition: int, nbytes: int) -> None:
        self._partitions.add(partition)
        self.partitions_read = len(self._partitions)
        self.segments_read += 1
        self.bytes_read += nbytes


async def open_scan(
    manager: LogManager,
    spec: ScanSpec,
    *,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    max_bytes_in_flight: int | None = None,
    keys_pick_partitions: bool = False,
    columns: frozenset[str] | None = None,
) -> TopicScan:
    """Snapshots the topic's partitions and plans which segments to read.

    Args:
        manager: the running log manager; partitions it does not lead are read from their
            leaders (``remote.py``), and a query never claims one.
        spec: the pushed-down bounds.
        max_in_flight: pieces fetched and decoded concurrently (bounds memory).
        max_bytes_in_flight: also bounds the decoded bytes held ahead of the consumer (a
            piece not decoded yet counts as the largest seen); one piece is always allowed.
        keys_pick_partitions: with ``spec.keys``, read only the partitions Kafka's default
            partitioner sends those keys to. Only correct when every producer of the topic used
            that partitioner, so it is off unless the caller knows.
        columns: the scan columns the query uses (None: all). Companions are read for these
            only (plus what the exact filters need); the others come back as nulls (zeros and
            empty lists where the schema has no null), so a caller must name every column it
            reads.

    Raises:
        UnknownTopicError: no such topic.
        RemotePartitionError: the leader of a wanted partition could not be read.
    """
    topic = await manager.metadata.get_topic(spec.topic)
    wanted = range(topic.partitions)
    if spec.partitions is not None:
        wanted = [p for p in wanted if p in spec.partitions]
    if keys_pick_partitions and spec.keys is not None:
        by_key = {partition_for_key(k, topic.partitions) for k in spec.keys}
        wanted = [p for p in wanted if p in by_key]
    plogs = {p: plog for p in wanted if (plog := manager.local_partition(spec.topic, p))}
    # One instant for every local partition: no await from here until their snapshots are
    # taken. Partitions led elsewhere are snapshotted right after, from their leaders.
    snaps = [snapshot_of(plog) for plog in plogs.values()]
    remote = await snapshot_remote(manager, spec.topic, [p for p in wanted if p not in plogs])
    snaps = sorted([*snaps, *remote.snapshots], key=lambda snap: snap.partition)
    stats = ScanStats(partitions_committed_only=len(remote.leaderless))
    pieces: list[Piece] = []
    footers = footers_of(manager.cache)
    key_hashes = _key_hashes(spec)
    for snap in snaps:
        planned, skipped = plan_partition(spec, snap)
        stats.segments_skipped += skipped
        for piece in planned:
            footer = footers.cached(piece.segment.object_key) if piece.segment else None
            if footer is not None and not summary_admits(footer, piece, spec, key_hashes):
                stats.segments_skipped += 1  # its summary is in memory already: no read
            else:
                pieces.append(piece)
    tails = {**plogs, **remote.tails}
    return TopicScan(
        manager, spec, pieces, tails, stats, max_in_flight, max_bytes_in_flight, columns
    )


def _key_hashes(spec: ScanSpec) -> np.ndarray | None:
    if spec.keys is None:
        return None
    return hash_keys(pa.array(sorted(spec.keys), pa.binary()))


class TopicScan:
    """The planned pieces of one scan; single use, as an async iterator or a RecordBatchReader."""

    def __init__(
        self,
        manager: LogManager,
        spec: ScanSpec,
        pieces: Sequence[Piece],
        plogs: dict[int, PartitionLog],
        stats: ScanStats,
        max_in_flight: int,
        max_bytes_in_flight: int | None = None,
        columns: frozenset[str] | None = None,
    ) -> None:
        self._manager = manager
        self._spec = spec
        self._plogs = plogs
        self._key_hashes = _key_hashes(spec)
        self._footers = footers_of(manager.cache)
        self._companion_columns = _companion_columns(spec, columns)
        self._max_in_flight = max(1, max_in_flight)
        self._max_bytes_in_flight = max_bytes_in_flight
        self._largest_piece_bytes = 0
        self._loop = asyncio.get_running_loop()
        self._started = False
        #: Why reading failed while a consumer (DuckDB) pulled the reader: DuckDB passes the
        #: failure on only as text in its own error, so the query reports this instead.
        self.failure: Exception | None = None
        self.pieces: tuple[Piece, ...] = tuple(pieces)
        self.stats = stats
        self.schema = SCAN_SCHEMA

    async def batches(self) -> AsyncIterator[pa.RecordBatch]:
        """The matching rows piece by piece in plan order (partition, then offset)."""
        if self._started:
            raise RuntimeError("a scan can be consumed once")
        self._started = True
        pending: collections.deque[asyncio.Future[pa.RecordBatch]] = collections.deque()
        try:
            for piece in self.pieces:
                pending.append(asyncio.ensure_future(self._load(piece)))
                while len(pending) >= self._max_in_flight or self._over_byte_budget(pending):
                    batch = await pending.popleft()
                    self._largest_piece_bytes = max(self._largest_piece_bytes, batch.nbytes)
                    if batch.num_rows:
                        yield batch
            while pending:
                batch = await pending.popleft()
                if batch.num_rows:
                    yield batch
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _over_byte_budget(self, pending: collections.deque[asyncio.Future]) -> bool:
        if self._max_bytes_in_flight is None or not pending:
            return False
        held = 0
        for loading in pending:
            if loading.done() and not loading.cancelled() and loading.exception() is None:
                nbytes = loading.result().nbytes
                self._largest_piece_bytes = max(self._largest_piece_bytes, nbytes)
                held += nbytes
            else:
                held += self._largest_piece_bytes
        return held > self._max_bytes_in_flight

    def reader(self) -> pa.RecordBatchReader:
        """A RecordBatchReader over :meth:`batches`, for DuckDB; consume it off the loop thread."""
        return pa.RecordBatchReader.from_batches(SCAN_SCHEMA, self._pull(self.batches()))

    def _pull(self, agen: AsyncIterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        loop = self._loop
        if _on_loop_thread(loop):
            raise RuntimeError("read the scan's RecordBatchReader off the event loop thread")

        async def step() -> pa.RecordBatch | None:
            try:
                return await anext(agen)
            except StopAsyncIteration:
                return None

        try:
            while True:
                try:
                    batch = asyncio.run_coroutine_threadsafe(step(), loop).result()
                except Exception as exc:
                    self.failure = self.failure or exc
                    raise
                if batch is None:
                    return
                yield batch
        finally:
            # Never block here: the reader may be dropped on the loop thread itself.
            if not loop.is_closed():
                loop.call_soon_threadsafe(lambda: loop.create_task(agen.aclose()))

    async def _load(self, piece: Piece) -> pa.RecordBatch:
        if piece.segment is not None:
            decoded = await self._read_companion(piece)
            if decoded is not None:
                batch = await asyncio.to_thread(
                    filter_rows, decoded, piece.start, piece.end, self._spec
                )
                self.stats.rows += batch.num_rows
                return batch
        if piece.segment is None:
            raw = await self._read_tail(piece)
        else:
            raw = await self._read_segment(piece)
        kept = [b for b in raw if self._may_match(b, piece)]
        self.stats._note(piece.partition, sum(len(b) for b in raw))
        if not kept:
            return _empty()
        spec = self._spec

        def decode() -> pa.RecordBatch:
            decoded = batches_to_arrow(kept, piece.partition)
            return filter_rows(decoded, piece.start, piece.end, spec)

        batch = await asyncio.to_thread(decode)
        self.stats.rows += batch.num_rows
        return batch

    def _may_match(self, batch: bytes, piece: Piece) -> bool:
        """Header-only pruning: a batch outside the offsets or older than time_min is dropped."""
        header = parse_header(batch)
        if header.last_offset < piece.start or header.base_offset >= piece.end:
            return False
        tmin = self._spec.time_min_ms
        return tmin is None or header.max_timestamp >= tmin

    async def _read_companion(self, piece: Piece) -> pa.RecordBatch | None:
        """The piece's candidate rows from the segment's companion; None when there is none.

        An empty batch when the companion's summary excludes every row group (counted as a
        skipped segment: only its footer was looked at).
        """
        record = piece.segment
        assert record is not None
        footers = self._footers
        try:
            footer = await footers.get(record.object_key)
        except Exception:  # the companion is only a faster copy: fall back to the segment
            log.warning("companion of %s unreadable", record.object_key, exc_info=True)
            return None
        if footer is None:
            return None
        groups = summary_admits(footer, piece, self._spec, self._key_hashes)
        if not groups:
            self.stats.segments_skipped += 1
            return _empty()
        try:
            size = footers.size_of(record.object_key)
            if size is None:  # evicted meanwhile: its size is learnt again with the footer
                footer = await footers.get(record.object_key)
                size = footers.size_of(record.object_key)
                if footer is None or size is None:
                    return None
            decoded, nbytes = await read_companion_rows(
                self._manager.cache,
                record.object_key,
                footer,
                size,
                groups,
                self._companion_columns,
                piece.partition,
            )
        except Exception:
            log.warning("companion of %s undecodable", record.object_key, exc_info=True)
            footers.forget(record.object_key)
            return None
        self.stats._note(piece.partition, nbytes)
        self.stats.companions_read += 1
        return decoded

    async def _read_segment(self, piece: Piece) -> list[bytes]:
        record = piece.segment
        assert record is not None
        cache = self._manager.cache

        async def fetch(start: int, end: int) -> bytes:
            return await cache.get_range(record.object_key, start, end, size=record.size_bytes)

        reader = await SegmentReader.open(fetch, record.size_bytes, name=record.object_key)
        offset = piece.start
        tmin = self._spec.time_min_ms
        if tmin is not None and record.min_timestamp < tmin:
            # Batches before the first one reaching tmin hold no matching record.
            found = await reader.offset_for_timestamp(tmin)
            if found is None:
                return []
            offset = max(offset, found)
        return await _batches_between(reader.read, offset, piece.end)

    async def _read_tail(self, piece: Piece) -> list[bytes]:
        return await _batches_between(self._plogs[piece.partition].read, piece.start, piece.end)


async def _batches_between(
    read: Callable[[int, int], Awaitable[list[bytes]]], offset: int, end: int
) -> list[bytes]:
    """The batches holding offsets ``[offset, end)``, read a chunk at a time with ``read``."""
    out: list[bytes] = []
    while offset < end:
        got = await read(offset, READ_CHUNK_BYTES)
        if not got:
            break
        out.extend(got)
        offset = parse_header(got[-1]).last_offset + 1
    return out


def _companion_columns(spec: ScanSpec, columns: frozenset[str] | None) -> list[str] | None:
    if columns is None:
        return None
    wanted = set(columns)
    if spec.keys is not None:
        wanted.add("key")
    if spec.time_min_ms is not None or spec.time_max_ms is not None:
        wanted.add("timestamp")
    return [n for n in SCAN_SCHEMA.names if n in _ALWAYS_READ or n in wanted]


def _empty() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=SCAN_SCHEMA)


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
