"""One partition's log as this agent leads it: append, read, timestamp lookup, seal, retention.

Offsets are assigned under the partition lock and the stamped batches are written to the WAL in
that same order, so the order of offsets, WAL entries and in-memory visibility always agree.
Waiting for durability (an fsync shared by group commit, or a segment commit) happens after the
lock is released, so concurrent writers share one fsync.

A batch becomes visible to readers once the WAL holds it; it stays in memory until the segment
that contains it is committed in the metadata store (a conditional write on the lease epoch)
and added to the partition index. Sealed segments are committed strictly in offset order.

Batches of idempotent producers are checked against the producers' state (``producers.py``)
under the same lock, before anything is stored; a retried batch is not stored again. After a
segment commit, the last batch of each producer in it is recorded in the metadata store, so
the state outlives the WAL.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from streamhouse.broker import metrics
from streamhouse.broker.log.companion import CompanionWriter, companion_key
from streamhouse.broker.log.config import Acks
from streamhouse.broker.log.errors import NotLeaderError, OffsetOutOfRangeError
from streamhouse.broker.log.keys import segment_key, stream_id
from streamhouse.broker.log.memory import MemorySegment
from streamhouse.broker.log.producers import Admission, ProducerStates, next_sequence
from streamhouse.broker.metadata import (
    FencedError,
    MetadataError,
    MetadataStore,
    PartitionIndex,
    PartitionState,
    ProducerPartitionState,
    SegmentRecord,
    Topic,
)
from streamhouse.broker.records import (
    BatchHeader,
    iter_records,
    parse_header,
    set_base_offset,
    validate_batch,
)
from streamhouse.broker.segments import SegmentCorruptError, SegmentReader, encode_segment
from streamhouse.broker.storage import ObjectNotFoundError, ObjectStore, SegmentCache
from streamhouse.broker.wal import SyncPolicy, WriteAheadLog

log = logging.getLogger("streamhouse.log")

DEFAULT_MAX_READ_BYTES = 1024 * 1024


@dataclass(frozen=True)
class AppendResult:
    """Where an append landed: the base offset of each batch, in request order."""

    base_offsets: list[int]
    last_offset: int
    log_append_time: int


@dataclass
class PartitionContext:
    """The shared services a partition log uses (owned by the LogManager)."""

    metadata: MetadataStore
    store: ObjectStore
    cache: SegmentCache
    wal: WriteAheadLog | None
    holder: str
    default_sync: SyncPolicy
    commit_on_all: bool
    compression: str
    upload_slots: asyncio.Semaphore
    upload_retry_max_s: float
    reader_cache_size: int
    max_sealing_segments: int


class PartitionLog:
    """The log of one partition while this agent holds its lease at ``epoch``."""

    def __init__(
        self,
        ctx: PartitionContext,
        topic: Topic,
        partition: int,
        state: PartitionState,
        segments: Sequence[SegmentRecord],
        epoch: int,
    ) -> None:
        self._ctx = ctx
        self.topic = topic
        self.partition = partition
        self.epoch = epoch
        self.stream_id = stream_id(topic.topic_id, partition)
        self._index = PartitionIndex(segments)
        self.log_start_offset = state.log_start_offset
        self.committed_offset = state.next_offset  # one past the last offset in a committed segment
        self._next_offset = state.next_offset
        self._open = MemorySegment(next_offset=state.next_offset)
        self._sealing: collections.deque[MemorySegment] = collections.deque()
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()  # replaced on every change; waiters hold the old one
        self._flusher: asyncio.Task[None] | None = None
        self._readers: collections.OrderedDict[str, SegmentReader] = collections.OrderedDict()
        self._fenced_reason = ""
        self._stopped_reason = ""  # appends refused while the partition is handed over
        self.producers = ProducerStates(topic.name, partition)
        self.companions = CompanionWriter(ctx.store, partition, self._is_live)

    # ----------------------------------------------------------------- state
    @property
    def high_watermark(self) -> int:
        """One past the last offset readers can see."""
        return self._next_offset

    @property
    def fenced(self) -> bool:
        return bool(self._fenced_reason)

    @property
    def writable(self) -> bool:
        """Leading and accepting appends (not fenced, not being handed over)."""
        return not (self._fenced_reason or self._stopped_reason)

    @property
    def memory_bytes(self) -> int:
        return self._open.size_bytes + sum(s.size_bytes for s in self._sealing)

    @property
    def segments(self) -> list[SegmentRecord]:
        return list(self._index)

    def _is_live(self, record: SegmentRecord) -> bool:
        return record.last_offset >= self.log_start_offset

    def fence(self, reason: str, *, lost: bool = True) -> None:
        """Stop writing: another agent holds the lease now. Reads of what we hold still work.

        ``lost=False`` is the orderly end of a hand-over, which is not counted as a fencing.
        """
        if not self._fenced_reason:
            self._fenced_reason = reason
            if lost:
                metrics.LEASE_CHANGES.labels(reason="fenced").inc()
                log.warning("%s[%d] fenced: %s", self.topic.name, self.partition, reason)
            self._notify()

    def stop_appends(self, reason: str) -> None:
        """Refuses new appends while what memory holds is committed (hand-over)."""
        self._stopped_reason = reason
        self._notify()

    def resume_appends(self) -> None:
        self._stopped_reason = ""

    def _check_writable(self) -> None:
        reason = self._fenced_reason or self._stopped_reason
        if reason:
            raise NotLeaderError(self.topic.name, self.partition, reason)

    # ---------------------------------------------------------------- append
    async def append(self, batches: Sequence[bytes], acks: Acks = Acks.LEADER) -> AppendResult:
        """Assigns dense offsets to ``batches`` and stores them; waits as ``acks`` asks.

        Every batch is validated (CRC, lengths, record count, size limit, and the producer
        sequence for idempotent batches) before any is stored, so a bad batch rejects the whole
        request and nothing of it becomes visible. A retried idempotent batch is not stored
        again: its result is the base offset the first attempt got.

        Raises:
            NotLeaderError, RecordBatchError, WalFullError,
            ProducerFencedError, OutOfOrderSequenceError (nothing stored).
        """
        self._check_writable()
        limit = self.topic.config.max_message_bytes
        headers = [validate_batch(batch, max_batch_bytes=limit) for batch in batches]
        idempotent = any(header.producer_id >= 0 for header in headers)
        stored = await self._look_up_producers(headers) if idempotent else {}
        async with self._lock:
            await self._wait_for_upload_room()
            self._check_writable()
            if idempotent:
                for producer_id, state in stored.items():
                    self.producers.adopt(producer_id, state)
                admission = self.producers.admit(headers, self._next_offset)
            else:
                admission = Admission.plain(headers, self._next_offset)
            first = self._next_offset
            written = await self._store(batches, headers, admission) if admission.new else 0
        duplicates = len(batches) - len(admission.new)
        if duplicates:
            metrics.DUPLICATE_BATCHES.labels(self.topic.name).inc(duplicates)
        if written:
            metrics.APPENDED_RECORDS.labels(self.topic.name).inc(admission.next_offset - first)
            metrics.APPENDED_BYTES.labels(self.topic.name).inc(written)
            self._notify()
        await self._wait_durable(acks, admission.last_offset + 1)
        return AppendResult(admission.base_offsets, admission.last_offset, int(time.time() * 1000))

    async def _store(
        self, batches: Sequence[bytes], headers: Sequence[BatchHeader], admission: Admission
    ) -> int:
        """Stamps and stores the admitted batches (partition lock held); returns their bytes."""
        bases = admission.base_offsets
        stamped = [set_base_offset(batches[i], bases[i]) for i in admission.new]
        if self._ctx.wal is not None:
            # Written (not yet fsynced) before it becomes visible; raises WalFullError with
            # nothing written, in which case no offset is consumed.
            await self._ctx.wal.append_many(
                [(self.stream_id, batch) for batch in stamped], sync=SyncPolicy.NEVER
            )
        for index, batch in zip(admission.new, stamped, strict=True):
            header, base = headers[index], bases[index]
            last = base + header.last_offset_delta
            self._open.add(batch, base, last + 1, header.max_timestamp)
            if header.producer_id >= 0:
                self._open.note_producer(
                    header.producer_id,
                    header.producer_epoch,
                    next_sequence(header.base_sequence, header.last_offset_delta),
                    last,
                )
        self._next_offset = admission.next_offset
        self.producers.apply(admission)
        if self._open.size_bytes >= self.topic.config.segment_bytes:
            self.request_seal()
        return sum(len(batch) for batch in stamped)

    async def _look_up_producers(
        self, headers: Sequence[BatchHeader]
    ) -> dict[int, ProducerPartitionState | None]:
        """State of producers this leader has not seen yet (first write after a restart or a
        change of leader), read from the metadata store before the partition lock is taken."""
        wanted = sorted(self.producers.to_look_up(headers))
        if not wanted:
            return {}
        metadata = self._ctx.metadata
        found = await asyncio.gather(
            *(metadata.get_producer_state(pid, self.topic.name, self.partition) for pid in wanted)
        )
        return dict(zip(wanted, found, strict=True))

    async def _wait_for_upload_room(self) -> None:
        """Backpressure: memory holds at most a few sealed segments waiting for upload."""
        while len(self._sealing) >= self._ctx.max_sealing_segments and not self.fenced:
            self.ensure_flushing()
            await self._changed.wait()

    def _sync_policy(self) -> SyncPolicy:
        override = self.topic.config.wal_sync
        return SyncPolicy(override) if override else self._ctx.default_sync

    async def _wait_durable(self, acks: Acks, next_offset: int) -> None:
        wal = self._ctx.wal
        if acks == Acks.NONE:
            return
        if acks == Acks.ALL and (wal is None or self._ctx.commit_on_all):
            if self.committed_offset < next_offset:
                self.request_seal()
                await self.wait_committed(next_offset)
            return
        if wal is not None and (acks == Acks.ALL or self._sync_policy() == SyncPolicy.ALWAYS):
            await wal.sync()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_committed(self, next_offset: int) -> None:
        """Returns once every offset below ``next_offset`` is in a committed segment."""
        while self.committed_offset < next_offset and not self.fenced:
            await self._changed.wait()
        if self.committed_offset < next_offset:
            raise NotLeaderError(self.topic.name, self.partition, self._fenced_reason)

    async def wait_for_data(self, offset: int, timeout_s: float) -> bool:
        """Long-poll support: True once the high watermark passes ``offset``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.high_watermark <= offset:
                    await self._changed.wait()
        return self.high_watermark > offset

    # ------------------------------------------------------------------ read
    async def read(self, offset: int, max_bytes: int = DEFAULT_MAX_READ_BYTES) -> list[bytes]:
        """Batches from the one containing ``offset`` up to about ``max_bytes``.

        The first batch is returned whole even if larger than ``max_bytes`` (as Kafka does),
        and it may start before ``offset``. Reading at the high watermark returns nothing.
        """
        end = self.high_watermark
        if offset < self.log_start_offset or offset > end:
            raise OffsetOutOfRangeError(
                self.topic.name, self.partition, offset, self.log_start_offset, end
            )
        out: list[bytes] = []
        total = 0
        while offset < end and (not out or total < max_bytes):
            batches = await self._read_once(offset, max_bytes - total if out else max_bytes)
            if not batches:
                break
            out.extend(batches)
            total += sum(len(b) for b in batches)
            last = batches[-1]
            offset = parse_header(last).last_offset + 1
        return out

    async def _read_once(self, offset: int, max_bytes: int) -> list[bytes]:
        for segment in (*self._sealing, self._open):
            if segment and segment.base_offset <= offset < segment.next_offset:
                return segment.read(offset, max_bytes)
        record = self._index.find(offset)
        if record is None:
            if offset < self.log_start_offset:
                raise OffsetOutOfRangeError(
                    self.topic.name,
                    self.partition,
                    offset,
                    self.log_start_offset,
                    self._next_offset,
                )
            return []
        try:
            try:
                return await (await self._reader(record)).read(offset, max_bytes)
            except SegmentCorruptError:
                # The local cached copy may be the damaged one: drop it and read the object
                # store's bytes once more; a second failure is real corruption and is raised.
                self._readers.pop(record.object_key, None)
                self._ctx.cache.invalidate(record.object_key)
                return await (await self._reader(record)).read(offset, max_bytes)
        except ObjectNotFoundError as exc:  # deleted by retention while we were reading
            raise OffsetOutOfRangeError(
                self.topic.name, self.partition, offset, self.log_start_offset, self._next_offset
            ) from exc

    async def _reader(self, record: SegmentRecord) -> SegmentReader:
        key = record.object_key
        reader = self._readers.get(key)
        if reader is not None:
            self._readers.move_to_end(key)
            return reader
        cache = self._ctx.cache

        async def fetch(start: int, end: int) -> bytes:
            return await cache.get_range(key, start, end, size=record.size_bytes)

        reader = await SegmentReader.open(fetch, record.size_bytes, name=key)
        self._readers[key] = reader
        while len(self._readers) > self._ctx.reader_cache_size:
            self._readers.popitem(last=False)
        return reader

    # ------------------------------------------------------- offset lookups
    def earliest_offset(self) -> int:
        return self.log_start_offset

    def latest_offset(self) -> int:
        return self.high_watermark

    async def offset_for_timestamp(self, timestamp: int) -> int | None:
        """The first offset whose record timestamp is >= ``timestamp``; None if there is none."""
        found = await self.record_for_timestamp(timestamp)
        return None if found is None else found[0]

    async def record_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record at or after the log start whose timestamp
        is >= ``timestamp`` (Kafka's ListOffsets by time); None if there is none.

        The indexes find the first batch reaching ``timestamp`` without reading data. Only
        when that batch's matching records all lie below the log start (hidden by
        DeleteRecords) is the log scanned on from there, skipping segments that cannot match.
        """
        start = self.log_start_offset
        batch = await self._first_batch_reaching(timestamp)
        if batch is None:
            return None
        found = _first_record_reaching(batch, timestamp, start)
        if found is not None:
            return found
        return await self._scan_for_timestamp(
            max(start, parse_header(batch).last_offset + 1), timestamp, start
        )

    async def max_timestamp_record(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record holding the largest timestamp at or after
        the log start (ListOffsets MAX_TIMESTAMP); None when no record is readable.

        Whole segments and batches answer from their recorded maximum; only the one batch
        straddling the log start (after DeleteRecords) is decoded, and only the committed
        segment holding the log start is read, so hidden records never count.
        """
        start = self.log_start_offset
        best = -1
        for record in self._index:
            if record.base_offset >= start:
                best = max(best, record.max_timestamp)
            elif record.last_offset >= start:
                best = max(best, await self._visible_max(start, record.last_offset + 1))
        for segment in (*self._sealing, self._open):
            if segment.base_offset >= start:
                best = max(best, max(segment.max_timestamps, default=-1))
                continue
            ends = [*segment.base_offsets[1:], segment.next_offset]
            for batch, base, end, max_ts in zip(
                segment.batches, segment.base_offsets, ends, segment.max_timestamps, strict=True
            ):
                if base >= start:
                    best = max(best, max_ts)
                elif end > start:
                    best = max(best, _visible_max_of(batch, start))
        if best < 0:
            return None
        return await self.record_for_timestamp(best)

    async def _first_batch_reaching(self, timestamp: int) -> bytes | None:
        record = self._index.find_by_timestamp(timestamp)
        if record is not None:
            batch = await (await self._reader(record)).find_batch_for_timestamp(timestamp)
            if batch is not None:
                return batch
        for segment in (*self._sealing, self._open):
            batch = segment.batch_for_timestamp(timestamp)
            if batch is not None:
                return batch
        return None

    async def _scan_for_timestamp(
        self, offset: int, timestamp: int, start: int
    ) -> tuple[int, int] | None:
        while offset < self.high_watermark:
            record = self._index.find(offset)
            if record is not None and record.max_timestamp < timestamp:
                offset = record.last_offset + 1
                continue
            batches = await self.read(offset, DEFAULT_MAX_READ_BYTES)
            if not batches:
                return None
            for batch in batches:
                header = parse_header(batch)
                if header.max_timestamp >= timestamp:
                    found = _first_record_reaching(batch, timestamp, start)
                    if found is not None:
                        return found
                offset = max(offset, header.last_offset + 1)
        return None

    async def _visible_max(self, start: int, end: int) -> int:
        """The largest record timestamp in ``[start, end)`` (one committed segment's part)."""
        best = -1
        offset = start
        while offset < end:
            batches = await self.read(offset, DEFAULT_MAX_READ_BYTES)
            if not batches:
                break
            for batch in batches:
                header = parse_header(batch)
                if header.base_offset >= end:
                    return best
                if header.base_offset >= start:
                    best = max(best, header.max_timestamp)
                else:
                    best = max(best, _visible_max_of(batch, start))
                offset = max(offset, header.last_offset + 1)
        return best

    # ------------------------------------------------------------------ seal
    def seal_due(self, now: float) -> bool:
        """Moves the open segment to the sealing queue when it is big or old enough."""
        config = self.topic.config
        if self._open and (
            self._open.size_bytes >= config.segment_bytes
            or self._open.age_ms(now) >= config.segment_ms
        ):
            self._seal_open()
        return bool(self._sealing)

    def request_seal(self) -> None:
        """Seal whatever is open now (acks=all waiting for a commit) and start uploading."""
        if self._open:
            self._seal_open()
        self.ensure_flushing()

    def _seal_open(self) -> None:
        self._sealing.append(self._open)
        self._open = MemorySegment(next_offset=self._next_offset)

    def ensure_flushing(self) -> None:
        if self._sealing and not self.fenced and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.create_task(
                self._flush_sealed(), name=f"flush {self.topic.name}[{self.partition}]"
            )

    async def flush(self) -> None:
        """Seals the open segment and waits until everything is committed (shutdown path)."""
        async with self._lock:
            if self._open:
                self._seal_open()
        while self._sealing and not self.fenced:
            self.ensure_flushing()
            if self._flusher is not None:
                await asyncio.shield(self._flusher)
        if self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)  # it may still record producer state

    async def _flush_sealed(self) -> None:
        delay = 0.05
        while self._sealing and not self.fenced:
            try:
                async with self._ctx.upload_slots:
                    await self._commit_one(self._sealing[0])
                delay = 0.05
            except FencedError as exc:
                self.fence(str(exc))
            except asyncio.CancelledError:
                raise
            except Exception:  # retried: the data stays readable in memory and in the WAL
                metrics.SEGMENT_UPLOADS.labels(outcome="error").inc()
                log.exception("segment upload for %s[%d] failed", self.topic.name, self.partition)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._ctx.upload_retry_max_s)
        self._notify()

    async def _commit_one(self, segment: MemorySegment) -> None:
        started = time.monotonic()
        data, info = await asyncio.to_thread(
            encode_segment, segment.batches, compression=self._ctx.compression
        )
        key = segment_key(self.topic.topic_id, self.partition, info.base_offset, self.epoch)
        await self._ctx.cache.put(key, data)
        record = SegmentRecord(
            topic=self.topic.name,
            partition=self.partition,
            base_offset=info.base_offset,
            last_offset=info.last_offset,
            record_count=info.record_count,
            min_timestamp=info.min_timestamp,
            max_timestamp=info.max_timestamp,
            size_bytes=info.size_bytes,
            object_key=key,
            writer_epoch=self.epoch,
        )
        try:
            await self._ctx.metadata.commit_segment(
                record, holder=self._ctx.holder, epoch=self.epoch
            )
        except FencedError:
            # Our object is not referenced by anything; remove it so it costs nothing.
            self._ctx.cache.invalidate(key)
            with contextlib.suppress(Exception):
                await self._ctx.store.delete(key)
            raise
        self._index.add(record)
        self._sealing.popleft()
        self.committed_offset = info.last_offset + 1
        self.companions.submit(record, segment.batches)  # in the background, after the commit
        metrics.SEGMENT_UPLOADS.labels(outcome="committed").inc()
        metrics.SEGMENT_UPLOAD_SECONDS.observe(time.monotonic() - started)
        if segment.producers:
            # Before waiters are woken: an acks=all producer must find its sequence on whichever
            # agent leads next, even if this one dies the moment the acknowledgement leaves.
            await self._record_producers(segment.producers)
        self._notify()
        if self._ctx.wal is not None:
            # Only now: until the producers' state is recorded, a WAL replay rebuilds it.
            self._ctx.wal.mark_committed(self.stream_id, self.committed_offset)

    async def _record_producers(self, producers: dict[int, tuple[int, int, int]]) -> None:
        """Keeps each producer's last batch of a committed segment in the metadata store.

        Never raises: the segment is committed already, and a state that is not recorded only
        means a retry across a restart may be refused as out of order instead of deduplicated.
        """
        for pid, (epoch, last_sequence, last_offset) in producers.items():
            state = ProducerPartitionState(
                pid, epoch, self.topic.name, self.partition, last_sequence, last_offset
            )
            try:
                await self._ctx.metadata.put_producer_state(state)
            except MetadataError as exc:  # a newer epoch was initialised, or an unknown id
                log.debug("producer state of %s not recorded: %s", state, exc)
            except Exception:
                log.warning("producer state of %s not recorded", state, exc_info=True)

    # ------------------------------------------------------------- recovery
    def restore(self, batch: bytes, header: BatchHeader) -> bool:
        """Puts back a batch replayed from the WAL; False when it would leave a gap."""
        if header.last_offset < self._next_offset:
            self.producers.restore(header)  # committed; its producer state may not be recorded
            return True
        if header.base_offset != self._next_offset:
            return False
        next_offset = header.last_offset + 1
        self._open.add(batch, header.base_offset, next_offset, header.max_timestamp)
        if header.producer_id >= 0 and header.base_sequence >= 0:
            self._open.note_producer(
                header.producer_id,
                header.producer_epoch,
                next_sequence(header.base_sequence, header.last_offset_delta),
                header.last_offset,
            )
        self.producers.restore(header)
        self._next_offset = next_offset
        return True

    # ------------------------------------------------------------- retention
    async def apply_retention(self, now_ms: int) -> int:
        """Deletes whole expired segments and advances the log start; returns how many."""
        config = self.topic.config
        expired = self._index.expired(now_ms, config.retention_ms, config.retention_bytes)
        if not expired or self.fenced:
            return 0
        await self._delete_segments(expired, expired[-1].last_offset + 1)
        metrics.RETENTION_DELETED_SEGMENTS.inc(len(expired))
        return len(expired)

    async def delete_records(self, offset: int, timeout_s: float = 30.0) -> int:
        """Hides every record below ``offset`` (Kafka's DeleteRecords); returns the log start.

        The metadata store only moves the log start within committed data, so what memory
        holds below ``offset`` is committed first (waiting at most ``timeout_s``). Committed
        segments wholly below ``offset`` are then deleted; the one straddling it stays, and
        reads below the log start are refused. An offset at or below the log start changes
        nothing.

        Raises:
            OffsetOutOfRangeError: ``offset`` is negative or beyond the high watermark.
            NotLeaderError: this agent no longer leads the partition.
            TimeoutError: the commit took longer than ``timeout_s`` (nothing changed).
        """
        end = self.high_watermark
        if not 0 <= offset <= end:
            raise OffsetOutOfRangeError(
                self.topic.name, self.partition, offset, self.log_start_offset, end
            )
        self._check_writable()
        if offset <= self.log_start_offset:
            return self.log_start_offset
        if self.committed_offset < offset:
            self.request_seal()
            async with asyncio.timeout(timeout_s):
                await self.wait_committed(offset)
        self._check_writable()
        await self._delete_segments([s for s in self._index if s.last_offset < offset], offset)
        return self.log_start_offset

    async def _delete_segments(self, doomed: Sequence[SegmentRecord], new_start: int) -> None:
        """Records the new log start with the segment rows removed, then drops their objects."""
        state = await self._ctx.metadata.delete_segments(
            self.topic.name,
            self.partition,
            [s.base_offset for s in doomed],
            new_log_start=new_start,
        )
        self._index.truncate_before(new_start)
        self.log_start_offset = max(self.log_start_offset, state.log_start_offset)
        for record in doomed:
            self._readers.pop(record.object_key, None)
            self._ctx.cache.invalidate(record.object_key)
            await self._ctx.store.delete(record.object_key)
            self._ctx.cache.invalidate(companion_key(record.object_key))
            await self._ctx.store.delete(companion_key(record.object_key))

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.companions.close()  # after the flusher, which may queue one more


def _first_record_reaching(batch: bytes, timestamp: int, start: int) -> tuple[int, int] | None:
    # One batch is decoded to find the exact record: a lookup, not a hot path.
    for item in iter_records(batch):
        if item.timestamp >= timestamp and item.offset >= start:
            return item.offset, item.timestamp
    return None


def _visible_max_of(batch: bytes, start: int) -> int:
    """The largest timestamp among a batch's records at or after ``start``."""
    return max((r.timestamp for r in iter_records(batch) if r.offset >= start), default=-1)
